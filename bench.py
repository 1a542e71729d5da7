"""Evidence for the paper's claims on data anyone can regenerate, and speed figures.

    python bench.py ablation [--seeds 3] [--out runs/ablation]   # target F1 per ingredient, mean ± std
    python bench.py refinement [--out runs/refinement]            # rounds vs a control, three targets
    python bench.py refinement --only 'older scars'               # ... and a fourth, aged scars only
    python bench.py speed    [--width 8]                          # images/s, memory, Lovász, I/O
    python bench.py gpu      [--dry]                              # check and time the GPU path (< 8 min)
    python bench.py scene    [--sizes 2048 4096]                  # map whole scenes: s, tiles/s, memory, F1

The ablation adds one ingredient per row on a synthetic shifted benchmark (landslide.py synth,
--shift 1.0), each seed a fresh dataset and fresh networks; the refinement benchmark asks whether
the rounds add anything above the same extra training without pseudo-labels, on three targets
(and a fourth, run when named).
Settings are CPU-sized; the rows are the paper's, see README. The speed benchmark prints medians of several runs on whatever machine
runs it; on a CUDA machine it also measures the paper-sized GPU recipe.
"""
import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import landslide as L
import synthetic
import refine
from losses import lovasz_grad, lovasz_hinge, segmentation_loss
from models import MODELS, build_model

# ----------------------------------------------------------------------------- ablation
ABLATION_DATA = dict(train=160, valid=0, test=60, shift=1.0)
ABLATION_COMMON = ['--width', '8', '--batch-size', '8', '--steps', '100', '--lr', '3e-3', '--evals', '3',
                   '--ohem-min-kept', '4096', '--device', 'cpu', '--log-every', '120']
CE_ONLY = ['--w-lovasz', '0', '--ohem-thresh', '1']             # OHEM keeping every pixel = plain BCE
ROUND0 = ['--rounds', '0', '--no-adabn']
ABLATION = [  # (row, run name, flags, run whose networks it reuses): round 0 only, one ingredient a row
    ('official baseline: 1 U-Net, CE, source norm, scale 1', 'base',
     ['--models', 'unet', '--scale', '1', *ROUND0, '--no-separate-norm', *CE_ONLY], None),
    ('+ separated normalization', 'sepnorm', ['--models', 'unet', '--scale', '1', *ROUND0, *CE_ONLY], None),
    ('+ Lovász hinge + OHEM', 'lovasz', ['--models', 'unet', '--scale', '1', *ROUND0], None),
    ('+ scale promotion (x2)', 'scale', ['--models', 'unet', '--scale', '2', *ROUND0], None),
    ('+ three-model ensemble', 'ensemble', ['--scale', '2', *ROUND0], None),
    ('+ target BatchNorm statistics (AdaBN)', 'adabn', ['--scale', '2', '--rounds', '0', '--adabn'], 'ensemble')]


def synth_once(path, **kw):
    """A synthetic dataset at path, unless one is there; written aside and renamed, so that an
    interrupted benchmark never finds half a dataset."""
    if not os.path.isdir(path):
        shutil.rmtree(path + '.part', ignore_errors=True)
        synthetic.synth(path + '.part', **kw)
        os.replace(path + '.part', path)


def reuse_round0(src, dst):
    """Copy run src's round-0 networks into run dst (training them does not depend on the flags
    that differ), so that dst only predicts with them."""
    os.makedirs(os.path.join(dst, 'round0'), exist_ok=True)
    for f in os.listdir(os.path.join(src, 'round0')):
        to = os.path.join(dst, 'round0', f)
        if f.endswith('.pt') and not os.path.exists(to):
            shutil.copy(os.path.join(src, 'round0', f), to + '.part')
            os.replace(to + '.part', to)


