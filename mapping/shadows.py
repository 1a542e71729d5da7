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
- Memory: the heights are searched on COARSE x COARSE cells and the shadows marked band by band
  of ROWS rows (each band's clouds read from as far sunward as a shadow reaches), so a full
  10980 x 10980 tile holds its mask and a few bands, not a dozen full-size arrays.
"""
import re

import numpy as np

import landslide as L
from mapping import clouds

HEIGHTS = (200.0, 6000.0)        # cloud heights in metres the projection spans
DARKER = 0.6                     # a shadow takes at least 40 % of the light
SAMPLE = 7                       # every 7th row's clear land makes the median
ROWS = 1024                      # rows a band; a multiple of COARSE
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
    """Mark cloud shadows in mask_path (the stack's mask, rewritten in place): the heights matched
    on 40 m cells, the shadows marked at 10 m band by band of ROWS rows, so that no full-size
    array but the mask itself is held. -> pixels marked"""
    rio = L.rasterio_for(stack_path)
    with rio.open(mask_path) as f:
        mask = f.read(1)
        pixel = abs(f.transform.a)
    c_opaque, c_seen = cells(mask, lambda m: m == 1), cells(mask, lambda m: m == 0)
    c_where = projection(c_opaque, zenith, azimuth, pixel * COARSE) & c_seen
    if not c_where.any():
        return 0
    H, W = mask.shape
    # each window's tiles decoded once (brightness reads B8 and B11 together): a small cache
    with rio.Env(GDAL_CACHEMAX=64), rio.open(stack_path) as f:
        clear = []                        # every SAMPLE-th row of the scene, whatever the bands
        for a, b in brightness(f):
            r = np.s_[(-a) % SAMPLE::SAMPLE]
            keep = (mask[a:a + len(b)][r] == 0) & ~fine(c_where, a, len(b), W)[r]
            clear.append(b[r][keep & np.isfinite(b[r])])
        ref = np.median(np.concatenate(clear)) if sum(map(len, clear)) else np.nan
        c_dark = np.concatenate([coarse(dark(b, mask[a:a + len(b)], ref))
                                 for a, b in brightness(f)])
        height = heights(c_opaque, c_dark, c_seen, zenith, azimuth, pixel)
        uy = direction(azimuth)[0]        # a band's shadows come from up to `reach` rows sunward
        reach = int(np.ceil(HEIGHTS[1] * MATCH * np.tan(np.radians(zenith)) / pixel * abs(uy)))
        reach += 16                       # the projection's rounded steps
        marked = 0
        for a, b in brightness(f):
            n = len(b)
            lo, hi = (max(a - reach, 0), a + n) if uy > 0 else (a, min(a + n + reach, H))
            shadow = cast(mask[lo:hi] == 1, lo, height, zenith, azimuth, pixel)[a - lo:a - lo + n]
            shadow &= dark(b, mask[a:a + n], ref)
            mask[a:a + n][shadow] = 3
            marked += int(shadow.sum())
    for a in range(0, H, ROWS) if buffer else ():   # in place: the buffer's 6 grows nothing
        lo, hi = max(a - buffer, 0), min(a + ROWS + buffer, H)
        mask[a:a + ROWS] = clouds.dilate(mask[lo:hi], buffer)[a - lo:a - lo + ROWS]
    with rio.open(mask_path, 'r+') as f:
        f.write(mask[None])
    return marked


def dark(b, rows, ref):
    """Analysed pixels darker than DARKER times the clear land's B8 + B11.
    b: float32 [n, W] (B8 + B11); rows: uint8 [n, W] of the mask. -> bool [n, W]"""
    with np.errstate(invalid='ignore'):
        return (rows == 0) & (b < DARKER * ref)


def heights(c_opaque, c_dark, c_seen, zenith, azimuth, pixel, span=HEIGHTS):
    """Each BLOCK x BLOCK block's cloud height, searched on COARSE cells: the one of STEPS heights
    (geometric over `span`) at which most of the block's cloud cells whose shadow lands on
    analysed ground land on dark ground. c_*: bool [H / COARSE, W / COARSE]; pixel: metres of
    the 10 m grid. -> float [blocks down, blocks across] metres"""
    tried = np.geomspace(*span, STEPS)
    uy, ux = direction(azimuth)
    cb = BLOCK // COARSE
    nb = (-(-c_opaque.shape[0] // cb), -(-c_opaque.shape[1] // cb))
    hits, lands = np.zeros((STEPS, *nb)), np.zeros((STEPS, *nb))
    for i, h in enumerate(tried):          # the ground under each cloud cell's shadow at h
        d = h * np.tan(np.radians(zenith)) / (pixel * COARSE)
        dy, dx = round(d * uy), round(d * ux)
        for k, m in ((hits, c_dark), (lands, c_seen)):
            back = (shifted(m, -dy, -dx) & c_opaque).astype(np.int32)
            rows = np.add.reduceat(back, np.arange(0, back.shape[0], cb), 0)
            k[i] = np.add.reduceat(rows, np.arange(0, back.shape[1], cb), 1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return tried[np.argmax(np.where(lands > 0, hits / lands, -1.0), axis=0)]


def cast(opaque, top, height, zenith, azimuth, pixel):
    """The opaque clouds' shadows, each block's clouds projected over their height / MATCH to
    height * MATCH (a stretch, not the union of all heights: the shadow's shape).
    opaque: bool [n, W], the scene's rows top .. top + n; height: [blocks down, blocks across]
    metres, as heights() gives. -> bool [n, W]"""
    n, W = opaque.shape
    first = top // BLOCK
    blocks = height[first:(top + n - 1) // BLOCK + 1]
    out = np.zeros_like(opaque)
    for h in np.unique(blocks):
        own = np.repeat(np.repeat(blocks == h, BLOCK, 0), BLOCK, 1)
        own = own[top - first * BLOCK:top - first * BLOCK + n, :W]
        if (opaque & own).any():
            out |= projection(opaque & own, zenith, azimuth, pixel, (h / MATCH, h * MATCH))
    return out


def cells(mask, test):
    """coarse(test(mask)), band by band of rows. mask: [H, W] -> bool, as coarse() gives"""
    return np.concatenate([coarse(test(mask[a:a + ROWS])) for a in range(0, len(mask), ROWS)])


def fine(c, a, n, W):
    """COARSE cells back on the 10 m rows a .. a + n (a a multiple of COARSE).
    c: bool [ceil(H / COARSE), ceil(W / COARSE)] -> bool [n, W]"""
    up = np.repeat(np.repeat(c[a // COARSE:-(-(a + n) // COARSE)], COARSE, 0), COARSE, 1)
    return up[:n, :W]


def coarse(m):
    """m in COARSE x COARSE cells, a cell set where more than half its pixels are (a partial cell
    at the edges counts its missing pixels unset). m: bool [H, W] -> bool [ceil(H / COARSE),
    ceil(W / COARSE)]"""
    h, w = -(-m.shape[0] // COARSE), -(-m.shape[1] // COARSE)
    if m.shape != (h * COARSE, w * COARSE):
        m = np.pad(m, ((0, h * COARSE - m.shape[0]), (0, w * COARSE - m.shape[1])))
    return m.reshape(h, COARSE, w, COARSE).sum((1, 3)) * 2 > COARSE ** 2


def brightness(f):
    """B8 + B11 of an open stack in bands of ROWS rows: yields (first row, float32 [n, W])."""
    from rasterio.windows import Window
    for a in range(0, f.height, ROWS):
        w = Window(0, a, f.width, min(ROWS, f.height - a))
        b8, b11 = f.read([8, 11], window=w)       # one read: each tile decoded once
        yield a, b8 + b11
