"""Tests of what a Sentinel-2 stack is read with (scene.CORRECTIONS): the thin cirrus correction
(mapping/cirrus.py: B10's clear level follows the elevation, a veil comes out of every spectral
band and nothing else changes, a Level-1C stack keeps the product's reflectance and is read
without its cirrus) and B1 beside the clouds from B2 (mapping/edges.py: the line fitted, only
pixels within a B1 cell of the mask replaced, B1 nearer the cloud-free scene's), and
predict.py --corrections.

    python -m pytest -q mapping/test_corrections.py
"""
import numpy as np
import pytest

import landslide as L
import predict
from mapping import cirrus, clouds, edges, scene as S, sentinel2
from synthetic import product, sky

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


def ground(rng, n=64, rise=0.0):
    """Clear land: random spectra, an elevation ramp 0 .. 3000 m and B10 rising with it by
    `rise` per metre (dry air over high ground). -> float32 [n, n, 14]"""
    x = rng.uniform(0.02, 0.3, (n, n, L.BANDS)).astype(np.float32)
    x[..., 13] = np.linspace(0, 3000, n * n).reshape(n, n)
    x[..., 12] = rng.uniform(0, 40, (n, n))
    x[..., 9] = 0.002 + rise * x[..., 13] + rng.normal(0, 2e-4, (n, n))
    return x


def levels_of(x):
    flat = x.reshape(-1, L.BANDS)
    return cirrus.clear_levels(flat[:, 13], flat[:, 9])


def test_the_clear_level_follows_the_elevation():
    x = ground(np.random.default_rng(0), rise=2e-6)             # B10 0.002 at sea level, 0.008 at 3 km
    z, b = levels_of(x)
    assert len(z) == cirrus.BINS and np.all(np.diff(z) > 0)
    assert np.abs(b - (0.002 + 2e-6 * z)).max() < 3e-4
    before = x.copy()
    moved = np.abs(cirrus.correct(x, (z, b))[..., :12] - before[..., :12]).max()
    assert moved < 1.5e-3                                      # high ground is not cirrus
    one = cirrus.clear_levels(before[..., 13].ravel(), before[..., 9].ravel(), bins=1)
    high = np.abs(cirrus.correct(before.copy(), one)[..., :12] - before[..., :12]).max()
    assert high > 2.5e-3                                       # one level for all would take it


def test_a_veil_comes_out_of_every_spectral_band_and_nothing_else_changes():
    rng = np.random.default_rng(1)
    x = ground(rng)
    levels = levels_of(x)
    veil = np.zeros(x.shape[:2], np.float32)
    veil[10:30, 5:50] = rng.uniform(0.005, 0.04, (20, 45))
    cloudy = x.copy()
    cloudy[..., :12] += veil[..., None]
    cloudy[0, 0] = np.nan                                      # no data stays no data
    out = cirrus.correct(cloudy.copy(), levels)
    under = veil > 0
    assert np.abs(out[under][:, :12] - x[under][:, :12]).max() < 1e-3
    assert np.array_equal(out[..., 12:], cloudy[..., 12:], equal_nan=True)
    assert np.isnan(out[0, 0]).all()
    clear = ~under
    clear[0, 0] = False
    assert np.abs(out[clear] - x[clear]).max() < 1e-3          # B10's own noise, no more


@pytest.fixture(scope='module')
def stacks(tmp_path_factory):
    """One scene as an L1C product under a 30 % cloudy sky, the same without clouds, and an L2A
    under the same sky, each stacked."""
    d = tmp_path_factory.mktemp('cirrus')
    out = {}
    for k, lvl, c in (('l1c', 'L1C', 0.3), ('clear', 'L1C', 0.0), ('l2a', 'L2A', 0.3)):
        p = product.synth_product(str(d / k), 192, seed=2, level=lvl, clouds=c)
        p['stack'] = str(d / k / 'stack.tif')
        sentinel2.stack(p['product'], p['dem'], p['stack'], log=lambda *_: None)
        out[k] = p
    return out


