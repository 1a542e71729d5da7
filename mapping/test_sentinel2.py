"""Tests of sentinel2.py (stacking a product and a DEM), polygons.py and predict.py --s2: both
layouts, offsets, a no-data corner, a DEM in EPSG:4326, bad inputs, polygons, --truth, --out.

    python -m pytest -q mapping/test_sentinel2.py
"""
import json
import os
import shutil

import h5py
import numpy as np
import pytest

import landslide as L
import predict
from mapping import __main__ as cli, dem, polygons, scene as S, sentinel2
from synthetic import product

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


@pytest.fixture(scope='module')
def products(tmp_path_factory):
    """One synthetic scene as an L2A product (baseline 04.00, offset -1000), an L1C product
    zipped, and an L2A of baseline 02.12 (no offset), each with its DEM and truth."""
    d = tmp_path_factory.mktemp('products')
    return {k: product.synth_product(str(d / k), 192, seed=1, level=lvl, baseline=b, zip_=z)
            for k, lvl, b, z in (('l2a', 'L2A', '04.00', False), ('l1c', 'L1C', '04.00', True),
                                 ('old', 'L2A', '02.12', False))}


def stacked(p, tmp_path, name='s.tif', **kw):
    out = str(tmp_path / name)
    sentinel2.stack(p['product'], p['dem'], out, **kw)
    with rasterio.open(out) as f:
        info = dict(crs=f.crs, transform=f.transform, shape=f.shape, count=f.count,
                    descriptions=f.descriptions, blocks=f.block_shapes[0], compression=f.compression)
        return info, f.read()


def test_both_layouts_stack_onto_b02s_grid_in_reflectance(products, tmp_path):
    with h5py.File(products['l2a']['scene']) as f:
        ref = f['img'][()].transpose(2, 0, 1)          # the scene the products were made from
    for k in ('l2a', 'l1c', 'old'):
        f, x = stacked(products[k], tmp_path, f'{k}.tif')
        with rasterio.open(sentinel2.open_product(products[k]['product'])['files']['B02']) as b02:
            assert (f['crs'], f['transform'], f['shape']) == (b02.crs, b02.transform, b02.shape)
        assert f['count'] == 14 and f['compression'] is not None
        assert f['descriptions'][:2] == ('B01', 'B02') and f['descriptions'][12] == 'slope (degrees)'
        assert f['blocks'] == (256, 256) or f['shape'][0] < 256
        ok = np.isfinite(ref).all(0) & np.isfinite(x).all(0)
        assert ok.mean() > 0.8
        for band in (1, 2, 3, 7):                        # 10 m bands: DN rounding only (and,
            pos = ok & (ref[band] > 1e-3)                # before offsets, no reflectance < 0)
            assert np.abs(x[band][pos] - ref[band][pos]).max() < 1e-4 + 1e-6
        assert np.abs(x[4][ok] - ref[4][ok]).mean() < 0.02     # 20 m: resampled, close
        assert np.abs(x[13][ok] - ref[13][ok]).mean() < 5       # DEM via 30 m, within metres
        if k == 'l1c':                                   # B10 read, at 60 m
            assert x[9][ok].std() > 0
        else:                                            # L2A: B10 one constant
            assert np.all(x[9][ok] == sentinel2.B10_FILL)


def test_no_data_corner_is_no_data_in_every_band(products, tmp_path):
    _, x = stacked(products['l2a'], tmp_path)
    assert np.isnan(x[:, 0, 0]).all() and np.isfinite(x[:, -1, -1]).all()
    nd = np.isnan(x)
    assert (nd.any(0) == nd.all(0)).all()                # a pixel is no-data in all or none


def test_offsets_and_quantification_come_from_the_metadata(products):
    new = sentinel2.open_product(products['l2a']['product'])
    assert new['offset']['B02'] == -1000 and new['quantification'] == 10000
    assert sentinel2.open_product(products['old']['product'])['offset']['B04'] == 0.0
    assert sentinel2.open_product(products['l1c']['product'])['level'] == 'L1C'


def test_horn_slope_of_a_plane():
    yy, xx = np.mgrid[0:5, 0:6].astype(float)
    z = 3.0 * xx * 10 + 4.0 * yy * 10                    # rises 3 m per metre east, 4 south
    s = dem.horn_slope(z, 10.0, 10.0)
    assert s.shape == (3, 6) and np.allclose(s[:, 1:-1], np.degrees(np.arctan(5.0)), atol=1e-4)
    # border columns: the missing neighbour is the centre (as gdaldem -compute_edges), so the
    # east-west difference spans one pixel, not two
    assert np.allclose(s[:, [0, -1]], np.degrees(np.arctan(np.hypot(1.5, 4.0))), atol=1e-4)


