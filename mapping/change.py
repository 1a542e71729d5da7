"""Which landslides are new: a before and an after date, each mapped on its own as a domain of its
own (its own statistics and AdaBN over what it could see, tiles.py), then compared. It takes
the two dates' maps and stacks on one grid and gives classes; predict.py --before calls it:

    python predict.py --run RUN --s2 AFTER --before BEFORE --dem DEM.tif --out OUT

No before/after labels are needed (Landslide4Sense has none): the single-date networks do the
finding, the comparison the dating. The rule (--change-rule):
- 'pixels' (the default): post-classification comparison, pixel by pixel: a landslide pixel of
  the after map is 'before' where the before map has one, 'unseen before' where the before-date
  could not see, else 'new'. It assumes nothing about what counts as one landslide or how much
  vegetation a new one strips, and a landslide that grew keeps its new part as new.
- 'objects': each landslide of the after map as a whole: 'unseen before' when the before-date
  could not see most of it, 'before' when most of what it saw was landslide there, else 'new'.
- 'pixels+ndvi', 'objects+ndvi': the same, new only where the vegetation was lost between the
  dates (NDVI fell by at least VEG_LOSS more than the scene's median change, which takes up
  season and sensor). It rejects an old scar the before map missed, bare on both dates, but
  also every new landslide on ground that was sparse before (scree, alpine meadow, arid
  slopes), and it cannot reject a field cleared between the dates, which lost vegetation too.
docs/mapping.md has what each rule measured on synthetic events.
"""
import os

import numpy as np

from mapping import polygons, quicklook, scene as S, tiles
from report import write_png

RULES = ('pixels', 'objects', 'pixels+ndvi', 'objects+ndvi')
NEW, BEFORE, UNSEEN = 1, 2, 3
VEG_LOSS = 0.1              # NDVI lost beyond the scene's median change: dense cover 0.6-0.9,
MOST = 0.5                  # bare ground 0.05-0.25; a share of a landslide that decides it
STATUS = {NEW: 'new', BEFORE: 'before', UNSEEN: 'unseen before'}
CLASSES = {0: ('no landslide', (255, 255, 255, 0)), NEW: ('new landslide', (230, 30, 30, 255)),
           BEFORE: ('landslide already there before the event', (255, 200, 0, 255)),
           UNSEEN: ('landslide the before-date could not see', (200, 60, 255, 255)),
           254: ('not analysed (cloud, cloud shadow, snow)', (160, 170, 190, 255)),
           255: ('no data', (0, 0, 0, 0))}
STYLES = {0: ('no landslide', None, 'plain'), NEW: ('new landslide', (255, 40, 40), 'outline'),
          BEFORE: ('there before', (255, 210, 0), 'outline'),
          UNSEEN: ('unseen before', (210, 80, 255), 'outline'),
          254: ('not analysed', None, 'hatch')}
ROWS = 1024


def ndvi(x):
    """x: [..., 14] reflectance in the Landslide4Sense order -> NDVI [...] from B4 and B8"""
    red, nir = x[..., 3].astype(np.float64), x[..., 7].astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return (nir - red) / (nir + red)


def ndvi_loss(after, before, a, b):
    """NDVI before minus after on rows a..b-1 of two scenes on one grid. -> float64 [b - a, W]"""
    return ndvi(before.rows(a, b)) - ndvi(after.rows(a, b))


