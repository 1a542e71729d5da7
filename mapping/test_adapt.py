"""Tests of predict.py --adapt (the run refined with the imagery being mapped as its target) and of
the patches a scene is cut into (python -m mapping patches, mosaic): windows and index round-trip,
clouds never pseudo-labelled, target labels never reaching the adaptation, the adapted run
resuming to the same weights, a missing source refused, a patch split adapted to.

    python -m pytest -q mapping/test_adapt.py
"""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import torch

import landslide as L
import predict
from conftest import outputs, tree_digest
from mapping import __main__ as cli, adapt, patches, scene as S, sentinel2
from synthetic import landscape, product

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')
QUICK = ['--adapt', '--adapt-rounds', '1', '--adapt-steps', '2', '--device', 'cpu']


@pytest.fixture(scope='module')
def cloudy(tmp_path_factory):
    """A 30 % cloudy L2A product of 256 x 256 pixels (four windows), stacked."""
    d = tmp_path_factory.mktemp('adapt')
    p = product.synth_product(str(d / 'p'), 256, seed=6, level='L2A', clouds=0.3)
    p['stack'] = str(d / 'stack.tif')
    sentinel2.stack(p['product'], p['dem'], p['stack'])
    return p


def weights(run):
    """Every checkpoint of a run folder, as bytes."""
    return {k: v for k, v in outputs(run).items() if k.endswith('.pt')}


def test_patches_and_index_round_trip_to_the_same_windows(cloudy, tmp_path):
    root = str(tmp_path / 'mine')
    assert cli.main(['patches', cloudy['stack'], '--out', root, '--truth', cloudy['truth'],
                     '--min-analysed', '0.01']) == 0
    sdir = os.path.join(root, 'TestData')
    index = patches.read_index(sdir)
    assert index['size'] == [256, 256] and len(index['windows']) == 4
    sc = S.Scene(cloudy['stack'])
    raw, unseen = sc.rows(0, 256), sc.unseen(0, 256) > 0
    truth = S.read_truth(cloudy['truth'], 256, 256)
    for n, (row, col) in index['windows'].items():
        win = np.s_[row:row + 128, col:col + 128]
        img = L.read_image(os.path.join(sdir, 'img', f'image_{n}.h5'))
        nd = S.nodata_mask(raw[win])
        hidden = unseen[win] & ~nd
        assert np.isnan(img[nd]).all() and np.isnan(img[hidden][:, :12]).all()
        assert np.array_equal(img[hidden][:, 12:], raw[win][hidden][:, 12:])     # slope, DEM kept
        seen = ~nd & ~hidden
        assert seen.any() and np.array_equal(img[seen], raw[win][seen])
        assert np.array_equal(L.read_mask(os.path.join(sdir, 'mask', f'mask_{n}.h5')), truth[win])
    sc.close()
    out = str(tmp_path / 'back.tif')                     # the truth's patches back on the map
    assert cli.main(['mosaic', sdir, os.path.join(sdir, 'mask'), '--out', out]) == 0
    with rasterio.open(out) as f, rasterio.open(cloudy['stack']) as g:
        back = f.read(1)
        assert f.crs == g.crs and f.transform == g.transform
    assert np.array_equal(back, truth.astype(np.uint8))
    assert cli.main(['patches', cloudy['stack'], '--out', root]) == 2          # never overwritten


def test_windows_are_kept_by_analysed_share_and_drawn_by_seed(cloudy, tmp_path):
    sc = S.Scene(cloudy['stack'])
    share = patches.analysed_shares(sc)
    seen = ~S.nodata_mask(sc.rows(0, 256)) & (sc.unseen(0, 256) == 0)
    sc.close()
    assert np.isclose(share[1, 0], seen[128:, :128].mean())
    cut = patches.choose(share, 0.5)
    assert cut == [(128 * j, 128 * i) for j in range(2) for i in range(2) if share[j, i] >= 0.5]
    two = patches.choose(np.ones((10, 10)), 0.5, most=2, seed=1)
    assert len(two) == 2 and two == sorted(two) and two == patches.choose(np.ones((10, 10)), 0.5,
                                                                          most=2, seed=1)


