"""Tests of imagery as mappers get it (mapping/stac.py): one synthetic product written as a .SAFE,
as the three catalogues' STAC items (synthetic/items.py) and as an Earth Engine download maps to
the same classes; an Earth Search item whose pixels lost the offset it declares is read right;
items of other missions, an item missing a band and a folder of two grids are refused with one
line, exit 2, nothing written.

    python -m pytest -q mapping/test_stac.py
"""
import json
import os
import shutil

import numpy as np
import pytest

import predict
from mapping import sentinel2 as S2
from synthetic import items, product

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    """A cloudy L2A product (baseline 04.00: DN hold the +1000 offset), its items and its Earth
    Engine folder."""
    d = tmp_path_factory.mktemp('stac')
    p = product.synth_product(str(d / 'p'), 192, seed=4, level='L2A', clouds=0.2)
    p['items'] = items.write_items(p['product'], str(d / 'items'), lost_offset=True)
    p['ee'] = items.write_ee_folder(p['product'], str(d / 'ee'))
    return p


def stack_of(src, dem, out):
    S2.stack(src, dem, out, log=lambda *_: None)
    with rasterio.open(out) as f, rasterio.open(S2.clouds.sidecar(out)) as m:
        return f.read(), m.read(1), f.crs


def map_of(src, dem, out):
    assert predict.main(['--s2', src, '--dem', dem, '--out', str(out), '--device', 'cpu']) == 0
    (name, info), = json.load(open(out / 'summary.json')).items()
    with rasterio.open(out / f'{name}_landslide.tif') as f, \
            rasterio.open(out / f'{name}_probability.tif') as p:
        assert f.tags()['SOURCE_ID'] == info['input']['id'] and f.tags()['MODEL_RUN']
        return f.read(1), f.crs, info, p.read(1)


def test_each_item_stacks_as_the_safe(scene, tmp_path):
    safe, safe_mask, crs = stack_of(scene['product'], scene['dem'], str(tmp_path / 'safe.tif'))
    assert (safe_mask == 1).mean() > 0.02                      # the clouds are there to agree on
    for kind, item in scene['items'].items():
        got, mask, got_crs = stack_of(item, scene['dem'], str(tmp_path / f'{kind}.tif'))
        assert got_crs == crs and got.shape == safe.shape
        # Earth Search's pixels lost the offset (kept >= 1 DN): within 1 DN of reflectance
        assert np.nanmax(np.abs(got - safe)) <= 1.01e-4, kind
        assert (mask == safe_mask).all(), kind
    pr = S2.open_product(scene['items']['earthsearch'])
    assert pr['radiometry']['declared_offset'] == -1000 and not pr['radiometry']['pixels_hold']
    assert S2.open_product(scene['items']['pc'])['offset']['B02'] == -1000


def test_the_safe_an_item_and_an_earth_engine_folder_map_alike(scene, tmp_path):
    safe, crs, info, p_safe = map_of(scene['product'], scene['dem'], tmp_path / 'safe')
    assert info['input']['kind'] == '.SAFE product' and info['input']['tile'] == '45RUL'
    item, _, info, _ = map_of(scene['items']['cdse'], scene['dem'], tmp_path / 'cdse')
    assert (item == safe).all() and info['input']['kind'] == 'STAC item'
    assert 0 < info['input']['not_analysed_share'] < 1 and info['software']
    ee, ee_crs, info, p_ee = map_of(scene['ee'], scene['dem'], tmp_path / 'ee')
    assert ee_crs.to_epsg() == 32645 and 'UTM zone 45' in info['input']['grid']
    # resampled twice by nearest neighbour (to degrees and back), which moves pixels by one
    # here and there: the classes agree almost everywhere, the probabilities closely
    assert ee.shape == safe.shape
    both = (safe != 255) & (ee != 255)
    assert both.mean() > 0.5 and (safe[both] == ee[both]).mean() > 0.99
    ok = np.isfinite(p_safe) & np.isfinite(p_ee)
    assert np.corrcoef(p_safe[ok], p_ee[ok])[0, 1] > 0.7
    # the reflectance as the .SAFE's: no offset in Earth Engine's harmonized DN
    a, b = (stack_of(src, scene['dem'], str(tmp_path / f'{k}.tif'))[0]
            for k, src in (('safe', scene['product']), ('ee', scene['ee'])))
    ok = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    for i in (1, 2, 3, 7):                                     # B2, B3, B4, B8 (10 m)
        assert abs(a[i][ok].mean() - b[i][ok].mean()) < 2e-3
        assert np.corrcoef(a[i][ok], b[i][ok])[0, 1] > 0.9


