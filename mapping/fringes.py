"""Cloud fringes a coarse mask misses, found from the spectra. A product's masks flag clouds on
coarse cells (Level-1C's MSK_CLASSI and the older GML on 60 m, Level-2A's scene classification
on 20 m), each above a probability, so a cloud's bright, semi-transparent 10 m edge is often
left as ground and mapped. sentinel2.stack calls mark() on every band of rows it writes: within
CELLS of the mask's own cells (one: six pixels for a 60 m mask, two for the 20 m SCL) of a
masked cloud or cirrus, a pixel the mask calls clear becomes cloud (1) where it passes Fmask's
potential-cloud tests (Zhu & Woodcock, 2012), written with Sentinel-2's bands for Landsat's and
without the thermal test, which Sentinel-2 cannot make: SWIR2 (B12) above 0.03; NDSI and NDVI
under 0.8; whiteness (the visible bands' spread about their mean, over the mean) under 0.7; the
haze-optimized transform B2 - 0.5 B4 above 0.08; and NIR / SWIR1 (B8 / B11) above 0.75.

The thresholds are the published ones, not fitted to any product. Bare ground, a fresh
landslide's scar included, fails the haze test (its red is not far enough below its blue) and
the NIR / SWIR1 test, which is why Fmask uses them; and nothing farther than a cell from the
product's own mask is touched, so a scar in the clear is never masked by its colour.
Reflectance in, as the stack holds it (0..1, offsets applied). `--cloud-fringe 0` keeps the
product's mask as it is.

Thin cirrus is not tested: Fmask's fixed threshold on the cirrus band B10 (0.01) reads the
ground itself as cirrus wherever the air above it is dry, as over high mountains (Fmask 4
first subtracts the clear land's B10 at each elevation), so a cirrus fringe stays as the mask
has it.
"""
import numpy as np

from mapping import clouds

CELLS = 1                        # the fringe's width, in the mask's own cells
SWIR2, NDSI, NDVI, WHITENESS, HOT, NIR_SWIR = 0.03, 0.8, 0.8, 0.7, 0.08, 0.75


def cloudy(x):
    """Fmask's potential cloud pixels. x: float32 [14, n, W], the stack's bands (B1..B12 first).
    -> bool [n, W]"""
    b2, b3, b4, b8, b11, b12 = x[1], x[2], x[3], x[7], x[10], x[11]
    with np.errstate(invalid='ignore', divide='ignore'):
        vis = (b2 + b3 + b4) / 3
        white = (abs(b2 - vis) + abs(b3 - vis) + abs(b4 - vis)) / vis
        return ((b12 > SWIR2) & ((b3 - b11) / (b3 + b11) < NDSI) & ((b8 - b4) / (b8 + b4) < NDVI)
                & (white < WHITENESS) & (b2 - 0.5 * b4 > HOT) & (b8 / b11 > NIR_SWIR))


def mark(x, m, near):
    """Clear pixels near the mask's clouds marked cloud where the spectra say so, in place.
    x: float32 [14, n, W]; m: uint8 [n, W] of clouds.CLASSES; near: bool [n, W], within a
    cell of a masked cloud or cirrus (near_clouds). -> pixels marked"""
    cloud = near & (m == 0) & cloudy(x)
    m[cloud] = 1
    return int(cloud.sum())


def width(mask, pixel, cells=CELLS):
    """The fringe in the grid's pixels: `cells` of the mask's cells (6 for one 60 m cell on
    10 m). mask: dict(res: metres, ...) as clouds.find gives; pixel: the grid's, metres. -> int"""
    return int(round(cells * mask['res'] / pixel))


def near_clouds(c, a, n, w):
    """Pixels within w of a cloud or cirrus. c: uint8 [h, W], mask rows that hold rows a .. a + n
    with w rows each side where the frame has them; a: where the wanted rows start in c.
    -> bool [n, W]"""
    only = np.where(np.isin(c, (1, 2)), c, 0).astype(np.uint8)
    return clouds.dilate(only, w)[a:a + n] == 6
