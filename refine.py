"""Progressive label refinement (paper §2.3 and Fig. 3): the training loop and the command line.

round 0     train each network on the labelled source (TrainData), keep each one's best
            checkpoint on a held-out part of the source labels, average the networks'
            probabilities on the target images (predicted with the target's own BatchNorm
            statistics, AdaBN), pseudo-label them (pseudo.py: class-balanced labels grown over
            each predicted landslide, up to the source labels' landslide share)
round 1..R  continue training the networks on source labels plus pseudo-labelled target images
            (each domain its own normalization; target at most half a batch), new pseudo-labels, ...
The last round's masks (probability >= 0.5) are the submission. The paper's literal loop
(threshold 0.7, each round from scratch, no AdaBN, pooled by count) is --paper-rule;
README's table "paper vs this default" says why the default differs.

    python refine.py --demo                                      # synthetic data, CPU-sized
    python refine.py --data ./data --rounds 3 --out runs/paper   # the recipe (GPU)
    torchrun --nproc_per_node 4 refine.py --data ./data --out runs/paper   # data-parallel, 4 GPUs
"""
import argparse
import contextlib
import copy
import functools
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

import distributed as dist_
import landslide as L
import pseudo
import rundir
from losses import segmentation_loss
from models import MODELS, build_model
from report import write_report

# ----------------------------------------------------------------------------- defaults
DEFAULTS = dict(
    data=None, out=None, target='test', target_data=None,   # target: a split of --data
    rounds=3,                                         # baseline round 0 + 3 refinement rounds
    models='unet,resunet,attunet', width=64,          # the three-network ensemble
    scale=4, batch_size=16, epochs=20, steps=0,       # 128 -> 512; steps 0: use epochs
    lr=1e-3, weight_decay=1e-4, colour=0.1,           # AdamW, poly decay; colour perturbation
    holes=0.0, shade=0.0,                             # --sky: shares given a hole, a shade
    loss='lovasz+ohem', w_lovasz=1.0, w_ohem=1.0, ohem_thresh=0.7, ohem_min_kept=100_000,
    pseudo='guarded', portion=0.2, portion_step=0.1,  # pseudo-label rule (pseudo.py)
    threshold=0.7, ignore_uncertain=True,             # the threshold rule's settings (paper: 0.7)
    warm_start=True, adabn=True, control=False, target_cap=0.5,   # --paper-rule: the paper's loop
    holdout=0.1, evals=10, separate_norm=True, device='auto', seed=0, log_every=10.0)
# --demo: CPU-sized settings and, without --data, a small synthetic dataset (flags given win)
DEMO = dict(width=8, scale=1, batch_size=8, steps=100, lr=3e-3, rounds=2, evals=3,
            ohem_min_kept=4096)
