"""Cloud shadows for a mask that has none (Level-1C's MSK_CLASSI, the older GML), from geometry
as Fmask finds them (Zhu & Woodcock, 2012): the opaque clouds are projected away from the sun
(the granule's Mean_Sun_Angle in MTD_TL.xml) over a range of cloud heights, and the projection
is kept where the ground is darker in the infrared than the clear land.
Those pixels become cloud shadow (3) in the stack's mask: not analysed. sentinel2.stack calls
add() on a Level-1C stack before renaming it into place.

- The projection: a cloud at height h casts its shadow h * tan(zenith) away along the sun's
  azimuth + 180 degrees; HEIGHTS spans low cumulus to mid-level cloud tops.
- The height, matched as Fmask matches each cloud object: for each BLOCK x BLOCK block of the
  scene, the one of STEPS heights whose projection of the block's clouds falls on the darkest
  ground is its clouds' height, and only the projection within MATCH of it is searched (a
  smear of the cloud along that stretch, built by doubling: log2 of its length shifts of the
  mask, not one per pixel). The union over all heights would mark every dark pixel on a long
  smear; the matched stretch marks the shadow's shape.
- Darker: B8 + B11 (near and shortwave infrared, as Fmask reads shadows in both) under DARKER
  times its median over the clear land (analysed, off the projection). A shadow darkens every
  band alike, while vegetation, soil, scars and rock differ little in that sum; water, dark in
  both, is marked where the projection crosses it (no landslide is lost with it).
- Only analysed pixels are marked; the mask's buffer (--cloud-buffer) is grown around the
  shadows found as around the clouds.
"""
import re

import numpy as np

import landslide as L
from mapping import clouds

HEIGHTS = (200.0, 6000.0)        # cloud heights in metres the projection spans
DARKER = 0.6                     # a shadow takes at least 40 % of the light
SAMPLE = 7                       # every 7th clear pixel makes the median
ROWS = 1024
BLOCK, STEPS, MATCH = 256, 32, 1.25   # blocks matched alone; heights tried; the stretch kept
COARSE = 4                       # the heights are searched on 40 m cells


def sun_angles(tile_xml):
    """(zenith, azimuth) in degrees from MTD_TL.xml's Mean_Sun_Angle, or None."""
    m = re.search(r'<Mean_Sun_Angle>(.*?)</Mean_Sun_Angle>', tile_xml, re.S)
    if not m:
        return None
    got = {k: re.search(rf'<{k}_ANGLE[^>]*>\s*([-\d.eE+]+)\s*<', m.group(1)) for k in
           ('ZENITH', 'AZIMUTH')}
    if not all(got.values()):
        return None
    return float(got['ZENITH'].group(1)), float(got['AZIMUTH'].group(1))


def direction(azimuth):
    """The unit step (rows, columns) away from the sun: north up, east right."""
    a = np.radians(azimuth)
    return np.cos(a), -np.sin(a)


