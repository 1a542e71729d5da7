"""Tests of cloudy products: the product's own masks read onto the grid (SCL, MSK_CLASSI, the GML
before baseline 04.00), the buffer, 254 and NaN where the map could not see, statistics and
AdaBN over analysed pixels only, polygons at a cloud's edge, bad and missing masks, and the
generator's sky and native resolutions.

    python -m pytest -q mapping/test_clouds.py
"""
import ctypes
import glob
import json
import os
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

import landslide as L
import predict
from mapping import __main__ as cli, clouds, quicklook, scene as S, sentinel2, shadows, tiles
from synthetic import landscape, product, sky

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


@pytest.fixture(scope='module')
def cloudy(tmp_path_factory):
    """One scene under a 30 % cloudy sky as an L2A and an L1C product of baseline 04.00 and an
    L1C of baseline 02.09 (the GML mask), each stacked."""
    d = tmp_path_factory.mktemp('cloudy')
    out = {}
    for k, lvl, b in (('l2a', 'L2A', '04.00'), ('l1c', 'L1C', '04.00'), ('gml', 'L1C', '02.09')):
        p = product.synth_product(str(d / k), 192, seed=4, level=lvl, baseline=b, clouds=0.3)
        p['stack'] = str(d / k / 'stack.tif')
        sentinel2.stack(p['product'], p['dem'], p['stack'])
        out[k] = p
    return out


def read(path, band=1):
    with rasterio.open(path) as f:
        return f.read(band)


def granule_file(product, pattern):
    return glob.glob(os.path.join(product, 'GRANULE', '*', pattern))[0]


def test_scl_is_put_onto_the_grid_by_nearest_neighbour_and_its_classes_kept(cloudy):
    p = cloudy['l2a']
    scl = read(granule_file(p['product'], 'IMG_DATA/R20m/*_SCL_20m.jp2'))
    on_grid = np.repeat(np.repeat(scl, 2, 0), 2, 1)                 # 20 m -> 10 m, nearest
    ours = np.zeros_like(on_grid)
    for s, c in clouds.FROM_SCL.items():
        ours[on_grid == s] = c
    side = read(clouds.sidecar(p['stack']))
    data = side != 255
    fringe = data & (side != ours)            # only the clear edge of a cloud, marked cloud
    assert data.mean() > 0.9 and (ours[fringe] == 0).all() and (side[fringe] == 1).all()
    assert 0 < fringe.sum() < 0.05 * data.sum()
    assert (side == 1).any() and (side == 2).any() and (side == 3).any()
    # a landslide scar is bare ground (SCL 5, not vegetated): analysed, never a cloud
    truth, sky_truth = read(p['truth']) == 1, read(p['sky_truth'])
    clear_scar = truth & (sky_truth == 0) & data
    assert clear_scar.sum() > 20 and (side[clear_scar] == 0).mean() > 0.95
    # most pixels under a cloud are flagged; its faintest edge is not
    assert (side[(sky_truth == 1) & data] > 0).mean() > 0.9


def test_l1c_masks_classi_and_the_older_gml_give_the_same_grid(cloudy):
    classi, gml = (read(clouds.sidecar(cloudy[k]['stack'])) for k in ('l1c', 'gml'))
    assert np.array_equal(classi, gml)                   # polygons of the 60 m mask, rasterized
    assert set(np.unique(classi)) <= {0, 1, 2, 3, 255} and (classi == 1).mean() > 0.1
    m = sentinel2.open_product(cloudy['gml']['product'])['mask']
    assert m['kind'] == 'MSK_CLOUDS' and m['name'].endswith('MSK_CLOUDS_B00.gml')


