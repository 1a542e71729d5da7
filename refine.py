"""Progressive label refinement (paper §2.3 and Fig. 3), the training loop and the command line.

round 0     train each network on the labelled source (TrainData), keep each one's best
            checkpoint on a held-out part of the source labels, average the networks'
            probabilities on the target images (predicted with the target's own BatchNorm
            statistics, AdaBN), pseudo-label them (pseudo.py: class-balanced labels grown over
            each predicted landslide, up to the source labels' landslide share)
round 1..R  continue training the networks on source labels plus pseudo-labelled target images
            (each domain its own normalization; target at most half a batch), new pseudo-labels, ...
The last round's masks (probability >= 0.5) are the submission. The paper's literal loop
(threshold 0.7, each round from scratch, no AdaBN, pooled by count) is --paper-rule; README
says why the default differs, with the evidence.

    python refine.py --demo                               # synthetic data, CPU-sized, < 5 min
    python refine.py --data ./data --rounds 3 --out runs/paper   # the recipe (GPU)
    torchrun --nproc_per_node 4 refine.py --data ./data --out runs/paper   # data-parallel, 4 GPUs
"""
import argparse
import copy
import json
import math
import os
import re
import shutil
import sys
import time

import torch
import torch.nn.functional as F

import distributed as dist_
import landslide as L
import pseudo
import synthetic
from losses import segmentation_loss
from models import MODELS, build_model
from report import write_report

# ----------------------------------------------------------------------------- defaults
DEFAULTS = dict(
    data=None, out=None, target='test', rounds=3,     # baseline round 0 + 3 refinement rounds
    models='unet,resunet,attunet', width=64,          # the three-network ensemble
    scale=4, batch_size=16, epochs=20, steps=0,       # 128 -> 512; steps 0: use epochs
    lr=1e-3, weight_decay=1e-4, colour=0.1,
    w_lovasz=1.0, w_ohem=1.0, ohem_thresh=0.7, ohem_min_kept=100_000,
    threshold=0.7, ignore_uncertain=True, target_frac=None, target_cap=0.5,
    pseudo='guarded', portion=0.2, portion_step=0.1,     # pseudo-label rule (README: the rules)
    warm_start=True, adabn=True, agree=False, control=False,   # --paper-rule: the paper's loop
    holdout=0.1, evals=10, separate_norm=True, device='auto', seed=0, compile=False, log_every=5.0)
# --demo: a small synthetic dataset and CPU-sized settings (any flag given still wins)
DEMO = dict(width=8, scale=1, batch_size=8, steps=100, lr=3e-3, rounds=2, evals=3,
            ohem_min_kept=4096, log_every=10.0)
