"""Whole scenes, timed: a synthetic scene mapped by predict.py in a child process (seconds,
tiles/s, peak memory, F1 tiled against patch-wise) and a full-size synthetic Sentinel-2 product
stacked (and, with --pair, dated against itself as a before-date). docs/speed.md holds the
figures.

    python -m bench.scenes map [--run runs/demo] [--sizes 2048 4096] [--paper]
    python -m bench.scenes stack [--size 10980] [--level L2A] [--pair]
    python -m bench.scenes adapt [--run pretrained/landslides-synthetic] [--size 4098]
    python -m bench.scenes aoi [--size 10980] [--km 20]
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

import landslide as L
import predict
import refine
import rundir
from bench.speed import median_time
from mapping import change, clouds, polygons, scene as S, sentinel2
from models import MODELS, build_model
from synthetic import landscape, product, sky

# the child's own high-water mark: VmHWM starts afresh at exec (ru_maxrss would carry the
# parent's peak over the fork)
PEAK = ('print("peak_rss_kib", re.search(r"VmHWM:\\s+(\\d+)", '
        'open("/proc/self/status").read()).group(1))')
CHILD = f'import re, sys, predict; rc = predict.main(sys.argv[1:]); {PEAK}; sys.exit(rc)'
STACK_CHILD = ('import re, sys; from mapping import __main__ as m; rc = m.main(sys.argv[1:]); '
               f'{PEAK}; sys.exit(rc)')
PAIR_CHILD = f'import re, sys; from bench import scenes; scenes.pair_child(*sys.argv[1:]); {PEAK}'
# bytes passed through read() by the child, page cache or not: what stacking asked of the files
RCHAR = 'print("rchar", re.search(r"rchar: (\\d+)", open("/proc/self/io").read()).group(1))'
IO_CHILD = ('import re, sys; from mapping import __main__ as m; import rasterio; '
            f'rc = m.main(sys.argv[1:]) if sys.argv[1:] else 0; {PEAK}; {RCHAR}; sys.exit(rc)')


def in_child(code, argv):
    """Run code with argv in a fresh Python. -> (stdout + stderr, seconds, peak MiB)"""
    t = time.time()
    res = subprocess.run([sys.executable, '-c', code, *argv], capture_output=True, text=True)
    wall = time.time() - t
    print(res.stdout + res.stderr, flush=True)
    assert res.returncode == 0, f'{argv} failed'
    return res.stdout, wall, int(res.stdout.split('peak_rss_kib')[-1].split()[0]) / 1024


def paper_sized_run(folder):
    """A run folder holding untrained paper-sized networks (width 64, scale 4): for timing only."""
    os.makedirs(os.path.join(folder, 'round0', 'masks'), exist_ok=True)
    c = argparse.Namespace(**(refine.DEFAULTS | {'width': 64}))
    for name in MODELS:
        path = os.path.join(folder, 'round0', f'{name}.pt')
        rundir.save_model(path, build_model(name, 64), name, c, None)
    L.write_json(os.path.join(folder, 'config.json'), vars(c))
    return folder


def tiled_scene(size, base=1024, seed=0):
    """Yields (first row, rows [n, size, 14]) of a size x size scene tiled from one base x base
    synthetic scene: for timing where generating it whole would take long."""
    dom = landscape.domain(1.0, seed, world=product.WORLD)
    img, _ = landscape.synth_patch(np.random.default_rng([seed, 3]), dom, base)
    for a in range(0, size, base):
        rows = min(base, size - a)
        yield a, np.tile(img[:rows], (1, math.ceil(size / base), 1))[:, :size]


def big_scene(path, size, seed=0):
    """A size x size .npy scene (written in row bands: a 10 980 x 10 980 scene is 6.7 GB)."""
    out = np.lib.format.open_memmap(path, 'w+', np.float32, (size, size, L.BANDS))
    for a, rows in tiled_scene(size, seed=seed):
        out[a:a + len(rows)] = rows
    out.flush()


def bench_scene(out, size, paper):
    """The scene scene_bench maps: a synthetic .h5 with its truth, or a tiled .npy."""
    sdir = os.path.join(out, 'scenes', f'scene-{size}')     # inputs apart from outputs
    if paper or size > 4096:
        os.makedirs(os.path.dirname(sdir), exist_ok=True)
        path = sdir + '.npy'
        if not os.path.exists(path):
            big_scene(path, size)
        return path
    path = os.path.join(sdir, 'scene.h5')
    if not os.path.exists(path):
        product.synth_scene(sdir, size, shift=1.0, seed=0)
    return path


def scene_bench(args):
    """Map whole synthetic scenes with predict.py in a child process: seconds, tiles/s, peak
    resident memory; refine.predict on the same number of patches; F1 tiled vs patch-wise, and
    the landslides found against the truth."""
    os.makedirs(args.out, exist_ok=True)
    run = paper_sized_run(os.path.join(args.out, 'paper-run')) if args.paper else args.run
    if not os.path.isfile(os.path.join(run, 'config.json')):
        raise SystemExit(f'error: {run}: no trained run here; train one first: '
                         'python refine.py --demo')
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    models, c, rnd = predict.load_run(run, None, dev)
    print(f'run {run} (round {rnd}, scale {c.scale}) on {dev}; overlap {args.overlap}')
    rows = ['| scene | tiles | seconds | tiles/s | peak memory (MiB) | scene float32 (MiB) | '
            'refine.predict, same count (patches/s) | F1 tiled | F1 patch-wise | '
            'landslides found |', '|---' * 10 + '|']
    for size in args.sizes:
        path = bench_scene(args.out, size, args.paper)
        pout = os.path.join(args.out, f'pred-{size}')
        shutil.rmtree(pout, ignore_errors=True)
        argv = ['--run', run, '--scene', path, '--out', pout, '--overlap', str(args.overlap),
                '--log-every', '15']
        if path.endswith('.h5'):
            argv += ['--truth', path]
        _, wall, peak = in_child(CHILD, argv)
        name = os.path.splitext(os.path.basename(path))[0]
        info = json.load(open(os.path.join(pout, 'summary.json')))[name]
        found = '-'
        if path.endswith('.h5'):
            o = json.load(open(os.path.join(pout, 'metrics.json')))[name]['objects']
            found = f"{o['found']} of {o['true']} ({o['false']} false of {o['predicted']})"
        rate, f1_tiled, f1_patch = patchwise(models, c, path, pout, size, info['tiles'], dev)
        mib = size * size * 14 * 4 / 2 ** 20
        rows.append(f"| {size} x {size} | {info['tiles']} | {info['seconds']:.1f} (wall "
                    f"{wall:.1f}) | {info['tiles'] / info['seconds']:.1f} | {peak:.0f} | "
                    f'{mib:.0f} | {rate:.1f} | {f1_tiled} | {f1_patch} | {found} |')
        print(rows[-1], flush=True)
    print('\n' + '\n'.join(rows))


def patchwise(models, c, path, pout, size, tiles, dev):
    """The same number of patches through refine.predict (patches/s) and, where the truth is
    known, F1 of the tiled map and of the scene cut into whole patches. -> (rate, F1s as text)"""
    sc = S.Scene(path)
    stats = S.scene_stats(sc)
    mean, std = np.float32(stats['mean']), np.float32(stats['std'])
    n, k, T = min(tiles, 256), size // L.SIZE, L.SIZE

    def patches(rows):                                # [k' * T, size, 14] -> [k' * k, 14, T, T]
        x = torch.from_numpy(((rows - mean) / std).astype(np.float32))
        x = x[:T * (len(x) // T), :T * k].reshape(-1, T, k, T, L.BANDS)
        return x.permute(0, 2, 4, 1, 3).reshape(-1, L.BANDS, T, T)
    X = patches(sc.rows(0, min(size, T * math.ceil(n / k))))[:n].contiguous()
    rate = len(X) / median_time(lambda: refine.predict(models, X, c, dev), dev, 1)
    f1_tiled = f1_patch = '-'
    if sc.fmt == 'h5':
        import h5py
        truth = h5py.File(path)['mask'][()]
        tiled = h5py.File(os.path.join(pout, 'scene_landslide.h5'))['landslide'][()] == 1
        f1_tiled = f"{100 * L.scores(*L.confusion(tiled, truth))['f1']:.2f}"
        P = refine.predict(models, patches(sc.rows(0, size)), c, dev)
        P = P.reshape(k, k, T, T).permute(0, 2, 1, 3).reshape(size, size) >= 0.5
        f1_patch = f"{100 * L.scores(*L.confusion(P, truth))['f1']:.2f}"
    sc.close()
    return rate, f1_tiled, f1_patch


# ----------------------------------------------------------------------------- Sentinel-2 stacking

def stack_bench(args):
    """Stack a full-size synthetic Sentinel-2 product (tiled from a smaller scene) with a DEM in
    EPSG:4326, with `python -m mapping stack` in a child process: seconds and peak memory."""
    if args.size % 6:
        raise SystemExit('error: --size must be a multiple of 6 (the 60 m bands)')
    folder = os.path.join(args.out, f'{args.level}-{args.size}')
    safe = os.path.join(folder, 'product.SAFE')
    if not os.path.isdir(safe):
        t = time.time()
        write_big_product(folder, args.size, args.level)
        print(f'wrote the product in {time.time() - t:.0f} s', flush=True)
    out = os.path.join(args.out, f'stack-{args.level}-{args.size}.tif')
    if os.path.exists(out):
        os.remove(out)
    _, wall, peak = in_child(STACK_CHILD, ['stack', safe, '--dem',
                                           os.path.join(folder, 'dem.tif'), '--out', out])
    gb = args.size ** 2 * L.BANDS * 4 / 2 ** 30
    print(f'\n| product | size | seconds | peak memory (MiB) | stack float32 (GiB) | '
          f'written (MiB) |\n|---|---|---|---|---|---|\n| synthetic {args.level} | '
          f'{args.size} x {args.size} | {wall:.0f} | {peak:.0f} | {gb:.1f} | '
          f'{os.path.getsize(out) / 2 ** 20:.0f} |')
    if args.pair:                  # the same product as a before-date onto the stack's grid
        before = os.path.join(args.out, f'before-{args.level}-{args.size}.tif')
        text, wall2, peak2 = in_child(PAIR_CHILD, [out, safe, os.path.join(folder, 'dem.tif'),
                                                   before])
        print(f'\n| pair | stack the after-date | stack the before-date, classify, write | '
              f'together | peak memory (MiB) |\n|---|---|---|---|---|\n| synthetic '
              f'{args.level} | {wall:.0f} s | {wall2:.0f} s ({text.split("timings")[-1].split()[0]}'
              f') | {wall + wall2:.0f} s | {max(peak, peak2):.0f} |')


def aoi_bench(args):
    """A full-size synthetic L2A product stacked whole and cut to a --km x --km box at its centre
    (--bbox), each in a child process: seconds, peak memory and the bytes read (the child's
    rchar less a child that only imports), as a mapper's area of interest saves them."""
    from rasterio.warp import transform
    folder = os.path.join(args.out, f'L2A-{args.size}')
    safe, dem = os.path.join(folder, 'product.SAFE'), os.path.join(folder, 'dem.tif')
    if not os.path.isdir(safe):
        write_big_product(folder, args.size, 'L2A')
    base = int(in_child(IO_CHILD, [])[0].split('rchar')[-1].split()[0])
    half, (x0, y0) = args.km * 500, (500000.0 + args.size * 5, 3100000.0 - args.size * 5)
    lon, lat = transform('EPSG:32645', 'EPSG:4326', [x0 - half, x0 + half], [y0 - half, y0 + half])
    rows = []
    for name, extra in (('whole tile', []), (f'{args.km} x {args.km} km box', [
            '--bbox', *(f'{v:.6f}' for v in (lon[0], lat[0], lon[1], lat[1]))])):
        out = os.path.join(args.out, f"aoi-{len(rows)}.tif")
        for f in (out, clouds.sidecar(out)):
            if os.path.exists(f):
                os.remove(f)
        text, wall, peak = in_child(IO_CHILD, ['stack', safe, '--dem', dem, '--out', out] + extra)
        read = (int(text.split('rchar')[-1].split()[0]) - base) / 2 ** 20
        rows.append(f'| {name} | {wall:.0f} s | {read:.0f} MiB | {peak:.0f} MiB |')
    print(f'\n| {args.size} x {args.size} L2A product, stacked | seconds | read | peak memory |\n'
          f'|---|---|---|---|\n' + '\n'.join(rows))