@pytest.fixture(scope='module')
def adapted(trained, cloudy, tmp_path_factory):
    """The trained run adapted to the cloudy product's stack, with and without its truth."""
    d = tmp_path_factory.mktemp('adapted')
    for k, extra in (('truth', ['--truth', cloudy['truth']]), ('blind', [])):
        argv = ['--run', trained, '--scene', cloudy['stack'], '--out', str(d / k), *QUICK, *extra]
        assert predict.main(argv) == 0
    return d


def test_labels_never_reach_the_adaptation(adapted):
    run = {k: str(adapted / k / 'stack_adapted') for k in ('truth', 'blind')}
    assert weights(run['truth']) == weights(run['blind']) and len(weights(run['truth'])) == 6
    for k in ('pseudo', 'masks'):
        a, b = (outputs(os.path.join(run[x], 'round1', k)) for x in ('truth', 'blind'))
        assert a == b
    with_truth = json.load(open(os.path.join(run['truth'], 'metrics.json')))['rounds']
    assert with_truth[-1]['target'] is not None                   # scored ...
    assert json.load(open(os.path.join(run['blind'], 'metrics.json')))['rounds'][-1]['target'] \
        is None                                                    # ... only where given
    info = json.load(open(adapted / 'truth' / 'summary.json'))['stack']['adapt']
    assert info['run'] == os.path.abspath(run['truth']) and info['rounds'] == 1
    assert [s['round'] for s in info['signs']] == [0, 1] and info['signs'][1]['changed'] is not None


def test_clouds_and_no_data_are_never_pseudo_labelled(adapted):
    tdir = adapted / 'blind' / 'stack_target' / 'TestData'
    for r in (0, 1):
        pdir = adapted / 'blind' / 'stack_adapted' / f'round{r}' / 'pseudo'
        n_hidden = 0
        for f in os.listdir(tdir / 'img'):
            img = L.read_image(str(tdir / 'img' / f))
            with h5py.File(pdir / L.mask_name(f)) as h:
                label = h['mask'][()]
            hidden = ~np.isfinite(img).all(-1)
            n_hidden += hidden.sum()
            assert (label[hidden] == L.IGNORE).all()
        assert n_hidden > 1000                                   # there were clouds to ignore


def test_an_adapted_run_resumes_to_the_same_weights(trained, cloudy, adapted, tmp_path):
    out = tmp_path / 'again'
    argv = ['--run', trained, '--scene', cloudy['stack'], '--out', str(out), *QUICK]
    assert predict.main(argv) == 0
    os.remove(out / 'summary.json')                             # killed before the map ...
    os.remove(out / 'stack_adapted' / 'round1' / 'attunet.pt')  # ... and before its last network
    shutil.rmtree(out / 'stack_adapted' / 'round1' / 'masks')
    assert predict.main(argv) == 0
    assert weights(out / 'stack_adapted') == weights(adapted / 'blind' / 'stack_adapted')
    assert outputs(out / 'stack_adapted' / 'round1') == \
        outputs(adapted / 'blind' / 'stack_adapted' / 'round1')
    reused = tmp_path / 'reused'                                # the adapted run maps on its own
    assert predict.main(['--run', str(out / 'stack_adapted'), '--scene', cloudy['stack'],
                         '--out', str(reused), '--device', 'cpu']) == 0
    a, b = (S.read_output(str(d / 'stack_probability.tif'), 'probability')
            for d in (reused, adapted / 'blind'))
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=1e-3)


