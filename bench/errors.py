"""Where the refinement benchmark's errors lie: false landslide pixels next to a true landslide
(within 3 pixels: its edge), far from any on steep ground (over 20 degrees: where scars and rock
outcrops are), or far from any on gentle ground (fields, river bars); and missed landslide pixels.
Of the far, steep ones, those on rock outcrops: the generator draws each benchmark dataset again
with its cover map (checked against the stored masks). Reads the target masks of finished
`python -m bench.refinement` runs; target labels serve this report only. Also counts the round-0
pseudo-labels that mark background as landslide.

    python -m bench.errors [runs/refinement] [--arms default control] [--round 2]
"""
import argparse
import glob
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

import landslide as L
from bench import refinement
from synthetic import landscape


def where(pred, truth, slope, rock):
    """pred, truth: uint8 [N, H, W]; slope: float [N, H, W] in degrees; rock: bool [N, H, W]
    (outcrops) or None. -> dict of pixel counts"""
    g = torch.from_numpy(truth[:, None].astype(np.float32))
    # within 3 pixels of a landslide
    near = (F.max_pool2d(g, 7, 1, 3)[:, 0].numpy() > 0) & (truth == 0)
    fp, steep = (pred == 1) & (truth == 0), slope > 20
    out = {'fp near': int((fp & near).sum()), 'fp far, steep': int((fp & ~near & steep).sum())}
    if rock is not None:
        out['of them on outcrops'] = int((fp & ~near & steep & rock).sum())
    return out | {'fp far, gentle': int((fp & ~near & ~steep).sum()),
                  'missed': int(((pred == 0) & (truth == 1)).sum())}


def outcrops(tag, truth):
    """The rock outcrops of benchmark dataset data-<tag>'s target, drawn again by the generator.
    truth: uint8 [N, H, W], the stored masks. -> bool [N, H, W], or None where the draws do not
    give back the stored masks (a dataset the benchmark did not write)"""
    seed = int(tag.rsplit('-seed', 1)[1])
    opts = next((o for bname, o, *_ in refinement.BENCHMARKS
                 if refinement.bench_tag(bname, seed) == tag), None)
    if opts is None:
        return None
    kw = refinement.bench_data(opts, seed)
    drawn = list(landscape.split_patches('test', len(truth), kw['shift'], kw['seed'],
                                         kw.get('kind', 'all'), True, kw['world']))
    if not np.array_equal(np.stack([d[1] for d in drawn]), truth):
        return None
    return np.stack([d[2] for d in drawn]) == landscape.COVER.index('rock')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out', nargs='?', default='runs/refinement')
    ap.add_argument('--arms', nargs='+', default=['default', 'control'])
    ap.add_argument('--round', type=int, default=2)
    a = ap.parse_args()
    for data in sorted(glob.glob(os.path.join(a.out, 'data-*'))):
        tag = os.path.basename(data)[len('data-'):]
        runs = {arm: os.path.join(a.out, f'{arm}-{tag}') for arm in a.arms}
        masks = [os.path.join(r, f'round{a.round}', 'masks') for r in runs.values()]
        if not all(os.path.isdir(m) for m in masks):
            continue
        _, images, truths = L.list_split(data, 'test')
        names = [L.mask_name(p) for p in images]
        truth = L.load_masks(truths).numpy()
        slope = np.stack([L.read_image(p)[..., L.SPECTRAL] for p in images])
        first = []
        first = next(iter(runs.values()))
        for n in names:                           # pseudo-labels hold IGNORE too: read as stored
            with h5py.File(os.path.join(first, 'round0', 'pseudo', n), 'r') as f:
                first.append(f['mask'][()])
        first = np.stack(first)
        rock = outcrops(tag, truth)
        print(f'{tag}: round-0 pseudo-labels mark {int((first == 1).sum())} pixels landslide, '
              f'{int(((first == 1) & (truth == 0)).sum())} of them background' +
              ('' if rock is not None else
               '; outcrops unknown (not a dataset the generator draws again)'))
        for arm, run in runs.items():
            paths = [os.path.join(run, f'round{a.round}', 'masks', n) for n in names]
            pred = L.load_masks(paths).numpy()
            counts = where(pred, truth, slope, rock)
            cells = ', '.join(f'{k} {v}' for k, v in counts.items())
            print(f'  {arm:10s} round {a.round}: {cells}')


if __name__ == '__main__':
    main()
