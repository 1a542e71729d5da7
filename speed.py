"""Speed and memory figures, printed (targets live here, not in timed tests): training
throughput the project's way against the plain way, the batched Lovász hinge, data loading,
ensemble inference, and whole-scene mapping. bench.py is the command line:

    python bench.py speed [--width 8]          # images/s, memory, Lovász, I/O
    python bench.py scene [--sizes 2048 4096]  # map whole scenes: s, tiles/s, memory, F1

gpucheck.py times the GPU path with the helpers here.
"""
import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import landslide as L
import predict
import refine
import rundir
import landscape
import scene as S
import sky
import synthetic
import synthetic_s2
from losses import lovasz_grad, lovasz_hinge, segmentation_loss
from models import MODELS, build_model

# ----------------------------------------------------------------------------- training, inference
BF16_PEAK = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12, 'L40': 181e12, '4090': 165e12}  # dense


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize()


def median_time(fn, dev, repeats):
    fn()                                               # warm-up (and compilation)
    ts = []
    for _ in range(repeats):
        sync(dev)
        t = time.perf_counter()
        fn()
        sync(dev)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def conv_flops(model, size):
    """Multiply-adds x 2 of every convolution for one [1, 14, size, size] forward pass."""
    total = [0]

    def hook(m, _, out):
        kh, kw = m.kernel_size
        total[0] += 2 * m.in_channels // m.groups * kh * kw * out.numel()
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 14, size, size))
    for h in hs:
        h.remove()
    return total[0]


def train_step_fn(name, width, scale, dev, plain, paths, mpaths, stats, bs=16, compile_=False):
    """One training step, the project's way (data resident on the device as float16, augment
    and promote on the batch, channels_last, bf16 autocast on CUDA) or the plain way (fp32,
    NCHW, each sample read from HDF5, normalized and resized on the CPU, then copied over)."""
    torch.manual_seed(0)
    fmt = torch.contiguous_format if plain else torch.channels_last
    model = build_model(name, width).to(dev, memory_format=fmt).train()
    fwd = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    X, Y = L.load_images(paths, stats).to(dev), L.load_masks(mpaths).to(dev)

    def batch_plain():
        xs, ys = [], []
        for i in torch.randint(len(paths), (bs,), generator=g).tolist():
            mean, std = np.asarray(stats['mean'], np.float32), np.asarray(stats['std'], np.float32)
            x = (L.read_image(paths[i]) - mean) / std
            x, y = L.promote(torch.from_numpy(x.transpose(2, 0, 1).copy())[None], scale,
                             torch.from_numpy(L.read_mask(mpaths[i]))[None])
            xs.append(x[0]), ys.append(y[0])
        return torch.stack(xs).to(dev), torch.stack(ys).to(dev)

    def batch_ours():
        i = torch.randint(len(X), (bs,), generator=g).to(dev)
        x, y = L.augment(X[i].float(), Y[i], g)
        x, y = L.promote(x, scale, y)
        return x.contiguous(memory_format=torch.channels_last), y

    def step():
        x, y = batch_plain() if plain else batch_ours()
        with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == 'cuda' and not plain):
            logits = fwd(x)[:, 0]
        loss = segmentation_loss(logits, y, ohem_min_kept=100_000)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def measure_training(job):
    """Run in a fresh process so that peak memory belongs to this measurement alone."""
    name, width, scale, dev, plain, paths, mpaths, stats, repeats, compile_ = job
    dev = torch.device(dev)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step = train_step_fn(name, width, scale, dev, plain, paths, mpaths, stats, compile_=compile_)
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t = median_time(step, dev, repeats)
    peak = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else \
        (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    return 16 / t, peak / 2 ** 30


def lovasz_loop(logits, labels):
    """The straightforward way, for comparison: one image at a time in Python."""
    losses = []
    for lg, lb in zip(logits, labels):
        lg, lb = lg.reshape(-1), lb.reshape(-1).to(lg.dtype)
        errors = 1 - lg * (2 * lb - 1)
        errors_sorted, perm = torch.sort(errors, descending=True)
        grad = lovasz_grad(lb[perm][None], torch.ones_like(lb)[None])[0]
        losses.append(torch.dot(F.relu(errors_sorted), grad))
    return torch.stack(losses).mean()


def lovasz_timing(dev, repeats, n=16, size=512):
    """Lovász hinge forward + backward, batched vs the per-image loop, on random logits (every
    pixel has a positive error half the time) and trained-like ones (margin 3 +- 1: a few
    percent do). -> [(what, seconds batched, seconds loop, value batched, value loop)]"""
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(n, size, size, generator=g) < 0.02).long()
    noise = torch.randn(n, size, size, generator=g)
    rows = []
    trained = (2 * labels - 1) * 3.0 + noise
    for what, logits in (('random logits', noise), ('trained-like logits', trained)):
        logits, lab = logits.to(dev).requires_grad_(), labels.to(dev)
        a, b = lovasz_hinge(logits, lab).item(), lovasz_loop(logits, lab).item()
        assert abs(a - b) <= 1e-5 * abs(b), (a, b)
        t_ours = median_time(lambda: lovasz_hinge(logits, lab).backward(), dev, repeats)
        t_loop = median_time(lambda: lovasz_loop(logits, lab).backward(), dev, repeats)
        rows.append((what, t_ours, t_loop, a, b))
    return rows


