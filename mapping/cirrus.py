"""Thin cirrus taken out of a Level-1C scene before it is mapped. A veil of cirrus too thin for
the product's mask (MSK_CLASSI flags cirrus on 60 m cells, above a threshold) brightens the
ground under it in every band, and the networks call some of it landslide.
Band B10 (1375 nm) sees the veil alone: water vapour absorbs the light from the ground below,
so what B10 holds above the clear land's level is the cirrus' own reflectance. The empirical
correction of Gao et al. (1998), which Sen2Cor can apply in making Level-2A products (Richter et
al., 2011), subtracts that excess from each band:

    x_k <- x_k - (B10 - B10_clear(z)),   k = B1 .. B12,   where B10 > B10_clear(z)

- The ratio between a band's cirrus signal and B10's is taken as 1 in every band (ice crystals
  scatter nearly alike across the reflective bands). Ratios fitted to the scene, as Gao et al.
  fit them, did no better on the benchmark (docs/clouds.md) and scattered where cumulus shadows
  and fringes overlap the flagged cirrus, or where little of it is flagged; one fixed ratio
  cannot go wrong so.
- B10_clear(z): the clear land does not hold B10 at zero. Over high, dry ground some light from
  the ground reaches the sensor through the thinner vapour, so B10's clear level rises with
  elevation (Fmask 4.0 normalizes its cirrus test with a DEM for this reason; Qiu, Zhu & He,
  2019). The level is the median B10 of the analysed pixels in each of BINS elevation bands
  (equal shares of the analysed pixels, elevation from the stack's DEM), interpolated between
  the bands' median elevations.
- sentinel2.stack samples (elevation, B10) of the analysed pixels while it writes a Level-1C
  stack and stores the levels in its tags (TAG); the stack keeps the product's reflectance.
  Asked for (`predict.py --corrections edges cirrus`), scene.Scene makes the correction on the
  rows it reads, so the statistics, the tiles and --adapt's target all see the corrected scene.
  Level-2A stacks carry no B10 (Sen2Cor drops it) and no tag. A cloud is for the mask: an
  opaque one, unmasked, would be darkened as a veil is.
- On request, not by default: alone it took two thirds of the cirrus called landslide away on
  the cloud benchmark, but with B1 taken from B2 beside the clouds (edges.py, the default) it
  no longer lowered it at every cover and cost the clear land half a point (docs/clouds.md).
  A product without masks (--detect-clouds), whose cirrus nothing marks, is where it helps.
"""
import numpy as np

import landslide as L

BINS = 10                        # elevation bands of equal shares of the analysed pixels
TAG = 'CIRRUS_CLEAR_B10'         # the stack's tag: "elevation:B10 ..." pairs
B10, DEM = 9, 13                 # band indices in the Landslide4Sense order


def clear_levels(z, b, bins=BINS):
    """B10's clear level by elevation from samples of the analysed land: the median B10 of each
    of `bins` elevation bands of equal counts, at the band's median elevation.
    z, b: float [m] -> (elevations [k], levels [k]), k <= bins, elevations increasing; empty
    without samples"""
    if len(z) == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(z, kind='stable')
    parts = [p for p in np.array_split(order, min(bins, len(z))) if len(p)]
    zs = np.array([np.median(z[p]) for p in parts])
    bs = np.array([np.median(b[p]) for p in parts])
    zs, first = np.unique(zs, return_index=True)     # a flat DEM: one level
    return zs, bs[first]


def to_tag(levels):
    """The levels as the stack's tag text. levels: (elevations [k], B10 [k]) -> str"""
    return ' '.join(f'{z:.1f}:{b:.6f}' for z, b in zip(*levels))


def from_tags(tags):
    """The levels a stack's tags hold, or None (not a Level-1C stack, or made before the tag).
    tags: dict as rasterio's tags() gives -> (elevations [k], B10 [k]) or None"""
    text = tags.get(TAG, '').split()
    if not text:
        return None
    pairs = np.array([[float(v) for v in p.split(':')] for p in text])
    return pairs[:, 0], pairs[:, 1]


def correct(x, levels):
    """B10's excess over the clear level at each pixel's elevation taken out of B1..B12, in
    place (B10 itself comes down to the clear level); slope, DEM and no-data (NaN) untouched.
    x: float32 [n, W, 14], as scene.Scene.rows reads; levels: (elevations [k], B10 [k]).
    -> x"""
    z, b10 = x[..., DEM], x[..., B10]
    clear = np.interp(np.nan_to_num(z), *levels).astype(np.float32)
    with np.errstate(invalid='ignore'):
        excess = np.maximum(b10 - clear, 0)
    excess[~np.isfinite(excess)] = 0
    x[..., :L.SPECTRAL] -= excess[..., None]
    return x
