"""Tests of an area of interest (mapping/aoi.py): a product stacked and mapped inside a polygon
equals the whole product's stack inside it and its map away from the border, nothing outside it
is called landslide, the record names the area; an area off the product, a line, a box that is
no box and an area with --scene are refused with one line, exit 2, nothing written.

    python -m pytest -q mapping/test_aoi.py
"""
import glob
import json

import numpy as np
import pytest

import predict
from synthetic import product

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


def geojson(path, points, kind='Polygon'):
    """A FeatureCollection of one geometry whose vertices are given in the product's UTM metres
    and written in degrees, as GeoJSON is. -> path"""
    from rasterio.warp import transform
    lon, lat = transform('EPSG:32645', 'EPSG:4326', *zip(*points))
    ring = [[a, b] for a, b in zip(lon, lat)]
    coords = [ring + ring[:1]] if kind == 'Polygon' else ring
    feature = dict(type='Feature', properties={}, geometry=dict(type=kind, coordinates=coords))
    with open(path, 'w') as f:
        json.dump(dict(type='FeatureCollection', features=[feature]), f)
    return str(path)


@pytest.fixture(scope='module')
def valley(tmp_path_factory):
    """A 384-pixel L2A product and a pentagon of radius 1.3 km inside it."""
    d = tmp_path_factory.mktemp('aoi')
    p = product.synth_product(str(d / 'p'), 384, seed=2, level='L2A')
    cx, cy = 500000 + 10 * 230, 3100000 - 10 * 220
    t = np.linspace(0, 2 * np.pi, 6)[:-1]
    p['aoi'] = geojson(d / 'aoi.geojson', list(zip(cx + 1300 * np.cos(t), cy + 1300 * np.sin(t))))
    p['off'] = geojson(d / 'off.geojson', [(700000, 3000000), (701000, 3000000),
                                           (701000, 3001000)])
    p['line'] = geojson(d / 'line.geojson', [(cx, cy), (cx + 500, cy)], 'LineString')
    return p


def read(folder, suffix):
    path, = [f for f in glob.glob(f'{folder}/*.tif') if f.endswith(suffix) and
             (suffix or not f.endswith(('_landslide.tif', '_probability.tif', '_clouds.tif')))]
    with rasterio.open(path) as f:
        return f.read(), f.transform, f.tags()


def erode(m, k):
    """A bool mask shrunk by k pixels (4-neighbour)."""
    for _ in range(k):
        m = m.copy()
        m[1:] &= m[:-1].copy()
        m[:-1] &= m[1:].copy()
        m[:, 1:] &= m[:, :-1].copy()
        m[:, :-1] &= m[:, 1:].copy()
    return m


def test_an_area_maps_as_the_whole_product_inside_it(valley, tmp_path):
    for k, extra in (('whole', []), ('aoi', ['--aoi', valley['aoi']])):
        assert predict.main(['--s2', valley['product'], '--dem', valley['dem'], '--out',
                             str(tmp_path / k), '--device', 'cpu'] + extra) == 0
    (whole, tw, _), (part, tp, tags) = read(tmp_path / 'whole', '_landslide.tif'), \
        read(tmp_path / 'aoi', '_landslide.tif')
    c0, r0 = int(round((tp.c - tw.c) / 10)), int(round((tw.f - tp.f) / 10))
    h, w = part.shape[1:]
    assert (h, w) < (384, 384) and 0 < c0 and 0 < r0        # the window, not the tile, was read
    inside = part[0] != 255
    assert 0.6 < inside.mean() < 0.9                           # a pentagon in its box
    whole = whole[0, r0:r0 + h, c0:c0 + w]
    core = erode(inside, 16)
    assert (whole[core] == part[0][core]).mean() > 0.99
    assert not (part[0][~inside] == 1).any() and (part[0][~inside] == 255).all()
    stack_w, stack_p = read(tmp_path / 'whole', '')[0], read(tmp_path / 'aoi', '')[0]
    stack_w = stack_w[:, r0:r0 + h, c0:c0 + w]
    assert np.abs(stack_w[:12, inside] - stack_p[:12, inside]).max() <= 1.01e-4   # the bands
    assert np.abs(stack_w[13, inside] - stack_p[13, inside]).max() < 1.0          # DEM, m
    assert np.isnan(stack_p[:, ~inside]).all()
    assert tags['SOURCE_AOI'] == valley['aoi']
    (_, info), = json.load(open(tmp_path / 'aoi' / 'summary.json')).items()
    assert info['input']['aoi'] == valley['aoi'] and info['size'] == [h, w]


def refused(valley, tmp_path, capsys, extra, *words):
    out = tmp_path / 'maps'
    assert predict.main(['--s2', valley['product'], '--dem', valley['dem'], '--out', str(out)] +
                        extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not out.exists()


def test_areas_off_the_product_or_not_polygons_are_refused(valley, tmp_path, capsys):
    refused(valley, tmp_path, capsys, ['--aoi', valley['off']], 'off.geojson', 'does not overlap')
    refused(valley, tmp_path, capsys, ['--aoi', valley['line']], 'line.geojson', 'LineString')
    refused(valley, tmp_path, capsys, ['--bbox', '85.5', '27.9', '85.3', '27.7'], 'not a box')
    refused(valley, tmp_path, capsys, ['--bbox', '0', '0', '1', '1'], 'does not overlap')
    (tmp_path / 'bad.geojson').write_text('{"type": ')
    refused(valley, tmp_path, capsys, ['--aoi', str(tmp_path / 'bad.geojson')], 'bad.geojson',
            'not a readable GeoJSON')
