"""The GPU path checked and timed in one go (`python bench.py gpu`), and whole-scene mapping
timed (`python bench.py scene`); bench.py holds the command line and the shared timing helpers.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zipfile

import numpy as np
import torch

import landslide as L
import synthetic
import refine
from bench import BF16_PEAK, conv_flops, lovasz_timing, median_time, sync, train_step_fn
from losses import lovasz_hinge, ohem_bce
from models import MODELS, build_model


# ----------------------------------------------------------------------------- GPU check
# The paper's recipe: 3799 source patches (10 % held out), 800 target patches, 20 epochs of
# batch 16 per network and round, rounds 0-3, 10 held-out evaluations per training.
RECIPE = dict(train=3799, target=800, holdout=0.1, epochs=20, batch=16, rounds=3, evals=10)


def recipe_images(r=RECIPE):
    """Per network over rounds 0..R, counted as refine.train_one counts steps.
    -> (training images, forward-only images for evaluation and prediction)"""
    n_hold = round(r['holdout'] * r['train'])
    pool = [r['train'] - n_hold + (r['target'] if k else 0) for k in range(r['rounds'] + 1)]
    train = sum(r['epochs'] * math.ceil(n / r['batch']) * r['batch'] for n in pool)
    return train, (r['rounds'] + 1) * ((r['evals'] + 1) * n_hold + r['target'])


def check_submission(path, n):
    """A competition zip: n flat files mask_N.h5, each 128 x 128 uint8 in {0, 1}. -> problems"""
    problems = []
    with zipfile.ZipFile(path) as z, tempfile.TemporaryDirectory() as tmp:
        names = z.namelist()
        if len(names) != n or any('/' in f or not f.startswith('mask_') for f in names):
            problems.append(f'{len(names)} entries, expected {n} flat mask_N.h5')
        for f in names:
            m = L.read_mask(z.extract(f, tmp))        # raises on a wrong shape or value
            if m.dtype != np.uint8:
                problems.append(f'{f}: dtype {m.dtype}')
    return problems


def loss_device_check(dev):
    """Lovász hinge and OHEM, values and gradients on `dev` against the CPU, float32.
    -> largest relative error"""
    g = torch.Generator().manual_seed(1)
    labels = (torch.rand(4, 256, 256, generator=g) < 0.03).to(torch.uint8)
    logits = (2 * labels.float() - 1) * 2.0 + 1.5 * torch.randn(4, 256, 256, generator=g)
    labels[0, :64] = L.IGNORE
    worst = 0.0
    for fn in (lambda z, y: lovasz_hinge(z, y, ignore=L.IGNORE), lambda z, y: ohem_bce(z, y, 0.7, 50_000)):
        out = []
        for d in ('cpu', dev):
            z = logits.to(d).detach().clone().requires_grad_()
            v = fn(z, labels.to(d))
            v.backward()
            out.append((v.detach().cpu(), z.grad.cpu()))
        (v0, g0), (v1, g1) = out
        worst = max(worst, abs(v1 - v0).item() / abs(v0).item(), ((g1 - g0).norm() / g0.norm()).item())
    return worst


def gpu(args):
    """Check and time the GPU path in one go (under 8 minutes on an H100); --dry runs every part
    on the CPU at toy sizes. Prints a table last."""
    dry = args.dry
    if not dry and not torch.cuda.is_available():
        raise SystemExit('error: bench.py gpu needs a CUDA device (--dry runs every part on the CPU)')
    dev = torch.device('cpu' if dry else 'cuda')
    width, scale, bs, reps = (4, 1, 4, 2) if dry else (64, 4, 16, args.repeats)
    name = 'CPU (dry run)' if dry else torch.cuda.get_device_name()
    t0, rows = time.time(), []
    row = lambda what, value: (rows.append((what, value)), print(f'{what}: {value}', flush=True))
    print(f'device: {name}; torch {torch.__version__}; {time.strftime("%Y-%m-%d")}')
    tmp = tempfile.mkdtemp(prefix='landslide-gpu-')

    # 1. correctness: the demo on this device, and the losses against the CPU
    demo = os.path.join(tmp, 'demo')
    extra = ['--steps', '6', '--rounds', '1', '--log-every', '60'] if dry else ['--log-every', '60']
    rc = refine.main(['--demo', '--out', demo, '--device', dev.type, *extra])
    m = json.load(open(os.path.join(demo, 'metrics.json')))['rounds']
    bad = check_submission(os.path.join(demo, 'submission.zip'), 60) if rc == 0 else [f'exit status {rc}']
    row('demo run: submission', 'valid' if not bad else 'INVALID: ' + '; '.join(bad))
    row('demo run: held-out F1 round 0 (README, CPU: 85.64)', f"{100 * m[0]['holdout']['f1']:.2f}")
    row('demo run: target F1 per round', ' -> '.join(f"{100 * e['target']['f1']:.2f}" for e in m))
    row('Lovász + OHEM vs CPU, largest relative error (values, gradients)', f'{loss_device_check(dev):.1e}')

    # 2. training throughput, ours vs plain, eager and compiled
    synthetic.synth(os.path.join(tmp, 'data'), train=64, valid=0, test=0, seed=0)
    _, paths, mpaths = L.list_split(os.path.join(tmp, 'data'), 'train')
    stats = L.band_stats(paths)
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    rates = {}
    for net in MODELS:
        flops = 3 * conv_flops(build_model(net, width), 128 * scale)    # forward + backward
        hows = ('ours', 'plain', 'ours, compiled') + (('ours, cudnn.benchmark',) if net == 'unet' else ())
        for how in hows:
            if how.endswith('compiled') and time.time() - t0 > args.budget:
                row(f'{net} {how}', f'skipped: past the {args.budget:.0f} s budget')
                continue
            try:
                torch.backends.cudnn.benchmark = how.endswith('benchmark')
                step = train_step_fn(net, width, scale, dev, how == 'plain', paths, mpaths, stats, bs,
                                     compile_=how.endswith('compiled'))
                if dev.type == 'cuda':
                    torch.cuda.empty_cache(), torch.cuda.reset_peak_memory_stats()
                t_first = time.time()
                step()                                     # compilation, cuDNN autotuning
                t_first = time.time() - t_first
                r = bs / median_time(step, dev, reps if how != 'plain' else max(2, reps // 2))
            except Exception as e:                         # one failure must not cost the table
                row(f'{net} {how}', f'FAILED: {e.__class__.__name__}: {str(e).splitlines()[0][:200]}')
                continue
            finally:
                torch.backends.cudnn.benchmark = False
            rates[net, how] = r
            mem = f', peak {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB' if dev.type == 'cuda' else ''
            share = f', {100 * flops * r / peak:.0f} % of bf16 peak' if peak and how != 'plain' else ''
            row(f'{net} {how}, img/s at {128 * scale}²',
                f'{r:.1f} ({flops * r / 1e12:.0f} TFLOP/s{share}{mem}; first step {t_first:.0f} s)')
            del step
        if (net, 'ours') in rates and (net, 'plain') in rates:
            row(f'{net} speed-up ours / plain', f"{rates[net, 'ours'] / rates[net, 'plain']:.1f}x")

    # 3. the full recipe's projected wall time, from the measured rates
    ms = [build_model(n, width).to(dev, memory_format=torch.channels_last) for n in MODELS]
    X = L.load_images(paths, stats).to(dev)
    c = argparse.Namespace(batch_size=bs, scale=scale)
    t_inf = median_time(lambda: refine.predict(ms, X, c, dev), dev, reps) / len(X) / len(ms)
    n_train, n_inf = recipe_images()
    for how in ('ours', 'ours, compiled'):
        if all((n, how) in rates for n in MODELS):
            secs = sum(n_train / rates[n, how] + n_inf * t_inf for n in MODELS)
            row(f'paper recipe projected ({how}; {3 * n_train} training images)', f'{secs / 60:.0f} min')

    # 4. the Lovász hinge on this device
    for what, t_ours, t_loop, _, _ in lovasz_timing(dev, reps, n=4 if dry else 16, size=64 if dry else 512):
        row(f'Lovász fwd+bwd {"4 x 64²" if dry else "16 x 512²"}, {what}',
            f'batched {1e3 * t_ours:.1f} ms, per-image loop {1e3 * t_loop:.1f} ms ({t_loop / t_ours:.1f}x)')

    # 5. where a U-Net training step spends its time
    try:
        step = train_step_fn('unet', width, scale, dev, False, paths, mpaths, stats, bs)
        step()
        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if not dry else [])
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(3):
                step()
            sync(dev)
        print(prof.key_averages().table(sort_by='cpu_time_total' if dry else 'cuda_time_total', row_limit=15))
    except Exception as e:
        print(f'profile failed: {e.__class__.__name__}: {e}')
    shutil.rmtree(tmp)
    print(f'\n## GPU check on {name}, torch {torch.__version__}, {time.strftime("%Y-%m-%d")}, '
          f'width {width}, batch {bs}, scale {scale}, {time.time() - t0:.0f} s\n')
    print('| check | result |\n|---|---|')
    for what, value in rows:
        print(f'| {what} | {value} |')
    if args.json:
        L.write_json(args.json, {'device': name, 'torch': torch.__version__, 'rows': rows})
    return rows


# ----------------------------------------------------------------------------- whole scenes
# the child's own high-water mark: VmHWM starts afresh at exec (ru_maxrss would carry the
# parent's peak over the fork)
CHILD = ('import re, sys, predict; rc = predict.main(sys.argv[1:]); print("peak_rss_kib", '
         're.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)); sys.exit(rc)')


def paper_sized_run(folder):
    """A run folder holding untrained paper-sized networks (width 64, scale 4): for timing only."""
    os.makedirs(os.path.join(folder, 'round0', 'masks'), exist_ok=True)
    c = argparse.Namespace(**(refine.DEFAULTS | {'width': 64}))
    for name in MODELS:
        refine.save_model(os.path.join(folder, 'round0', f'{name}.pt'), build_model(name, 64), name, c, None)
    L.write_json(os.path.join(folder, 'config.json'), vars(c))
    return folder


def big_scene(path, size, seed=0):
    """A size x size .npy scene tiled from one 1024 x 1024 synthetic scene (written in row bands:
    a 10 980 x 10 980 scene is 6.7 GB), for timing where generating it whole would take long."""
    img, _ = synthetic.synth_patch(np.random.default_rng([seed, 3]), synthetic.domain(1.0, seed), 1024)
    out = np.lib.format.open_memmap(path, 'w+', np.float32, (size, size, L.BANDS))
    for a in range(0, size, 1024):
        rows = min(1024, size - a)
        out[a:a + rows] = np.tile(img[:rows], (1, math.ceil(size / 1024), 1))[:, :size]
    out.flush()


def scene_bench(args):
    """Map whole synthetic scenes with predict.py in a child process: seconds, tiles/s, peak
    resident memory; refine.predict on the same number of patches; F1 tiled vs patch-wise."""
    import subprocess
    import scene as S
    out = args.out
    os.makedirs(out, exist_ok=True)
    run = paper_sized_run(os.path.join(out, 'paper-run')) if args.paper else args.run
    if not os.path.isfile(os.path.join(run, 'config.json')):
        raise SystemExit(f'error: {run}: no trained run here; train one first: python refine.py --demo')
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    models, c, rnd = __import__('predict').load_run(run, None, dev)
    print(f'run {run} (round {rnd}, scale {c.scale}) on {dev}; overlap {args.overlap}')
    rows = ['| scene | tiles | seconds | tiles/s | peak memory (MiB) | scene float32 (MiB) | '
            'refine.predict, same count (patches/s) | F1 tiled | F1 patch-wise |', '|---|---|---|---|---|---|---|---|---|']
    for size in args.sizes:
        sdir = os.path.join(out, 'scenes', f'scene-{size}')     # inputs apart from outputs
        if args.paper or size > 4096:
            os.makedirs(os.path.dirname(sdir), exist_ok=True)
            path = sdir + '.npy'
            if not os.path.exists(path):
                big_scene(path, size)
        else:
            path = os.path.join(sdir, 'scene.h5')
            if not os.path.exists(path):
                synthetic.synth_scene(sdir, size, shift=1.0, seed=0)
        pout = os.path.join(out, f'pred-{size}')
        shutil.rmtree(pout, ignore_errors=True)
        t = time.time()
        res = subprocess.run([sys.executable, '-c', CHILD, '--run', run, '--scene', path, '--out', pout,
                              '--overlap', str(args.overlap), '--log-every', '15'], capture_output=True, text=True)
        wall = time.time() - t
        print(res.stdout + res.stderr, flush=True)
        assert res.returncode == 0, f'predict.py failed on {path}'
        info = json.load(open(os.path.join(pout, 'summary.json')))[os.path.splitext(os.path.basename(path))[0]]
        peak = int(res.stdout.split('peak_rss_kib')[-1].split()[0]) / 1024
        # the same number of patches through refine.predict, and patch-wise F1 where the truth is known
        sc = S.Scene(path)
        stats = S.scene_stats(sc)
        n = min(info['tiles'], 256)
        patch_rate, f1_tiled, f1_patch = None, '-', '-'
        k = size // L.SIZE
        rows_ = sc.rows(0, min(size, L.SIZE * math.ceil(n / k)))
        X = torch.from_numpy(((rows_ - np.float32(stats['mean'])) / np.float32(stats['std'])).astype(np.float32))
        X = X[:L.SIZE * (len(X) // L.SIZE), :L.SIZE * k].reshape(-1, L.SIZE, k, L.SIZE, L.BANDS)
        X = X.permute(0, 2, 4, 1, 3).reshape(-1, L.BANDS, L.SIZE, L.SIZE)[:n].contiguous()
        t_p = median_time(lambda: refine.predict(models, X, c, dev), dev, 1)
        patch_rate = len(X) / t_p
        if sc.fmt == 'h5':
            import h5py
            truth = h5py.File(path)['mask'][()]
            tiled = (h5py.File(os.path.join(pout, 'scene_landslide.h5'))['landslide'][()] == 1)
            f1_tiled = f"{100 * L.scores(*L.confusion(tiled, truth))['f1']:.2f}"
            full = torch.from_numpy(((sc.rows(0, size) - np.float32(stats['mean'])) / np.float32(stats['std']))
                                    .astype(np.float32)).reshape(k, L.SIZE, k, L.SIZE, L.BANDS)
            P = refine.predict(models, full.permute(0, 2, 4, 1, 3).reshape(-1, L.BANDS, L.SIZE, L.SIZE), c, dev)
            P = P.reshape(k, k, L.SIZE, L.SIZE).permute(0, 2, 1, 3).reshape(size, size) >= 0.5
            f1_patch = f"{100 * L.scores(*L.confusion(P, truth))['f1']:.2f}"
        sc.close()
        rows.append(f"| {size} x {size} | {info['tiles']} | {info['seconds']:.1f} (wall {wall:.1f}) | "
                    f"{info['tiles'] / info['seconds']:.1f} | {peak:.0f} | {size * size * 14 * 4 / 2 ** 20:.0f} | "
                    f'{patch_rate:.1f} | {f1_tiled} | {f1_patch} |')
        print(rows[-1], flush=True)
    print('\n' + '\n'.join(rows))
