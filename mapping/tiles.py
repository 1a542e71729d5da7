"""Mapping a whole scene tile by tile ("large-scale ... disaster monitoring", paper §1): the
scene is its own domain (its own band statistics over the pixels it could see: no-data and what
its cloud mask leaves out; with AdaBN its own BatchNorm statistics too, from tiles free of
both); 128-pixel windows overlap by `overlap`, reflect-padded at the edges, blended with a
smooth weight; the mask and probability are written band by band, so memory is bounded by one
band of tile rows whatever the scene's size. Pixels under a cloud, its shadow or snow are not
analysed: 254 in the mask, NaN in the probability, zeros (the mean) to the networks.
predict.py calls map_scene.
"""
import ctypes
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

import landslide as L
import refine
from mapping import quicklook, scene as S
from report import write_png

NOT_ANALYSED = 254                    # the landslide map's value where it could not see
MIN_ANALYSED = 0.01                   # below this share of the data: nothing mapped
# the landslide map's values: name and colour (RGBA: a GIS shows 0 and 255 through)
CLASSES = {0: ('no landslide', (255, 255, 255, 0)), 1: ('landslide', (230, 30, 30, 255)),
           NOT_ANALYSED: ('not analysed (cloud, cloud shadow, snow)', (160, 170, 190, 255)),
           S.NODATA_OUT: ('no data', (0, 0, 0, 0))}
STYLES = {0: ('no landslide', None, 'plain'), 1: ('landslide', (255, 40, 40), 'outline'),
          NOT_ANALYSED: ('not analysed', None, 'hatch')}


def blend_window(overlap, size=L.SIZE):
    """Tile weight [size, size]: 1 everywhere without overlap; else a smooth bump (a squared sine
    along each axis, positive at the borders), so that overlapping tiles fade into each other."""
    if overlap == 0:
        return np.ones((size, size), np.float32)
    w = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
    return np.outer(w, w).astype(np.float32)


def quicklook_step(sc):
    """Every how many pixels the quicklook samples a scene (at most about 1024 a side)."""
    return max(1, math.ceil(max(sc.H, sc.W) / 1024))


def tile_rows(sc, j, stride, pad, width, nodata):
    """The j-th band of tile rows, scene rows reflected at the edges. -> (raw float32
    [128, width, 14], no-data bool [128, width], not analysed bool [128, width]: data the cloud
    mask leaves out); padded row p is scene row p - pad."""
    r = np.arange(j * stride, j * stride + L.SIZE) - pad
    r = np.abs(r)                                           # reflect at the top ...
    r = np.where(r >= sc.H, 2 * (sc.H - 1) - r, r)          # ... and at the bottom
    cols = ((0, 0), (pad, width - sc.W - pad))
    raw = sc.rows(r.min(), r.max() + 1)[r - r.min()]
    raw = np.pad(raw, cols + ((0, 0),), mode='reflect')
    unseen = np.pad(sc.unseen(r.min(), r.max() + 1)[r - r.min()], cols, mode='reflect') > 0
    nd = S.nodata_mask(raw, nodata)
    return raw, nd, unseen & ~nd


def adabn_tiles(load, ny, stride, rows=8, per_row=16, at_least=32, most=0.5):
    """Tiles for AdaBN, the scene's own BatchNorm statistics: up to per_row tiles from each of
    `rows` evenly spaced tile rows, then, while fewer than at_least were found (a cloudy scene),
    from the other rows in turn (a scene with none: no batch, and the networks keep theirs).
    Tiles free of no-data and of not-analysed pixels come first, as [k, 14, 128, 128]; where a
    row has fewer, tiles that could see at least `most` of their pixels fill it, as (tiles,
    valid bool [k, 128, 128]), whose statistics refine.adapt_bn takes where they could see (a
    cumulus field leaves few 1.28 km tiles wholly clear). load(j) -> (raw, no-data [128,
    width], not analysed [128, width], tiles [n, 14, 128, 128], their columns)."""
    g = torch.Generator().manual_seed(0)
    first = sorted({round(k * (ny - 1) / (rows - 1)) for k in range(rows)})
    found = 0
    for j in first + [j for j in range(ny) if j not in first]:
        if j not in first and found >= at_least:
            break
        _, nd, un, tiles, cols = load(j)
        off = torch.from_numpy(nd | un)
        blind = torch.stack([off[:, i * stride:i * stride + L.SIZE] for i in cols]) if cols else \
            torch.ones(0, L.SIZE, L.SIZE, dtype=torch.bool)
        share = 1 - blind.float().mean((1, 2))
        clean = torch.nonzero(share == 1).ravel()
        clean = clean[torch.randperm(len(clean), generator=g)[:per_row]]
        part = torch.nonzero((share >= most) & (share < 1)).ravel()
        if len(part) and len(clean) < per_row:
            part = part[torch.randperm(len(part), generator=g)[:per_row - len(clean)]]
        else:
            part = part[:0]
        found += len(clean) + len(part)
        if len(clean):
            yield tiles[clean]
        if len(part):
            yield tiles[part], ~blind[part]


