"""A synthetic event: one tile's ground sensed before and after it, as two Sentinel-2 products,
with the truth of what changed. The ground is shared (terrain, cover, bare fields, river bars)
and holds an earlier event's scars, still bare or partly grown over; between the dates fields
are harvested and hillsides logged (vegetation lost, no landslide) and the event makes new
landslides, seen only after. The dates differ in season (the vegetation's vigour), sensor gain
(a few percent, Sentinel-2A against 2B), haze, noise and sky.

    python -m synthetic event runs/event --level L2A [--clouds 0.2] [--before-tile]

writes OUT/after/ and OUT/before/ (each a product, its scene pre-stacked and sky_truth.tif),
OUT/dem.tif, OUT/truth.tif (0 none, 1 new landslide, 2 earlier landslide, 3 cleared between the
dates; on the after grid) and OUT/truth_new.tif (1 where a landslide is new: what --truth
scores). With --before-tile the before-date lies on a neighbouring tile in the next UTM zone.
"""
import os

import numpy as np

from synthetic import landscape, product, sky

TRUTH = ('none', 'new landslide', 'earlier landslide', 'cleared')
DATES = dict(before='20240927T050000', after='20241227T050000')
OTHER_TILE = ('T46RBR', 'EPSG:32646')


def synth_event(out, size=768, seed=0, level='L2A', clouds=0.0, before_tile=False, shift=1.0,
                crs='EPSG:32645', origin=(500000.0, 3100000.0)):
    """Write the event (module docstring). size: 10 m pixels a side, a multiple of 6.
    -> dict(after, before: the products, dem, truth, truth_new)"""
    from rasterio.transform import from_origin
    dom = landscape.domain(shift, seed, 'product', product.WORLD) | {'older': 0.3}   # regrowing
    g = landscape.draw_ground(np.random.default_rng([seed, 3]), dom, size)
    rng = np.random.default_rng([seed, 21])
    after = g['refl'].copy()
    new = landscape.paint_scars(rng, dom | {'older': 0.0}, g, after) & ~g['mask']
    cleared = clearings(rng, g, after) & ~new & ~g['mask']
    truth = np.zeros((size, size), np.uint8)
    truth[g['mask']], truth[cleared], truth[new] = 2, 3, 1
    corner = np.add.outer(np.arange(size), np.arange(size)) < size // 4      # no data up there
    truth[corner] = 0
    paths, tr = {}, from_origin(*origin, 10.0, 10.0)
    for k, refl, s in (('after', after, 0), ('before', g['refl'], 1)):
        img = date(g, refl, dom, np.random.default_rng([seed, 31 + s]), k)
        sk = sky.draw(np.random.default_rng([seed, 11 + s]), size, clouds)
        cover, nodata = g['cover'], corner
        where, at, when = os.path.join(out, k), (crs, origin), DATES[k]
        tile = product.TILE
        if k == 'before' and before_tile:
            tile = OTHER_TILE[0]
            img, sk, cover, nodata, at = on_other_tile(img, sk, cover, corner, crs, tr,
                                                       OTHER_TILE[1])
        os.makedirs(where, exist_ok=True)
        seen = (truth == 1) if k == 'after' else None if before_tile else (truth == 2)
        p = product.write_product(where, img, sk, cover, nodata, level, '04.00', when, *at,
                                  tile=tile, mask=None if seen is None else
                                  seen.astype(np.uint8))
        paths[k] = p['product']
        product.write_mask(os.path.join(where, 'sky_truth.tif'), sky.truth(sk), at[0],
                           from_origin(*at[1], 10.0, 10.0))
    paths['dem'] = product.write_dem(os.path.join(out, 'dem.tif'), g['dem'], crs, tr)
    paths['truth'] = product.write_mask(os.path.join(out, 'truth.tif'), truth, crs, tr)
    paths['truth_new'] = product.write_mask(os.path.join(out, 'truth_new.tif'),
                                            (truth == 1).astype(np.uint8), crs, tr)
    return paths


def clearings(rng, g, refl):
    """Fields harvested on the flat and hillsides logged, between the dates: rectangles of
    vegetated ground laid bare (painted into refl, in place). -> bool [n, n]"""
    n = len(refl)
    out = np.zeros((n, n), bool)
    green = np.argwhere(g['veg'] > 0.6)
    for _ in range(rng.poisson(2.0 * g['area']) if len(green) else 0):
        cy, cx = green[rng.integers(len(green))]
        h, w = rng.integers(4, 14, size=2)
        out[max(cy - h, 0):cy + h, max(cx - w, 0):cx + w] = True
    out &= g['veg'] > 0.3
    bare = g['spec']['field'] * rng.uniform(0.9, 1.1)
    refl[out] = 0.15 * refl[out] + 0.85 * bare
    return out


def date(g, refl, dom, rng, which):
    """The ground as sensed on one date: the season's vigour (red edge and NIR), a sensor gain
    within a few percent, the date's own haze and noise. -> img float32 [n, n, 14] at 10 m"""
    season = np.ones(12)
    season[4:9] = 1.0 if which == 'after' else 1.08              # greener before, in autumn
    r = refl * (1 + (season - 1) * g['veg'][..., None])
    d = dom | {'gain': dom['gain'] * np.exp(0.02 * rng.standard_normal(12)),
               'haze': 0.01 if which == 'before' else 0.025}
    return landscape.sense(g, r, rng, d, native=False)


def on_other_tile(img, sk, cover, nodata, crs, transform, other):
    """A date's ground, sky and cover warped onto a 10 m grid of another CRS (a neighbouring
    tile across a UTM zone's edge) covering the same area; the size cut to a multiple of 6.
    -> (img, sky, cover, nodata, (crs, origin))"""
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    n = len(img)
    bounds = (transform.c, transform.f - 10 * n, transform.c + 10 * n, transform.f)
    tr, w, h = calculate_default_transform(crs, other, n, n, *bounds, resolution=10)
    m = min(w, h) // 6 * 6

    def warp(x, how, fill):
        dst = np.full((m, m), fill, np.float64)
        reproject(np.ascontiguousarray(x, np.float64), dst, src_transform=transform, src_crs=crs,
                  dst_transform=tr, dst_crs=other, resampling=how, dst_nodata=fill)
        return dst
    bil, near = Resampling.bilinear, Resampling.nearest
    out = np.stack([warp(img[..., b], bil, np.nan) for b in range(img.shape[-1])], -1)
    hole = warp(nodata.astype(np.float64), near, 1.0) > 0.5
    hole |= ~np.isfinite(out).all(-1)
    out[hole] = 0.0
    sk = {k: np.nan_to_num(warp(v, bil, 0.0)) for k, v in sk.items()}
    return out.astype(np.float32), sk, warp(cover, near, 0).astype(np.uint8), hole, \
        (other, (tr.c, tr.f))
