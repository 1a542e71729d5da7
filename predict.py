"""Apply a trained run: the ensemble of one round predicts new Landslide4Sense patches, or maps
whole scenes tile by tile ("large-scale ... disaster monitoring", paper §1).

New data is its own domain: its per-band statistics are computed from it and used to normalize
it (separated normalization, paper §2.1), so raw Sentinel-2 values, reflectance and the
competition's mean-divided values all work.

    python predict.py --run runs/demo --data DIR --split test --out OUT        # patches
    python predict.py --run runs/demo --scene a.tif b.h5 c.npy --out OUT       # whole scenes
    torchrun --nproc_per_node 4 predict.py --run RUN --scene ... --out OUT     # a share each

Scenes: 128-pixel windows overlapping by --overlap, reflect-padded at the edges, blended with a
smooth weight, written band by band; memory is bounded by one band of tile rows.
"""
import argparse
import ctypes
import fcntl
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

import landslide as L
import refine
import scene as S
from report import true_colour, write_png

DEFAULTS = dict(overlap=L.SIZE // 4, nodata=None, device='auto', log_every=5.0)


# ----------------------------------------------------------------------------- the trained run

def load_run(run, rnd, dev):
    """Round `rnd`'s ensemble (default: the last finished round) of a run folder.
    -> (models, settings namespace with scale and batch_size, round)"""
    cpath = os.path.join(run, 'config.json')
    if not os.path.isfile(cpath):
        raise L.DataError(f'{run}: not a run folder (no config.json)')
    cfg = json.load(open(cpath))
    names = [m for m in cfg['models'].split(',') if m]
    done = sorted(int(f[5:]) for f in os.listdir(run) if f.startswith('round') and f[5:].isdigit() and
                  os.path.isdir(os.path.join(run, f, 'masks')))
    if rnd is None:
        if not done:
            raise L.DataError(f'{run}: no finished round (a round is finished when round<k>/masks exists)')
        rnd = done[-1]
    elif rnd not in done:
        raise L.DataError(f"{run}: round {rnd} is not finished (finished: {', '.join(map(str, done)) or 'none'})")
    models = []
    for name in names:
        path = os.path.join(run, f'round{rnd}', f'{name}.pt')
        if not os.path.isfile(path):
            raise L.DataError(f'{path}: checkpoint missing')
        try:
            models.append(refine.load_model(path, dev)[0])
        except Exception as e:
            raise L.DataError(f'{path}: not a readable checkpoint, truncated or corrupt? ({e.__class__.__name__})')
    return models, argparse.Namespace(scale=cfg['scale'], batch_size=cfg['batch_size'], models=names,
                                      adabn=cfg.get('adabn', False)), rnd


# ----------------------------------------------------------------------------- patches

def predict_patches(models, c, data, split, out, dev):
    """A Landslide4Sense split, normalized with its own statistics: masks, submission, metrics."""
    ids, ip, mp = L.check_split(data, split)
    print(f'separated normalization: {L.SPLITS[split]} is its own domain; band statistics of '
          f'its {len(ip)} patches...')
    stats = L.band_stats(ip)
    X = L.load_images(ip, stats)
    if c.adabn:                                             # and so are its BatchNorm statistics
        models = refine.adapt_bn(models, [X], c, dev)
    prob = refine.predict(models, X, c, dev)
    masks = (prob >= 0.5).to(torch.uint8)
    os.makedirs(out, exist_ok=True)
    L.write_masks(os.path.join(out, 'masks'), [L.mask_name(p) for p in ip], masks.numpy())
    L.write_zip(os.path.join(out, 'submission.zip'), os.path.join(out, 'masks'))
    metrics = {'split': L.SPLITS[split], 'patches': len(ip), 'nonfinite': stats['nonfinite'],
               'scores': L.scores(*L.confusion(masks, L.load_masks(mp))) if mp else None}
    L.write_json(os.path.join(out, 'metrics.json'), metrics)
    if metrics['scores']:
        print('precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  IoU {iou:.4f}'.format(**metrics['scores']))
    print(f"{len(ip)} masks in {os.path.join(out, 'masks')}; {os.path.join(out, 'submission.zip')}")


# ----------------------------------------------------------------------------- scenes

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
    """Landslide mask and probability of one scene, written band by band. -> summary dict"""
    t0, T = time.time(), L.SIZE
    stride, pad = T - overlap, overlap // 2
    nodata = sc.nodata if nodata is None else nodata
    stats = S.scene_stats(sc, nodata)
    if stats['valid'] == 0:
        log(f'warning: {sc.path}: every pixel is no-data; the outputs are all {S.NODATA_OUT}')
    mean, std = np.asarray(stats['mean'], np.float32), np.asarray(stats['std'], np.float32)
    ny, nx = (math.ceil(max(n + 2 * pad - T, 0) / stride) + 1 for n in (sc.H, sc.W))
    width = (nx - 1) * stride + T
    weight = torch.from_numpy(blend_window(overlap))
    acc, wsum = torch.zeros(T, width), torch.zeros(T, width)
    ext = {'tif': '.tif', 'h5': '.h5', 'npy': '.npy'}[sc.fmt]
    paths = {k: os.path.join(out, f'{sc.name}_{k}{ext}') for k in ('landslide', 'probability')}
    writers = {k: S.Writer(p, sc, k) for k, p in paths.items()}
    step_q = max(1, math.ceil(max(sc.H, sc.W) / 1024))      # quicklook: every step_q-th pixel
    look_rgb, look_mask, n_land, n_nd, last = [], [], 0, 0, time.time()
    pool = ThreadPoolExecutor(1)                            # reads band j + 1 while band j is predicted
    try:
        def load(j):                                        # read and normalize band j; -> tiles
            raw, nd = tile_rows(sc, j, stride, pad, width, nodata)
            x = raw - mean                                  # [T, width, 14], normalized in place
            x /= std
            x[nd] = 0.0
            tiles = torch.from_numpy(x).unfold(1, T, stride)  # [T, nx, 14, T]: one copy below
            busy = [i for i in range(nx) if not nd[:, i * stride:i * stride + T].all()]
            return raw, nd, tiles.permute(1, 2, 0, 3)[busy].contiguous(), busy          # [n, 14, T, T]
        if c.adabn:
            models = refine.adapt_bn(models, adabn_tiles(load, ny, stride), c, dev)
        nxt = pool.submit(load, 0)
        for j in range(ny):
            raw, nd, tiles, busy = nxt.result()
            if j + 1 < ny:
                nxt = pool.submit(load, j + 1)
            prob = torch.zeros(nx, T, T)
            if busy:
                prob[busy] = refine.predict(models, tiles, c, dev)
            for i in range(nx):                             # blend into the band's accumulator
                acc[:, i * stride:i * stride + T] += prob[i] * weight
                wsum[:, i * stride:i * stride + T] += weight
            done = T if j == ny - 1 else stride             # padded rows now final: [0, done)
            a = j * stride - pad                            # ... are scene rows [a, a + done)
            lo, hi = max(a, 0), min(a + done, sc.H)
            if hi > lo:
                p = (acc[lo - a:hi - a] / wsum[lo - a:hi - a])[:, pad:pad + sc.W].numpy()
                bad = nd[lo - a:hi - a, pad:pad + sc.W]
                mask = np.where(bad, S.NODATA_OUT, p >= 0.5).astype(np.uint8)
                writers['landslide'].write(lo, mask)
                writers['probability'].write(lo, np.where(bad, S.NODATA_OUT, np.round(p * 250)).astype(np.uint8))
                n_land, n_nd = n_land + int((mask == 1).sum()), n_nd + int(bad.sum())
                keep = np.array([k for k in range(lo, hi) if k % step_q == 0], int)
                look_rgb.append(raw[keep - a][:, pad:pad + sc.W:step_q][..., [3, 2, 1]].copy())  # B4 B3 B2
                look_mask.append(mask[keep - lo, ::step_q].copy())
            release_freed_memory()
            acc = torch.cat([acc[stride:], torch.zeros(stride, width)])
            wsum = torch.cat([wsum[stride:], torch.zeros(stride, width)])
            if time.time() - last > log_every or j == ny - 1:
                last, rate = time.time(), (j + 1) * nx / (time.time() - t0)
                eta = (ny - j - 1) * nx / rate
                log(f'{sc.name}: tiles {(j + 1) * nx}/{ny * nx}  {rate:.1f} tiles/s  eta {int(eta // 60)}m{int(eta % 60):02d}s')
        for w in writers.values():
            w.commit()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    look = quicklook(np.concatenate(look_rgb), np.concatenate(look_mask))
    write_png(os.path.join(out, f'{sc.name}_quicklook.png'), look)
    return dict(scene=sc.path, size=[sc.H, sc.W], tiles=ny * nx, seconds=round(time.time() - t0, 2),
                landslide_pixels=n_land, nodata_pixels=n_nd, landslide_m2=area_m2(sc, n_land),
                outputs=sorted(os.path.basename(p) for p in paths.values()) + [f'{sc.name}_quicklook.png'])


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


def map_scenes(models, c, scenes, out, args, dev, rnd, run):
    """Every scene of this process's share (all of them without torchrun), skipping those that a
    killed run already finished; summary.json gets a line per scene."""
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    os.makedirs(out, exist_ok=True)
    L.sweep(out)
    log = lambda s: print(s if world == 1 else f'[{rank}] {s}', flush=True)
    for sc in scenes[rank::world]:
        if sc.name in read_summary(out):
            log(f'{sc.name}: finished earlier, skipped')
            continue
        info = map_scene(models, c, sc, out, args.overlap, args.nodata, dev, log, args.log_every)
        info.update(run=os.path.abspath(run), round=rnd, overlap=args.overlap, scale=c.scale,
                    models=c.models, nodata=args.nodata, threshold=0.5)
        add_to_summary(out, sc.name, info)
        log(f"{sc.name}: {info['landslide_pixels']} landslide pixels"
            + (f" ({info['landslide_m2'] / 1e6:.3f} km²)" if info['landslide_m2'] is not None else '')
            + f", {info['seconds']:.1f} s; {', '.join(info['outputs'])}")
    for sc in scenes:
        sc.close()


def read_summary(out):
    p = os.path.join(out, 'summary.json')
    return json.load(open(p)) if os.path.exists(p) else {}


def add_to_summary(out, name, info):
    """summary.json maps scene name -> its line; processes of one torchrun take turns (a lock)."""
    with open(os.path.join(out, '.summary.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        L.write_json(os.path.join(out, 'summary.json'), read_summary(out) | {name: info})


# ----------------------------------------------------------------------------- command line

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--run', required=True, help='a run folder written by refine.py')
    ap.add_argument('--round', type=int, help='which round\'s ensemble [default: the last finished]')
    ap.add_argument('--data', help='a Landslide4Sense root: predict the patches of --split')
    ap.add_argument('--split', choices=list(L.SPLITS), default='test', help='[default: test]')
    ap.add_argument('--scene', nargs='+', help='whole scenes: .tif/.tiff (rasterio), .h5 (dataset img), .npy')
    ap.add_argument('--out', required=True, help='output folder (never inside --run or the inputs)')
    ap.add_argument('--overlap', type=int, default=DEFAULTS['overlap'],
                    help=f"pixels shared by neighbouring 128-pixel windows [default: {DEFAULTS['overlap']}]")
    ap.add_argument('--nodata', type=float, help='input value meaning no data (besides NaN and all-zero pixels; '
                    'default: the GeoTIFF\'s own, if any)')
    ap.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    ap.add_argument('--log-every', type=float, default=DEFAULTS['log_every'], help='seconds between progress lines')
    args = ap.parse_args(argv)
    try:
        if (args.data is None) == (args.scene is None):
            raise L.DataError('give either --data (patches) or --scene (whole scenes)')
        if not 0 <= args.overlap < L.SIZE or args.overlap % 2:
            raise L.DataError(f'--overlap must be an even number in [0, {L.SIZE}), got {args.overlap}')
        if args.device == 'cuda' and not torch.cuda.is_available():
            raise L.DataError('--device cuda but no CUDA device is available')
        if args.data is not None and not os.path.isdir(args.data):
            raise L.DataError(f'{args.data}: --data folder not found')
        inputs = [args.data] if args.data else [os.path.dirname(os.path.abspath(p)) for p in args.scene]
        L.check_out_folder(args.out, [('--run', args.run)] + [('an input folder', p) for p in inputs])
        local = int(os.environ.get('LOCAL_RANK', 0))
        cuda = args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available())
        dev = torch.device(f'cuda:{local % torch.cuda.device_count()}' if cuda else 'cpu')
        scenes = [S.Scene(p) for p in args.scene or []]   # a bad scene stops us before any work
        names = [sc.name for sc in scenes]
        dup = next((sc.path for sc in scenes if names.count(sc.name) > 1), None)
        if dup:
            raise L.DataError(f'{dup}: another scene has the same name; their outputs would collide')
        models, c, rnd = load_run(args.run, args.round, dev)
        print(f'round {rnd} of {args.run}: {", ".join(c.models)}, scale {c.scale}, on {dev}')
        if args.data:
            if int(os.environ.get('RANK', 0)) == 0:
                predict_patches(models, c, args.data, args.split, args.out, dev)
        else:
            print('separated normalization: each scene is its own domain (its own band statistics, '
                  'no-data left out)')
            map_scenes(models, c, scenes, args.out, args, dev, rnd, args.run)
    except L.DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
