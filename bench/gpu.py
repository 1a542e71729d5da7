"""The GPU path checked and timed in one go: the demo on the device, the losses against the
CPU, training throughput the project's way and the plain way (eager and compiled) with its share
of the card's bf16 peak, the paper's recipe projected from the rates, the Lovász hinge, and a
profile of a U-Net step. docs/speed.md holds the figures of each lease.

    python -m bench.gpu [--json docs/gpu/DATE.json]     # on a CUDA machine, under 8 minutes
    python -m bench.gpu --dry                           # every part on the CPU at toy sizes
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
import refine
from bench.speed import BF16_PEAK, conv_flops, lovasz_timing, median_time, sync, train_step_fn
from losses import lovasz_hinge, ohem_bce
from models import MODELS, build_model
from synthetic import landscape


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
    def lovasz(z, y):
        return lovasz_hinge(z, y, ignore=L.IGNORE)

    def ohem(z, y):
        return ohem_bce(z, y, 0.7, 50_000)
    for fn in (lovasz, ohem):
        out = []
        for d in ('cpu', dev):
            z = logits.to(d).detach().clone().requires_grad_()
            v = fn(z, labels.to(d))
            v.backward()
            out.append((v.detach().cpu(), z.grad.cpu()))
        (v0, g0), (v1, g1) = out
        worst = max(worst, abs(v1 - v0).item() / abs(v0).item(),
                    ((g1 - g0).norm() / g0.norm()).item())
    return worst


def gpu(args):
    """Check and time the GPU path in one go (under 8 minutes on an H100); --dry runs every part
    on the CPU at toy sizes. Prints a table last. -> [(check, result)]"""
    dry = args.dry
    if not dry and not torch.cuda.is_available():
        raise SystemExit('error: bench/gpu.py needs a CUDA device '
                         '(--dry runs every part on the CPU)')
    dev = torch.device('cpu' if dry else 'cuda')
    size = dict(width=4, scale=1, bs=4, reps=2) if dry else \
        dict(width=64, scale=4, bs=16, reps=args.repeats)
    name = 'CPU (dry run)' if dry else torch.cuda.get_device_name()
    t0, rows, figures = time.time(), [], {}

    def row(what, value):
        rows.append((what, value))
        print(f'{what}: {value}', flush=True)
    print(f'device: {name}; torch {torch.__version__}; {time.strftime("%Y-%m-%d")}')
    tmp = tempfile.mkdtemp(prefix='landslide-gpu-')
    correctness(dev, dry, tmp, row)
    landscape.synth(os.path.join(tmp, 'data'), train=64, valid=0, test=0, seed=0)
    _, paths, mpaths = L.list_split(os.path.join(tmp, 'data'), 'train')
    data = (paths, mpaths, L.band_stats(paths))
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    rates = throughput(dev, size, data, peak, args.budget, t0, row, figures)
    projection(dev, size, data, rates, row, figures)
    for what, t_ours, t_loop, _, _ in lovasz_timing(dev, size['reps'], n=4 if dry else 16,
                                                    size=64 if dry else 512):
        row(f'Lovász fwd+bwd {"4 x 64²" if dry else "16 x 512²"}, {what}',
            f'batched {1e3 * t_ours:.1f} ms, per-image loop {1e3 * t_loop:.1f} ms '
            f'({t_loop / t_ours:.1f}x)')
    profile(dev, size, data, dry)
    shutil.rmtree(tmp)
    print(f'\n## GPU check on {name}, torch {torch.__version__}, {time.strftime("%Y-%m-%d")}, '
          f"width {size['width']}, batch {size['bs']}, scale {size['scale']}, "
          f'{time.time() - t0:.0f} s\n')
    print('| check | result |\n|---|---|')
    for what, value in rows:
        print(f'| {what} | {value} |')
    if args.json:
        L.write_json(args.json, {'device': name, 'torch': torch.__version__,
                                 'date': time.strftime('%Y-%m-%d'), **figures, 'rows': rows})
    return rows


def correctness(dev, dry, tmp, row):
    """The demo on this device (a valid submission, its F1 per round), and the losses' values
    and gradients against the CPU."""
    demo = os.path.join(tmp, 'demo')
    extra = ['--steps', '6', '--rounds', '1'] if dry else []
    rc = refine.main(['--demo', '--out', demo, '--device', dev.type, *extra])
    m = json.load(open(os.path.join(demo, 'metrics.json')))['rounds']
    zpath = os.path.join(demo, 'submission.zip')
    bad = check_submission(zpath, 60) if rc == 0 else [f'exit status {rc}']
    row('demo run: submission', 'valid' if not bad else 'INVALID: ' + '; '.join(bad))
    row('demo run: held-out F1 round 0 (CPU: 78.77)', f"{100 * m[0]['holdout']['f1']:.2f}")
    row('demo run: target F1 per round', ' -> '.join(f"{100 * e['target']['f1']:.2f}" for e in m))
    row('Lovász + OHEM vs CPU, largest relative error (values, gradients)',
        f'{loss_device_check(dev):.1e}')


def throughput(dev, size, data, peak, budget, t0, row, figures):
    """Training images/s of each network, ours vs plain, eager and compiled (compiled ones are
    skipped past `budget` seconds). -> {(network, how): images/s}"""
    width, scale, bs, reps = size['width'], size['scale'], size['bs'], size['reps']
    rates = {}
    for net in MODELS:
        flops = 3 * conv_flops(build_model(net, width), 128 * scale)    # forward + backward
        hows = ['ours', 'plain', 'ours, compiled']
        if net == 'unet':
            hows.append('ours, cudnn.benchmark')
        for how in hows:
            if how.endswith('compiled') and time.time() - t0 > budget:
                row(f'{net} {how}', f'skipped: past the {budget:.0f} s budget')
                continue
            try:
                torch.backends.cudnn.benchmark = how.endswith('benchmark')
                step = train_step_fn(net, width, scale, dev, how == 'plain', *data, bs,
                                     compile_=how.endswith('compiled'))
                if dev.type == 'cuda':
                    torch.cuda.empty_cache(), torch.cuda.reset_peak_memory_stats()
                t_first = time.time()
                step()                                     # compilation, cuDNN autotuning
                t_first = time.time() - t_first
                r = bs / median_time(step, dev, reps if how != 'plain' else max(2, reps // 2))
            except Exception as e:                         # one failure must not cost the table
                first = str(e).splitlines()[0][:200] if str(e) else ''
                row(f'{net} {how}', f'FAILED: {e.__class__.__name__}: {first}')
                continue
            finally:
                torch.backends.cudnn.benchmark = False
            rates[net, how] = r
            mem = share = ''
            if dev.type == 'cuda':
                mem = f', peak {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB'
            if peak and how != 'plain':
                share = f', {100 * flops * r / peak:.0f} % of bf16 peak'
            if peak and (net, how) == ('unet', 'ours'):
                figures['unet_peak_share'] = round(flops * r / peak, 4)
            row(f'{net} {how}, img/s at {128 * scale}²',
                f'{r:.1f} ({flops * r / 1e12:.0f} TFLOP/s{share}{mem}; first step {t_first:.0f} s)')
            del step
        if (net, 'ours') in rates and (net, 'plain') in rates:
            row(f'{net} speed-up ours / plain', f"{rates[net, 'ours'] / rates[net, 'plain']:.1f}x")
    return rates


def projection(dev, size, data, rates, row, figures):
    """The paper's recipe's wall time projected from the measured training rates and the
    ensemble's inference time per image."""
    paths, _, stats = data
    ms = [build_model(n, size['width']).to(dev, memory_format=torch.channels_last) for n in MODELS]
    X = L.load_images(paths, stats).to(dev)
    c = argparse.Namespace(batch_size=size['bs'], scale=size['scale'])
    t_inf = median_time(lambda: refine.predict(ms, X, c, dev), dev, size['reps']) / len(X) / len(ms)
    n_train, n_inf = recipe_images()
    for how in ('ours', 'ours, compiled'):
        if all((n, how) in rates for n in MODELS):
            secs = sum(n_train / rates[n, how] + n_inf * t_inf for n in MODELS)
            if how == 'ours':
                figures['recipe_minutes'] = round(secs / 60, 1)
            row(f'paper recipe projected ({how}; {3 * n_train} training images)',
                f'{secs / 60:.0f} min')


def profile(dev, size, data, dry):
    """Where a U-Net training step spends its time: the profiler's top 15, printed."""
    try:
        step = train_step_fn('unet', size['width'], size['scale'], dev, False, *data, size['bs'])
        step()
        acts = [torch.profiler.ProfilerActivity.CPU]
        if not dry:
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(3):
                step()
            sync(dev)
        key = 'cpu_time_total' if dry else 'cuda_time_total'
        print(prof.key_averages().table(sort_by=key, row_limit=15))
    except Exception as e:
        print(f'profile failed: {e.__class__.__name__}: {e}')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--dry', action='store_true', help='run every part on the CPU at toy sizes')
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--budget', type=float, default=240,
                    help='seconds after which compiled runs are skipped')
    ap.add_argument('--json', help='also write the figures and the table here')
    return gpu(ap.parse_args(argv))


if __name__ == '__main__':
    main()
    sys.exit(0)