def bad_item(scene, tmp_path, name, change):
    item = json.load(open(scene['items']['pc']))
    for asset in item['assets'].values():
        asset['href'] = os.path.join(os.path.dirname(scene['items']['pc']), asset['href'])
    change(item)
    path = tmp_path / name
    path.write_text(json.dumps(item))
    return str(path)


def refused(src, scene, tmp_path, capsys, *words):
    out = tmp_path / 'maps'
    assert predict.main(['--s2', src, '--dem', scene['dem'], '--out', str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and os.path.basename(src) in err, err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_items_of_other_missions_and_missing_bands_are_refused(scene, tmp_path, capsys):
    s1 = bad_item(scene, tmp_path, 's1.json', lambda i: i.update(collection='sentinel-1-grd') or
                  i['properties'].update(platform='sentinel-1a'))
    refused(s1, scene, tmp_path, capsys, 'sentinel-1-grd', 'not a Sentinel-2')
    landsat = bad_item(scene, tmp_path, 'lc.json', lambda i: i.update(
        collection='landsat-c2-l2') or i['properties'].update(platform='landsat-8'))
    refused(landsat, scene, tmp_path, capsys, 'landsat-c2-l2')
    no_b05 = bad_item(scene, tmp_path, 'nob05.json', lambda i: i['assets'].pop('B05'))
    refused(no_b05, scene, tmp_path, capsys, 'B05', 'no asset')
    gone = bad_item(scene, tmp_path, 'gone.json', lambda i: i['assets']['B12'].update(
        href='/nowhere/B12.tif'))
    refused(gone, scene, tmp_path, capsys, '/nowhere/B12.tif', 'unreadable')
    broken = tmp_path / 'broken.json'
    broken.write_text('{"type": "Feature", "assets": ')
    refused(str(broken), scene, tmp_path, capsys, 'not a readable STAC item')


def test_a_folder_of_two_grids_is_refused(scene, tmp_path, capsys):
    folder = tmp_path / 'two-grids'
    shutil.copytree(scene['ee'], folder)
    with rasterio.open(folder / 'download.B5.tif') as f:
        x, profile = f.read(), f.profile
    t = profile['transform']                                   # 40 pixels to the east
    profile['transform'] = rasterio.Affine(t.a, t.b, t.c + 40 * t.a, t.d, t.e, t.f)
    with rasterio.open(folder / 'download.B5.tif', 'w', **profile) as f:
        f.write(x)
    refused(str(folder), scene, tmp_path, capsys, 'download.B5.tif', 'another grid')
    os.remove(folder / 'download.B5.tif')
    refused(str(folder), scene, tmp_path, capsys, 'B05')


def test_a_baseline_is_compared_as_a_number():
    from mapping.stac import baseline_at_least
    assert baseline_at_least('04.00', (4, 0)) and baseline_at_least(5.11, (4, 0))
    assert not baseline_at_least('3.5', (4, 0))                # as text, '3.5' > '04.00'
    assert not baseline_at_least('02.14', (4, 0)) and not baseline_at_least(None, (4, 0))


def test_hrefs_are_read_where_they_lie(tmp_path):
    from mapping.stac import href
    item = str(tmp_path / 'items' / 'x.json')
    assert href(item, 'https://e.example/S2/B02.tif') == '/vsicurl/https://e.example/S2/B02.tif'
    assert href(item, 's3://eodata/Sentinel-2/B02_10m.jp2') == '/vsis3/eodata/Sentinel-2/B02_10m.jp2'
    assert href(item, 'cogs/B02.tif') == str(tmp_path / 'items' / 'cogs' / 'B02.tif')
    assert href(item, '/data/B02.tif') == '/data/B02.tif'


def test_a_level_1c_item_stacks_as_its_safe(tmp_path):
    p = product.synth_product(str(tmp_path / 'p'), 132, seed=5, level='L1C')
    paths = items.write_items(p['product'], str(tmp_path / 'items'))
    safe = stack_of(p['product'], p['dem'], str(tmp_path / 'safe.tif'))[0]
    for kind in ('earthsearch', 'pc'):                   # B10 as `cirrus` and as B10
        pr = S2.open_product(paths[kind])
        assert pr['level'] == 'L1C' and 'B10' in pr['files'] and pr['mask'] is None
        S2.stack(paths[kind], p['dem'], str(tmp_path / f'{kind}.tif'), log=lambda *_: None)
        with rasterio.open(tmp_path / f'{kind}.tif') as f:
            assert np.nanmax(np.abs(f.read() - safe)) <= 1.01e-4, kind