# --paper-rule: the paper's literal refinement: threshold 0.7, every round from scratch, the target
# predicted with the networks' own BatchNorm statistics, batches pooled by count (flags given win)
PAPER = dict(pseudo='threshold', warm_start=False, adabn=False, agree=False, target_cap=1.0)
DEMO_DATA = dict(train=160, valid=0, test=60, shift=1.0)
# flags that may change between runs in one --out without changing what is computed
RESUMABLE = ('out', 'rounds', 'device', 'compile', 'log_every', 'force', 'demo', 'paper_rule')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])

    def a(flag, **kw):                                # every default is shown from DEFAULTS
        key = kw.get('dest', flag.lstrip('-').replace('-', '_'))
        if DEFAULTS.get(key) is not None and kw.get('action') != 'store_false':
            kw['help'] = kw.get('help', '') + f' [default: {DEFAULTS[key]}]'
        ap.add_argument(flag, **kw)
    a('--data', help='Landslide4Sense root (holds TrainData/ and ValidData/ or TestData/)')
    a('--out', help='run folder (default runs/<timestamp>); rerun with the same --out to resume')
    a('--target', choices=['test', 'valid'], help='target split to pseudo-label and predict')
    a('--rounds', type=int, help='refinement rounds after the baseline round 0')
    a('--models', help=f"comma-separated networks from {', '.join(MODELS)}")
    a('--width', type=int, help='base width of every network')
    a('--scale', type=int, help='scale promotion factor: 128 -> 128*scale before the network')
    a('--batch-size', type=int)
    a('--epochs', type=int, help="training length per network and round, in passes over that round's data")
    a('--steps', type=int, help='training steps per network and round; overrides --epochs when > 0')
    a('--lr', type=float, help='AdamW peak learning rate (poly decay to 0)')
    a('--weight-decay', type=float)
    a('--colour', type=float, help='colour perturbation strength on bands 0-11')
    a('--w-lovasz', type=float, help='weight of the Lovász hinge')
    a('--w-ohem', type=float, help='weight of the OHEM cross-entropy')
    a('--ohem-thresh', type=float, help='OHEM keeps pixels whose true-class probability is below this')
    a('--ohem-min-kept', type=int, help='...but at least this many pixels per batch')
    a('--threshold', type=float, help='pseudo-label: target pixels with ensemble probability >= this are landslide')
    a('--ignore-uncertain', action=argparse.BooleanOptionalAction,
      help='pseudo-labels: probability between 1-threshold and threshold is ignored (else background)')
    a('--pseudo', choices=list(pseudo.RULES),
      help="pseudo-label rule: the paper's threshold, class-balanced (CBST), balanced with the source's landslide "
      "share as prior, balanced grown over each predicted landslide, grown up to the source's landslide share "
      "(guarded), or none (all ignored: an ablation)")
    a('--portion', type=float, help='balanced/prior/grow/guarded: share of each class kept in round 0')
    a('--portion-step', type=float, help='balanced/prior/grow/guarded: the share grows by this each round (at most 0.5)')
    a('--warm-start', action=argparse.BooleanOptionalAction,
      help='rounds >= 1 continue each network from its previous-round weights instead of from scratch')
    a('--control', action='store_true', default=None,
      help='rounds >= 1 train on source labels only (the same extra training, no pseudo-labels)')
    a('--adabn', action=argparse.BooleanOptionalAction,
      help='predict the target with BatchNorm statistics estimated on the target (AdaBN)')
    a('--agree', action=argparse.BooleanOptionalAction, help='pseudo-labels only where all networks agree')
    a('--target-frac', type=float, help='share of pseudo-labelled target patches per batch (default: by count)')
    a('--target-cap', type=float, help='...by count, but at most this share (1: pooled as the paper)')
    a('--holdout', type=float, help='share of source patches held out for model selection')
    a('--evals', type=int, help='held-out evaluations per training (the best one is kept)')
    a('--no-separate-norm', dest='separate_norm', action='store_false', default=None,
      help='normalize every domain with the source statistics (ablation)')
    a('--device', choices=['auto', 'cpu', 'cuda'])
    a('--seed', type=int)
    a('--compile', action='store_true', default=None, help='torch.compile the networks')
    a('--log-every', type=float, help='seconds between progress lines')
    a('--paper-rule', action='store_true', help="the paper's literal loop: threshold rule, each round from scratch, "
      'no AdaBN, no agreement filter, no --target-cap (flags given still win)')
    a('--demo', action='store_true', help='generate a small synthetic dataset under --out and run CPU-sized')
    a('--force', action='store_true', help='start over in an --out made by a different command')
    given = {k: v for k, v in vars(ap.parse_args(argv)).items() if v is not None}
    cfg = DEFAULTS | (DEMO if given.get('demo') else {}) | (PAPER if given.get('paper_rule') else {}) | given
    cfg.setdefault('demo', False), cfg.setdefault('force', False), cfg.setdefault('paper_rule', False)
    return argparse.Namespace(**cfg)


def check_args(c):
    """Refuse nonsensical flags with one line. -> list of model names"""
    names = [m for m in c.models.split(',') if m]
    bad = [m for m in names if m not in MODELS]
    problems = [
        (c.rounds < 0, f'--rounds must be >= 0, got {c.rounds}'),
        (not 0.5 < c.threshold < 1, f'--threshold must be in (0.5, 1), got {c.threshold}'),
        (not 0 < c.portion <= 1 or c.portion_step < 0, '--portion must be in (0, 1] and --portion-step >= 0'),
        (c.scale < 1, f'--scale must be a positive integer, got {c.scale}'),
        (c.width < 1 or c.batch_size < 2, '--width must be >= 1 and --batch-size >= 2'),
        (c.steps < 0 or c.epochs < 1 or c.evals < 1, '--steps must be >= 0, --epochs and --evals >= 1'),
        (not c.lr > 0, f'--lr must be positive, got {c.lr}'),
        (not 0 <= c.holdout < 1, f'--holdout must be in [0, 1), got {c.holdout}'),
        (not 0 <= (c.target_frac or 0) <= 1 or not 0 <= c.target_cap <= 1, '--target-frac/-cap must be in [0, 1]'),
        (bool(bad), f"unknown model {', '.join(bad)} (choose from {', '.join(MODELS)})"),
        (not names, '--models names no network'),
        (c.device == 'cuda' and not torch.cuda.is_available(), '--device cuda but no CUDA device is available'),
        (c.data is None and not c.demo, '--data is required (or --demo)')]
    for bad_, msg in problems:
        if bad_:
            raise L.DataError(msg)
    return names


