"""Tests of predict.py and mapping/scene.py: new patches, whole scenes (tiling, blending, GeoTIFF,
no-data), bad input, killed runs and shares of a torchrun.

    python -m pytest -q test_predict.py
"""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

import landslide as L
import predict
import refine
from mapping import scene as S, tiles as T
from synthetic import landscape, product

try:
    import rasterio
except ImportError:
    rasterio = None
needs_rasterio = pytest.mark.skipif(rasterio is None, reason='rasterio not installed (requirements-geo.txt)')
CPU = torch.device('cpu')


def run(*args):
    return predict.main([str(a) for a in args])


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    """A 256 x 256 target-domain scene (2 x 2 whole patches) as .npy, and its true mask."""
    d = tmp_path_factory.mktemp('scenes')
    img, mask = landscape.synth_patch(np.random.default_rng([0, 3]), landscape.domain(1.0, 0), 256)
    np.save(d / 'a.npy', img)
    return d, img, mask


def outputs(out, name, ext='.npy'):
    load = np.load if ext == '.npy' else (lambda p: h5py.File(p)[os.path.basename(p).split('_')[-1][:-3]][()])
    return load(os.path.join(out, f'{name}_landslide{ext}')), load(os.path.join(out, f'{name}_probability{ext}'))


# ----------------------------------------------------------------------------- patches

def test_patches_reproduce_the_runs_own_masks(trained, tiny, tmp_path):
    for rnd, extra in ((1, []), (0, ['--round', 0])):
        out = tmp_path / f'p{rnd}'
        assert run('--run', trained, '--data', tiny, '--split', 'test', '--out', out, *extra) == 0
        ours, theirs = out / 'masks', os.path.join(trained, f'round{rnd}', 'masks')
        assert sorted(os.listdir(ours)) == sorted(os.listdir(theirs))
        for f in os.listdir(theirs):
            assert np.array_equal(L.read_mask(str(ours / f)), L.read_mask(os.path.join(theirs, f)))
        m = json.load(open(out / 'metrics.json'))
        assert m['patches'] == 6 and set(m['scores']) == {'precision', 'recall', 'f1', 'iou'}
        assert (out / 'submission.zip').exists()


# ----------------------------------------------------------------------------- scenes

def test_no_overlap_tiling_equals_patchwise_prediction(trained, scenes, tmp_path):
    d, img, _ = scenes
    assert run('--run', trained, '--scene', d / 'a.npy', '--out', tmp_path, '--overlap', 0) == 0
    mask, prob = outputs(tmp_path, 'a')
    models, c, _ = predict.load_run(trained, None, CPU)
    stats = S.scene_stats(S.Scene(str(d / 'a.npy')))
    x = (img - np.float32(stats['mean'])) / np.float32(stats['std'])
    X = torch.from_numpy(x.reshape(2, 128, 2, 128, 14).transpose(0, 2, 4, 1, 3).reshape(4, 14, 128, 128).copy())
    assert c.adabn                                  # the run used AdaBN: the scene's statistics, a tile row a batch
    models = refine.adapt_bn(models, [X[:2], X[2:]], c, CPU)
    p = refine.predict(models, X, c, CPU).reshape(2, 2, 128, 128).permute(0, 2, 1, 3).reshape(256, 256).numpy()
    assert prob.dtype == np.float32 and np.array_equal(prob, p)
    assert np.array_equal(mask, (p >= 0.5).astype(np.uint8))


def column_jumps(prob, cols):
    """Mean |p[:, k] - p[:, k - 1]| at the given columns k."""
    p = prob.astype(np.float64)
    return np.mean([np.abs(p[:, k] - p[:, k - 1]).mean() for k in cols])