def ablation(out, seeds):
    """Target F1 per added ingredient (round 0; the rounds are bench.py refinement's job),
    mean ± std over seeds, each seed a fresh dataset and fresh networks. Resumable."""
    t0, rows, held = time.time(), {r[0]: [] for r in ABLATION}, {r[0]: [] for r in ABLATION}
    for seed in range(seeds):
        data = os.path.join(out, f'data-seed{seed}')
        synth_once(data, **ABLATION_DATA, seed=100 + seed)
        for row, name, flags, reuse in ABLATION:
            run = os.path.join(out, f'{name}-seed{seed}')
            if reuse:
                reuse_round0(os.path.join(out, f'{reuse}-seed{seed}'), run)
            print(f'== seed {seed}: {row}', flush=True)
            rc = refine.main(['--data', data, '--out', run, '--seed', str(seed), *ABLATION_COMMON, *flags])
            assert rc == 0, f'run {run} failed'
            e = json.load(open(os.path.join(run, 'metrics.json')))['rounds'][0]
            rows[row].append(e['target']['f1'])
            held[row].append(e['holdout']['f1'])
    minutes = (time.time() - t0) / 60
    lines = ['| configuration | target F1 % (mean ± std) | held-out source F1 % |', '|---|---|---|']
    for row, _, _, _ in ABLATION:
        v, h = 100 * np.array(rows[row]), 100 * np.array(held[row])
        lines.append(f'| {row} | {v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f} | {h.mean():.1f} |')
    table = '\n'.join(lines) + f'\n\n{seeds} seeds, {minutes:.0f} min on {os.cpu_count()} CPU cores.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, 'ablation.json'), {'target_f1': rows, 'holdout_f1': held, 'minutes': minutes})
    L.atomic_write(os.path.join(out, 'ablation.md'), lambda t: open(t, 'w').write(table))


# ----------------------------------------------------------------------------- refinement
# Does the refinement add anything beyond extra training? Three targets of different kinds (the
# generator options were fixed before any result was seen), three arms per seed that share round 0:
# the paper's literal loop, refine.py's defaults, and a control with the default's training (same
# steps, same warm start) on source labels only. Gains count only above the control.
BENCHMARKS = [('shift 1.0', dict(shift=1.0), 5, 4),   # (name, generator options, seeds, arms)
              ('shift 0.5', dict(shift=0.5), 3, 3),
              ('sensor only', dict(shift=1.0, kind='sensor'), 3, 3),
              ('older scars', dict(shift=1.0, kind='scars'), 5, 3)]
OPT_IN = ('older scars',)                              # added later: runs only when --only names it
BENCH_DATA = dict(train=160, valid=0, test=60)
BENCH_COMMON = [*ABLATION_COMMON, '--scale', '1', '--rounds', '2']
ARMS = [('default', []), ('paper rule', ['--paper-rule']), ('control', ['--control']),
        ('threshold rule', ['--pseudo', 'threshold']),     # the default's training, the paper's rule
        ('agree', ['--agree']), ('prior', ['--pseudo', 'prior']),      # run only when --arms names them
        ('no labels', ['--pseudo', 'none']), ('grow', ['--pseudo', 'grow']),
        ('half portion', ['--portion', '0.5', '--portion-step', '0']),   # as many labels as grow, not grown
        ('guarded', ['--pseudo', 'guarded']),             # grown, the source share as a ceiling
        ('balanced', ['--pseudo', 'balanced'])]           # class-balanced: the default until 2026-11-27


def bench_data(opts, seed):
    """synthetic.synth's arguments for one benchmark's dataset of this seed."""
    return dict(**BENCH_DATA, **opts, seed=100 + seed)


def bench_tag(bname, seed):
    """The name of one benchmark seed's dataset and runs: 'shift 1.0', 3 -> 'shift10-seed3'."""
    return f"{bname.replace(' ', '').replace('.', '')}-seed{seed}"


def finished(run, argv):
    """run's metrics when it holds every round argv asks for, else None. Raises L.DataError, as
    refine.py would, when the run was made with other flags than argv."""
    mpath, c = os.path.join(run, 'metrics.json'), refine.parse_args(argv)
    m = json.load(open(mpath)) if os.path.exists(mpath) else None
    if m is None or len(m['rounds']) < c.rounds + 1:
        return None
    c.data = os.path.abspath(c.data)
    refine.check_out(c)
    return m