def check_out(c):
    """--out must not lie inside --data and must be creatable; an --out made by another command
    is refused unless --force."""
    L.check_out_folder(c.out, [('--data', c.data)], 'run folder')
    cpath = os.path.join(c.out, 'config.json')
    if os.path.exists(cpath) and not c.force:
        old = json.load(open(cpath))
        diff = sorted(k for k in set(old) | set(vars(c)) if k not in RESUMABLE and old.get(k) != vars(c).get(k))
        if diff:
            raise L.DataError(f"{cpath}: this run folder was made by a different command (differs in: "
                              f"{', '.join('--' + k.replace('_', '-') for k in diff)}); use --force to start over")


# ----------------------------------------------------------------------------- training

def sample_batch(D, pseudo, c, g, dev, g_aug=None):
    """One augmented, scale-promoted training batch drawn from source (labels) and, after
    round 0, target (pseudo-labels). Under torchrun every process draws the same global batch
    (g is seeded alike) and keeps its own slice; g_aug, its own, then augments it.
    -> x [B / processes, 14, 128s, 128s] float, y [B / processes, 128s, 128s] uint8"""
    n_s, n_t = len(D['train_idx']), (0 if pseudo is None else len(pseudo))
    frac = 0.0 if n_t == 0 or c.control else \
        (c.target_frac if c.target_frac is not None else min(n_t / (n_s + n_t), c.target_cap))   # control: none
    b = c.batch_size // dist_.world()
    mine = slice(dist_.rank() * b, (dist_.rank() + 1) * b)
    is_t = (torch.rand(c.batch_size, generator=g) < frac)[mine]
    i_s = D['train_idx'][torch.randint(n_s, (c.batch_size,), generator=g)][mine][~is_t]
    i_t = torch.randint(max(n_t, 1), (c.batch_size,), generator=g)[mine][is_t]
    x = torch.cat([D['xs'][i_s.to(dev)], D['xt'][i_t.to(dev)]]).float()
    y = torch.cat([D['ys'][i_s.to(dev)], pseudo[i_t.to(dev)] if n_t else D['ys'][:0]])
    x, y = L.augment(x, y, g if g_aug is None else g_aug, c.colour)
    x, y = L.promote(x, c.scale, y)
    return x.contiguous(memory_format=torch.channels_last), y


def train_one(name, k, rnd, D, pseudo, c, dev, log, init=None):
    """Train network `name` for one round, from scratch or from the weights `init`; keep the
    weights with the best held-out F1 (the source hold-out: target labels are never looked at).
    -> (model, best F1 or None)"""
    seed = c.seed * 1000 + rnd * 10 + k                # same (round, model) -> same result
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    g_aug = None if dist_.world() == 1 else torch.Generator().manual_seed(seed * 100 + dist_.rank() + 1)
    model = build_model(name, c.width)
    if init is not None:
        model.load_state_dict(init)
    model = model.to(dev, memory_format=torch.channels_last)
    fwd = dist_.wrap(model, dev)                      # DistributedDataParallel under torchrun
    fwd = torch.compile(fwd) if c.compile else fwd
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    n_pool = len(D['train_idx']) + (0 if pseudo is None else len(pseudo))
    steps = c.steps or c.epochs * math.ceil(n_pool / c.batch_size)
    warm = max(1, steps // 20)                        # linear warm-up, then poly decay
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, (1 - s / steps) ** 0.9))
    evals = {round(steps * (i + 1) / c.evals) for i in range(c.evals)}
    best, best_state, t0, last = None, None, time.time(), time.time()
    for step in range(1, steps + 1):
        model.train()
        x, y = sample_batch(D, pseudo, c, g, dev, g_aug)
        with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == 'cuda'):
            logits = fwd(x)[:, 0]
        loss = segmentation_loss(logits, y, c.w_lovasz, c.w_ohem, c.ohem_thresh, c.ohem_min_kept)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if time.time() - last > c.log_every or step == steps:
            last, rate = time.time(), step * c.batch_size / (time.time() - t0)
            eta = (steps - step) * c.batch_size / rate
            log(f'round {rnd}  {name:8s} step {step:5d}/{steps}  loss {loss.item():.4f}  '
                f'{rate:6.1f} img/s  eta {int(eta // 60)}m{int(eta % 60):02d}s')
        if step in evals and D['yh'] is not None and dist_.rank() == 0:
            f1 = holdout_scores([model], D, c, dev)['f1']
            if best is None or f1 > best:
                best, best_state = f1, {k_: v.detach().clone() for k_, v in model.state_dict().items()}
    if dist_.world() > 1 and not dist_.identical_weights(model):
        raise RuntimeError(f'round {rnd} {name}: the processes ended training with different weights')
    if dist_.world() > 1:
        log(f'round {rnd}  {name:8s} weights identical on all {dist_.world()} processes')
    if best_state is not None:                        # no hold-out: keep the last weights
        model.load_state_dict(best_state)
    return model.eval(), best


