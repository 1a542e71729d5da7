"""A training run's folder and data: the checks before any work, the band statistics of each
domain (separated normalization, paper §2.1), the data resident on the device, checkpoints, and
what lets an interrupted run resume (rerun the same command) or refuse a different one.
refine.py calls prepare() once, then saves and loads the networks here.
"""
import json
import os
import re
import shutil
import time

import torch

import distributed as dist_
import landslide as L
from models import build_model

# flags that may change between runs in one --out without changing what is computed
RESUMABLE = ('out', 'rounds', 'device', 'log_every', 'force', 'demo', 'paper_rule')
# settings set by a flag of another name
FLAG_OF = {'holes': '--sky', 'shade': '--sky', 'separate_norm': '--no-separate-norm',
           'synthetic': '--data'}
RECIPE = 'synthetic.json'        # a synthetic dataset's recipe (synthetic/landscape.py writes it)


def check_out(c):
    """--out must not lie inside --data and must be creatable; an --out made by another command
    is refused unless --force."""
    inputs = [('--data', c.data)] + ([('--target-data', c.target_data)] if c.target_data else [])
    L.check_out_folder(c.out, inputs, 'run folder')
    cpath = os.path.join(c.out, 'config.json')
    if os.path.exists(cpath) and not c.force:
        old, new = json.load(open(cpath)), vars(c)
        diff = sorted(k for k in set(old) | set(new)   # a setting newer than the run: off there
                      if k not in RESUMABLE and (old[k] != new.get(k) if k in old else new[k]))
        if diff:
            flags = ', '.join(sorted({FLAG_OF.get(k, '--' + k.replace('_', '-')) for k in diff}))
            raise L.DataError(f'{cpath}: this run folder was made by a different command (differs '
                              f'in: {flags}); use --force to start over')


def save_model(path, model, name, c, f1):
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    L.atomic_write(path, lambda t: torch.save(
        {'state_dict': state, 'config': {'name': name, 'width': c.width}, 'holdout_f1': f1}, t))


def load_model(path, dev):
    ck = torch.load(path, map_location='cpu', weights_only=True)
    model = build_model(ck['config']['name'], ck['config']['width'])
    model.load_state_dict(ck['state_dict'])
    return model.to(dev, memory_format=torch.channels_last).eval(), ck['holdout_f1']


def prepare(c, make_demo_data=None):
    """Check the data and the run folder, compute (or reuse) band statistics, then load. With
    c.demo and no dataset at --data, first make_demo_data(folder, seed) writes one. Under
    torchrun every process does the same, and rank 0 alone writes. -> (D, info)"""
    rank, world, dev = dist_.setup(c.device)
    if c.batch_size % world:
        raise L.DataError(f'--batch-size {c.batch_size} is the global batch: it must divide '
                          f'among {world} processes')
    if c.out is None:
        c.out = os.path.join('runs', 'demo' if c.demo else time.strftime('%Y%m%d-%H%M%S'))
    if c.demo:
        c.data = c.data or os.path.join(c.out, 'data')
        if not os.path.isdir(c.data) and rank == 0 and make_demo_data:
            print(f'writing a synthetic dataset to {c.data}')
            make_demo_data(c.data, c.seed)
        dist_.barrier()
    for flag, folder in (('--data', c.data), ('--target-data', c.target_data)):
        if folder is not None and not os.path.isdir(folder):
            raise L.DataError(f'{folder}: {flag} folder not found')
    c.data, c.target_data = (p and os.path.abspath(p) for p in (c.data, c.target_data))
    recipe = os.path.join(c.data, RECIPE)          # a synthetic source can be written again
    c.synthetic = json.load(open(recipe)) if os.path.isfile(recipe) else None
    check_out(c)
    _, ip_s, mp_s = L.check_split(c.data, 'train')
    if mp_s is None:
        mdir = os.path.join(c.data, 'TrainData', 'mask')
        raise L.DataError(f'{mdir}: folder not found (training needs masks)')
    _, ip_t, mp_t = L.check_split(c.target_data or c.data, c.target)
    stats = band_statistics(c, {'train': ip_s, c.target: ip_t}, rank)
    if rank == 0:
        start_run_folder(c, stats)
    dist_.barrier()
    if dev is None:
        cuda = c.device == 'cuda' or (c.device == 'auto' and torch.cuda.is_available())
        dev = torch.device('cuda' if cuda else 'cpu')
    if dev.type == 'cpu':
        torch.use_deterministic_algorithms(True)
    if rank == 0:
        where = f'{world} processes; ' if world > 1 else ''
        print(f'{where}loading {len(ip_s)} source and {len(ip_t)} target patches onto {dev}')
    D = load_data(c, ip_s, mp_s, ip_t, mp_t, stats, dev)
    return D, dict(files=[L.mask_name(p) for p in ip_t], dev=dev, stats=stats,
                   source_share=float(D['ys'].float().mean()))   # landslide share of the source