def test_overlap_blends_without_seams(trained, scenes, tmp_path):
    d = scenes[0]
    jumps = {}
    for overlap in (0, 32):
        out = tmp_path / f'o{overlap}'
        assert run('--run', trained, '--scene', d / 'a.npy', '--out', out, '--overlap', overlap) == 0
        prob = outputs(out, 'a')[1]
        stride, pad = 128 - overlap, overlap // 2
        starts = [j * stride - pad for j in range(4)]                 # tile columns in the scene
        borders = sorted({k for s in starts for k in (s, s + 128) if 0 < k < 256})
        inside = [k for k in range(1, 256) if all(abs(k - b) > 4 for b in borders)]
        jumps[overlap] = column_jumps(prob, borders), column_jumps(prob, inside)
    assert jumps[0][0] > 1.5 * jumps[0][1]              # without overlap the tile borders show
    assert jumps[32][0] < 1.5 * jumps[32][1]            # with it they don't, by the same yardstick
    assert jumps[32][0] < jumps[0][0] / 1.5             # and they are far smoother than without


def without_adabn(run_dir, tmp_path):
    """A copy of a run whose config says it did not use AdaBN."""
    dst = tmp_path / 'run-no-adabn'
    shutil.copytree(run_dir, dst)
    cfg = json.load(open(dst / 'config.json'))
    json.dump(cfg | {'adabn': False}, open(dst / 'config.json', 'w'))
    return str(dst)


def test_adabn_tiles_span_the_scene_and_mask_what_has_no_data():
    seen = []

    def load(j):                                    # 20 tile rows of 3 tiles; tile 1 of even rows has a hole
        seen.append(j)
        nd = np.zeros((128, 3 * 96 + 32), bool)
        if j % 2 == 0:
            nd[5, 96 + 50] = True
        return None, nd, np.zeros_like(nd), torch.full((3, 14, 128, 128), float(j)), [0, 1, 2]
    batches = iter(T.adabn_tiles(load, 20, 96, at_least=20))
    for j in [0, 3, 5, 8, 11, 14, 16, 19]:          # first, last, evenly between
        b = next(batches)
        assert (b[:, 0, 0, 0] == j).all() and len(b) == (2 if j % 2 == 0 else 3)
        if j % 2 == 0:                              # the holed tile comes after, masked there
            tiles, valid = next(batches)
            assert len(tiles) == 1 and not valid[0, 5, 50] and valid.sum() == 128 * 128 - 1
    assert next(batches, None) is None and len(seen) == 8
    assert list(T.adabn_tiles(lambda j: (None, np.ones((128, 320), bool), np.zeros((128, 320), bool),
                                               torch.zeros(3, 14, 128, 128), [0, 1, 2]), 4, 96)) == []  # all no-data


def test_adabn_tiles_prefer_clear_ones_take_partly_cloudy_ones_masked_and_look_further():
    seen = []

    def load(j):                                    # 20 tile rows of 3 tiles; only rows 6 and 12 are clear
        seen.append(j)
        nd = np.zeros((128, 3 * 96 + 32), bool)
        un = np.ones_like(nd) if j not in (6, 12) else np.zeros_like(nd)
        un[:, 0] = True                             # ... but for a cloud over tile 0's first column
        return None, nd, un, torch.full((3, 14, 128, 128), float(j)), [0, 1, 2]
    batches = list(T.adabn_tiles(load, 20, 96, at_least=6))
    assert [int((b[0] if isinstance(b, tuple) else b)[0, 0, 0, 0]) for b in batches] == [6, 6, 12, 12]
    clear, part = batches[0], batches[1]            # beyond the 8 evenly spaced rows, clear first
    assert not isinstance(clear, tuple) and len(clear) == 2       # tiles 1 and 2
    tiles, valid = part                             # tile 0, its cloudy column marked
    assert len(tiles) == 1 and not valid[0, :, 0].any() and valid[0, :, 1:].all()
    assert len(seen) > 8 and seen[-1] == 12         # it stopped once it had at least 6
    full = list(T.adabn_tiles(load, 20, 96, at_least=4, per_row=2))
    assert full and all(not isinstance(b, tuple) for b in full)   # a row filled by clear tiles


