"""Tests of before/after mapping: each change class and rule on a hand-made pair, the synthetic
event's truth, predict.py --before end to end (a cloudy before-date on another tile, warped
onto the after grid; statuses in the polygons and the summary) and its bad input.

    python -m pytest -q mapping/test_change.py
"""
import glob
import json
import os
import types

import numpy as np
import pytest

import predict
from mapping import change, polygons, scene as S

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')
from synthetic import event as ev  # noqa: E402  (needs rasterio)

VEG, BARE = (0.05, 0.40), (0.20, 0.25)         # (red, NIR): NDVI 0.78 and 0.11


def fake_scene(red_nir):
    """A 40 x 40 stack whose B4 and B8 are red_nir float [40, 40, 2]; what classify reads."""
    x = np.full((40, 40, 14), 0.1, np.float32)
    x[..., 3], x[..., 7] = red_nir[..., 0], red_nir[..., 1]
    from rasterio.transform import from_origin
    return types.SimpleNamespace(H=40, W=40, transform=from_origin(0, 400, 10, 10),
                                 rows=lambda a, b: x[a:b])


@pytest.fixture(scope='module')
def pair():
    """Five landslides on the after map: A there before, B new on lost vegetation, C new to the
    before map but bare on both dates (an old scar it missed), D under a cloud before, E two
    thirds there before; not-analysed and no-data rows kept."""
    after_map, before_map = np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8)
    before, after = np.empty((40, 40, 2)), np.empty((40, 40, 2))
    before[:], after[:] = VEG, VEG
    boxes = dict(A=(2, 2), B=(2, 12), C=(12, 2), D=(12, 12), E=(22, 2))
    for k, (r, c) in boxes.items():
        after_map[r:r + 6, c:c + 6] = 1
        after[r:r + 6, c:c + 6] = BARE
    before_map[2:8, 2:8] = 1
    before[2:8, 2:8] = BARE
    before[12:18, 2:8] = BARE                                  # C: bare on both dates
    before_map[12:18, 12:18] = 254                             # D: cloud before
    before_map[22:26, 2:8] = 1                                 # E: rows 22-25 of 22-27
    after_map[30:34], after_map[36:] = 254, 255
    return after_map, before_map, fake_scene(after), fake_scene(before), boxes


def statuses(classes, boxes):
    return {k: sorted(set(classes[r:r + 6, c:c + 6].ravel().tolist()))
            for k, (r, c) in boxes.items()}


@pytest.mark.parametrize('rule, expect', [
    ('objects+ndvi', dict(A=[2], B=[1], C=[2], D=[3], E=[2])),
    ('objects', dict(A=[2], B=[1], C=[1], D=[3], E=[2])),
    ('pixels+ndvi', dict(A=[2], B=[1], C=[2], D=[3], E=[1, 2])),
    ('pixels', dict(A=[2], B=[1], C=[1], D=[3], E=[1, 2]))])
def test_each_rule_dates_each_kind_of_landslide(pair, rule, expect):
    after_map, before_map, after, before, boxes = pair
    classes, info = change.classify(after_map, before_map, after, before, rule)
    assert statuses(classes, boxes) == expect
    assert (classes[30:34] == 254).all() and (classes[36:] == 255).all()
    assert (classes[after_map == 0] == 0).all()
    assert info['median_ndvi_change'] == (pytest.approx(0.0, abs=1e-3) if 'ndvi' in rule else None)
    assert sum(info['pixels'].values()) == (after_map == 1).sum()


def test_vegetation_loss_is_measured_beyond_the_scenes_own_change(pair):
    """A season that browned the whole scene does not make an old bare scar new."""
    after_map, before_map, _, _, boxes = pair
    before, after = np.empty((40, 40, 2)), np.empty((40, 40, 2))
    before[:], after[:] = VEG, (0.09, 0.36)                    # everything lost ~0.18 NDVI
    for k, (r, c) in boxes.items():
        after[r:r + 6, c:c + 6] = BARE
    before[12:18, 2:8] = (0.14, 0.25)                          # C: lost the scene's own ~0.18
    classes, info = change.classify(after_map, before_map, fake_scene(after),
                                    fake_scene(before), 'objects+ndvi')
    assert info['median_ndvi_change'] == pytest.approx(0.18, abs=0.02)
    got = statuses(classes, boxes)
    assert got['C'] == [2] and got['B'] == [1]


def test_synthetic_event_truth_is_what_the_two_dates_show(tmp_path):
    p = ev.synth_event(str(tmp_path / 'ev'), 192, seed=1)
    truth = S.read_output(p['truth'], 'mask')
    scenes = {k: S.Scene(os.path.join(tmp_path, 'ev', k, 'scene.tif')) for k in ('after', 'before')}
    loss = change.ndvi_loss(scenes['after'], scenes['before'], 0, 192)
    med = np.nanmedian(loss[truth == 0])
    for k, (lo, hi) in {1: (0.1, 1), 2: (-0.1, 0.1), 3: (0.1, 1)}.items():
        assert (truth == k).sum() > 30, ev.TRUTH[k]
        assert lo < np.nanmedian(loss[truth == k]) - med < hi, ev.TRUTH[k]
    with rasterio.open(os.path.join(tmp_path, 'ev', 'after', 'scene.tif')) as f:
        assert f.count == 14