def test_partial_dem_warns_with_the_covered_share_and_leaves_no_data(products, tmp_path):
    p = products['l2a']
    with rasterio.open(p['dem']) as f:
        z, prof = f.read(1), f.profile
    z[: z.shape[0] // 2] = prof['nodata']                # north half without elevation
    half = str(tmp_path / 'half.tif')
    with rasterio.open(half, 'w', **prof) as f:
        f.write(z, 1)
    lines = []
    _, x = stacked(dict(p, dem=half), tmp_path, log=lines.append)
    assert len(lines) == 1 and 'covers' in lines[0] and '%' in lines[0]
    share = float(lines[0].split('covers ')[1].split(' %')[0])
    assert 30 < share < 70
    assert np.isnan(x[:, 0, -1]).all() and np.isfinite(x[:, -1, -1]).all()


def bad_product(products, tmp_path, case):
    """A copy of the L2A product (or its DEM) spoilt one way. -> (product, dem, culprit)"""
    src = products['l2a']
    prod = str(tmp_path / os.path.basename(src['product']))
    shutil.copytree(src['product'], prod)
    dem = src['dem']
    files = sentinel2.open_product(prod)['files']
    if case == 'missing band':
        for d, _, fs in os.walk(prod):
            for f in fs:
                if '_B03_' in f:
                    os.remove(os.path.join(d, f))
        return prod, dem, 'B03'
    if case == 'truncated band':
        open(files['B05'], 'r+b').truncate(200)
        return prod, dem, os.path.basename(files['B05'])
    if case == 'not a product':
        os.remove(os.path.join(prod, 'MTD_MSIL2A.xml'))
        return prod, dem, 'not a Sentinel-2 product'
    if case == 'two granules':
        g = os.path.join(prod, 'GRANULE')
        first = os.listdir(g)[0]
        shutil.copytree(os.path.join(g, first), os.path.join(g, first + 'B'))   # a second tile
        return prod, dem, '2 granules'
    if case == 'other crs':
        with rasterio.open(files['B11']) as f:
            a, prof = f.read(), f.profile
        prof.update(crs='EPSG:32644')
        with rasterio.open(files['B11'], 'w', **prof) as f:
            f.write(a)
        return prod, dem, os.path.basename(files['B11'])
    with rasterio.open(dem) as f:
        z, prof = f.read(1), f.profile
    out = str(tmp_path / 'bad_dem.tif')
    if case == 'dem elsewhere':
        prof['transform'] = rasterio.transform.from_origin(10.0, 50.0, 0.00027, 0.00027)
    else:                                                # all no-data
        z[:] = prof['nodata']
    with rasterio.open(out, 'w', **prof) as f:
        f.write(z, 1)
    return prod, out, 'bad_dem.tif'


@pytest.mark.parametrize('case', ['missing band', 'truncated band', 'not a product', 'two granules',
                                  'other crs',
                                  'dem elsewhere', 'dem all no-data'])
def test_bad_product_one_line_exit_2_nothing_written(case, products, tmp_path, capsys):
    prod, dem, culprit = bad_product(products, tmp_path, case)
    out = tmp_path / 'out'
    out.mkdir()
    assert cli.main(['stack', prod, '--dem', dem, '--out', str(out / 'scene.tif')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: ') and culprit in err, err
    assert os.listdir(out) == []


def test_all_no_data_product_is_no_error(products, tmp_path):
    prod = str(tmp_path / 'p.SAFE')
    shutil.copytree(products['l2a']['product'], prod)
    for b, path in sentinel2.open_product(prod)['files'].items():
        with rasterio.open(path) as f:
            prof = f.profile
        with rasterio.open(path, 'w', **prof) as f:
            f.write(np.zeros((1, prof['height'], prof['width']), np.uint16))
    info = sentinel2.stack(prod, products['l2a']['dem'], str(tmp_path / 's.tif'))
    assert info['covered'] == 0 and info['nodata'] == 192 * 192


def test_polygons_add_up_to_the_mask_in_wgs84():
    mask = np.zeros((40, 50), np.uint8)
    mask[2:6, 3:9] = 1                                   # 24 pixels
    mask[20:30, 20:25] = 1                               # 50 pixels
    mask[21:23, 21:23] = 0                               # ... with a hole of 4
    mask[35, 45] = 1                                     # a speck
    mask[0, :] = S.NODATA_OUT
    mask[30:40, 0:3] = 254                               # not analysed, beside nothing
    mask[30:34, 25] = 254                                # ... touching the 50-pixel one diagonally
    prob = np.where(mask == 1, 0.8, 0.04).astype(np.float32)
    prob[mask >= 254] = np.nan
    prob[25, 22] = 1.0
    tr = rasterio.transform.from_origin(500000.0, 3100000.0, 10.0, 10.0)
    crs = rasterio.crs.CRS.from_epsg(32645)
    fc, area = polygons.landslide_polygons(mask, prob, tr, crs)
    props = [f['properties'] for f in fc['features']]
    assert sorted(p['pixels'] for p in props) == [1, 24, 46]
    assert area == 100.0 * int((mask == 1).sum()) == sum(p['area_m2'] for p in props)
    assert max(p['max_probability'] for p in props) == 1.0 and props[0]['mean_probability'] == 0.8
    touching = {p['pixels']: (p['touches_not_analysed'], p['touches_no_data']) for p in props}
    assert touching == {24: (False, False), 46: (True, False), 1: (False, False)}
    lon, lat = np.array(fc['features'][0]['geometry']['coordinates'][0]).T
    assert (86 < lon).all() and (lon < 88).all() and (27 < lat).all() and (lat < 29).all()
    fc2, area2 = polygons.landslide_polygons(mask, prob, tr, crs, min_area=150)
    assert len(fc2['features']) == 2 and area2 == area - 100


def test_inventory_check_counts_found_missed_and_false():
    truth = np.zeros((20, 20), bool)
    truth[1:4, 1:4] = truth[10:12, 10:12] = truth[16:18, 1:3] = True
    mask = np.zeros((20, 20), np.uint8)
    mask[2:5, 2:5] = 1                                   # finds the first
    mask[15:17, 15:17] = 1                               # a false alarm
    m = polygons.inventory_check(mask, truth)
    assert m['objects'] == dict(true=3, found=1, missed=2, predicted=2, false=1)
    tp, fp, fn = 4, 9, 13
    assert m['pixels']['precision'] == tp / (tp + fp) and m['pixels']['recall'] == tp / (tp + fn)


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """A short run that finds landslides: one U-Net, the demo's settings, round 0 only."""
    import refine
    out = str(tmp_path_factory.mktemp('demo') / 'run')
    assert refine.main(['--demo', '--out', out, '--rounds', '0', '--steps', '60',
                        '--models', 'unet', '--device', 'cpu']) == 0
    return out


def test_s2_maps_a_product_beside_its_inputs_with_polygons_and_truth(products, demo_run, tmp_path,
                                                                     monkeypatch):
    p = products['l1c']
    folder = os.path.dirname(p['product'])
    monkeypatch.chdir(folder)                            # --out maps, beside the inputs
    run = demo_run
    before = sorted(os.listdir(folder))
    assert predict.main(['--run', run, '--s2', os.path.basename(p['product']), '--dem', 'dem.tif',
                         '--truth', 'truth.tif', '--out', 'maps']) == 0
    assert sorted(f for f in os.listdir(folder) if f != 'maps') == before   # inputs untouched
    name = sentinel2.open_product(p['product'])['name']
    info = json.load(open('maps/summary.json'))[name]
    fc = json.load(open(f'maps/{name}_landslides.geojson'))
    assert info['landslides'] == len(fc['features']) and info['landslides'] > 0
    assert abs(info['landslides_m2'] - info['landslide_m2']) < 1
    m = json.load(open('maps/metrics.json'))[name]
    assert m['objects']['predicted'] == info['landslides'] and m['objects']['found'] > 0
    assert os.path.isfile(f'maps/{name}_quicklook.png')
    # the same scene given pre-stacked maps to nearly the same F1
    assert predict.main(['--run', run, '--scene', 'scene.tif', '--truth', 'truth.tif',
                         '--out', 'maps-pre']) == 0
    pre = json.load(open('maps-pre/metrics.json'))['scene']['pixels']['f1']
    assert pre > 0 and abs(m['pixels']['f1'] - pre) < 0.1, (m['pixels']['f1'], pre)


def test_out_inside_a_product_or_the_run_refused(products, demo_run, capsys):
    p = products['l2a']
    for out in (os.path.join(p['product'], 'maps'), os.path.join(demo_run, 'maps')):
        assert predict.main(['--run', demo_run, '--s2', p['product'], '--dem', p['dem'],
                             '--out', out]) == 2
        assert 'must not be' in capsys.readouterr().err
        assert not os.path.exists(out)
    assert predict.main(['--run', demo_run, '--s2', p['product'], '--out', '/tmp/x']) == 2
    assert '--dem' in capsys.readouterr().err


def test_scene_stack_command_reuses_nothing_and_writes_atomically(products, tmp_path):
    p = products['old']
    out = tmp_path / 'scene.tif'
    assert cli.main(['stack', p['product'], '--dem', p['dem'], '--out', str(out)]) == 0
    assert [f for f in os.listdir(tmp_path) if f.endswith('.tmp')] == []
    sc = S.Scene(str(out))
    assert (sc.H, sc.W) == (192, 192) and sc.rows(100, 101).shape == (1, 192, L.BANDS)