def test_a_l1c_stack_keeps_its_reflectance_and_is_read_without_its_cirrus(stacks):
    p = stacks['l1c']
    with rasterio.open(p['stack']) as f:
        raw = f.read().transpose(1, 2, 0)
        assert cirrus.TAG in f.tags()
    assert np.array_equal(S.Scene(p['stack'], ()).rows(0, 192), raw, equal_nan=True)
    read = S.Scene(p['stack'], ('cirrus',)).rows(0, 192)
    clear = S.Scene(stacks['clear']['stack']).rows(0, 192)
    veil = S.read_output(p['sky_truth'], 'mask') == sky.TRUTH.index('cirrus')
    seen = veil & (S.read_output(clouds.sidecar(p['stack']), 'mask') == 0) & \
        np.isfinite(raw).all(-1)
    assert seen.sum() > 200
    off = {k: np.abs(v[seen][:, 1:4] - clear[seen][:, 1:4]).mean() for k, v in
           (('raw', raw), ('read', read))}
    assert off['read'] < 0.4 * off['raw']                      # most of the veil taken out
    assert np.array_equal(read[..., 12:], raw[..., 12:], equal_nan=True)
    assert S.Scene(stacks['l2a']['stack']).cirrus is None       # Sen2Cor drops B10


def test_b1_line_is_fitted_and_wants_enough_samples():
    rng = np.random.default_rng(3)
    b2 = rng.uniform(0.02, 0.3, 5000)
    a, b, cell = edges.fit(b2, 0.8 * b2 + 0.01 + rng.normal(0, 1e-3, 5000), 6)
    assert abs(a - 0.8) < 0.01 and abs(b - 0.01) < 1e-3 and cell == 6
    assert edges.fit(b2[:99], b2[:99], 6) is None
    assert edges.cell(60.0, 10.0) == 6 and edges.cell(20.0, 10.0) == 2


def test_b1_is_taken_from_b2_within_a_cell_of_the_clouds_and_nowhere_else(stacks):
    p = stacks['l1c']
    with rasterio.open(p['stack']) as f:
        raw, line = f.read().transpose(1, 2, 0), edges.from_tags(f.tags())
    assert line[2] == 6                                         # L1C's B1: 60 m
    with rasterio.open(stacks['l2a']['stack']) as f:
        assert edges.from_tags(f.tags()) is None                # L2A's B1: 20 m, left as it is
    mask = S.read_output(clouds.sidecar(p['stack']), 'mask')
    near = clouds.dilate(mask, 6) == 6
    read = S.Scene(p['stack'], ('edges',)).rows(0, 192)
    ok = np.isfinite(raw).all(-1)
    assert np.allclose(read[near & ok, 0], line[0] * raw[near & ok, 1] + line[1], atol=1e-6)
    assert np.array_equal(read[~near], raw[~near], equal_nan=True)      # B1 elsewhere, B2..DEM
    assert np.array_equal(read[..., 1:], raw[..., 1:], equal_nan=True)
    clear = S.Scene(stacks['clear']['stack'], ()).rows(0, 192)
    seen = near & ok & (mask == 0)
    assert seen.sum() > 200
    off = {k: np.abs(v[seen, 0] - clear[seen, 0]).mean() for k, v in (('raw', raw),
                                                                      ('read', read))}
    assert off['read'] < 0.75 * off['raw']                       # nearer the cloud-free B1


def test_corrections_flag_chooses_what_the_stack_is_read_with(stacks, tmp_path):
    argv = ['--run', 'r', '--scene', stacks['l1c']['stack'], '--out', str(tmp_path / 'o')]
    for flag, want in (([], {'edges'}), (['--corrections', 'edges', 'cirrus'], {'edges', 'cirrus'}),
                       (['--corrections'], set())):
        (_, sc, _, _), = predict.scene_jobs(predict.parse_args(argv + flag))
        assert {k for k in ('edges', 'cirrus') if getattr(sc, k) is not None} == want
        sc.close()
