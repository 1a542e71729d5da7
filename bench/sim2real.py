"""A proxy to measure real performance on without a real 14-band label: networks trained on a
synthetic world map the real development set's 1 964 renderings (bench/real.py). The renderings
hold B4, B3, B2 alone, so both domains are written as Landslide4Sense patches whose other eleven
bands are constant, which separated normalization turns into 0, the band's mean: what mapping
puts where a cloud hides the ground. The synthetic patches are rendered exactly as the real ones
were (real.render), so that training and mapping see the same three bands made the same way.

Per world and seed, one network (the residual U-Net; COMMON says why): the plain map (round 0,
AdaBN on the renderings), the refinement with the renderings as its unlabelled target (rounds
1-2) and its control (the same training on source labels alone); beside them the ceiling, the
same network trained on the even-numbered renderings' own labels and scored on the odd ones (a
yardstick only: nothing shipped ever sees a real label; neighbouring patches may share ground,
so it flatters). The renderings' masks only score. It chooses between worlds: docs/realism.md
holds every variant's figures. It is a proxy: the judge has all 14 bands, and is elsewhere.

    python -m bench.sim2real                                    # v1 and v2, plain, refine, control
    python -m bench.sim2real --worlds v2-sizes v2-toa --arms plain --seeds 0 1
    python -m bench.sim2real --ceiling
"""
import argparse
import json
import os
import shutil
import sys
import time

import h5py
import numpy as np

import landslide as L
import refine
from bench import real
from bench.refinement import all_cores, finished, reuse_round0
from synthetic import landscape

SOURCE = 400                           # synthetic patches a world's source holds
STEPS = 600                            # training steps per round
# one network, the residual U-Net: at the demo's learning rate (3e-3) and 300 steps, networks of
# some worlds and seeds collapsed to all-background on their own source (held-out F1 near 0),
# which measured the training, not the world; at 1e-3 and 600 steps none did
COMMON = ['--demo', '--device', 'cpu', '--models', 'resunet', '--steps', str(STEPS), '--lr',
          '1e-3', '--rounds', '2']
ARMS = {'plain': ['--rounds', '0'], 'refine': [], 'control': ['--control']}


def write_patches(folder, split, rgb, mask):
    """Renderings as a Landslide4Sense split: B4, B3, B2 from rgb (uint8 [N, 128, 128, 3]) over
    255, every other band 0; masks beside them. Written aside and renamed."""
    if os.path.isdir(os.path.join(folder, L.SPLITS[split])):
        return folder
    part = os.path.join(folder, L.SPLITS[split] + '.part')
    shutil.rmtree(part, ignore_errors=True)
    for sub in ('img', 'mask'):
        os.makedirs(os.path.join(part, sub))
    img = np.zeros((L.SIZE, L.SIZE, L.BANDS), np.float32)
    for i, (x, m) in enumerate(zip(rgb, mask), 1):
        img[..., list(real.RGB)] = x / 255.0
        with h5py.File(os.path.join(part, 'img', f'image_{i}.h5'), 'w') as f:
            f.create_dataset('img', data=img)
        with h5py.File(os.path.join(part, 'mask', f'mask_{i}.h5'), 'w') as f:
            f.create_dataset('mask', data=m.astype(np.uint8))
    os.replace(part, os.path.join(folder, L.SPLITS[split]))
    return folder


def world_source(out, world, seed):
    """A world's source patches, rendered, as <out>/src-<world>-seed<k>/TrainData."""
    folder = os.path.join(out, f'src-{world}-seed{seed}')
    if not os.path.isdir(os.path.join(folder, 'TrainData')):
        pairs = list(landscape.split_patches('train', SOURCE, seed=100 + seed, world=world))
        img, mask = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        write_patches(folder, 'train', real.render(img), mask)
    return folder