def band_statistics(c, paths, rank):
    """Per-band statistics of each split (separated normalization), reused from
    <out>/stats.json when they cover the same number of patches. paths: {split: image paths}."""
    spath = os.path.join(c.out, 'stats.json')
    stats = json.load(open(spath)) if os.path.exists(spath) and not c.force else {}
    for split, ps in paths.items():
        name = L.SPLITS[split]
        if stats.get(split, {}).get('n') != len(ps):
            if rank == 0:
                print(f'band statistics of {name} ({len(ps)} patches)...')
            stats[split] = L.band_stats(ps)
        if stats[split]['nonfinite'] and rank == 0:
            print(f"warning: {name} holds {stats[split]['nonfinite']} NaN/Inf values; each is "
                  f"filled with its band's mean over the split, and a target pixel that holds "
                  f"one is never pseudo-labelled")
    return stats


def start_run_folder(c, stats):
    """Create --out (with --force, first remove this program's earlier outputs), sweep what an
    interrupted run left half-written, and record the statistics and the command's settings."""
    if c.force and os.path.isdir(c.out):
        for f in os.listdir(c.out):
            if f.startswith('round') or f in ('metrics.json', 'submission.zip', 'config.json',
                                              'report.md'):
                p = os.path.join(c.out, f)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(c.out, exist_ok=True)
    rounds = [os.path.join(c.out, f) for f in os.listdir(c.out) if re.fullmatch(r'round\d+', f)]
    for d in [c.out] + rounds:
        L.sweep(d)
    L.write_json(os.path.join(c.out, 'stats.json'), stats)
    L.write_json(os.path.join(c.out, 'config.json'), vars(c))


def load_data(c, ip_s, mp_s, ip_t, mp_t, stats, dev):
    """Source and target, each normalized with its own statistics (the source's for both with
    --no-separate-norm), resident on the device, and the source hold-out.
    -> dict xs, ys, xt, yt (None without target masks), vt (bool [N_t, 128, 128], the target
    pixels finite in every band; None when all are), train_idx, xh, yh"""
    t_stats = stats[c.target] if c.separate_norm else stats['train']
    perm = torch.randperm(len(ip_s), generator=torch.Generator().manual_seed(c.seed))
    n_hold = int(round(c.holdout * len(ip_s)))
    xt, vt = L.load_images(ip_t, t_stats, with_seen=True)
    D = dict(xs=L.load_images(ip_s, stats['train']).to(dev), ys=L.load_masks(mp_s).to(dev),
             xt=xt.to(dev), yt=L.load_masks(mp_t), vt=None if vt.all() else vt,
             train_idx=perm[n_hold:].sort().values, xh=None, yh=None)
    if n_hold:                                        # the source hold-out, sliced out once
        hold = perm[:n_hold].sort().values.to(dev)
        D['xh'], D['yh'] = D['xs'][hold], D['ys'][hold].cpu()
    return D