DEMO_DATA = dict(train=160, valid=0, test=60, shift=1.0, world='v1')   # as README measured it
# --paper-rule: the paper's literal refinement: threshold 0.7, every round from scratch, the
# target predicted with the networks' own BatchNorm statistics, batches pooled by count
PAPER = dict(pseudo='threshold', warm_start=False, adabn=False, target_cap=1.0)
# --loss ce: plain binary cross-entropy (OHEM that keeps every pixel, no Lovász hinge)
CE = dict(w_lovasz=0.0, ohem_thresh=1.0)


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
    a('--target-data', help='the Landslide4Sense root that holds the --target split [default: '
      '--data]; e.g. patches of your own imagery (python -m mapping patches)')
    a('--rounds', type=int, help='refinement rounds after the baseline round 0')
    a('--models', help=f"comma-separated networks from {', '.join(MODELS)}")
    a('--width', type=int, help='base width of every network')
    a('--scale', type=int, help='scale promotion factor: 128 -> 128*scale before the network')
    a('--batch-size', type=int)
    a('--epochs', type=int, help="training length per network and round, in passes over its data")
    a('--steps', type=int, help='training steps per network and round; overrides --epochs if > 0')
    a('--lr', type=float, help='AdamW peak learning rate (poly decay to 0)')
    a('--loss', choices=['lovasz+ohem', 'ce'], help='Lovász hinge + OHEM, or plain cross-entropy')
    a('--pseudo', choices=pseudo.RULES,
      help="pseudo-label rule: grown up to the source's landslide share (guarded), class-balanced "
      "(CBST), grown without a ceiling, the paper's threshold, or none (an ablation)")
    a('--portion', type=float, help='balanced/grow/guarded: share of each class kept in round 0')
    a('--sky', type=float, nargs=2, metavar=('HOLES', 'SHADE'), help='shares of training patches '
      'given a not-analysed blob filled as mapping fills a cloud (labels ignored), and a smooth '
      'region darker or brighter in every spectral band, as under a faint shadow (labels kept) '
      '[default: 0 0]')
    a('--ignore-uncertain', action=argparse.BooleanOptionalAction,
      help='threshold rule: probability between 1-threshold and threshold is ignored')
    a('--warm-start', action=argparse.BooleanOptionalAction,
      help='rounds >= 1 continue each network from its previous-round weights')
    a('--control', action='store_true', default=None,
      help='rounds >= 1 train on source labels only (the same extra training, no pseudo-labels)')
    a('--adabn', action=argparse.BooleanOptionalAction,
      help='predict the target with BatchNorm statistics estimated on the target (AdaBN)')
    a('--target-cap', type=float, help='target patches fill batches by count, up to this share')
    a('--holdout', type=float, help='share of source patches held out for model selection')
    a('--no-separate-norm', dest='separate_norm', action='store_false', default=None,
      help='normalize every domain with the source statistics (ablation)')
    a('--device', choices=['auto', 'cpu', 'cuda'])
    a('--seed', type=int)
    a('--paper-rule', action='store_true', help="the paper's literal loop: threshold rule, each "
      'round from scratch, no AdaBN, pooled by count (flags given still win)')
    a('--demo', action='store_true', help='CPU-sized settings; without --data, a small '
      'synthetic dataset under --out')
    a('--force', action='store_true', help='start over in an --out made by a different command')
    given = {k: v for k, v in vars(ap.parse_args(argv)).items() if v is not None}
    given |= dict(zip(('holes', 'shade'), given.pop('sky', ())))
    cfg = dict(DEFAULTS)
    cfg |= DEMO if given.get('demo') else {}
    cfg |= PAPER if given.get('paper_rule') else {}
    cfg |= given
    cfg |= CE if cfg['loss'] == 'ce' else {}
    for flag in ('demo', 'force', 'paper_rule'):
        cfg.setdefault(flag, False)
    return argparse.Namespace(**cfg)


def check_args(c):
    """Refuse nonsensical flags with one line. -> list of model names"""
    names = [m for m in c.models.split(',') if m]
    bad = [m for m in names if m not in MODELS]
    problems = [
        (c.rounds < 0, f'--rounds must be >= 0, got {c.rounds}'),
        (not (0 <= c.holes <= 1 and 0 <= c.shade <= 1),
         f'--sky shares must be in [0, 1], got {c.holes:g} {c.shade:g}'),
        (not 0 < c.portion <= 1, f'--portion must be in (0, 1], got {c.portion}'),
        (c.scale < 1, f'--scale must be a positive integer, got {c.scale}'),
        (c.width < 1 or c.batch_size < 2, '--width must be >= 1 and --batch-size >= 2'),
        (c.steps < 0 or c.epochs < 1 or c.evals < 1,
         '--steps must be >= 0 and --epochs >= 1'),
        (not c.lr > 0, f'--lr must be positive, got {c.lr}'),
        (not 0 <= c.holdout < 1, f'--holdout must be in [0, 1), got {c.holdout}'),
        (not 0 <= c.target_cap <= 1, f'--target-cap must be in [0, 1], got {c.target_cap}'),
        (bool(bad), f"unknown model {', '.join(bad)} (choose from {', '.join(MODELS)})"),
        (not names, '--models names no network'),
        (c.device == 'cuda' and not torch.cuda.is_available(),
         '--device cuda but no CUDA device is available'),
        (c.data is None and not c.demo, '--data is required (or --demo)')]
    for is_bad, msg in problems:
        if is_bad:
            raise L.DataError(msg)
    return names