def test_buffer_marks_the_pixels_near_a_cloud_and_no_others(cloudy, tmp_path):
    p = cloudy['l2a']
    out, ref = str(tmp_path / 'b.tif'), str(tmp_path / 'plain.tif')
    sentinel2.stack(p['product'], p['dem'], out, buffer=2, fringe=0)
    sentinel2.stack(p['product'], p['dem'], ref, fringe=0)          # the SCL as it is
    plain, near = read(clouds.sidecar(ref)), read(clouds.sidecar(out))
    src = np.isin(plain, clouds.BUFFERED)
    grown = src.copy()
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            grown |= np.roll(np.roll(np.pad(src, 2), dy, 0), dx, 1)[2:-2, 2:-2]
    expect = np.where(grown & (plain == 0), 6, plain)
    assert np.array_equal(near, expect) and (near == 6).sum() > 100
    assert sentinel2.stack_mask(out) == (2, 0, False)
    assert sentinel2.stack_mask(p['stack']) == (0, 1, False)


def test_l1c_shadows_are_found_where_the_geometry_puts_them(cloudy):
    """L1C's masks have no shadows: they are projected from the clouds along the sun's azimuth
    (MTD_TL.xml) and kept where the ground is dark; the generator's shadows are found, and little
    clear land is lost."""
    p = cloudy['l1c']
    assert sentinel2.open_product(p['product'])['sun'] == (sky.SUN['zenith'], sky.SUN['azimuth'])
    side, truth = read(clouds.sidecar(p['stack'])), read(p['sky_truth'])
    data = side != 255
    dark = (truth == sky.TRUTH.index('shadow')) & data
    marked = side == 3
    assert marked[dark].mean() > 0.4                              # most of the darker part
    assert marked[(truth == 0) & data].mean() < 0.03              # clear land kept
    assert (read(clouds.sidecar(cloudy['l2a']['stack'])) == 3).any()   # L2A: the SCL's own


def test_projection_lies_along_the_sun_azimuth_at_the_heights_distance():
    opaque = np.zeros((200, 200), bool)
    opaque[100, 100] = True
    for az, (sy, sx) in ((180.0, (-1, 0)), (90.0, (0, -1)), (135.0, (-1, -1))):
        got = shadows.projection(opaque, 45.0, az, 10.0, heights=(300.0, 600.0))
        ys, xs = np.nonzero(got)
        dist = np.hypot(ys - 100, xs - 100)
        assert dist.min() >= 29 and dist.max() <= 61             # 300 to 600 m at 45 degrees
        assert np.all(np.sign(ys - 100) == sy) and np.all(np.sign(xs - 100) == sx)
    # a sun due south casts shadows north: rows above the cloud, same column
    assert shadows.direction(180.0) == pytest.approx((-1.0, 0.0), abs=1e-9)


def test_each_blocks_clouds_get_the_height_their_shadow_is_at():
    """Two clouds in different blocks, their shadows 600 m and 2000 m up (sun due south, zenith
    45 degrees, 10 m pixels): each is found at its own height, and neither height's stretch
    reaches the other's shadow distance."""
    opaque, dark = np.zeros((600, 600), bool), np.zeros((600, 600), bool)
    opaque[100:140, 300:350] = opaque[400:440, 300:350] = True
    dark[40:80, 300:350] = True                                  # the first cloud's, 60 px north
    dark[200:240, 300:350] = True                                # the second's, 200 px north
    C = shadows.coarse
    height = shadows.heights(C(opaque), C(dark), C(~opaque), 45.0, 180.0, 10.0)
    got = shadows.cast(opaque, 0, height, 45.0, 180.0, 10.0)
    assert got[40:80, 300:350].all() and got[200:240, 300:350].all()
    assert not got[300:400].any()                    # the second cloud not smeared to 600 m
    assert not got[:20].any()                        # nor the first one to 2000 m