def shifted(m, dy, dx):
    """m moved by (dy, dx) whole pixels, what leaves the frame dropped. m: bool [H, W]"""
    out = np.zeros_like(m)
    H, W = m.shape
    if abs(dy) >= H or abs(dx) >= W:
        return out
    out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        m[max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


def projection(opaque, zenith, azimuth, pixel, heights=HEIGHTS):
    """Where the opaque clouds' shadows can fall, whatever their height in `heights`.
    opaque: bool [H, W]; pixel: metres. -> bool [H, W]"""
    uy, ux = direction(azimuth)
    near, far = (h * np.tan(np.radians(zenith)) / pixel for h in heights)
    s = shifted(opaque, round(near * uy), round(near * ux))
    length, covered = max(far - near, 1.0), 1.0
    while covered < length:                          # s covers offsets [near, near + covered)
        step = min(covered, length - covered)
        s |= shifted(s, round(step * uy), round(step * ux))
        covered += step
    return s


def add(stack_path, mask_path, zenith, azimuth, buffer=0):
    """Mark cloud shadows in mask_path (the stack's mask, rewritten in place). -> pixels marked"""
    rio = L.rasterio_for(stack_path)
    with rio.open(mask_path) as f:
        mask = f.read(1)
        pixel = abs(f.transform.a)
    opaque = mask == 1
    where = projection(opaque, zenith, azimuth, pixel) & (mask == 0)
    if not where.any():
        return 0
    with rio.open(stack_path) as f:
        clear = [b[(mask[a:a + len(b)] == 0) & ~where[a:a + len(b)] & np.isfinite(b)][::SAMPLE]
                 for a, b in brightness(f)]
        ref = np.median(np.concatenate(clear)) if sum(map(len, clear)) else np.nan
        dark = np.zeros_like(where)                  # candidates: dark, analysed, maybe shaded
        for a, b in brightness(f):
            with np.errstate(invalid='ignore'):
                dark[a:a + len(b)] = where[a:a + len(b)] & (b < DARKER * ref)
    shadow = matched(opaque, dark, where, zenith, azimuth, pixel) & dark
    mask[shadow] = 3
    if buffer:
        mask = clouds.dilate(mask, buffer)
    with rio.open(mask_path, 'r+') as f:
        f.write(mask[None])
    return int(shadow.sum())


def matched(opaque, dark, seen, zenith, azimuth, pixel, heights=HEIGHTS):
    """Where the opaque clouds' shadows fall, each BLOCK x BLOCK block's clouds at their own
    height: the one of STEPS heights (geometric, over `heights`) at which most of the block's
    projected cloud pixels that land on analysed ground land on dark ground; the projection
    searched from that height / MATCH to * MATCH. opaque, dark, seen: bool [H, W]. -> bool"""
    H, W = opaque.shape
    tried = np.geomspace(*heights, STEPS)
    uy, ux = direction(azimuth)
    c_opaque, c_dark, c_seen = (coarse(m) for m in (opaque, dark, seen))   # searched at 40 m
    cb = BLOCK // COARSE
    nb = (-(-H // BLOCK), -(-W // BLOCK))
    hits, lands = np.zeros((STEPS, *nb)), np.zeros((STEPS, *nb))
    for i, h in enumerate(tried):          # the ground under each cloud pixel's shadow at h
        d = h * np.tan(np.radians(zenith)) / (pixel * COARSE)
        dy, dx = round(d * uy), round(d * ux)
        for k, m in ((hits, c_dark), (lands, c_seen)):
            back = (shifted(m, -dy, -dx) & c_opaque).astype(np.int32)
            rows = np.add.reduceat(back, np.arange(0, back.shape[0], cb), 0)
            k[i] = np.add.reduceat(rows, np.arange(0, back.shape[1], cb), 1)[:nb[0], :nb[1]]
    with np.errstate(invalid='ignore', divide='ignore'):
        best = np.argmax(np.where(lands > 0, hits / lands, -1.0), axis=0)   # [by, bx]
    out = np.zeros_like(opaque)
    for i in np.unique(best):
        clouds_i = np.zeros_like(opaque)                 # the clouds of the blocks matched at i
        for by, bx in zip(*np.nonzero(best == i)):
            block = np.s_[by * BLOCK:(by + 1) * BLOCK, bx * BLOCK:(bx + 1) * BLOCK]
            clouds_i[block] = opaque[block]
        if clouds_i.any():
            out |= projection(clouds_i, zenith, azimuth, pixel,
                              (tried[i] / MATCH, tried[i] * MATCH))
    return out


def coarse(m):
    """m in COARSE x COARSE cells, a cell set where most of its pixels are (the edges' partial
    cells dropped). m: bool [H, W] -> bool [H // COARSE, W // COARSE]"""
    h, w = m.shape[0] // COARSE, m.shape[1] // COARSE
    return m[:h * COARSE, :w * COARSE].reshape(h, COARSE, w, COARSE).sum((1, 3)) * 2 > COARSE ** 2


def brightness(f):
    """B8 + B11 of an open stack in bands of ROWS rows: yields (first row, float32 [n, W])."""
    from rasterio.windows import Window
    for a in range(0, f.height, ROWS):
        w = Window(0, a, f.width, min(ROWS, f.height - a))
        yield a, f.read(8, window=w) + f.read(11, window=w)