def classify(after_map, before_map, after, before, rule='pixels'):
    """after_map, before_map: the dates' single-date maps on one grid, uint8 [H, W] (0, 1, 254
    not analysed, 255 no data); after, before: their stacks (scene.Scene). -> (classes uint8
    [H, W]: 0, NEW, BEFORE, UNSEEN, 254, 255; info dict: the median NDVI change (rules with
    the vegetation condition) and per status the landslide pixels)"""
    land = after_map == 1
    seen = (before_map < 254) & (after_map < 254)              # both dates saw the pixel
    med = median_change(after, before, seen) if rule.endswith('ndvi') else None
    if rule.startswith('objects'):
        labels, shapes = polygons.components(land, after.transform)
        status = object_status(labels, len(shapes) + 1, before_map, after, before, med, rule)
        out = np.where(land, status[labels], after_map)
    else:
        out = after_map.copy()
        for a in range(0, after.H, ROWS):
            b = min(a + ROWS, after.H)
            was, here = before_map[a:b], land[a:b]
            s = np.where(was >= 254, UNSEEN, np.where(was == 1, BEFORE, NEW))
            if rule == 'pixels+ndvi':
                lost = ndvi_loss(after, before, a, b) - med >= VEG_LOSS
                s = np.where((s == NEW) & ~lost, BEFORE, s)
            out[a:b] = np.where(here, s, after_map[a:b])
    out = out.astype(np.uint8)
    counts = {STATUS[k]: int((out == k).sum()) for k in STATUS}
    return out, dict(rule=rule, median_ndvi_change=None if med is None else round(med, 4),
                     pixels=counts)


def median_change(after, before, seen, bins=np.linspace(-2, 2, 4001)):
    """The median NDVI loss over the pixels both dates saw (a histogram, row band by row band):
    what season and sensor changed everywhere. -> float"""
    hist = np.zeros(len(bins) - 1)
    for a in range(0, after.H, ROWS):
        b = min(a + ROWS, after.H)
        d = ndvi_loss(after, before, a, b)[seen[a:b]]
        hist += np.histogram(d[np.isfinite(d)], bins)[0]
    if hist.sum() == 0:
        return 0.0
    k = int(np.searchsorted(np.cumsum(hist), hist.sum() / 2))
    return float((bins[k] + bins[k + 1]) / 2)


def object_status(labels, n, before_map, after, before, med, rule):
    """The status of each connected landslide 1..n-1 (index 0 is 'none'). -> uint8 [n]"""
    pix, saw, was, loss, counted = (np.zeros(n) for _ in range(5))
    for a in range(0, after.H, ROWS):
        b = min(a + ROWS, after.H)
        lab = labels[a:b].ravel()
        bm = before_map[a:b].ravel()
        pix += np.bincount(lab, minlength=n)
        ok = bm < 254
        saw += np.bincount(lab, weights=ok, minlength=n)
        was += np.bincount(lab, weights=bm == 1, minlength=n)
        if rule == 'objects+ndvi':
            d = (ndvi_loss(after, before, a, b) - med).ravel()
            fin = ok & np.isfinite(d)
            loss += np.bincount(lab[fin], weights=d[fin], minlength=n)
            counted += np.bincount(lab[fin], minlength=n)
    status = np.full(n, NEW, np.uint8)
    status[was >= MOST * np.maximum(saw, 1)] = BEFORE
    if rule == 'objects+ndvi':
        mean_loss = loss / np.maximum(counted, 1)
        status[(status == NEW) & (mean_loss < VEG_LOSS)] = BEFORE
    status[saw < MOST * pix] = UNSEEN
    status[0] = 0
    return status


def write(path, classes, sc):
    """The change classes as <after name>_landslide (scene.Writer: class names, colour table)."""
    w = S.Writer(path, sc, 'landslide', classes=CLASSES)
    try:
        for a in range(0, len(classes), ROWS):
            w.write(a, classes[a:a + ROWS])
        w.commit()
    except BaseException:
        w.abort()
        raise


def compare(after, before, out, rgb, rule, log):
    """The change classes into <after>_landslide.tif  and its quicklook redrawn with
    them. -> what summary.json records of the comparison"""
    paths = [os.path.join(out, f'{s.name}_landslide.tif') for s in (after, before)]
    classes, info = classify(S.read_output(paths[0], 'landslide'),
                             S.read_output(paths[1], 'landslide'), after, before, rule)
    write(paths[0], classes, after)
    q = tiles.quicklook_step(after)
    look = quicklook.picture(rgb, classes[::q, ::q], STYLES)
    write_png(os.path.join(out, f'{after.name}_quicklook.png'), look)
    log(f"{after.name}: against {before.name} ({rule}): " +
        ', '.join(f'{k} {v} pixels' for k, v in info['pixels'].items()))
    return info
