"""Mapping a whole scene tile by tile ("large-scale ... disaster monitoring", paper §1): the
scene is its own domain (its own band statistics, no-data left out; with AdaBN its own
BatchNorm statistics too); 128-pixel windows overlap by `overlap`, reflect-padded at the edges,
blended with a smooth weight; the mask and probability are written band by band, so memory is
bounded by one band of tile rows whatever the scene's size. predict.py calls map_scene.
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
import scene as S
from report import true_colour, write_png


def blend_window(overlap, size=L.SIZE):
    """Tile weight [size, size]: 1 everywhere without overlap; else a smooth bump (a squared sine
    along each axis, positive at the borders), so that overlapping tiles fade into each other."""
    if overlap == 0:
        return np.ones((size, size), np.float32)
    w = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
    return np.outer(w, w).astype(np.float32)


def tile_rows(sc, j, stride, pad, width, nodata):
    """The j-th band of tile rows, scene rows reflected at the edges. -> (raw float32
    [128, width, 14], no-data bool [128, width]); padded row p is scene row p - pad."""
    r = np.arange(j * stride, j * stride + L.SIZE) - pad
    r = np.abs(r)                                           # reflect at the top ...
    r = np.where(r >= sc.H, 2 * (sc.H - 1) - r, r)          # ... and at the bottom
    raw = sc.rows(r.min(), r.max() + 1)[r - r.min()]
    raw = np.pad(raw, ((0, 0), (pad, width - sc.W - pad), (0, 0)), mode='reflect')
    return raw, S.nodata_mask(raw, nodata)


def adabn_tiles(load, ny, stride, rows=8, per_row=16):
    """Tiles for AdaBN, the scene's own BatchNorm statistics: up to per_row tiles without a
    no-data pixel from each of `rows` evenly spaced tile rows (a scene with none: no batch, and
    the networks keep theirs). load(j) -> (raw, no-data [128, width], tiles [n, 14, 128, 128],
    their columns). Yields [k, 14, 128, 128]."""
    g = torch.Generator().manual_seed(0)
    for j in sorted({round(k * (ny - 1) / (rows - 1)) for k in range(rows)}):
        _, nd, tiles, cols = load(j)
        clean = [k for k, i in enumerate(cols) if not nd[:, i * stride:i * stride + L.SIZE].any()]
        if clean:
            yield tiles[torch.tensor(clean)[torch.randperm(len(clean), generator=g)[:per_row]]]


def map_scene(models, c, sc, out, overlap, nodata, dev, log, log_every=5.0):
    """Landslide mask and probability of one scene, written band by band, and a quicklook.
    -> summary dict (what summary.json records)"""
    t0, T = time.time(), L.SIZE
    nodata = sc.nodata if nodata is None else nodata
    g = grid(sc, overlap)
    stats = S.scene_stats(sc, nodata)
    if stats['valid'] == 0:
        log(f'warning: {sc.path}: every pixel is no-data; the outputs are all {S.NODATA_OUT}')
    mean, std = np.asarray(stats['mean'], np.float32), np.asarray(stats['std'], np.float32)
    ext = {'tif': '.tif', 'h5': '.h5', 'npy': '.npy'}[sc.fmt]
    paths = {k: os.path.join(out, f'{sc.name}_{k}{ext}') for k in ('landslide', 'probability')}
    writers = {k: S.Writer(p, sc, k) for k, p in paths.items()}
    acc = dict(prob=torch.zeros(T, g['width']), weight=torch.zeros(T, g['width']),
               blend=torch.from_numpy(blend_window(overlap)), rgb=[], mask=[], land=0, nodata=0,
               step_q=max(1, math.ceil(max(sc.H, sc.W) / 1024)))  # quicklook: every step_q-th
    pool, last = ThreadPoolExecutor(1), time.time()   # reads band j + 1 while j is predicted

    def load(j):
        return load_band(sc, j, g, nodata, mean, std)
    try:
        if c.adabn:
            models = refine.adapt_bn(models, adabn_tiles(load, g['ny'], g['stride']), c, dev)
        nxt = pool.submit(load, 0)
        for j in range(g['ny']):
            raw, nd, tiles, busy = nxt.result()
            if j + 1 < g['ny']:
                nxt = pool.submit(load, j + 1)
            prob = torch.zeros(g['nx'], T, T)
            if busy:
                prob[busy] = refine.predict(models, tiles, c, dev)
            blend_band(acc, prob, g)
            write_final_rows(acc, writers, j, raw, nd, sc, g)
            release_freed_memory()
            if time.time() - last > log_every or j == g['ny'] - 1:
                last, rate = time.time(), (j + 1) * g['nx'] / (time.time() - t0)
                eta = (g['ny'] - j - 1) * g['nx'] / rate
                tiles = f"{(j + 1) * g['nx']}/{g['ny'] * g['nx']}"
                log(f'{sc.name}: tiles {tiles}  {rate:.1f} tiles/s  '
                    f'eta {int(eta // 60)}m{int(eta % 60):02d}s')
        for w in writers.values():
            w.commit()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    look = quicklook(np.concatenate(acc['rgb']), np.concatenate(acc['mask']))
    write_png(os.path.join(out, f'{sc.name}_quicklook.png'), look)
    return dict(scene=sc.path, size=[sc.H, sc.W], tiles=g['ny'] * g['nx'],
                seconds=round(time.time() - t0, 2), landslide_pixels=acc['land'],
                nodata_pixels=acc['nodata'], landslide_m2=area_m2(sc, acc['land']),
                outputs=sorted(os.path.basename(p) for p in paths.values()) +
                [f'{sc.name}_quicklook.png'])


def grid(sc, overlap):
    """The tiling of a scene: window stride, padding, tile rows and columns, padded width."""
    T = L.SIZE
    stride, pad = T - overlap, overlap // 2
    ny, nx = (math.ceil(max(n + 2 * pad - T, 0) / stride) + 1 for n in (sc.H, sc.W))
    return dict(stride=stride, pad=pad, ny=ny, nx=nx, width=(nx - 1) * stride + T)


def load_band(sc, j, g, nodata, mean, std):
    """Band j of tile rows, read and normalized. -> (raw [128, width, 14], no-data
    [128, width], the tiles holding any data [n, 14, 128, 128], their columns)"""
    T, stride = L.SIZE, g['stride']
    raw, nd = tile_rows(sc, j, stride, g['pad'], g['width'], nodata)
    x = raw - mean                                    # [T, width, 14], normalized in place
    x /= std
    x[nd] = 0.0
    tiles = torch.from_numpy(x).unfold(1, T, stride)  # [T, nx, 14, T]: one copy below
    busy = [i for i in range(g['nx']) if not nd[:, i * stride:i * stride + T].all()]
    return raw, nd, tiles.permute(1, 2, 0, 3)[busy].contiguous(), busy


def blend_band(acc, prob, g):
    """Add one band of tile probabilities [nx, 128, 128], weighted, to the accumulator."""
    T, stride = L.SIZE, g['stride']
    for i in range(g['nx']):
        acc['prob'][:, i * stride:i * stride + T] += prob[i] * acc['blend']
        acc['weight'][:, i * stride:i * stride + T] += acc['blend']


def write_final_rows(acc, writers, j, raw, nd, sc, g):
    """Write the scene rows that band j completed (mask: 1, 0 or 255 for no data; probability
    x 250), keep their quicklook pixels, and shift the accumulator up by one stride."""
    T, stride, pad = L.SIZE, g['stride'], g['pad']
    done = T if j == g['ny'] - 1 else stride          # padded rows now final: [0, done)
    a = j * stride - pad                              # ... are scene rows [a, a + done)
    lo, hi = max(a, 0), min(a + done, sc.H)
    if hi > lo:
        p = (acc['prob'][lo - a:hi - a] / acc['weight'][lo - a:hi - a])[:, pad:pad + sc.W].numpy()
        bad = nd[lo - a:hi - a, pad:pad + sc.W]
        mask = np.where(bad, S.NODATA_OUT, p >= 0.5).astype(np.uint8)
        writers['landslide'].write(lo, mask)
        prob = np.where(bad, S.NODATA_OUT, np.round(p * 250)).astype(np.uint8)
        writers['probability'].write(lo, prob)
        acc['land'] += int((mask == 1).sum())
        acc['nodata'] += int(bad.sum())
        q = acc['step_q']
        keep = np.array([k for k in range(lo, hi) if k % q == 0], int)
        acc['rgb'].append(raw[keep - a][:, pad:pad + sc.W:q][..., [3, 2, 1]].copy())  # B4 B3 B2
        acc['mask'].append(mask[keep - lo, ::q].copy())
    width = g['width']
    acc['prob'] = torch.cat([acc['prob'][stride:], torch.zeros(stride, width)])
    acc['weight'] = torch.cat([acc['weight'][stride:], torch.zeros(stride, width)])


def quicklook(raw, mask):
    """True colour with landslides outlined in red. raw: [h, w, 3] B4, B3, B2; mask: uint8 [h, w]
    (1, 0, 255) -> uint8 [h, w, 3]"""
    img = true_colour(raw, (mask != S.NODATA_OUT) & np.isfinite(raw).all(-1))
    m = np.pad(mask == 1, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    img[(mask == 1) & ~inner] = (255, 40, 40)
    return img


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