@pytest.mark.parametrize('buffer', [0, 2])
def test_shadows_marked_band_by_band_equal_the_whole_frame_at_once(cloudy, tmp_path, monkeypatch,
                                                                  buffer):
    """A band's shadows are cast from clouds as far sunward as they reach: marking the L1C mask in
    bands of 16 rows (lower heights, so the reach is 60 rows, not the whole product) gives the
    same mask as one band of the whole frame, the buffer grown band by band included."""
    p = cloudy['l1c']
    with rasterio.open(clouds.sidecar(p['stack'])) as f:
        before, profile = f.read(1), f.profile
    before[before == 3] = 0                              # the mask as MSK_CLASSI gave it
    monkeypatch.setattr(shadows, 'HEIGHTS', (200.0, 600.0))
    got = {}
    for rows in (16, 1024):
        path = str(tmp_path / f'mask{rows}.tif')
        with rasterio.open(path, 'w', **profile) as f:
            f.write(before[None])
        monkeypatch.setattr(shadows, 'ROWS', rows)
        n = shadows.add(p['stack'], path, sky.SUN['zenith'], sky.SUN['azimuth'], buffer)
        got[rows] = n, read(path)
    assert got[16][0] == got[1024][0] > 100
    assert np.array_equal(got[16][1], got[1024][1])
    assert ((got[16][1] == 6).sum() > 100) == (buffer > 0)


def test_a_hole_in_training_is_filled_as_mapping_fills_a_cloud(cloudy, tmp_path):
    """Training's holes (refine.py --sky HOLES 0) and mapping's clouds give the networks the same
    input: spectral bands at the mean, slope and DEM kept."""
    p = cloudy['l2a']
    bare = str(tmp_path / 'bare.tif')
    shutil.copy(p['stack'], bare)                                 # the same stack, no mask
    cloudy_sc, bare_sc = S.Scene(p['stack']), S.Scene(bare)
    stats = S.scene_stats(cloudy_sc)
    mean, std = np.float32(stats['mean']), np.float32(stats['std'])
    g = tiles.grid(cloudy_sc, 0)
    _, nd, un, with_clouds, cols = tiles.load_band(cloudy_sc, 0, g, None, mean, std)
    _, _, none, plain, cols2 = tiles.load_band(bare_sc, 0, g, None, mean, std)
    assert cols == cols2 and un.any() and not none.any()
    blob = torch.from_numpy(np.stack([un[:, i * 128:(i + 1) * 128] for i in cols]))
    filled, _ = L.hide(plain, blob)
    assert torch.equal(filled, with_clouds)
    x, y = L.holes(plain, torch.zeros(len(plain), 128, 128, dtype=torch.uint8),
                   torch.Generator().manual_seed(0), 1.0)
    hidden = y == L.IGNORE
    assert hidden.any() and torch.equal(x, L.hide(plain, hidden)[0])
    cloudy_sc.close()
    bare_sc.close()


