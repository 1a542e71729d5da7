"""What each ingredient of the method adds: one ingredient a row on a synthetic shifted benchmark
(landscape.synth, --shift 1.0), round 0 only, target F1 mean ± std over seeds, each seed a fresh
dataset and fresh networks. Settings are CPU-sized; docs/evidence.md holds the figures.

    python -m bench.ablation [--seeds 3] [--out runs/ablation]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import landslide as L
import refine
from bench.refinement import COMMON, all_cores, mean_std, reuse_round0, synth_once

ABLATION_DATA = dict(train=160, valid=0, test=60, shift=1.0, world='v1')  # as measured
UNET, ROUND0 = ['--models', 'unet'], ['--rounds', '0', '--no-adabn']
# (row, run name, flags, run whose networks it reuses): round 0 only, one ingredient a row
ABLATION = [
    ('official baseline: 1 U-Net, CE, source norm, scale 1', 'base',
     [*UNET, '--scale', '1', *ROUND0, '--no-separate-norm', '--loss', 'ce'], None),
    ('+ separated normalization', 'sepnorm',
     [*UNET, '--scale', '1', *ROUND0, '--loss', 'ce'], None),
    ('+ Lovász hinge + OHEM', 'lovasz', [*UNET, '--scale', '1', *ROUND0], None),
    ('+ scale promotion (x2)', 'scale', [*UNET, '--scale', '2', *ROUND0], None),
    ('+ three-model ensemble', 'ensemble', ['--scale', '2', *ROUND0], None),
    ('+ target BatchNorm statistics (AdaBN)', 'adabn', ['--scale', '2', '--rounds', '0', '--adabn'],
     'ensemble')]


def ablation(out, seeds):
    """Target F1 per added ingredient (round 0; the rounds are bench/refinement.py's job),
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
            argv = ['--data', data, '--out', run, '--seed', str(seed), *COMMON, *flags]
            rc = refine.main(argv)
            assert rc == 0, f'run {run} failed'
            e = json.load(open(os.path.join(run, 'metrics.json')))['rounds'][0]
            rows[row].append(e['target']['f1'])
            held[row].append(e['holdout']['f1'])
    minutes = (time.time() - t0) / 60
    lines = ['| configuration | target F1 % (mean ± std) | held-out source F1 % |',
             '|---|---|---|']
    for row, _, _, _ in ABLATION:
        v, h = 100 * np.array(rows[row]), 100 * np.array(held[row])
        lines.append(f'| {row} | {mean_std(v)} | {h.mean():.1f} |')
    table = '\n'.join(lines) + \
        f'\n\n{seeds} seeds, {minutes:.0f} min on {os.cpu_count()} CPU cores.\n'
    print('\n' + table)
    L.write_json(os.path.join(out, 'ablation.json'),
                 {'target_f1': rows, 'holdout_f1': held, 'minutes': minutes})
    L.atomic_write(os.path.join(out, 'ablation.md'), lambda t: open(t, 'w').write(table))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seeds', type=int, default=3)
    ap.add_argument('--out', default='runs/ablation')
    args = ap.parse_args(argv)
    all_cores()
    ablation(args.out, args.seeds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
