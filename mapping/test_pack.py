"""Tests of the model this repository ships (pretrained/) and of packing a run into one
(python -m mapping pack): float16 weights that load with weights_only=True and map as the run
does; the shipped model maps a synthetic product with no --run; a missing model file is one line,
exit 2.

    python -m pytest -q mapping/test_pack.py
"""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import torch

import predict
from mapping import __main__ as cli
from synthetic import product

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


def test_a_packed_run_holds_float16_and_maps_as_the_run(trained, tiny, tmp_path):
    packed = str(tmp_path / 'packed')
    assert cli.main(['pack', trained, packed]) == 0
    ck = torch.load(os.path.join(packed, 'round0', 'unet.pt'), weights_only=True)
    assert {v.dtype for v in ck['state_dict'].values() if v.is_floating_point()} == {torch.float16}
    assert sorted(os.listdir(packed)) == ['config.json', 'metrics.json', 'round0', 'stats.json']
    assert json.load(open(os.path.join(packed, 'config.json')))['synthetic']['world'] == 'v2'
    masks = {}
    for name, run in (('run', trained), ('packed', packed)):
        out = tmp_path / f'map-{name}'
        assert predict.main(['--run', run, '--data', tiny, '--split', 'test', '--out', str(out),
                             '--device', 'cpu']) == 0
        masks[name] = np.stack([h5py.File(out / 'masks' / f, 'r')['mask'][()]
                                for f in sorted(os.listdir(out / 'masks'))])
    assert (masks['run'] == masks['packed']).mean() > 0.999
    assert cli.main(['pack', trained, packed]) == 2                 # never overwrites


def test_the_shipped_model_loads_safely_and_is_small():
    run = predict.SHIPPED
    cfg = json.load(open(os.path.join(run, 'config.json')))
    total = 0
    for name in cfg['models'].split(','):
        path = os.path.join(run, 'round0', f'{name}.pt')
        ck = torch.load(path, weights_only=True)                   # no pickled code
        assert ck['config']['width'] == cfg['width']
        total += os.path.getsize(path)
    assert total <= 25e6
    assert cfg['synthetic']['world'] and cfg['synthetic']['fingerprint']   # --adapt can rewrite it
    assert os.path.isfile(os.path.join(run, 'MODEL_CARD.md'))


def test_the_shipped_model_maps_a_product_with_no_run(tmp_path):
    p = product.synth_product(str(tmp_path / 'p'), 192, seed=4, level='L2A')
    out = tmp_path / 'maps'
    assert predict.main(['--s2', p['product'], '--dem', p['dem'], '--out', str(out),
                         '--truth', p['truth'], '--device', 'cpu']) == 0
    summary = json.load(open(out / 'summary.json'))
    (name, info), = summary.items()
    assert info['run'] == os.path.abspath(predict.SHIPPED)
    with rasterio.open(out / f'{name}_landslide.tif') as f:
        classes = np.unique(f.read(1))
    assert set(classes) <= {0, 1, 255}
    # a product of world v1, one corner of the worlds the model was trained across
    assert json.load(open(out / 'metrics.json'))[name]['pixels']['f1'] > 0.6


def test_a_missing_model_file_is_one_line_exit_2(tmp_path, capsys):
    run = tmp_path / 'model'
    shutil.copytree(predict.SHIPPED, run)
    os.remove(run / 'round0' / 'resunet.pt')
    p = product.synth_product(str(tmp_path / 'p'), 132, seed=4, level='L2A')
    out = tmp_path / 'maps'
    assert predict.main(['--run', str(run), '--s2', p['product'], '--dem', p['dem'], '--out',
                         str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'resunet.pt' in err and 'missing' in err
    assert not out.exists()
