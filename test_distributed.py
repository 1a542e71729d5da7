"""Data-parallel training under torchrun, on the CPU with 2 gloo processes: the run completes,
writes what a single-process run writes, every process ends each training with the same
weights, and a run killed mid-way resumes to the same files.

    python -m pytest -q test_distributed.py
"""
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

import landslide as L
from conftest import TINY, outputs

HERE = os.path.dirname(os.path.abspath(__file__))


def torchrun(tiny, out, **kw):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           os.path.join(HERE, 'refine.py'), '--data', tiny, '--out', str(out), '--rounds', '1', *TINY]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE,
                            env=os.environ | {'OMP_NUM_THREADS': '1'}, start_new_session=True, **kw)


def descendants(pid):
    """Every process below pid (torchrun starts its workers in sessions of their own)."""
    children = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                ppid = int(open(f'/proc/{d}/stat').read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


@pytest.fixture(scope='module')
def ddp_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp') / 'run'
    p = torchrun(tiny, out)
    log = p.communicate(timeout=300)[0]
    assert p.returncode == 0, log
    return out, log


def test_torchrun_writes_what_a_single_process_run_writes(ddp_run, trained):
    out, log = ddp_run
    assert sorted(outputs(out)) == sorted(outputs(trained))   # same files, and only rank 0's
    with zipfile.ZipFile(out / 'submission.zip') as z:
        assert len(z.namelist()) == 6
        for f in z.namelist():
            assert L.read_mask(z.extract(f, out.parent / 'unzipped')).shape == (128, 128)
    assert '2 processes' in log


def test_every_process_ends_each_training_with_the_same_weights(ddp_run):
    log = ddp_run[1]
    for rnd in (0, 1):
        for name in ('unet', 'resunet', 'attunet'):
            assert f'round {rnd}  {name:8s} weights identical on all 2 processes' in log


def test_killed_torchrun_resumes_to_the_same_outputs(ddp_run, tiny, tmp_path):
    out = tmp_path / 'run'
    p = torchrun(tiny, out)
    target = out / 'round0' / 'resunet.pt'
    t0 = time.time()
    while not target.exists() and p.poll() is None and time.time() - t0 < 240:
        time.sleep(0.05)
    assert target.exists() and p.poll() is None
    for pid in [p.pid] + descendants(p.pid):          # torchrun and both workers at once
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()
    assert not (out / 'submission.zip').exists()
    p = torchrun(tiny, out)
    log = p.communicate(timeout=300)[0]
    assert p.returncode == 0, log
    assert 'round 0  unet     finished earlier' in log
    assert outputs(out) == outputs(ddp_run[0])
