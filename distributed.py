"""Data-parallel training under torchrun: the few pieces refine.py needs, and nothing when it runs
as a single process (then every function here is a no-op or returns the obvious).

    torchrun --nproc_per_node 4 refine.py --data L4S --rounds 3      # 4 GPUs (NCCL), or CPUs (gloo)

Each process holds the whole dataset resident, draws the same global batch indices from a
shared seed and trains on its own slice of them; DistributedDataParallel averages the gradients,
so `--batch-size` is the global batch and the learning-rate schedule is the single-process one.
Rank 0 alone evaluates, writes files and makes pseudo-labels, which it broadcasts.
"""
import hashlib
import os

import torch
import torch.distributed as dist


def setup(device):
    """Join the process group when started by torchrun. device: 'auto' | 'cpu' | 'cuda'.
    -> (rank, world size, torch.device or None to let the caller choose)"""
    world = int(os.environ.get('WORLD_SIZE', 1))
    if world == 1:
        return 0, 1, None
    cuda = device == 'cuda' or (device == 'auto' and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group('nccl' if cuda else 'gloo')
    local = int(os.environ.get('LOCAL_RANK', 0))
    if cuda:
        torch.cuda.set_device(local)
    return dist.get_rank(), world, torch.device(f'cuda:{local}' if cuda else 'cpu')


def active():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if active() else 0


def world():
    return dist.get_world_size() if active() else 1


def barrier():
    if active():
        dist.barrier()


def wrap(model, dev):
    """The model as DistributedDataParallel when there are several processes."""
    if not active():
        return model
    ids = [dev] if dev.type == 'cuda' else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def broadcast(t):
    """Rank 0's tensor on every rank (in place). t: any tensor on the process's device."""
    if active():
        dist.broadcast(t, 0)
    return t


def identical_weights(model):
    """True when every process holds bit-identical parameters and buffers. BatchNorm's running
    statistics last came from each process's own slice, so rank 0's are taken first (as
    DistributedDataParallel does before every forward pass)."""
    if not active():
        return True
    for b in model.buffers():
        dist.broadcast(b.data, 0)
    h = hashlib.sha256()
    for v in model.state_dict().values():
        h.update(v.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    digests = [None] * world()
    dist.all_gather_object(digests, h.hexdigest())
    return len(set(digests)) == 1


def check_identical(model, what, log):
    """After training under torchrun: raise unless every process ends with the same weights
    (what names the training in the message); log that they do."""
    if not active():
        return
    if not identical_weights(model):
        raise RuntimeError(f'{what}: the processes ended training with different weights')
    log(f'{what} weights identical on all {world()} processes')


def share(t, shape, dev):
    """Rank 0's uint8 tensor t on every process, on dev; the others pass None and say its
    shape. -> tensor"""
    if t is None:
        t = torch.empty(shape, dtype=torch.uint8)
    return broadcast(t.to(dev))


def finish():
    if active():
        dist.barrier()
        dist.destroy_process_group()