def pair_child(after, product, dem, out):
    """The before half of a pair: product stacked onto the after stack's grid, two maps made
    from the stacks (NDVI under 0.3: landslide), dated by change.classify and written, as
    predict.py --before does with the networks' maps. Prints the seconds of each step."""
    from rasterio.windows import Window
    a = S.Scene(after)
    grid = dict(crs=a.crs, transform=a.transform, width=a.W, height=a.H)
    t = [time.time()]
    sentinel2.stack(product, dem, out, print, 0, grid)
    t.append(time.time())
    maps = [np.zeros((a.H, a.W), np.uint8) for _ in range(2)]
    for m, path in zip(maps, (after, out)):        # B4 and B8 only: the networks' stand-in
        with L.rasterio_for(path).open(path) as f:
            for r in range(0, a.H, 1024):
                red, nir = f.read([4, 8], window=Window(0, r, a.W, min(1024, a.H - r)))
                with np.errstate(invalid='ignore', divide='ignore'):
                    m[r:r + 1024] = (nir - red) / (nir + red) < 0.3
    maps[1][::7] = 0                                # the before-date saw less
    t.append(time.time())
    classes, _ = change.classify(maps[0], maps[1], a, S.Scene(out))
    change.write(out[:-4] + '_landslide.tif', classes, a)
    t.append(time.time())
    unseen = np.concatenate([a.unseen(r, min(r + 1024, a.H)) for r in range(0, a.H, 1024)])
    gj = out[:-4] + '_not_analysed.geojson'
    polygons.write_geojson(gj, polygons.not_analysed_polygons((unseen > 0).astype(np.uint8) * 254,
                                                              a.transform, a.crs))
    print(f'not analysed: {100 * (unseen > 0).mean():.0f} % of the after-date, as polygons '
          f'{os.path.getsize(gj) / 2 ** 20:.1f} MiB ({time.time() - t[-1]:.0f} s)')
    print('timings', '/'.join(f'{y - x:.0f}' for x, y in zip(t, t[1:])), '(stack/maps/classify)')