def holdout_scores(models, D, c, dev):
    """Precision, recall, F1, IoU of the ensemble on the source hold-out (None without one)."""
    if D['yh'] is None:
        return None
    return L.scores(*L.confusion(predict(models, D['xh'], c, dev) >= 0.5, D['yh']))


@torch.no_grad()
def predict(models, X, c, dev, each=False):
    """Ensemble probability: the mean of the networks' sigmoids at 128*scale, area-averaged
    back to 128. X: [N, 14, 128, 128] -> float32 [N, 128, 128] on the CPU; with each=True also
    every network's own probability, [M, N, 128, 128]."""
    for m in models:
        m.eval()
    out = torch.empty(len(X), L.SIZE, L.SIZE)
    own = torch.empty(len(models), len(X), L.SIZE, L.SIZE) if each else None
    back = (lambda p: F.avg_pool2d(p, c.scale)[:, 0].cpu()) if c.scale > 1 else (lambda p: p[:, 0].cpu())
    for at, x in network_inputs(X, c, dev):
        with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == 'cuda'):
            ps = torch.stack([torch.sigmoid(m(x).float()) for m in models])
        out[at] = back(ps.mean(0))
        if each:
            for j, p in enumerate(ps):
                own[j, at] = back(p)
    return (out, own) if each else out


def network_inputs(X, c, dev):
    """X [N, 14, 128, 128] in batches of 2 x batch size, on the device, scale-promoted and
    channels-last, as the networks take them. Yields (slice of X, [n, 14, 128s, 128s])."""
    for i in range(0, len(X), 2 * c.batch_size):
        at = slice(i, i + 2 * c.batch_size)
        x, _ = L.promote(X[at].to(dev).float(), c.scale)
        yield at, x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def adapt_bn(models, batches, c, dev):
    """AdaBN (Li et al. 2016), the layer-wise cousin of separated normalization: copies of the
    networks whose BatchNorm statistics are re-estimated on the images of the domain about to be
    predicted; the weights are unchanged. batches: an iterable of [n, 14, 128, 128] (read once;
    with no image at all the networks are returned as they are). -> list of networks"""
    out = [copy.deepcopy(m).train() for m in models]
    for b in (b for m in out for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)):
        b.reset_running_stats()
        b.momentum = None                             # a plain average over all batches
    seen = 0
    for X in batches:
        seen += len(X)
        for _, x in network_inputs(X, c, dev):
            for m in out:
                m(x)
    return [m.eval() for m in out] if seen else models


# ----------------------------------------------------------------------------- the loop

def save_model(path, model, name, c, f1):
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    L.atomic_write(path, lambda t: torch.save(
        {'state_dict': state, 'config': {'name': name, 'width': c.width}, 'holdout_f1': f1}, t))


def load_model(path, dev):
    ck = torch.load(path, map_location='cpu', weights_only=True)
    model = build_model(ck['config']['name'], ck['config']['width'])
    model.load_state_dict(ck['state_dict'])
    return model.to(dev, memory_format=torch.channels_last).eval(), ck['holdout_f1']