def map_scene(models, c, sc, out, overlap, nodata, dev, log, log_every=5.0):
    """Landslide mask and probability of one scene, written band by band, and a quicklook.
    -> summary dict (what summary.json records, and quicklook_rgb: its true-colour pixels)"""
    t0, T = time.time(), L.SIZE
    nodata = sc.nodata if nodata is None else nodata
    g = grid(sc, overlap)
    stats, seen, blind = analysed_statistics(sc, nodata, log)
    mean, std = np.asarray(stats['mean'], np.float32), np.asarray(stats['std'], np.float32)
    ext = {'tif': '.tif', 'h5': '.h5', 'npy': '.npy'}[sc.fmt]
    paths = {k: os.path.join(out, f'{sc.name}_{k}{ext}') for k in ('landslide', 'probability')}
    writers = {'landslide': S.Writer(paths['landslide'], sc, 'landslide', classes=CLASSES),
               'probability': S.Writer(paths['probability'], sc, 'probability', 'float32')}
    acc = dict(prob=torch.zeros(T, g['width']), weight=torch.zeros(T, g['width']),
               blend=torch.from_numpy(blend_window(overlap)), rgb=[], mask=[], land=0, nodata=0,
               unseen=0, step_q=quicklook_step(sc))
    pool, last = ThreadPoolExecutor(1), time.time()   # reads band j + 1 while j is predicted

    def load(j):
        return load_band(sc, j, g, nodata, mean, std, blind)
    try:
        if c.adabn and not blind:
            models = refine.adapt_bn(models, adabn_tiles(load, g['ny'], g['stride']), c, dev)
        nxt = pool.submit(load, 0)
        for j in range(g['ny']):
            raw, nd, un, tiles, busy = nxt.result()
            if j + 1 < g['ny']:
                nxt = pool.submit(load, j + 1)
            prob = torch.zeros(g['nx'], T, T)
            if busy:
                prob[busy] = refine.predict(models, tiles, c, dev)
            blend_band(acc, prob, g)
            write_final_rows(acc, writers, j, raw, nd, un, sc, g)
            release_freed_memory()
            if time.time() - last > log_every or j == g['ny'] - 1:
                last, rate = time.time(), (j + 1) * g['nx'] / (time.time() - t0)
                eta = (g['ny'] - j - 1) * g['nx'] / rate
                log(f"{sc.name}: tiles {(j + 1) * g['nx']}/{g['ny'] * g['nx']}  {rate:.1f} "
                    f'tiles/s  eta {int(eta // 60)}m{int(eta % 60):02d}s')
        for w in writers.values():
            w.commit()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    rgb = np.concatenate(acc['rgb'])                  # kept: a change map redraws it (predict)
    write_png(os.path.join(out, f'{sc.name}_quicklook.png'),
              quicklook.picture(rgb, np.concatenate(acc['mask']), STYLES))
    return dict(scene=sc.path, size=[sc.H, sc.W], tiles=g['ny'] * g['nx'],
                seconds=round(time.time() - t0, 2), landslide_pixels=acc['land'],
                nodata_pixels=acc['nodata'], landslide_m2=area_m2(sc, acc['land']),
                cloud_mask=sc.clouds and os.path.abspath(sc.clouds),
                analysed_pixels=0 if blind else stats['valid'], not_analysed_pixels=acc['unseen'],
                analysed_share=0.0 if blind else round(seen, 4),
                analysed_m2=area_m2(sc, 0 if blind else stats['valid']),
                not_analysed_m2=area_m2(sc, acc['unseen']),
                not_analysed_by_class=stats['unseen_by_class'], quicklook_rgb=rgb,
                outputs=sorted(os.path.basename(p) for p in paths.values()) +
                [f'{sc.name}_quicklook.png'])


def analysed_statistics(sc, nodata, log):
    """The scene's statistics over what it could see (scene.scene_stats), the analysed share of
    its pixels with data, and whether it is too little to map (under MIN_ANALYSED: then the map
    is all NOT_ANALYSED, with a warning). -> (stats, share, blind)"""
    stats = S.scene_stats(sc, nodata)
    seen = stats['valid'] / max(stats['valid'] + stats['unseen'], 1)
    blind = stats['valid'] + stats['unseen'] > 0 and seen < MIN_ANALYSED
    if stats['valid'] + stats['unseen'] == 0:
        log(f'warning: {sc.path}: every pixel is no-data; the outputs are all {S.NODATA_OUT}')
    elif blind:
        log(f'warning: {sc.path}: {100 * seen:.2f} % of the pixels with data could be analysed '
            f'(under {100 * MIN_ANALYSED:.0f} %: clouds, shadows or snow); nothing is mapped, '
            f'the map is {NOT_ANALYSED} wherever there is data')
    return stats, seen, blind