def category_names(path):
    """The class names GDAL reads for band 1 (what a GIS's legend shows), through rasterio's
    own GDAL library."""
    libs = os.path.join(os.path.dirname(os.path.dirname(rasterio.__file__)), 'rasterio.libs')
    found = glob.glob(os.path.join(libs, 'libgdal*'))
    if not found:
        pytest.skip("rasterio's GDAL library not found")
    g = ctypes.CDLL(found[0])
    g.GDALAllRegister()
    for f, res, args in (('GDALOpen', ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]),
                         ('GDALGetRasterBand', ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
                         ('GDALGetMetadata', ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
                         ('GDALGetRasterCategoryNames', ctypes.c_void_p, [ctypes.c_void_p]),
                         ('GDALClose', None, [ctypes.c_void_p])):
        getattr(g, f).restype, getattr(g, f).argtypes = res, args
    ds = g.GDALOpen(str(path).encode(), 0)
    band = g.GDALGetRasterBand(ds, 1)
    g.GDALGetMetadata(band, None)                        # loads the .aux.xml
    ptr = g.GDALGetRasterCategoryNames(band)
    names = []
    if ptr:
        arr = ctypes.cast(ptr, ctypes.POINTER(ctypes.c_char_p))
        while arr[len(names)] is not None:
            names.append(arr[len(names)].decode())
    g.GDALClose(ds)
    return names


def test_cloudy_product_maps_254_and_nan_where_not_analysed(cloudy, trained, tmp_path):
    p = cloudy['l2a']
    out = tmp_path / 'maps'
    assert predict.main(['--run', trained, '--s2', p['product'], '--dem', p['dem'],
                         '--truth', p['truth'], '--out', str(out)]) == 0
    name = sentinel2.open_product(p['product'])['name']
    side = read(out / f'{name}_clouds.tif')
    mask, prob = read(out / f'{name}_landslide.tif'), read(out / f'{name}_probability.tif')
    hidden = (side > 0) & (side < 255)
    assert np.array_equal(mask == 254, hidden) and np.array_equal(mask == 255, side == 255)
    assert np.array_equal(np.isnan(prob), mask >= 254) and set(np.unique(mask)) <= {0, 1, 254, 255}
    with rasterio.open(out / f'{name}_landslide.tif') as f:
        assert f.colormap(1)[1][:3] == (230, 30, 30) and '254=not analysed' in f.tags(1)['CLASSES']
    names = category_names(out / f'{name}_landslide.tif')
    assert names[:2] == ['no landslide', 'landslide'] and names[254].startswith('not analysed')
    info = json.load(open(out / 'summary.json'))[name]
    assert info['not_analysed_pixels'] == hidden.sum()
    assert info['analysed_share'] == pytest.approx((side == 0).sum() / (side != 255).sum(), abs=1e-4)
    assert set(info['not_analysed_by_class']) <= set(clouds.CLASSES.values())
    holes = json.load(open(out / info['not_analysed_geojson']))
    assert len(holes['features']) > 0
    m = json.load(open(out / 'metrics.json'))[name]
    assert m['true_not_analysed'] == int(((read(p['truth']) == 1) & hidden).sum())


def test_statistics_and_adabn_see_only_what_was_analysed(cloudy, trained, tmp_path):
    """Whatever lies under the clouds, the analysed pixels map the same: the scene's statistics,
    AdaBN's tiles and the networks' inputs all leave the not-analysed pixels out."""
    p = cloudy['l2a']
    side = read(clouds.sidecar(p['stack']))
    with rasterio.open(p['stack']) as f:
        x, prof = f.read(), f.profile
    stats = S.scene_stats(S.Scene(p['stack']))
    ok = (side == 0) & np.isfinite(x).all(0)
    assert stats['valid'] == ok.sum()
    assert np.allclose(stats['mean'], x[:, ok].mean(1), rtol=1e-4, atol=1e-4)
    wild = x.copy()
    wild[:12, (side > 0) & (side < 255)] *= 40           # the clouds made absurd
    for k, img in (('same', x), ('wild', wild)):
        (tmp_path / k).mkdir()
        with rasterio.open(tmp_path / k / 'stack.tif', 'w', **prof) as f:
            f.write(img)
        shutil.copy(clouds.sidecar(p['stack']), tmp_path / k / 'stack_clouds.tif')
        assert predict.main(['--run', trained, '--scene', str(tmp_path / k / 'stack.tif'),
                             '--out', str(tmp_path / k / 'maps')]) == 0
    a, b = (read(tmp_path / k / 'maps' / 'stack_probability.tif') for k in ('same', 'wild'))
    assert np.isfinite(a).sum() == ok.sum() and np.array_equal(a, b, equal_nan=True)


def test_almost_nothing_analysed_is_all_254_with_a_warning(cloudy, trained, tmp_path, capsys):
    p = cloudy['l2a']
    shutil.copy(p['stack'], tmp_path / 'stack.tif')
    side = read(clouds.sidecar(p['stack']))
    with rasterio.open(clouds.sidecar(p['stack'])) as f:
        prof = f.profile
    side[side == 0] = 1
    side[100, 100] = 0                                   # one pixel clear
    with rasterio.open(tmp_path / 'stack_clouds.tif', 'w', **prof) as f:
        f.write(side, 1)
    assert predict.main(['--run', trained, '--scene', str(tmp_path / 'stack.tif'),
                         '--out', str(tmp_path / 'maps')]) == 0
    assert 'could be analysed' in capsys.readouterr().out
    mask = read(tmp_path / 'maps' / 'stack_landslide.tif')
    assert set(np.unique(mask[side != 255])) == {254}


def spoil(cloudy, tmp_path, case):
    """A copy of the L2A (or the GML) product with its cloud mask spoilt. -> (product, culprit)"""
    src = cloudy['gml' if case == 'cut gml' else 'l2a']['product']
    prod = str(tmp_path / os.path.basename(src))
    shutil.copytree(src, prod)
    if case == 'truncated scl':
        f = granule_file(prod, 'IMG_DATA/R20m/*_SCL_20m.jp2')
        open(f, 'r+b').truncate(300)
    elif case == 'cut gml':
        f = granule_file(prod, 'QI_DATA/MSK_CLOUDS_B00.gml')
        text = open(f).read()
        open(f, 'w').write(text[:len(text) // 2])
    return prod, os.path.basename(f)


@pytest.mark.parametrize('case', ['truncated scl', 'cut gml'])
def test_unreadable_mask_is_bad_input_nothing_written(case, cloudy, tmp_path, capsys):
    prod, culprit = spoil(cloudy, tmp_path, case)
    out = tmp_path / 'out'
    out.mkdir()
    dem = cloudy['l2a']['dem']
    assert cli.main(['stack', prod, '--dem', dem, '--out', str(out / 'scene.tif')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: ') and culprit in err, err
    assert os.listdir(out) == []


def test_product_without_masks_gets_clouds_from_the_spectra_or_none(cloudy, tmp_path):
    """A product without masks: with --detect-clouds its clouds found by Fmask's tests over the
    whole scene (and shadows from the sun's angles), one warning; without, mapped as ground."""
    prod = str(tmp_path / 'p.SAFE')
    shutil.copytree(cloudy['l2a']['product'], prod)
    for f in glob.glob(os.path.join(prod, 'GRANULE', '*', '*', '*MSK_*')) + \
            glob.glob(os.path.join(prod, 'GRANULE', '*', 'IMG_DATA', '*', '*_SCL_*')):
        os.remove(f)
    lines = []
    info = sentinel2.stack(prod, cloudy['l2a']['dem'], str(tmp_path / 'd.tif'), log=lines.append,
                           detect=True)
    assert 'no cloud mask' in lines[0] and "found by Fmask's spectral tests alone" in lines[0]
    found, sky_truth = read(str(tmp_path / 'd_clouds.tif')), read(cloudy['l2a']['sky_truth'])
    assert (found[sky_truth == 1] == 1).mean() > 0.8 and (found[sky_truth == 0] == 1).mean() < 0.03
    assert (found == 3).any() and info['not_analysed'] > 0
    assert sentinel2.stack_mask(str(tmp_path / 'd.tif')) == (0, 1, True)
    lines = []
    info = sentinel2.stack(prod, cloudy['l2a']['dem'], str(tmp_path / 's.tif'), log=lines.append)
    assert len(lines) == 1 and 'no cloud mask' in lines[0] and 'SCL_20m' in lines[0]
    assert 'the metadata lists' in lines[0]              # MTD_TL.xml names what is gone
    assert info['mask'] is None and not os.path.exists(tmp_path / 's_clouds.tif')
    sc = S.Scene(str(tmp_path / 's.tif'))
    assert sc.clouds is None and not sc.unseen(0, 192).any()


def test_synthetic_product_lists_its_masks_as_esa_does(cloudy):
    for k in ('l2a', 'l1c', 'gml'):
        prod = cloudy[k]['product']
        tile = ET.parse(granule_file(prod, 'MTD_TL.xml')).getroot()
        listed = [e.text for e in tile.iter('MASK_FILENAME')]
        assert listed and all(os.path.isfile(os.path.join(prod, m)) for m in listed)
        meta = ET.parse(glob.glob(os.path.join(prod, 'MTD_MSI*.xml'))[0]).getroot()
        images = [e.text for e in meta.iter('IMAGE_FILE')]
        assert all(glob.glob(os.path.join(prod, i + '.jp2')) for i in images)
        assert any('_SCL_20m' in i for i in images) == (k == 'l2a')


def test_the_sky_hides_casts_shadows_and_raises_b10():
    rng = np.random.default_rng(0)
    sk = sky.draw(rng, 256, 0.3)
    assert 0.2 < (sk['cloud'] > sky.VISIBLE['cloud']).mean() < 0.4
    ground = np.full((256, 256, 12), 0.05)
    seen = sky.apply(ground, sk)
    opaque, shadow = sk['cloud'] == 1, (sk['shadow'] > 0.5) & (sk['cloud'] == 0) & (sk['cirrus'] == 0)
    assert np.allclose(seen[opaque], sky.CLOUD) and (seen[opaque][:, 1:4] > 0.6).all()   # white
    assert (seen[shadow][:, 3] < 0.03).all() and shadow.sum() > 100                      # dark
    cirrus = (sk['cirrus'] > 0.03) & (sk['cloud'] == 0) & (sk['shadow'] == 0)
    assert (seen[cirrus][:, 9] > ground[0, 0, 9] + 0.03).all()


def test_native_resolution_averages_each_band_and_resamples_it_as_gdal_does(tmp_path):
    from rasterio.transform import from_origin
    from rasterio.vrt import WarpedVRT
    rng = np.random.default_rng(1)
    refl = rng.uniform(0, 1, (60, 60, 12))
    out = landscape.sensor_resolution(refl)
    assert np.array_equal(out[..., 1], refl[..., 1])                     # B02: 10 m, as drawn
    for band, k in (('B05', 2), ('B01', 6)):
        i = landscape.BANDS.index(band)
        coarse = landscape.block_mean(refl[..., i], k).astype(np.float32)
        assert out[..., i].std() < refl[..., i].std() / (k * 0.8)          # detail averaged away
        path = str(tmp_path / f'{band}.tif')                             # GDAL's bilinear warp
        with rasterio.open(path, 'w', driver='GTiff', width=60 // k, height=60 // k, count=1,
                           dtype='float32', crs='EPSG:32645',
                           transform=from_origin(0, 0, 10 * k, 10 * k)) as f:
            f.write(coarse, 1)
        with rasterio.open(path) as f, WarpedVRT(f, crs=f.crs, transform=from_origin(0, 0, 10, 10),
                                                 width=60, height=60,
                                                 resampling=rasterio.enums.Resampling.bilinear) as v:
            assert np.abs(v.read(1) - out[..., i]).max() < 1e-5


def test_quicklook_shows_land_hatches_what_was_not_seen_and_has_a_legend():
    raw = np.random.default_rng(0).uniform(0.03, 0.08, (64, 64, 3))
    raw[:, 32:] = 0.9                                     # a bright cloud over half the scene
    raw[5:10, 5:10] = 0.2
    classes = np.zeros((64, 64), np.uint8)
    classes[:, 32:] = tiles.NOT_ANALYSED
    classes[5:10, 5:10] = 1
    img = quicklook.picture(raw, classes, tiles.STYLES)
    assert img.shape[0] > 64 and (img[64:] == 255).mean() > 0.5           # a legend band below
    land = img[20:60, 10:30].astype(int)
    assert 60 < land.mean() < 200                          # stretched over the land, not the cloud
    hatch = img[:64, 32:]
    assert len({tuple(v) for v in hatch.reshape(-1, 3)}) <= 3            # the veil and its stripes
    assert (img[5, 5:10] == (255, 40, 40)).all()                          # the landslide outlined