def prepare(c):
    """Check everything, compute (or reuse) band statistics, then load. Under torchrun every
    process does the same, and rank 0 alone writes. -> (D, info)"""
    names = check_args(c)
    rank, world, dev = dist_.setup(c.device)
    say = print if rank == 0 else (lambda *a, **k: None)
    if c.batch_size % world:
        raise L.DataError(f'--batch-size {c.batch_size} is the global batch: it must divide among {world} processes')
    if c.out is None:
        c.out = os.path.join('runs', 'demo' if c.demo else time.strftime('%Y%m%d-%H%M%S'))
    if c.demo:
        c.data = c.data or os.path.join(c.out, 'data')
        if not os.path.isdir(c.data) and rank == 0:
            say(f'writing a synthetic dataset to {c.data}')
            synthetic.synth(c.data, **DEMO_DATA, seed=c.seed)
        dist_.barrier()
    if not os.path.isdir(c.data):
        raise L.DataError(f'{c.data}: --data folder not found')
    c.data = os.path.abspath(c.data)
    check_out(c)
    ids_s, ip_s, mp_s = L.check_split(c.data, 'train')
    if mp_s is None:
        raise L.DataError(f"{os.path.join(c.data, 'TrainData', 'mask')}: folder not found (training needs masks)")
    ids_t, ip_t, mp_t = L.check_split(c.data, c.target)
    spath = os.path.join(c.out, 'stats.json')
    stats = json.load(open(spath)) if os.path.exists(spath) and not c.force else {}
    for split, paths in (('train', ip_s), (c.target, ip_t)):
        if stats.get(split, {}).get('n') != len(paths):
            say(f'band statistics of {L.SPLITS[split]} ({len(paths)} patches)...')
            stats[split] = L.band_stats(paths)
        if stats[split]['nonfinite']:
            say(f"warning: {L.SPLITS[split]} holds {stats[split]['nonfinite']} NaN/Inf values; "
                  f"each is filled with its band's mean over the split")
    if rank == 0:
        if c.force and os.path.isdir(c.out):          # start over: remove this program's outputs only
            for f in os.listdir(c.out):
                if f.startswith('round') or f in ('metrics.json', 'submission.zip', 'config.json', 'report.md'):
                    p = os.path.join(c.out, f)
                    shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        os.makedirs(c.out, exist_ok=True)
        for d in [c.out] + [os.path.join(c.out, f) for f in os.listdir(c.out) if re.fullmatch(r'round\d+', f)]:
            L.sweep(d)
        L.write_json(spath, stats)
        L.write_json(os.path.join(c.out, 'config.json'), vars(c))
    dist_.barrier()
    dev = dev or torch.device('cuda' if c.device == 'cuda' or (c.device == 'auto' and torch.cuda.is_available())
                              else 'cpu')
    say(f'{world} processes; ' * (world > 1) + f'loading {len(ip_s)} source and {len(ip_t)} target patches onto {dev}')
    t_stats = stats[c.target] if c.separate_norm else stats['train']
    perm = torch.randperm(len(ids_s), generator=torch.Generator().manual_seed(c.seed))
    n_hold = int(round(c.holdout * len(ids_s)))
    D = dict(xs=L.load_images(ip_s, stats['train']).to(dev), ys=L.load_masks(mp_s).to(dev),
             xt=L.load_images(ip_t, t_stats).to(dev), yt=L.load_masks(mp_t),
             train_idx=perm[n_hold:].sort().values)
    hold = perm[:n_hold].sort().values                # the source hold-out, sliced out once
    D['xh'], D['yh'] = (D['xs'][hold.to(dev)], D['ys'][hold.to(dev)].cpu()) if n_hold else (None, None)
    return D, dict(names=names, files=[L.mask_name(p) for p in ip_t], dev=dev, stats=stats,
                   source_share=float(D['ys'].float().mean()))        # landslide share of the source labels