@pytest.fixture(scope='module')
def event(tmp_path_factory):
    """A cloudy L1C event whose before-date lies on a tile of the next UTM zone."""
    d = tmp_path_factory.mktemp('event')
    p = ev.synth_event(str(d / 'ev'), 192, seed=2, level='L1C', clouds=0.3,
                       before_tile=True)
    return p


def test_before_on_another_tile_is_warped_and_its_clouds_are_unseen_before(event, trained,
                                                                           tmp_path):
    out = tmp_path / 'maps'
    assert predict.main(['--run', trained, '--s2', event['after'], '--before', event['before'],
                         '--dem', event['dem'], '--truth', event['truth_new'], '--out', str(out),
                         '--device', 'cpu']) == 0
    info = next(iter(json.load(open(out / 'summary.json')).values()))
    stacks = {k: rasterio.open(v) for k, v in (('after', info['scene']),
                                               ('before', info['before']['scene']))}
    assert stacks['after'].crs != rasterio.open(glob.glob(os.path.join(
        event['before'], 'GRANULE', '*', 'IMG_DATA', '*_B02.jp2'))[0]).crs   # another zone
    for k in ('crs', 'transform', 'width', 'height'):
        assert getattr(stacks['after'], k) == getattr(stacks['before'], k), k
    name = os.path.splitext(os.path.basename(info['scene']))[0]
    bname = os.path.splitext(os.path.basename(info['before']['scene']))[0]
    classes = S.read_output(str(out / f'{name}_landslide.tif'), 'landslide')
    before_map = S.read_output(str(out / f'{bname}_landslide.tif'), 'landslide')
    assert set(np.unique(classes)) <= {0, 1, 2, 3, 254, 255}
    with rasterio.open(out / f'{name}_landslide.tif') as f:
        assert f.colormap(1)[1][:3] == change.CLASSES[1][1][:3]
    # the before-date's clouds, from its own mask onto the after grid, are what it could not see
    bclouds = S.Scene(info['before']['scene']).unseen(0, 192) > 0
    assert bclouds.mean() > 0.1
    assert ((before_map == 254) == (bclouds & (before_map != 255))).all()
    every = np.where(classes == 255, 255, np.where(classes == 254, 254, 1)).astype(np.uint8)
    pix, _ = change.classify(every, before_map, S.Scene(info['scene']),
                             S.Scene(info['before']['scene']), 'pixels')
    assert ((pix == change.UNSEEN) == ((before_map >= 254) & (every == 1))).all()
    assert (pix == change.UNSEEN).sum() > 100
    # polygons by status, counted in the summary; metrics of the new landslides
    feats = json.load(open(out / info['geojson']))['features']
    by = info['by_status']
    assert set(by) == {'new', 'before', 'unseen before'}
    for s, v in by.items():
        assert v['landslides'] == sum(f['properties']['status'] == s for f in feats)
    assert sorted(f['properties']['id'] for f in feats) == list(range(1, len(feats) + 1))
    assert name in json.load(open(out / 'metrics.json'))
    assert info['change']['rule'] == 'pixels'


def test_each_polygon_carries_the_status_of_its_pixels(event, tmp_path):
    """Landslides of each class, two of them touching, traced into polygons by status."""
    from rasterio import features
    from rasterio.warp import transform_geom
    sc = S.Scene(os.path.join(os.path.dirname(event['after']), 'scene.tif'))
    classes = np.zeros((sc.H, sc.W), np.uint8)
    for v, (r, c) in zip((1, 2, 3, 1, 2), ((60, 60), (60, 100), (100, 60), (140, 140),
                                           (140, 150))):
        classes[r:r + 10, c:c + 10] = v                        # the last two touch
    classes[:20] = 254
    out = tmp_path / 'maps'
    os.makedirs(out)
    change.write(str(out / f'{sc.name}_landslide.tif'), classes, sc)
    w = S.Writer(str(out / f'{sc.name}_probability.tif'), sc, 'probability', dtype='float32')
    w.write(0, np.where(classes > 0, 0.9, 0.1).astype(np.float32))
    w.commit()
    info, _ = polygons.trace_scene(sc, str(out), 0.0, None, print, change=True)
    feats = json.load(open(out / info['geojson']))['features']
    assert {s: v['landslides'] for s, v in info['by_status'].items()} == \
        {'new': 2, 'before': 2, 'unseen before': 1}
    code = {v: k for k, v in change.STATUS.items()}
    for f in feats:
        g = transform_geom('EPSG:4326', sc.crs, f['geometry'])       # GeoJSON is in WGS 84
        inside = features.rasterize([g], out_shape=classes.shape, transform=sc.transform) == 1
        assert inside.sum() == 100 and set(np.unique(classes[inside])) == \
            {code[f['properties']['status']]}


def run_cli(argv, capsys):
    code = predict.main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize('case', ['sensed after', 'elsewhere'])
def test_bad_pair_is_one_line_exit_2_nothing_written(case, event, trained, tmp_path, capsys):
    after, before = event['after'], event['before']
    if case == 'sensed after':
        after, before = before, after
    else:
        far = ev.synth_event(str(tmp_path / 'far'), 192, seed=3,
                             origin=(700000.0, 3400000.0))
        before = far['before']
    out = tmp_path / 'maps'
    code, err = run_cli(['--run', trained, '--s2', after, '--before', before, '--dem',
                         event['dem'], '--out', str(out), '--device', 'cpu'], capsys)
    assert code == 2 and len(err) == 1 and before in err[0]
    assert ('not before' if case == 'sensed after' else 'does not overlap') in err[0]
    assert not out.exists()