# ----------------------------------------------------------------------------- training

def sample_batch(D, labels, c, g, dev, g_aug=None):
    """One augmented, scale-promoted training batch drawn from source (labels) and, after
    round 0, target (its pseudo-labels, `labels`, uint8 [N_t, 128, 128] or None). Under torchrun
    every process draws the same global batch (g is seeded alike) and keeps its own slice;
    g_aug, its own, then augments it.
    -> x [B / processes, 14, 128s, 128s] float, y [B / processes, 128s, 128s] uint8"""
    n_s, n_t = len(D['train_idx']), (0 if labels is None else len(labels))
    if n_t == 0 or c.control:                         # the control never sees the target
        frac = 0.0
    else:                                             # by count, at most --target-cap
        frac = min(n_t / (n_s + n_t), c.target_cap)
    b = c.batch_size // dist_.world()
    mine = slice(dist_.rank() * b, (dist_.rank() + 1) * b)
    is_t = (torch.rand(c.batch_size, generator=g) < frac)[mine]
    i_s = D['train_idx'][torch.randint(n_s, (c.batch_size,), generator=g)][mine][~is_t]
    i_t = torch.randint(max(n_t, 1), (c.batch_size,), generator=g)[mine][is_t]
    x = torch.cat([D['xs'][i_s.to(dev)], D['xt'][i_t.to(dev)]]).float()
    y = torch.cat([D['ys'][i_s.to(dev)], labels[i_t.to(dev)] if n_t else D['ys'][:0]])
    g_aug = g if g_aug is None else g_aug
    x, y = L.augment(x, y, g_aug, c.colour)
    x = L.shade(x, g_aug, c.shade)                    # each a no-op at share 0 (no draws)
    x, y = L.holes(x, y, g_aug, c.holes)
    x, y = L.promote(x, c.scale, y)
    return x.contiguous(memory_format=torch.channels_last), y