def speed(args):
    """Training throughput the project's way and the plain way, the Lovász hinge, data loading
    and ensemble inference, printed as tables."""
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    width = args.width or (64 if dev.type == 'cuda' else 8)
    name = torch.cuda.get_device_name() if dev.type == 'cuda' else f'CPU, {os.cpu_count()} cores'
    print(f'device: {name}; torch {torch.__version__}; width {width}; batch 16; '
          f'median of {args.repeats}')
    tmp = tempfile.mkdtemp(prefix='landslide-bench-')
    synthetic.synth(tmp, train=64, valid=0, test=0, seed=0)
    _, paths, mpaths = L.list_split(tmp, 'train')
    stats = L.band_stats(paths)
    training_table(dev, width, (paths, mpaths, stats), args.repeats)

    print('\n## Lovász hinge, forward + backward, 16 x 512 x 512')
    for what, t_ours, t_loop, a, b in lovasz_timing(dev, args.repeats):
        print(f'{what}: batched {1e3 * t_ours:.0f} ms, per-image loop {1e3 * t_loop:.0f} ms: '
              f'{t_loop / t_ours:.1f}x (values {a:.6f} vs {b:.6f})')

    print('\n## Data')
    g = torch.Generator().manual_seed(0)
    t_cold = median_time(lambda: L.load_images(paths, stats), torch.device('cpu'), args.repeats)
    X = L.load_images(paths, stats).to(dev)

    def draw():
        return X[torch.randint(len(X), (16,), generator=g).to(dev)].float()
    t_hot = median_time(draw, dev, args.repeats)
    print(f'read from HDF5 + normalize: {len(paths) / t_cold:.0f} patches/s; '
          f'from the resident float16 tensor: {16 / t_hot:.0f} patches/s')

    print('\n## Ensemble inference (3 models)')
    ms = [build_model(n, width).to(dev, memory_format=torch.channels_last) for n in MODELS]
    for scale in (1, 4):
        c = argparse.Namespace(batch_size=16, scale=scale)
        t = median_time(lambda: refine.predict(ms, X[:32], c, dev), dev, args.repeats)
        print(f'scale {scale}: {32 / t:.1f} patches/s')
    shutil.rmtree(tmp)


