"""Shared test data: a tiny synthetic dataset and a tiny trained run (CPU, seconds)."""
import pytest

import landslide as L
import refine

TINY = ['--width', '4', '--scale', '2', '--steps', '3', '--batch-size', '4', '--evals', '1',
        '--ohem-min-kept', '256', '--device', 'cpu']


@pytest.fixture(scope='session')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    L.synth(str(root), train=12, valid=4, test=6, shift=1.0, seed=3)
    return str(root)


@pytest.fixture(scope='session')
def trained(tiny, tmp_path_factory):
    """A finished run (rounds 0 and 1) on the tiny dataset."""
    out = str(tmp_path_factory.mktemp('trained') / 'run')
    assert refine.main(['--data', tiny, '--out', out, '--rounds', '1', *TINY]) == 0
    return out
