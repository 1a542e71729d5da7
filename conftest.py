"""Shared test data: a tiny synthetic dataset and a tiny trained run (CPU, seconds), and a way
to compare what two runs wrote."""
import hashlib
import os
import zipfile

import h5py
import pytest
import torch

import refine
from synthetic import landscape

TINY = ['--demo', '--width', '4', '--scale', '2', '--steps', '3', '--batch-size', '4',
        '--device', 'cpu']


@pytest.fixture(scope='session')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    landscape.synth(str(root), train=12, valid=4, test=6, shift=1.0, seed=3)
    return str(root)


@pytest.fixture(scope='session')
def trained(tiny, tmp_path_factory):
    """A finished run (rounds 0 and 1) on the tiny dataset."""
    out = str(tmp_path_factory.mktemp('trained') / 'run')
    assert refine.main(['--data', tiny, '--out', out, '--rounds', '1', *TINY]) == 0
    return out


def outputs(out):
    """Everything a run leaves, as comparable values (zip entries by content, not timestamp)."""
    res = {}
    for dp, _, files in os.walk(out):
        for f in files:
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, out)
            if f.endswith('.pt'):
                state = torch.load(p, weights_only=True)['state_dict']
                res[rel] = {k: v.numpy().tobytes() for k, v in state.items()}
            elif f.endswith('.zip'):
                with zipfile.ZipFile(p) as z:
                    res[rel] = {n: z.read(n) for n in z.namelist()}
            elif f.endswith('.h5'):                   # masks, and pseudo-labels (255 = ignored)
                with h5py.File(p, 'r') as h:
                    res[rel] = h['mask'][()].tobytes()
            elif f != 'config.json':
                res[rel] = open(p, 'rb').read()
    return res


def tree_digest(folder):
    """One hash of every file name and content under folder."""
    h = hashlib.sha256()
    for dp, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            h.update(f.encode() + open(os.path.join(dp, f), 'rb').read())
    return h.hexdigest()