def test_nodata_hole_is_255_there_and_only_there(trained, scenes, tmp_path):
    d, img, _ = scenes
    holed = img.copy()
    holed[100:140, 30:70, 5] = np.nan                  # NaN in one band
    holed[200:210, 200:230] = -9999                    # the --nodata value
    holed[10:20, 240:256] = 0                          # all bands zero
    (tmp_path / 'in').mkdir()
    np.save(tmp_path / 'in' / 'a.npy', holed)
    fixed = without_adabn(trained, tmp_path)        # AdaBN would take its statistics from other tiles
    assert run('--run', fixed, '--scene', tmp_path / 'in' / 'a.npy', '--out', tmp_path / 'h', '--nodata', -9999) == 0
    assert run('--run', fixed, '--scene', d / 'a.npy', '--out', tmp_path / 'f') == 0
    hole = np.zeros((256, 256), bool)
    hole[100:140, 30:70] = hole[200:210, 200:230] = hole[10:20, 240:256] = True
    (ma, pa), (mb, pb) = outputs(tmp_path / 'h', 'a'), outputs(tmp_path / 'f', 'a')
    assert np.array_equal(ma == 255, hole) and (mb != 255).all()
    assert np.array_equal(np.isnan(pa), hole) and np.isfinite(pb).all()
    far = np.ones((256, 256), bool)                    # beyond a tile's reach of every hole
    far[:, :] = False
    far[150:200, 0:100] = True
    pa, pb = outputs(tmp_path / 'h', 'a')[1][far], outputs(tmp_path / 'f', 'a')[1][far]
    assert np.abs(pa - pb).max() <= 3 / 250            # only the statistics moved, slightly
    summary = json.load(open(tmp_path / 'h' / 'summary.json'))['a']
    assert summary['nodata_pixels'] == hole.sum() and summary['landslide_m2'] is None


def test_all_nodata_scene_is_all_255_with_a_warning(trained, tmp_path, capsys):
    (tmp_path / 'in').mkdir()
    np.save(tmp_path / 'in' / 'z.npy', np.zeros((130, 140, 14), np.float32))
    assert run('--run', trained, '--scene', tmp_path / 'in' / 'z.npy', '--out', tmp_path / 'o') == 0
    assert 'every pixel is no-data' in capsys.readouterr().out
    mask, prob = outputs(tmp_path / 'o', 'z')
    assert mask.shape == prob.shape == (130, 140) and (mask == 255).all() and np.isnan(prob).all()


