"""Does the refinement beat the same training without pseudo-labels? Target F1 per round and
arm on synthetic targets of different kinds, each seed a fresh dataset; every arm of a seed
shares its round 0, and the control trains as long on source labels only. Settings are
CPU-sized; docs/evidence.md holds the figures.

    python -m bench.refinement [--out runs/refinement]          # three targets, three arms
    python -m bench.refinement --only 'shift 1.2' --seed-list 0 1 2 3 4 --arms default control
"""
import argparse
import json
import os
import shlex
import shutil
import sys
import time

import numpy as np
import torch

import landslide as L
import refine
import rundir
from synthetic import landscape

def synth_once(path, **kw):
    """A synthetic dataset at path, unless one is there; written aside and renamed, so that an
    interrupted benchmark never finds half a dataset."""
    if not os.path.isdir(path):
        shutil.rmtree(path + '.part', ignore_errors=True)
        landscape.synth(path + '.part', **kw)
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


# ----------------------------------------------------------------------------- refinement
# Does the refinement add anything beyond extra training? Three targets of different kinds (the
# generator options were fixed before any result was seen), three arms per seed that share round 0:
# the paper's literal loop, refine.py's defaults, and a control with the default's training (same
# steps, same warm start) on source labels only. Gains count only above the control.
BENCHMARKS = [('shift 1.0', dict(shift=1.0), 5, 4),   # (name, generator options, seeds, arms)
              ('shift 0.5', dict(shift=0.5), 3, 3),
              ('sensor only', dict(shift=1.0, kind='sensor'), 3, 3),
              ('older scars', dict(shift=1.0, kind='scars'), 5, 3),
              ('shift 1.2', dict(shift=1.2), 5, 3)]   # round 0 near 55-75 in the paper's regime
OPT_IN = ('older scars', 'shift 1.2')      # added later: run only when --only names them
BENCH_DATA = dict(train=160, valid=0, test=60, world='v1')   # the world the figures are of
COMMON = ['--demo', '--device', 'cpu']   # the demo's CPU-sized settings, on --data
BENCH_COMMON = [*COMMON, '--scale', '1', '--rounds', '2']
ARMS = [('default', []), ('paper rule', ['--paper-rule']), ('control', ['--control']),
        ('threshold rule', ['--pseudo', 'threshold']),     # the default's training, paper's rule
        ('no labels', ['--pseudo', 'none']),               # run only when --arms names them
        ('grow', ['--pseudo', 'grow']),                    # grown labels without the ceiling
        ('balanced', ['--pseudo', 'balanced'])]            # class-balanced labels (CBST)


def bench_data(opts, seed):
    """landscape.synth's arguments for one benchmark's dataset of this seed."""
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
    rundir.check_out(c)
    return m


def refinement(out, seed_factor=1.0, only=None, seed_list=None, arms=None, flags=(),
               table_only=False):
    """Target F1 per round, arm and benchmark, mean ± std over seeds, and the goals of the
    refinement checked on the means. Resumable: rerun the same command after an interruption; a
    run whose metrics.json holds every round is read, not rerun. only / seed_list / arms narrow it
    to some benchmarks, seeds and arms (one seed per process on a GPU, say); flags are appended
    to every run's flags (so they win); table_only tabulates the finished runs and trains
    nothing."""
    t0, res = time.time(), {}

    def run_dir(arm, tag):
        return os.path.join(out, arm.replace(' ', '') + '-' + tag)
    for bname, opts, n, n_arms in BENCHMARKS:
        if (only and bname not in only) or (not only and bname in OPT_IN):
            continue
        for seed in seed_list if seed_list is not None else range(max(1, round(n * seed_factor))):
            tag = bench_tag(bname, seed)
            data = os.path.join(out, f'data-{tag}')
            if not table_only:
                synth_once(data, **bench_data(opts, seed))
            seen = []                                   # this seed's runs so far
            chosen = [a for x in arms for a in ARMS if a[0] == x] if arms else ARMS[:n_arms]
            for arm, arm_flags in chosen:
                run = run_dir(arm, tag)
                argv = ['--data', data, '--out', run, '--seed', str(seed), *BENCH_COMMON,
                        *arm_flags, *flags]
                m = finished(run, argv)
                if m is None and table_only:
                    continue
                if m is None:
                    # round 0 does not depend on the arm: copied from the default run, else
                    # from the first
                    src = [r for r in (run_dir(ARMS[0][0], tag), *seen)
                           if r != run and os.path.isdir(os.path.join(r, 'round0'))]
                    if src:
                        reuse_round0(src[0], run)
                    print(f'== {bname}, seed {seed}: {arm}', flush=True)
                    assert refine.main(argv) == 0, f'run {run} failed'
                    m = json.load(open(os.path.join(run, 'metrics.json')))
                seen.append(run)
                res.setdefault(bname, {}).setdefault(arm, []).append(
                    {'f1': [e['target']['f1'] for e in m['rounds']],
                     'source_share': m['source_share'],
                     'pseudo': [e['pseudo'] for e in m['rounds']]})
    if not res:
        print(f'error: {out}: no finished run of this selection to tabulate', file=sys.stderr)
        return 2
    minutes = (time.time() - t0) / 60
    where = f'{os.cpu_count()} CPU cores'
    if any('cuda' in f for f in flags):
        where = torch.cuda.get_device_name()
    table = refinement_table(res) + f'\n{minutes:.0f} min on {where}' + \
        (' (table only)' if table_only else '') + \
        (f"; flags added: {' '.join(flags)}" if flags else '') + '.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, 'refinement.json'),
                 {'results': res, 'minutes': minutes, 'flags': list(flags)})
    L.atomic_write(os.path.join(out, 'refinement.md'), lambda t: open(t, 'w').write(table))