def grid(sc, overlap):
    """The tiling of a scene: window stride, padding, tile rows and columns, padded width."""
    T = L.SIZE
    stride, pad = T - overlap, overlap // 2
    ny, nx = (math.ceil(max(n + 2 * pad - T, 0) / stride) + 1 for n in (sc.H, sc.W))
    return dict(stride=stride, pad=pad, ny=ny, nx=nx, width=(nx - 1) * stride + T)


def load_band(sc, j, g, nodata, mean, std, blind=False):
    """Band j of tile rows, read and normalized; no-data pixels 0 (the mean), not-analysed ones 0
    in the spectral bands (slope and DEM are not under the cloud).
    -> (raw [128, width, 14], no-data [128, width], not analysed [128, width], the tiles holding
    any analysed pixel [n, 14, 128, 128], their columns; none when blind)"""
    T, stride = L.SIZE, g['stride']
    raw, nd, un = tile_rows(sc, j, stride, g['pad'], g['width'], nodata)
    un = ~nd if blind else un                         # too little seen: none of it is mapped
    off = nd | un
    x = raw - mean                                    # [T, width, 14], normalized in place
    x /= std
    x[nd] = 0.0
    x[un, :12] = 0.0                                  # a cloud hides the ground, not its slope
    tiles = torch.from_numpy(x).unfold(1, T, stride)  # [T, nx, 14, T]: one copy below
    busy = [] if blind else [i for i in range(g['nx'])
                             if not off[:, i * stride:i * stride + T].all()]
    return raw, nd, un, tiles.permute(1, 2, 0, 3)[busy].contiguous(), busy


def blend_band(acc, prob, g):
    """Add one band of tile probabilities [nx, 128, 128], weighted, to the accumulator."""
    T, stride = L.SIZE, g['stride']
    for i in range(g['nx']):
        acc['prob'][:, i * stride:i * stride + T] += prob[i] * acc['blend']
        acc['weight'][:, i * stride:i * stride + T] += acc['blend']


def write_final_rows(acc, writers, j, raw, nd, un, sc, g):
    """Write the scene rows that band j completed (mask: 1, 0, 254 not analysed, 255 no data;
    probability, NaN at both), keep their quicklook pixels, shift the accumulator one stride."""
    T, stride, pad = L.SIZE, g['stride'], g['pad']
    done = T if j == g['ny'] - 1 else stride          # padded rows now final: [0, done)
    a = j * stride - pad                              # ... are scene rows [a, a + done)
    lo, hi = max(a, 0), min(a + done, sc.H)
    if hi > lo:
        p = (acc['prob'][lo - a:hi - a] / acc['weight'][lo - a:hi - a])[:, pad:pad + sc.W].numpy()
        bad = nd[lo - a:hi - a, pad:pad + sc.W]
        hid = un[lo - a:hi - a, pad:pad + sc.W]
        mask = np.where(bad, S.NODATA_OUT, np.where(hid, NOT_ANALYSED, p >= 0.5)).astype(np.uint8)
        writers['landslide'].write(lo, mask)
        writers['probability'].write(lo, np.where(bad | hid, np.nan, p).astype(np.float32))
        acc['land'] += int((mask == 1).sum())
        acc['nodata'] += int(bad.sum())
        acc['unseen'] += int(hid.sum())
        q = acc['step_q']
        keep = np.array([k for k in range(lo, hi) if k % q == 0], int)
        acc['rgb'].append(raw[keep - a][:, pad:pad + sc.W:q][..., [3, 2, 1]].copy())  # B4 B3 B2
        acc['mask'].append(mask[keep - lo, ::q].copy())
    width = g['width']
    acc['prob'] = torch.cat([acc['prob'][stride:], torch.zeros(stride, width)])
    acc['weight'] = torch.cat([acc['weight'][stride:], torch.zeros(stride, width)])


def area_m2(sc, pixels):
    """Landslide area in square metres where the CRS is projected in metres, else None."""
    units = str(sc.crs.linear_units).lower() if sc.crs is not None and sc.crs.is_projected else ''
    if units not in ('metre', 'meter', 'metres', 'meters', 'm'):
        return None
    t = sc.transform
    return round(pixels * abs(t.a * t.e - t.b * t.d), 1)


def release_freed_memory():
    """Hand freed heap memory back to the system. Band buffers are allocated and freed on two
    threads; without this, glibc keeps the freed blocks in its heaps and the resident set grows
    with the scene (2048^2: from 813 to 461 MiB peak)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


try:                                                        # glibc only; elsewhere nothing to do
    _MALLOC_TRIM = ctypes.CDLL('libc.so.6').malloc_trim
except (OSError, AttributeError):
    _MALLOC_TRIM = None