def refinement(out, seed_factor=1.0, only=None, seed_list=None, arms=None, flags=(), table_only=False):
    """Target F1 per round, arm and benchmark, mean ± std over seeds, and the goals of the
    refinement checked on the means. Resumable: rerun the same command after an interruption; a
    run whose metrics.json holds every round is read, not rerun. only / seed_list / arms narrow it
    to some benchmarks, seeds and arms (one seed per process on a GPU, say); flags are appended
    to every run's flags (so they win); table_only tabulates the finished runs and trains nothing."""
    t0, res = time.time(), {}
    run_dir = lambda arm, tag: os.path.join(out, arm.replace(' ', '') + '-' + tag)
    for bname, opts, n, n_arms in BENCHMARKS:
        if (only and bname not in only) or (not only and bname in OPT_IN):
            continue
        for seed in seed_list if seed_list is not None else range(max(1, round(n * seed_factor))):
            tag = bench_tag(bname, seed)
            data = os.path.join(out, f'data-{tag}')
            if not table_only:
                synth_once(data, **bench_data(opts, seed))
            seen = []                                   # this seed's runs so far
            for arm, arm_flags in [a for x in arms for a in ARMS if a[0] == x] if arms else ARMS[:n_arms]:
                run = run_dir(arm, tag)
                argv = ['--data', data, '--out', run, '--seed', str(seed), *BENCH_COMMON, *arm_flags, *flags]
                m = finished(run, argv)
                if m is None and table_only:
                    continue
                if m is None:
                    # round 0 does not depend on the arm: copied from the default run, else the first run
                    src = [r for r in (run_dir(ARMS[0][0], tag), *seen)
                           if r != run and os.path.isdir(os.path.join(r, 'round0'))]
                    if src:
                        reuse_round0(src[0], run)
                    print(f'== {bname}, seed {seed}: {arm}', flush=True)
                    assert refine.main(argv) == 0, f'run {run} failed'
                    m = json.load(open(os.path.join(run, 'metrics.json')))
                seen.append(run)
                res.setdefault(bname, {}).setdefault(arm, []).append(
                    {'f1': [e['target']['f1'] for e in m['rounds']], 'source_share': m['source_share'],
                     'pseudo': [e['pseudo'] for e in m['rounds']]})
    if not res:
        print(f'error: {out}: no finished run of this selection to tabulate', file=sys.stderr)
        return 2
    minutes = (time.time() - t0) / 60
    where = torch.cuda.get_device_name() if any('cuda' in f for f in flags) else f'{os.cpu_count()} CPU cores'
    table = refinement_table(res) + f'\n{minutes:.0f} min on {where}' + (' (table only)' * table_only) + \
        (f"; flags added: {' '.join(flags)}" if flags else '') + '.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, 'refinement.json'), {'results': res, 'minutes': minutes, 'flags': list(flags)})
    L.atomic_write(os.path.join(out, 'refinement.md'), lambda t: open(t, 'w').write(table))


