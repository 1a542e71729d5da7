"""The DEM beside a Sentinel-2 product: opened and checked (any CRS; predict.py checks it before
any work), and the slope band by Horn's method, as `gdaldem slope` computes it. sentinel2.py
warps the DEM onto the stack's grid and calls horn_slope on each band of rows.
"""
import os

import numpy as np

import landslide as L


def check_dem(path):
    """A DEM that is readable and georeferenced (predict.py checks before any work)."""
    open_dem(L.rasterio_for(path), path).close()


def open_dem(rio, path):
    if not os.path.isfile(path):
        raise L.DataError(f'{path}: DEM not found')
    try:
        dem = rio.open(path)
    except Exception as e:
        raise L.DataError(f'{path}: not a readable DEM raster ({e.__class__.__name__})')
    if dem.crs is None:
        raise L.DataError(f'{path}: the DEM has no CRS')
    return dem


def horn_slope(z, xres, yres):
    """Slope in degrees by Horn's method (gdaldem slope): z float [h + 2, w] with a row of halo
    above and below; at the left and right border the missing neighbour is the centre
    (gdaldem's -compute_edges; the caller pads rows alike). A pixel whose 3 x 3
    window holds NaN is NaN. -> float32 [h, w]"""
    p = np.pad(z, ((0, 0), (1, 1)), mode='edge')
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * xres)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * yres)
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy))).astype(np.float32)