def finish_round(rnd, models, f1s, D, c, info, prev, log):
    """Score the ensemble, predict the target, make pseudo-labels and write the round's masks.
    -> (metrics entry, pseudo-labels uint8 [N, 128, 128])"""
    rdir = os.path.join(c.out, f'round{rnd}')
    entry = {'round': rnd, 'models': {n: {'holdout_f1': f} for n, f in f1s.items()}}
    entry['holdout'] = holdout_scores(models, D, c, dev := info['dev'])
    prob, own = predict(adapt_bn(models, [D['xt']], c, dev) if c.adabn else models, D['xt'], c, dev, each=True)
    src_share = info['source_share']
    new, note = pseudo.make(prob, own, rnd, c, src_share)
    masks = (prob >= 0.5).to(torch.uint8)
    entry['target'] = L.scores(*L.confusion(masks, D['yt'])) if D['yt'] is not None else None
    entry['pseudo'] = pseudo.signs(new, prev, prob, own, src_share, D['yt']) | {'ceiling': note is not None}
    for w in [note] * bool(note) + pseudo.label_free_warnings(entry['pseudo'], src_share, c.pseudo):
        log(f'warning: round {rnd} {w}')
    L.write_masks(os.path.join(rdir, 'pseudo'), info['files'], new.numpy())
    L.write_masks(os.path.join(rdir, 'masks'), info['files'], masks.numpy())
    return entry, new


def run(c):
    D, info = prepare(c)
    names, dev, main = info['names'], info['dev'], dist_.rank() == 0
    if dev.type == 'cpu':
        torch.use_deterministic_algorithms(True)
    log = (lambda s: print(s, flush=True)) if main else (lambda s: None)
    metrics = {'target': L.SPLITS[c.target], 'nonfinite': {k: v['nonfinite'] for k, v in info['stats'].items()},
               'source_share': info['source_share'], 'rounds': []}
    pseudo, prev = None, None
    for rnd in range(c.rounds + 1):
        rdir = os.path.join(c.out, f'round{rnd}')
        os.makedirs(rdir, exist_ok=True)
        models, f1s = [], {}
        for k, name in enumerate(names):
            path = os.path.join(rdir, f'{name}.pt')
            if os.path.exists(path):
                model, f1 = load_model(path, dev)
                log(f'round {rnd}  {name:8s} finished earlier: loaded {path}')
            else:
                prev_ck = os.path.join(c.out, f'round{rnd - 1}', f'{name}.pt')
                init = torch.load(prev_ck, map_location='cpu', weights_only=True)['state_dict'] \
                    if c.warm_start and rnd > 0 else None
                model, f1 = train_one(name, k, rnd, D, pseudo, c, dev, log, init)
                if main:
                    save_model(path, model, name, c, f1)
                dist_.barrier()
                if not main:                          # every process continues from rank 0's choice
                    model, f1 = load_model(path, dev)
            models.append(model)
            f1s[name] = f1
        if main:
            entry, new = finish_round(rnd, models, f1s, D, c, info, prev, log)
            metrics['rounds'].append(entry)
            L.write_json(os.path.join(c.out, 'metrics.json'), metrics)
            write_report(c.out, c.data, c.target, rnd)
        else:
            new = torch.empty(len(D['xt']), L.SIZE, L.SIZE, dtype=torch.uint8)
        pseudo, prev = dist_.broadcast(new.to(dev)), new
    if main:
        L.write_zip(os.path.join(c.out, 'submission.zip'), os.path.join(c.out, f'round{c.rounds}', 'masks'))
        print_table(metrics, names)
        print(f"submission: {os.path.join(c.out, 'submission.zip')}  ({len(info['files'])} masks); "
              f"report: {os.path.join(c.out, 'report.md')}")
    return metrics


def print_table(metrics, names):
    fmt = lambda v: '   -  ' if v is None else f'{100 * v:6.2f}'
    print('\nround | ' + ' '.join(f'{n[:7]:>7s}' for n in names) +
          ' | held-out F1 | target F1 | pseudo+ % | changed % | agree %')
    for e in metrics['rounds']:
        print(f"{e['round']:5d} | " + ' '.join(f"{fmt(e['models'][n]['holdout_f1']):>7s}" for n in names) +
              f" | {fmt(e['holdout'] and e['holdout']['f1']):>11s} | {fmt(e['target'] and e['target']['f1']):>9s}"
              f" | {fmt(e['pseudo']['positive']):>9s} | {fmt(e['pseudo']['changed']):>9s}"
              f" | {fmt(e['pseudo']['agreement']):>7s}")


def main(argv=None):
    c = parse_args(argv)
    try:
        run(c)
    except L.DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    finally:
        dist_.finish()
    return 0


if __name__ == '__main__':
    sys.exit(main())
