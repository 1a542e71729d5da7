"""Speed and memory figures, printed (targets live here, not in timed tests): training
throughput the project's way against the plain way, the batched Lovász hinge, data loading and
ensemble inference, on whatever machine runs it. docs/speed.md holds the figures.

    python -m bench.speed [--width 8] [--repeats 3]

bench/gpu.py times the GPU path with the helpers here; bench/scenes.py maps whole scenes.
"""
import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import landslide as L
import refine
from losses import lovasz_grad, lovasz_hinge, segmentation_loss
from models import MODELS, build_model
from synthetic import landscape

# ----------------------------------------------------------------------------- training, inference
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
        kh, kw = m.kernel_size
        total[0] += 2 * m.in_channels // m.groups * kh * kw * out.numel()
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
            mean, std = np.asarray(stats['mean'], np.float32), np.asarray(stats['std'], np.float32)
            x = (L.read_image(paths[i]) - mean) / std
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
    trained = (2 * labels - 1) * 3.0 + noise
    for what, logits in (('random logits', noise), ('trained-like logits', trained)):
        logits, lab = logits.to(dev).requires_grad_(), labels.to(dev)
        a, b = lovasz_hinge(logits, lab).item(), lovasz_loop(logits, lab).item()
        assert abs(a - b) <= 1e-5 * abs(b), (a, b)
        t_ours = median_time(lambda: lovasz_hinge(logits, lab).backward(), dev, repeats)
        t_loop = median_time(lambda: lovasz_loop(logits, lab).backward(), dev, repeats)
        rows.append((what, t_ours, t_loop, a, b))
    return rows


def speed(args):
    """Training throughput the project's way and the plain way, the Lovász hinge, data loading
    and ensemble inference, printed as tables."""
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    width = args.width or (64 if dev.type == 'cuda' else 8)
    name = torch.cuda.get_device_name() if dev.type == 'cuda' else f'CPU, {os.cpu_count()} cores'
    print(f'device: {name}; torch {torch.__version__}; width {width}; batch 16; '
          f'median of {args.repeats}')
    tmp = tempfile.mkdtemp(prefix='landslide-bench-')
    landscape.synth(tmp, train=64, valid=0, test=0, seed=0)
    _, paths, mpaths = L.list_split(tmp, 'train')
    stats = L.band_stats(paths)
    training_table(dev, width, (paths, mpaths, stats), args.repeats)

    print('\n## Lovász hinge, forward + backward, 16 x 512 x 512')
    for what, t_ours, t_loop, a, b in lovasz_timing(dev, args.repeats):
        print(f'{what}: batched {1e3 * t_ours:.0f} ms, per-image loop {1e3 * t_loop:.0f} ms: '
              f'{t_loop / t_ours:.1f}x (values {a:.6f} vs {b:.6f})')

    print('\n## Data')
    g = torch.Generator().manual_seed(0)
    t_cold = median_time(lambda: L.load_images(paths, stats), torch.device('cpu'), args.repeats)
    X = L.load_images(paths, stats).to(dev)

    def draw():
        return X[torch.randint(len(X), (16,), generator=g).to(dev)].float()
    t_hot = median_time(draw, dev, args.repeats)
    print(f'read from HDF5 + normalize: {len(paths) / t_cold:.0f} patches/s; '
          f'from the resident float16 tensor: {16 / t_hot:.0f} patches/s')

    print('\n## Ensemble inference (3 models)')
    ms = [build_model(n, width).to(dev, memory_format=torch.channels_last) for n in MODELS]
    for scale in (1, 4):
        c = argparse.Namespace(batch_size=16, scale=scale)
        t = median_time(lambda: refine.predict(ms, X[:32], c, dev), dev, args.repeats)
        print(f'scale {scale}: {32 / t:.1f} patches/s')
    shutil.rmtree(tmp)


def training_table(dev, width, data, repeats):
    """Images/s and peak memory per network, ours vs plain, at 128² and 512², each measured in
    a fresh process."""
    import multiprocessing as mp
    print('\n## Training throughput, images/s (peak memory GiB); plain = the same network '
          'trained the plain way: fp32, NCHW, each sample read from HDF5, normalized and '
          'resized on the CPU')
    print('| model | 128² ours | 128² plain | 512² ours | 512² plain | speed-up at 512² |')
    print('|---|---|---|---|---|---|')
    ctx = mp.get_context('spawn')
    for model in MODELS:
        cells, rates = [], {}
        for scale in (1, 4):
            for plain in (False, True):
                job = (model, width, scale, dev.type, plain, *data, repeats, False)
                with ctx.Pool(1) as pool:
                    r, mem = pool.apply(measure_training, (job,))
                rates[scale, plain] = r
                cells.append(f'{r:.2f} ({mem:.2f})')
        up = rates[4, False] / rates[4, True]
        print(f'| {model} | ' + ' | '.join(cells) + f' | {up:.1f}x |', flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--width', type=int, default=None,
                    help='network width (default: 8 on CPU, 64 on CUDA)')
    ap.add_argument('--repeats', type=int, default=3)
    speed(ap.parse_args(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