def train_one(name, k, rnd, D, labels, c, dev, log, init=None):
    """Train network `name` for one round, from scratch or from the weights `init`; keep the
    weights with the best held-out F1 (the source hold-out: target labels are never looked at).
    labels: the target's pseudo-labels (None in round 0). -> (model, best F1 or None)"""
    seed = c.seed * 1000 + rnd * 10 + k                # same (round, model) -> same result
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    g_aug = None                                      # under torchrun each process augments its own
    if dist_.world() > 1:
        g_aug = torch.Generator().manual_seed(seed * 100 + dist_.rank() + 1)
    model = build_model(name, c.width)
    if init is not None:
        model.load_state_dict(init)
    model = model.to(dev, memory_format=torch.channels_last)
    fwd = dist_.wrap(model, dev)                      # DistributedDataParallel under torchrun
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    n_pool = len(D['train_idx']) + (0 if labels is None else len(labels))
    steps = c.steps or c.epochs * math.ceil(n_pool / c.batch_size)
    warm = max(1, steps // 20)                        # linear warm-up, then poly decay
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, (1 - s / steps) ** 0.9))
    evals = {round(steps * (i + 1) / c.evals) for i in range(c.evals)}
    best, best_state, t0, last = None, None, time.time(), time.time()
    for step in range(1, steps + 1):
        model.train()
        x, y = sample_batch(D, labels, c, g, dev, g_aug)
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
                best = f1
                best_state = {n: v.detach().clone() for n, v in model.state_dict().items()}
    dist_.check_identical(model, f'round {rnd}  {name:8s}', log)
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

    def back(p):                                      # [n, 1, 128s, 128s] -> [n, 128, 128]
        return (F.avg_pool2d(p, c.scale) if c.scale > 1 else p)[:, 0].cpu()
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
    predicted; the weights are unchanged. batches: an iterable of [n, 14, 128, 128], or of
    ([n, 14, 128, 128], valid bool [n, 128, 128]) for tiles partly under a cloud, whose
    statistics are then taken where they could see (masked_batchnorm). Read once; with no image
    at all the networks are returned as they are. -> list of networks"""
    out = [copy.deepcopy(m).train() for m in models]
    for m in out:
        for b in m.modules():
            if isinstance(b, torch.nn.modules.batchnorm._BatchNorm):
                b.reset_running_stats()
                b.momentum = None                     # a plain average over all batches
    seen = 0
    for X in batches:
        X, valid = X if isinstance(X, tuple) else (X, None)
        seen += len(X)
        for at, x in network_inputs(X, c, dev):
            for m in out:
                if valid is None:
                    m(x)
                else:
                    with masked_batchnorm(m, valid[at, None].to(dev).float()):
                        m(x)
    return [m.eval() for m in out] if seen else models


@contextlib.contextmanager
def masked_batchnorm(model, valid):
    """Within it, each BatchNorm layer of model (in training mode) normalizes with, and adds to
    its running averages, the statistics of the positions that could see, valid [n, 1, h, w]
    resized to the layer's own size (a cell counts when all of it could see), each batch one
    step of the same cumulative average as momentum=None."""
    def forward(b, x):
        w = (F.adaptive_avg_pool2d(valid, x.shape[-2:]) > 0.999).to(x.dtype)     # [n, 1, h, w]
        n = w.sum()
        if n < 2:                                  # nothing seen at this size: the batch adds none
            return F.batch_norm(x, b.running_mean, b.running_var, b.weight, b.bias, False, 0.0,
                                b.eps)
        mean = (x * w).sum((0, 2, 3)) / n
        var = ((x - mean[:, None, None]) ** 2 * w).sum((0, 2, 3)) / n
        b.num_batches_tracked += 1
        f = 1.0 / b.num_batches_tracked.item()
        b.running_mean.mul_(1 - f).add_(f * mean)
        b.running_var.mul_(1 - f).add_(f * var * n / (n - 1))
        return F.batch_norm(x, mean, var, b.weight, b.bias, False, 0.0, b.eps)
    layers = [b for b in model.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    for b in layers:
        b.forward = functools.partial(forward, b)
    try:
        yield
    finally:
        for b in layers:
            del b.forward


# ----------------------------------------------------------------------------- the loop (Fig. 3)

def run(c, make_demo_data=None):
    """Round 0 on the source; then each round adds the target with the last round's
    pseudo-labels. -> metrics (also in <out>/metrics.json)"""
    names = check_args(c)
    D, info = rundir.prepare(c, make_demo_data)
    info['names'] = names
    nonfinite = {k: v['nonfinite'] for k, v in info['stats'].items()}
    metrics = {'target': L.SPLITS[c.target], 'nonfinite': nonfinite,
               'source_share': info['source_share'], 'rounds': []}
    labels, prev = None, None                         # the target's pseudo-labels: none yet
    for rnd in range(c.rounds + 1):
        models, f1s = train_round(rnd, D, labels, c, info, log)
        new = None
        if dist_.rank() == 0:                         # score, pseudo-label, write the round
            entry, new = finish_round(rnd, models, f1s, D, c, info, prev, log)
            metrics['rounds'].append(entry)
            L.write_json(os.path.join(c.out, 'metrics.json'), metrics)
            write_report(c.out, c.target_data or c.data, c.target, rnd)
        labels, prev = dist_.share(new, (len(D['xt']), L.SIZE, L.SIZE), info['dev']), new
    if dist_.rank() == 0:
        finish_run(metrics, c, info)
    return metrics


def train_round(rnd, D, labels, c, info, log):
    """Every network of the ensemble for round rnd: loaded if an interrupted run finished it,
    else trained (from its previous-round weights with --warm-start) and saved.
    -> (networks, {name: held-out F1})"""
    rdir, dev = os.path.join(c.out, f'round{rnd}'), info['dev']
    os.makedirs(rdir, exist_ok=True)
    models, f1s = [], {}
    for k, name in enumerate(info['names']):
        path = os.path.join(rdir, f'{name}.pt')
        if os.path.exists(path):
            model, f1 = rundir.load_model(path, dev)
            log(f'round {rnd}  {name:8s} finished earlier: loaded {path}')
        else:
            init = None
            if c.warm_start and rnd > 0:
                prev = os.path.join(c.out, f'round{rnd - 1}', f'{name}.pt')
                init = torch.load(prev, map_location='cpu', weights_only=True)['state_dict']
            model, f1 = train_one(name, k, rnd, D, labels, c, dev, log, init)
            if dist_.rank() == 0:
                rundir.save_model(path, model, name, c, f1)
            dist_.barrier()
            if dist_.rank() != 0:                     # every process continues from rank 0's
                model, f1 = rundir.load_model(path, dev)
        models.append(model)
        f1s[name] = f1
    return models, f1s


def finish_round(rnd, models, f1s, D, c, info, prev, log):
    """Score the ensemble, predict the target, make pseudo-labels and write the round's masks.
    -> (metrics entry, pseudo-labels uint8 [N, 128, 128])"""
    dev, src_share = info['dev'], info['source_share']
    entry = {'round': rnd, 'models': {n: {'holdout_f1': f} for n, f in f1s.items()},
             'holdout': holdout_scores(models, D, c, dev)}
    seen = D['vt']                                    # None: every target pixel has data
    if c.adabn:
        models = adapt_bn(models, [D['xt'] if seen is None else (D['xt'], seen)], c, dev)
    prob, own = predict(models, D['xt'], c, dev, each=True)
    new, note = pseudo.make(prob, rnd, c, src_share, seen)
    masks = (prob >= 0.5).to(torch.uint8)
    entry['target'] = L.scores(*L.confusion(masks, D['yt'])) if D['yt'] is not None else None
    entry['pseudo'] = pseudo.signs(new, prev, prob, own, src_share, D['yt'])
    entry['pseudo']['ceiling'] = note is not None
    warnings = [note] if note else []
    warnings += pseudo.label_free_warnings(entry['pseudo'], src_share, c.pseudo)
    for w in warnings:
        log(f'warning: round {rnd} {w}')
    rdir = os.path.join(c.out, f'round{rnd}')
    L.write_masks(os.path.join(rdir, 'pseudo'), info['files'], new.numpy())
    L.write_masks(os.path.join(rdir, 'masks'), info['files'], masks.numpy())
    return entry, new


def finish_run(metrics, c, info):
    """The submission zip of the last round's masks, and the table."""
    zpath = os.path.join(c.out, 'submission.zip')
    L.write_zip(zpath, os.path.join(c.out, f'round{c.rounds}', 'masks'))
    print_table(metrics, info['names'])
    print(f"submission: {zpath}  ({len(info['files'])} masks); "
          f"report: {os.path.join(c.out, 'report.md')}")