def refinement_table(res):
    """Markdown: target F1 % per round (mean ± std over seeds) per arm, then the goals."""
    pm = lambda v: f'{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}'
    rounds = len(next(iter(next(iter(res.values())).values()))[0]['f1'])
    lines = ['| target | arm | ' + ' | '.join(f'round {r}' for r in range(rounds)) + ' | seeds |',
             '|---' * (rounds + 3) + '|']
    goals = []
    for bname, arms in res.items():
        f1 = {a: 100 * np.array([s['f1'] for s in v]) for a, v in arms.items()}
        for a, v in f1.items():
            lines.append(f'| {bname} | {a} | ' + ' | '.join(pm(v[:, r]) for r in range(rounds)) + f' | {len(v)} |')
        if 'default' not in f1 or 'control' not in f1:     # a partial table: no goals to check
            continue
        d, ctl = f1['default'], f1['control']
        mean = d.mean(0)
        drop, worst = (mean[:-1] - mean[1:]).max(), (d[:, -1] - d[:, 0]).min()
        gain, over = mean[-1] - mean[0], mean[-1] - ctl.mean(0)[-1]
        ok = lambda b: 'met' if b else 'MISSED'
        fall = f'largest fall between rounds {drop:.1f}' if drop > 0 else f'no fall between rounds ' \
            f'(smallest rise {-drop:.1f})'
        g = (f'- {bname}: {fall} → {ok(drop <= 1)}; worst seed round 0 → last {worst:+.1f} → '
             f'{ok(worst >= -3)}; gain {gain:+.1f}, over the control {over:+.1f}')
        goals.append(g + (f' → {ok(gain >= 3 and over > 0)}' if mean[0] < 85 else ' (round 0 ≥ 85: no gain required)'))
    return '\n'.join(lines) + '\n\nGoals (default arm, means over seeds):\n' + '\n'.join(goals) + '\n'


# ----------------------------------------------------------------------------- speed
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
        total[0] += 2 * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1] * out.numel()
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
            x = (L.read_image(paths[i]) - np.asarray(stats['mean'], np.float32)) / np.asarray(stats['std'], np.float32)
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
    for what, logits in (('random logits', noise), ('trained-like logits', (2 * labels - 1) * 3.0 + noise)):
        logits, lab = logits.to(dev).requires_grad_(), labels.to(dev)
        a, b = lovasz_hinge(logits, lab).item(), lovasz_loop(logits, lab).item()
        assert abs(a - b) <= 1e-5 * abs(b), (a, b)
        t_ours = median_time(lambda: lovasz_hinge(logits, lab).backward(), dev, repeats)
        t_loop = median_time(lambda: lovasz_loop(logits, lab).backward(), dev, repeats)
        rows.append((what, t_ours, t_loop, a, b))
    return rows