def training_table(dev, width, data, repeats):
    """Images/s and peak memory per network, ours vs plain, at 128² and 512², each measured in
    a fresh process."""
    import multiprocessing as mp
    print('\n## Training throughput, images/s (peak memory GiB); plain = the same network '
          'trained the plain way: fp32, NCHW, each sample read from HDF5, normalized and '
          'resized on the CPU')
    print('| model | 128² ours | 128² plain | 512² ours | 512² plain | speed-up at 512² |')
    print('|---|---|---|---|---|---|')
    ctx = mp.get_context('spawn')
    for model in MODELS:
        cells, rates = [], {}
        for scale in (1, 4):
            for plain in (False, True):
                job = (model, width, scale, dev.type, plain, *data, repeats, False)
                with ctx.Pool(1) as pool:
                    r, mem = pool.apply(measure_training, (job,))
                rates[scale, plain] = r
                cells.append(f'{r:.2f} ({mem:.2f})')
        up = rates[4, False] / rates[4, True]
        print(f'| {model} | ' + ' | '.join(cells) + f' | {up:.1f}x |', flush=True)


# ----------------------------------------------------------------------------- whole scenes
# the child's own high-water mark: VmHWM starts afresh at exec (ru_maxrss would carry the
# parent's peak over the fork)
PEAK = ('print("peak_rss_kib", re.search(r"VmHWM:\\s+(\\d+)", '
        'open("/proc/self/status").read()).group(1))')
CHILD = f'import re, sys, predict; rc = predict.main(sys.argv[1:]); {PEAK}; sys.exit(rc)'
STACK_CHILD = f'import re, sys, scene; rc = scene.main(sys.argv[1:]); {PEAK}; sys.exit(rc)'
PAIR_CHILD = f'import re, sys, speed; speed.pair_child(*sys.argv[1:]); {PEAK}'


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
    dom = landscape.domain(1.0, seed)
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
        synthetic.synth_scene(sdir, size, shift=1.0, seed=0)
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
    EPSG:4326, with `python scene.py stack` in a child process: seconds and peak memory."""
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


def pair_child(after, product, dem, out):
    """The before half of a pair: product stacked onto the after stack's grid, two maps made
    from the stacks (NDVI under 0.3: landslide), dated by change.classify and written, as
    predict.py --before does with the networks' maps. Prints the seconds of each step."""
    import change, polygons, sentinel2                  # noqa: E401
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
    img, _, cover = landscape.synth_patch(np.random.default_rng([0, 3]),
                                          landscape.domain(1.0, 0, 'product'), base, cover=True,
                                          native=False)
    sk = sky.draw(np.random.default_rng([0, 11]), base, clouds)
    refl, none = sky.apply(img[..., :12], sk), np.zeros((base, base), bool)
    reps = math.ceil(size / base)
    granule = os.path.join(folder, 'product.SAFE', 'GRANULE', f'{level}_T45RUL')

    def put(rel, data, res):                      # tiled to the full size at its resolution
        n = size // (res // 10)
        data = np.tile(data, (1,) * (data.ndim - 2) + (reps, reps))[..., :n, :n]
        synthetic_s2.write_raster(os.path.join(granule, rel), data, res, 'EPSG:32645', origin)
        print(f'{os.path.basename(rel)} written', flush=True)
    for res, bands in synthetic_s2.band_files(level).items():
        for band in bands:
            sub = f'R{res}m/' if level == 'L2A' else ''
            put(f'IMG_DATA/{sub}T45RUL_{band}_{res}m.jp2',
                synthetic_s2.band_dn(refl, band, res, -1000.0), res)
    if level == 'L2A':
        for res in (20, 60):
            put(f'IMG_DATA/R{res}m/T45RUL_SCL_{res}m.jp2',
                sky.scene_classification(sk, img[..., :12], cover, none, res // 10), res)
    put('QI_DATA/MSK_CLASSI_B00.jp2', sky.classi(sk, none), 60)
    meta = synthetic_s2.metadata(level, '04.00', -1000.0)
    open(os.path.join(folder, 'product.SAFE', f'MTD_MSI{level}.xml'), 'w').write(meta)
    dem = np.tile(img[..., 13], (reps, reps))[:size, :size]
    synthetic_s2.write_dem(os.path.join(folder, 'dem.tif'), dem, 'EPSG:32645',
                           from_origin(*origin, 10.0, 10.0))