def test_a_missing_source_is_refused_and_nothing_written(trained, cloudy, tmp_path, capsys):
    run = tmp_path / 'moved'
    shutil.copytree(trained, run)
    cfg = json.load(open(run / 'config.json'))
    cfg['data'], cfg['demo'] = str(tmp_path / 'gone'), False
    cfg['synthetic'] = None                                   # a source of one's own, no recipe
    json.dump(cfg, open(run / 'config.json', 'w'))
    out = tmp_path / 'out'
    argv = ['--run', str(run), '--scene', cloudy['stack'], '--out', str(out), *QUICK]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'gone' in err and '--source' in err
    assert not out.exists()
    assert predict.main(argv + ['--source', str(tmp_path / 'elsewhere')]) == 2
    assert 'elsewhere' in capsys.readouterr().err and not out.exists()
    assert predict.main(argv + ['--source', cfg_data(trained)]) == 0           # pointed at it
    assert (out / 'stack_adapted' / 'round1' / 'unet.pt').exists()


def cfg_data(run):
    return json.load(open(os.path.join(run, 'config.json')))['data']


def test_a_demo_runs_source_is_written_again_from_its_seed(tmp_path, monkeypatch):
    run = tmp_path / 'demo'
    run.mkdir()
    json.dump({'data': str(run / 'data'), 'demo': True, 'out': str(run), 'seed': 7},
              open(run / 'config.json', 'w'))
    assert adapt.source(str(run)) == (str(run / 'data'), True)
    drawn = []
    monkeypatch.setattr(adapt.refine, 'demo_data', lambda folder, seed: (
        drawn.append(seed), os.makedirs(os.path.join(folder, 'TrainData'))))
    where = adapt.write_source(str(run), str(tmp_path / 'out' / 'source'), print)
    assert drawn == [7] and os.path.isdir(os.path.join(where, 'TrainData'))
    json.dump({'data': str(tmp_path / 'mine'), 'demo': True, 'out': str(run), 'seed': 7},
              open(run / 'config.json', 'w'))                  # --demo on data of one's own
    with pytest.raises(L.DataError, match='--source'):
        adapt.source(str(run))


def test_a_synthetic_source_is_written_again_from_its_recipe(tiny, tmp_path):
    recipe = json.load(open(os.path.join(tiny, 'synthetic.json')))
    run = tmp_path / 'run'
    run.mkdir()
    json.dump({'data': str(tmp_path / 'gone'), 'synthetic': recipe, 'out': str(run), 'seed': 0},
              open(run / 'config.json', 'w'))
    assert adapt.source(str(run)) == (str(tmp_path / 'gone'), True)
    where = adapt.write_source(str(run), str(tmp_path / 'source'), print)
    assert tree_digest(os.path.join(where, 'TrainData')) == tree_digest(os.path.join(tiny, 'TrainData'))


def test_a_changed_world_is_refused_for_adapt_one_line(trained, cloudy, tmp_path, capsys,
                                                       monkeypatch):
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    cfg = json.load(open(run / 'config.json'))
    assert cfg['synthetic']['world'] == 'v2'                 # the tiny data recorded its recipe
    json.dump(cfg | {'data': str(tmp_path / 'gone')}, open(run / 'config.json', 'w'))
    monkeypatch.setattr(landscape, 'SCAR_RATE', 7.0)   # the world as another version draws it
    out = tmp_path / 'out'
    argv = ['--run', str(run), '--scene', cloudy['stack'], '--out', str(out), *QUICK]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'changed since' in err and '--source' in err
    assert not out.exists()
    monkeypatch.undo()
    assert adapt.source(str(run))[1] is True                 # the world as it was: written again


def test_a_patch_split_is_adapted_to_and_predicted(trained, tiny, tmp_path):
    out = tmp_path / 'p'
    argv = ['--run', trained, '--data', tiny, '--split', 'valid', '--out', str(out), *QUICK]
    assert predict.main(argv) == 0
    m = json.load(open(out / 'metrics.json'))
    assert m['adapt']['run'] == str(out / 'adapted') and m['scores'] is not None
    assert len(os.listdir(out / 'masks')) == 4
    assert torch.load(out / 'adapted' / 'round1' / 'unet.pt')['state_dict'].keys()
    assert predict.main(argv[:-len(QUICK)] + ['--control']) == 2               # needs --adapt