def test_hdf5_scene_in_hdf5_out(trained, tmp_path):
    product.synth_scene(str(tmp_path / 's'), 160, seed=1)
    assert run('--run', trained, '--scene', tmp_path / 's' / 'scene.h5', '--out', tmp_path / 'o') == 0
    mask, prob = outputs(tmp_path / 'o', 'scene', '.h5')
    assert mask.shape == prob.shape == (160, 160) and set(np.unique(mask)) <= {0, 1}
    assert (tmp_path / 'o' / 'scene_quicklook.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@needs_rasterio
def test_geotiff_in_geotiff_out_keeps_crs_and_transform(trained, tmp_path):
    product.synth_scene(str(tmp_path / 's'), 200, seed=2)
    assert run('--run', trained, '--scene', tmp_path / 's' / 'scene.tif', '--out', tmp_path / 'o') == 0
    with rasterio.open(tmp_path / 's' / 'scene.tif') as src:
        for kind, dtype in (('landslide', 'uint8'), ('probability', 'float32')):
            with rasterio.open(tmp_path / 'o' / f'scene_{kind}.tif') as out:
                assert out.crs == src.crs and out.transform == src.transform
                assert out.count == 1 and out.dtypes[0] == dtype and out.shape == (200, 200)
                assert out.nodata == 255 if dtype == 'uint8' else np.isnan(out.nodata)
    info = json.load(open(tmp_path / 'o' / 'summary.json'))['scene']
    assert info['landslide_m2'] == pytest.approx(100.0 * info['landslide_pixels'])   # 10 m pixels


# ----------------------------------------------------------------------------- bad input

def bad_cases(trained, scenes, tmp):
    """(name, argv builder) pairs; each must fail with one line naming the file."""
    d, tmp = scenes[0], tmp / 'in'
    tmp.mkdir()
    np.save(tmp / 'b13.npy', np.ones((200, 200, 13), np.float32))
    np.save(tmp / 'small.npy', np.ones((100, 300, 14), np.float32))
    (tmp / 'garbage.h5').write_bytes(b'not hdf5 at all' * 10)
    (tmp / 'cut.npy').write_bytes((d / 'a.npy').read_bytes()[:5000])
    empty = tmp.parent / 'empty-run'
    empty.mkdir()
    shutil.copy(os.path.join(trained, 'config.json'), empty)
    missing, corrupt = tmp.parent / 'missing', tmp.parent / 'corrupt'
    shutil.copytree(trained, missing)
    shutil.copytree(trained, corrupt)
    os.remove(missing / 'round1' / 'unet.pt')
    (corrupt / 'round1' / 'resunet.pt').write_bytes((corrupt / 'round1' / 'resunet.pt').read_bytes()[:300])
    (tmp.parent / 'a-file').write_text('x')
    return {
        'no finished round': (empty, d / 'a.npy', tmp.parent / 'o', 'no finished round'),
        'missing checkpoint': (missing, d / 'a.npy', tmp.parent / 'o', 'unet.pt: checkpoint missing'),
        'corrupt checkpoint': (corrupt, d / 'a.npy', tmp.parent / 'o', 'resunet.pt: not a readable checkpoint'),
        'wrong band count': (trained, tmp / 'b13.npy', tmp.parent / 'o', 'b13.npy: expected H x W x 14'),
        'smaller than a window': (trained, tmp / 'small.npy', tmp.parent / 'o', 'small.npy: scene is 100 x 300'),
        'unreadable': (trained, tmp / 'garbage.h5', tmp.parent / 'o', 'garbage.h5: not a readable scene'),
        'truncated': (trained, tmp / 'cut.npy', tmp.parent / 'o', 'cut.npy: truncated'),
        'out inside the run': (trained, d / 'a.npy', os.path.join(trained, 'maps'), 'must not be inside --run'),
        'out not writable': (trained, d / 'a.npy', tmp.parent / 'a-file' / 'o', 'cannot create the output folder'),
    }


@pytest.mark.parametrize('case', ['no finished round', 'missing checkpoint', 'corrupt checkpoint', 'wrong band count',
                                  'smaller than a window', 'unreadable', 'truncated', 'out inside the run',
                                  'out not writable'])
def test_bad_input_one_line_exit_2_nothing_written(case, trained, scenes, tmp_path, capsys):
    run_dir, scene, out, expected = bad_cases(trained, scenes, tmp_path)[case]
    before = sorted(os.listdir(trained))
    assert run('--run', run_dir, '--scene', scene, '--out', out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and expected in err[0], err
    assert not os.path.exists(out) and sorted(os.listdir(trained)) == before


@pytest.mark.parametrize('flag, value', [('--cloud-buffer', '61'), ('--cloud-fringe', '6'),
                                         ('--cloud-fringe', '-1')])
def test_cloud_flags_out_of_range_are_refused(flag, value, trained, scenes, tmp_path, capsys):
    out = tmp_path / 'o'
    assert run('--run', trained, '--scene', scenes[0] / 'a.npy', flag, value, '--out', out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f'{flag} must be' in err[0] and value in err[0] and not out.exists()


def test_geotiff_without_rasterio_says_how_to_install(trained, tmp_path, capsys, monkeypatch):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'x.tif').write_bytes(b'II*\x00')
    monkeypatch.setitem(sys.modules, 'rasterio', None)           # as if not installed
    assert run('--run', trained, '--scene', tmp_path / 'in' / 'x.tif', '--out', tmp_path / 'o') == 2
    err = capsys.readouterr().err
    assert 'x.tif' in err and 'pip install -r requirements-geo.txt' in err and not (tmp_path / 'o').exists()


# ----------------------------------------------------------------------------- killed runs, shares

KILL_ON_SECOND = r'''
import os, signal, sys
import predict
from mapping import scene as S
seen = []
write = S.Writer.write
def killing_write(self, a, block):
    if 'b_' in os.path.basename(self.path):
        os.kill(os.getpid(), signal.SIGKILL)
    write(self, a, block)
S.Writer.write = killing_write
sys.exit(predict.main(sys.argv[1:]))
'''


def test_killed_multi_scene_run_skips_finished_scenes(trained, scenes, tmp_path):
    d = scenes[0]
    (tmp_path / 'in').mkdir()
    shutil.copy(d / 'a.npy', tmp_path / 'in' / 'b.npy')
    argv = ['--run', trained, '--scene', str(d / 'a.npy'), str(tmp_path / 'in' / 'b.npy'), '--out', str(tmp_path / 'o')]
    r = subprocess.run([sys.executable, '-c', KILL_ON_SECOND, *argv], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.abspath(predict.__file__)))
    assert r.returncode == -9
    left = sorted(os.listdir(tmp_path / 'o'))
    assert 'a_landslide.npy' in left and not any(f.startswith('b_') for f in left)
    assert list(json.load(open(tmp_path / 'o' / 'summary.json'))) == ['a']
    first = os.stat(tmp_path / 'o' / 'a_landslide.npy').st_mtime_ns
    r = subprocess.run([sys.executable, 'predict.py', *argv], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.abspath(predict.__file__)))
    assert r.returncode == 0 and 'a: finished earlier, skipped' in r.stdout
    assert os.stat(tmp_path / 'o' / 'a_landslide.npy').st_mtime_ns == first
    assert sorted(json.load(open(tmp_path / 'o' / 'summary.json'))) == ['a', 'b']
    assert not any(f.endswith('.tmp') for f in os.listdir(tmp_path / 'o'))