def write_big_product(folder, size, level, clouds=0.3):
    """A size x size synthetic product as product.SAFE, with cumulus, shadows and cirrus over
    about `clouds` of it and its cloud masks (L2A: SCL at 20 and 60 m; MSK_CLASSI at 60 m), and
    dem.tif (EPSG:4326, about 30 m), tiled from an 1830 x 1830 scene: only timing and memory are
    measured with it."""
    from rasterio.transform import from_origin
    base, origin = 1830, (500000.0, 3100000.0)
    dom = landscape.domain(1.0, 0, 'product', product.WORLD)
    img, _, cover = landscape.synth_patch(np.random.default_rng([0, 3]), dom, base, cover=True,
                                          native=False)
    sk = sky.draw(np.random.default_rng([0, 11]), base, clouds)
    refl, none = sky.apply(img[..., :12], sk), np.zeros((base, base), bool)
    reps = math.ceil(size / base)
    granule = os.path.join(folder, 'product.SAFE', 'GRANULE', f'{level}_T45RUL')

    def put(rel, data, res):                      # tiled to the full size at its resolution
        n = size // (res // 10)
        data = np.tile(data, (1,) * (data.ndim - 2) + (reps, reps))[..., :n, :n]
        product.write_raster(os.path.join(granule, rel), data, res, 'EPSG:32645', origin)
        print(f'{os.path.basename(rel)} written', flush=True)
    for res, bands in product.band_files(level).items():
        for band in bands:
            sub = f'R{res}m/' if level == 'L2A' else ''
            put(f'IMG_DATA/{sub}T45RUL_{band}_{res}m.jp2',
                product.band_dn(refl, band, res, -1000.0), res)
    if level == 'L2A':
        for res in (20, 60):
            put(f'IMG_DATA/R{res}m/T45RUL_SCL_{res}m.jp2',
                sky.scene_classification(sk, img[..., :12], cover, none, res // 10), res)
    put('QI_DATA/MSK_CLASSI_B00.jp2', sky.classi(sk, none), 60)
    meta = product.metadata(level, '04.00', -1000.0)
    open(os.path.join(folder, 'product.SAFE', f'MTD_MSI{level}.xml'), 'w').write(meta)
    open(os.path.join(granule, 'MTD_TL.xml'), 'w').write(       # the sun's angles: L1C shadows
        product.tile_metadata(level, [f'GRANULE/{level}_T45RUL/QI_DATA/MSK_CLASSI_B00.jp2'],
                              'EPSG:32645'))
    dem = np.tile(img[..., 13], (reps, reps))[:size, :size]
    product.write_dem(os.path.join(folder, 'dem.tif'), dem, 'EPSG:32645',
                      from_origin(*origin, 10.0, 10.0))


def adapt_bench(args):
    """predict.py --s2 ... --adapt on a synthetic L2A product with at least as many windows as
    --adapt takes (1000 of 128 x 128: 4098 px a side holds 1024), in a child process; the stack,
    the adaptation and the map timed apart, and a full tile projected: the adaptation as
    measured (its rounds train the same steps and predict the same 1000 windows on any scene
    that holds them), the stack and the map scaled by the area."""
    folder = os.path.join(args.out, f'L2A-{args.size}-clear')
    safe, dem = os.path.join(folder, 'product.SAFE'), os.path.join(folder, 'dem.tif')
    if not os.path.isdir(safe):
        write_big_product(folder, args.size, 'L2A', clouds=0.0)
    pout = os.path.join(args.out, f'adapt-{args.size}')
    shutil.rmtree(pout, ignore_errors=True)
    _, wall, peak = in_child(CHILD, ['--run', args.run, '--s2', safe, '--dem', dem, '--out',
                                     pout, '--adapt', '--log-every', '60'])
    (name, info), = json.load(open(os.path.join(pout, 'summary.json'))).items()
    adapt_s, map_s = info['adapt']['seconds'], info['seconds']
    stack_s, area = wall - adapt_s - map_s, (10980 / args.size) ** 2
    print(f"\n| scene | tiles adapted to | stack + start | adapt ({info['adapt']['rounds']} "
          f"rounds) | map | together | peak memory (MiB) |\n|---|---|---|---|---|---|---|\n"
          f"| {args.size} x {args.size}, measured | {info['adapt']['tiles']} | {stack_s:.0f} s | "
          f"{adapt_s:.0f} s | {map_s:.0f} s | {wall / 60:.1f} min | {peak:.0f} |\n"
          f"| 10980 x 10980, projected | {info['adapt']['tiles']} | {stack_s * area:.0f} s | "
          f"{adapt_s:.0f} s | {map_s * area:.0f} s | "
          f"{(stack_s * area + adapt_s + map_s * area) / 60:.1f} min | - |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    sc = sub.add_parser('map', help='whole-scene mapping: seconds, tiles/s, peak memory, F1')
    sc.add_argument('--run', default='runs/demo', help='a trained run [default: runs/demo]')
    sc.add_argument('--sizes', type=int, nargs='+', default=[2048, 4096])
    sc.add_argument('--overlap', type=int, default=32)
    sc.add_argument('--paper', action='store_true',
                    help='untrained width-64, scale-4 networks (timing only)')
    sc.add_argument('--out', default='runs/bench-scene')
    st = sub.add_parser('stack', help='stack a synthetic Sentinel-2 product: seconds, memory')
    st.add_argument('--size', type=int, default=10980,
                    help='10 m pixels per side [default: 10980, a full tile]')
    st.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    st.add_argument('--out', default='runs/bench-stack')
    st.add_argument('--pair', action='store_true',
                    help='then the same product as a before-date onto its grid, dated (change.py)')
    ad = sub.add_parser('adapt', help='predict.py --adapt on a product: stack, adapt, map timed')
    ad.add_argument('--run', default=predict.SHIPPED, help='[default: the shipped model]')
    ad.add_argument('--size', type=int, default=4098, help='10 m pixels per side [default: 4098]')
    ad.add_argument('--out', default='runs/bench-adapt')
    ar = sub.add_parser('aoi', help='stacking a whole tile against a box of it: seconds, bytes')
    ar.add_argument('--size', type=int, default=10980, help='[default: 10980, a full tile]')
    ar.add_argument('--km', type=float, default=20.0, help='the box side [default: 20 km]')
    ar.add_argument('--out', default='runs/bench-stack')
    args = ap.parse_args(argv)
    {'map': scene_bench, 'stack': stack_bench, 'adapt': adapt_bench,
     'aoi': aoi_bench}[args.cmd](args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