def run_arms(out, world, seed, arms, target):
    """Each arm's run of one world and seed (round 0 shared); finished runs are read, not
    rerun. -> {arm: target F1 per round}"""
    src, res, first = world_source(out, world, seed), {}, None
    for arm in arms:
        run = os.path.join(out, f'{arm}-{world}-seed{seed}')
        argv = ['--data', src, '--target-data', target, '--target', 'test', '--out', run,
                '--seed', str(seed), *COMMON, *ARMS[arm]]
        m = finished(run, argv)
        if m is None:
            if first:
                reuse_round0(first, run)
            print(f'== {world}, seed {seed}: {arm}', flush=True)
            assert refine.main(argv) == 0, f'run {run} failed'
            m = json.load(open(os.path.join(run, 'metrics.json')))
        first = first or run
        res[arm] = [e['target']['f1'] for e in m['rounds']]
    return res


def ceiling(out, rgb, mask, seeds):
    """The networks trained on the even renderings' labels, scored on the odd ones (round 0).
    -> [F1 per seed]"""
    folder = os.path.join(out, 'ceiling-data')
    write_patches(folder, 'train', rgb[0::2], mask[0::2])
    write_patches(folder, 'test', rgb[1::2], mask[1::2])
    f1 = []
    for seed in seeds:
        run = os.path.join(out, f'ceiling-seed{seed}')
        argv = ['--data', folder, '--out', run, '--seed', str(seed), *COMMON, '--rounds', '0']
        m = finished(run, argv)
        if m is None:
            assert refine.main(argv) == 0
            m = json.load(open(os.path.join(run, 'metrics.json')))
        f1.append(m['rounds'][0]['target']['f1'])
    return f1


def table(results, ceil):
    """Markdown: F1 % on the renderings per world (mean over seeds, each seed in brackets)."""
    lines = ['| world | seeds | plain (round 0) | refine, round 1 → 2 | control, round 2 | '
             'refine − control |', '|---|---|---|---|---|---|']

    def cell(v):
        v = 100 * np.asarray(v)
        return f"{v.mean():.1f} ({' / '.join(f'{x:.1f}' for x in v)})" if len(v) else '—'
    for world, seeds in results.items():
        plain = [s['plain'][0] if 'plain' in s else s['refine'][0] for s in seeds.values()]
        ref = [s['refine'] for s in seeds.values() if 'refine' in s]
        ctl = [s['control'][-1] for s in seeds.values() if 'control' in s]
        r12 = (f"{100 * np.mean([r[1] for r in ref]):.1f} → {cell([r[-1] for r in ref])}"
               if ref else '—')
        diff = (f'{100 * (np.mean([r[-1] for r in ref]) - np.mean(ctl)):+.1f}'
                if ref and ctl else '—')
        lines.append(f'| {world} | {len(seeds)} | {cell(plain)} | {r12} | {cell(ctl)} | {diff} |')
    if ceil:
        lines.append(f'| ceiling: trained on half the renderings | {len(ceil)} | {cell(ceil)} '
                     '| — | — | — |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--worlds', nargs='+', default=['v1', landscape.WORLD],
                    choices=list(landscape.WORLDS))
    ap.add_argument('--arms', nargs='+', default=list(ARMS), choices=list(ARMS))
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    ap.add_argument('--ceiling', action='store_true', help='also the ceiling (real labels)')
    ap.add_argument('--out', default='runs/sim2real')
    ap.add_argument('--real', help=f'the real development set [default: {real.DEFAULT}]')
    a = ap.parse_args(argv)
    path = real.find(a.real)
    if path is None:
        print(f'skipped: the real development set is absent ({real.DEFAULT}); give --real')
        return 0
    all_cores()
    t0 = time.time()
    rgb, mask = real.load(path)
    target = write_patches(os.path.join(a.out, 'real'), 'test', rgb, mask)
    results = {w: {s: run_arms(a.out, w, s, a.arms, target) for s in a.seeds} for w in a.worlds}
    ceil = ceiling(a.out, rgb, mask, a.seeds) if a.ceiling else []
    text = table(results, ceil) + f'\n{(time.time() - t0) / 60:.0f} min on {os.cpu_count()} ' \
        f'CPU cores; {SOURCE} source patches, {STEPS} steps a network and round.\n'
    print('\n' + text)
    L.write_json(os.path.join(a.out, 'sim2real.json'), {'results': results, 'ceiling': ceil})
    return 0


if __name__ == '__main__':
    sys.exit(main())