def speed(args):
    import multiprocessing as mp
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    width = args.width or (64 if dev.type == 'cuda' else 8)
    name = torch.cuda.get_device_name() if dev.type == 'cuda' else f'CPU, {os.cpu_count()} cores'
    print(f'device: {name}; torch {torch.__version__}; width {width}; batch 16; median of {args.repeats}')
    tmp = tempfile.mkdtemp(prefix='landslide-bench-')
    synthetic.synth(tmp, train=64, valid=0, test=0, seed=0)
    _, paths, mpaths = L.list_split(tmp, 'train')
    stats = L.band_stats(paths)

    print('\n## Training throughput, images/s (peak memory GiB); plain = the same network trained the '
          'plain way: fp32, NCHW, each sample read from HDF5, normalized and resized on the CPU')
    print('| model | 128² ours | 128² plain | 512² ours | 512² plain | speed-up at 512² |')
    print('|---|---|---|---|---|---|')
    ctx = mp.get_context('spawn')
    for model in MODELS:
        cells, rates = [], {}
        for scale in (1, 4):
            for plain in (False, True):
                with ctx.Pool(1) as pool:
                    r, mem = pool.apply(measure_training, ((model, width, scale, dev.type, plain, paths, mpaths, stats,
                                                            args.repeats, False),))
                rates[scale, plain] = r
                cells.append(f'{r:.2f} ({mem:.2f})')
        print(f'| {model} | ' + ' | '.join(cells) + f' | {rates[4, False] / rates[4, True]:.1f}x |', flush=True)

    print('\n## Lovász hinge, forward + backward, 16 x 512 x 512')
    for what, t_ours, t_loop, a, b in lovasz_timing(dev, args.repeats):
        print(f'{what}: batched {1e3 * t_ours:.0f} ms, per-image loop {1e3 * t_loop:.0f} ms: '
              f'{t_loop / t_ours:.1f}x (values {a:.6f} vs {b:.6f})')

    print('\n## Data')
    g = torch.Generator().manual_seed(0)
    t_cold = median_time(lambda: L.load_images(paths, stats), torch.device('cpu'), args.repeats)
    X = L.load_images(paths, stats).to(dev)
    t_hot = median_time(lambda: X[torch.randint(len(X), (16,), generator=g).to(dev)].float(), dev, args.repeats)
    print(f'read from HDF5 + normalize: {len(paths) / t_cold:.0f} patches/s; '
          f'from the resident float16 tensor: {16 / t_hot:.0f} patches/s')

    print('\n## Ensemble inference (3 models)')
    ms = [build_model(n, width).to(dev, memory_format=torch.channels_last) for n in MODELS]
    for scale in (1, 4):
        c = argparse.Namespace(batch_size=16, scale=scale)
        t = median_time(lambda: refine.predict(ms, X[:32], c, dev), dev, args.repeats)
        print(f'scale {scale}: {32 / t:.1f} patches/s')
    shutil.rmtree(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('ablation', help='target F1 per added ingredient, mean ± std over seeds')
    a.add_argument('--seeds', type=int, default=3)
    a.add_argument('--out', default='runs/ablation')
    r = sub.add_parser('refinement', help='does refinement beat extra training? three targets, three arms')
    r.add_argument('--out', default='runs/refinement')
    r.add_argument('--seed-factor', type=float, default=1.0, help='scale every benchmark\'s seed count')
    r.add_argument('--only', nargs='+', choices=[b[0] for b in BENCHMARKS], help="benchmarks by name, e.g. 'shift 1.0' "
                   f"(default: all but {', '.join(OPT_IN)}, which run only when named)")
    r.add_argument('--seed-list', type=int, nargs='+', help='these seeds (of every benchmark run)')
    r.add_argument('--arms', nargs='+', choices=[a for a, _ in ARMS],
                   help='these arms, in this order (default: every benchmark\'s own)')
    r.add_argument('--flags', default='', help="refine.py flags added to every run, e.g. '--width 64 --device cuda'")
    r.add_argument('--table-only', action='store_true', help='tabulate finished runs, train nothing')
    s = sub.add_parser('speed', help='training and inference throughput, Lovász, data loading')
    s.add_argument('--width', type=int, default=None, help='network width (default: 8 on CPU, 64 on CUDA)')
    s.add_argument('--repeats', type=int, default=3)
    gp = sub.add_parser('gpu', help='check and time the GPU path: correctness, images/s, Lovász, projection')
    gp.add_argument('--dry', action='store_true', help='run every part on the CPU at toy sizes')
    gp.add_argument('--repeats', type=int, default=10)
    gp.add_argument('--budget', type=float, default=240, help='seconds after which compiled runs are skipped')
    gp.add_argument('--json', help='also write the table here')
    sc = sub.add_parser('scene', help='whole-scene mapping: seconds, tiles/s, peak memory, F1')
    sc.add_argument('--run', default='runs/demo', help='a trained run [default: runs/demo]')
    sc.add_argument('--sizes', type=int, nargs='+', default=[2048, 4096])
    sc.add_argument('--overlap', type=int, default=32)
    sc.add_argument('--paper', action='store_true', help='untrained width-64, scale-4 networks (timing only)')
    sc.add_argument('--out', default='runs/bench-scene')
    args = ap.parse_args(argv)
    if 'OMP_NUM_THREADS' not in os.environ:     # torch reads it itself: 1 for benchmarks run side by side
        torch.set_num_threads(os.cpu_count() or 1)
    return {'ablation': lambda: ablation(args.out, args.seeds), 'speed': lambda: speed(args),
            'refinement': lambda: refinement(args.out, args.seed_factor, args.only, args.seed_list, args.arms,
                                             shlex.split(args.flags), args.table_only),
            'gpu': lambda: __import__('gpucheck').gpu(args),
            'scene': lambda: __import__('gpucheck').scene_bench(args)}[args.cmd]()


if __name__ == '__main__':
    rc = main()
    sys.exit(rc if isinstance(rc, int) else 0)        # 2: bad input; some commands return their rows