def test_each_process_of_a_torchrun_takes_its_share(trained, scenes, tmp_path, monkeypatch, capsys):
    (tmp_path / 'in').mkdir()
    for n in 'abc':
        shutil.copy(scenes[0] / 'a.npy', tmp_path / 'in' / f'{n}.npy')
    paths = [tmp_path / 'in' / f'{n}.npy' for n in 'abc']
    monkeypatch.setenv('WORLD_SIZE', '2')
    for rank, mine in ((0, 'ac'), (1, 'b')):
        monkeypatch.setenv('RANK', str(rank))
        before = set(json.load(open(tmp_path / 'o' / 'summary.json'))) if rank else set()
        assert run('--run', trained, '--scene', *paths, '--out', tmp_path / 'o') == 0
        assert set(json.load(open(tmp_path / 'o' / 'summary.json'))) - before == set(mine)
    assert sorted(json.load(open(tmp_path / 'o' / 'summary.json'))) == ['a', 'b', 'c']


def test_synthetic_scene_is_coherent_and_deterministic(tmp_path):
    a = product.synth_scene(str(tmp_path / 'a'), 256, seed=4)
    product.synth_scene(str(tmp_path / 'b'), 256, seed=4)
    with h5py.File(a[0]) as f, h5py.File(tmp_path / 'b' / 'scene.h5') as g:
        assert f['img'].shape == (256, 256, 14) and np.array_equal(f['img'][()], g['img'][()])
        mask, slope = f['mask'][()], f['img'][:, :, 12]
        assert 0.003 < mask.mean() < 0.08 and np.median(slope[mask == 1]) > 22
        dem = f['img'][:, :, 13]                        # one terrain, no seams between patches
        assert np.abs(np.diff(dem, axis=1))[:, 127].mean() < 3 * np.abs(np.diff(dem, axis=1)).mean()