def log(line):
    """A progress line, printed by the first process only."""
    if dist_.rank() == 0:
        print(line, flush=True)


def print_table(metrics, names):
    def pct(v):
        return '   -  ' if v is None else f'{100 * v:6.2f}'
    print('\nround | ' + ' '.join(f'{n[:7]:>7s}' for n in names) +
          ' | held-out F1 | target F1 | pseudo+ % | changed % | agree %')
    for e in metrics['rounds']:
        held = e['holdout'] and e['holdout']['f1']
        target = e['target'] and e['target']['f1']
        nets = ' '.join(f"{pct(e['models'][n]['holdout_f1']):>7s}" for n in names)
        print(f"{e['round']:5d} | {nets} | {pct(held):>11s} | {pct(target):>9s}"
              f" | {pct(e['pseudo']['positive']):>9s} | {pct(e['pseudo']['changed']):>9s}"
              f" | {pct(e['pseudo']['agreement']):>7s}")


def demo_data(folder, seed):
    """--demo without --data: a small synthetic dataset, from the synthetic world (synthetic/),
    which the method never imports: this is its one call, at the command line's edge."""
    from synthetic import landscape
    landscape.synth(folder, **DEMO_DATA, seed=seed)


def main(argv=None):
    c = parse_args(argv)
    try:
        run(c, demo_data)
    except L.DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    finally:
        dist_.finish()
    return 0


if __name__ == '__main__':
    sys.exit(main())