def refinement_table(res):
    """Markdown: target F1 % per round (mean ± std over seeds) per arm, then the goals."""
    rounds = len(next(iter(next(iter(res.values())).values()))[0]['f1'])
    lines = ['| target | arm | ' + ' | '.join(f'round {r}' for r in range(rounds)) + ' | seeds |',
             '|---' * (rounds + 3) + '|']
    goals = []
    for bname, arms in res.items():
        f1 = {a: 100 * np.array([s['f1'] for s in v]) for a, v in arms.items()}
        for a, v in f1.items():
            cells = ' | '.join(mean_std(v[:, r]) for r in range(rounds))
            lines.append(f'| {bname} | {a} | {cells} | {len(v)} |')
        if 'default' not in f1 or 'control' not in f1:     # a partial table: no goals to check
            continue
        d, ctl = f1['default'], f1['control']
        mean = d.mean(0)
        drop, worst = (mean[:-1] - mean[1:]).max(), (d[:, -1] - d[:, 0]).min()
        gain, over = mean[-1] - mean[0], mean[-1] - ctl.mean(0)[-1]
        if drop > 0:
            fall = f'largest fall between rounds {drop:.1f}'
        else:
            fall = f'no fall between rounds (smallest rise {-drop:.1f})'
        g = (f'- {bname}: {fall} → {ok(drop <= 1)}; worst seed round 0 → last {worst:+.1f} → '
             f'{ok(worst >= -3)}; gain {gain:+.1f}, over the control {over:+.1f}')
        if mean[0] < 85:
            goals.append(g + f' → {ok(gain >= 3 and over > 0)}')
        else:
            goals.append(g + ' (round 0 ≥ 85: no gain required)')
    return '\n'.join(lines) + '\n\nGoals (default arm, means over seeds):\n' + \
        '\n'.join(goals) + '\n'


def ok(met):
    return 'met' if met else 'MISSED'


def mean_std(v):
    """'mean ± std' of an array (std 0 for one value), one decimal."""
    return f'{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default='runs/refinement')
    ap.add_argument('--seed-factor', type=float, default=1.0,
                    help="scale every benchmark's seed count")
    ap.add_argument('--only', nargs='+', choices=[b[0] for b in BENCHMARKS],
                    help="benchmarks by name, e.g. 'shift 1.0' (default: all but "
                    f"{', '.join(OPT_IN)}, which run only when named)")
    ap.add_argument('--seed-list', type=int, nargs='+', help='these seeds (of every benchmark run)')
    ap.add_argument('--arms', nargs='+', choices=[a for a, _ in ARMS],
                    help="these arms, in this order (default: every benchmark's own)")
    ap.add_argument('--flags', default='',
                    help="refine.py flags added to every run, e.g. '--width 64 --device cuda'")
    ap.add_argument('--table-only', action='store_true',
                    help='tabulate finished runs, train nothing')
    args = ap.parse_args(argv)
    all_cores()
    return refinement(args.out, args.seed_factor, args.only, args.seed_list, args.arms,
                      shlex.split(args.flags), args.table_only)


def all_cores():
    """torch reads OMP_NUM_THREADS (1 for benchmarks side by side); else every core."""
    if 'OMP_NUM_THREADS' not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)


if __name__ == '__main__':
    sys.exit(main())
