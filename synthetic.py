"""Synthetic Landslide4Sense data with a domain shift, written by code anyone can read and rerun:
terrain and slope, vegetation over soil with Sentinel-2-like spectra and hill shading, landslide
scars on steep ground (about 2 % of pixels), and look-alikes (rock outcrops, bare fields, river
bars). The target domain differs by sensor gain/offset, drier cover, higher terrain, tinted soil,
older scars and haze (README: the synthetic data).

    python synthetic.py synth data/ --train 400 --valid 60 --test 120 --shift 1.0
    python synthetic.py synth-scene scenes/ --size 2048 --shift 1.0 --seed 0
    python synthetic.py synth-product products/ --level L2A --size 768 [--zip]
"""
import argparse
import os
import sys

import h5py
import numpy as np

import landslide as L

# Approximate surface reflectance for Sentinel-2 B1..B12 (443 ... 2190 nm; B10 is cirrus).
SPECTRA = {
    'vegetation': [.030, .040, .070, .040, .100, .250, .320, .350, .300, .005, .180, .090],
    'soil':       [.060, .075, .100, .120, .140, .170, .190, .200, .190, .006, .260, .200],
    'scar':       [.100, .125, .165, .205, .225, .245, .260, .270, .260, .010, .300, .250],
    'field':      [.095, .120, .160, .200, .220, .240, .255, .265, .255, .010, .305, .260],
    'gravel':     [.105, .130, .170, .200, .215, .230, .240, .245, .240, .010, .280, .230],
    'rock':       [.110, .130, .160, .185, .200, .215, .225, .230, .225, .010, .260, .220],
    'water':      [.050, .060, .050, .030, .030, .020, .020, .020, .010, .002, .010, .005],
}


def _noise(rng, sigma, n=L.SIZE):
    """Smooth random field, mean 0 and std 1; sigma in pixels. -> float64 [n, n]"""
    m = 2 * n                                           # make it larger, crop: no wrap-around
    f = np.fft.fftfreq(m)
    k = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    z = np.fft.ifft2(np.fft.fft2(rng.standard_normal((m, m))) * k).real[:n, :n]
    return (z - z.mean()) / (z.std() + 1e-12)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def domain(shift, seed, kind='all'):
    """Parameters of the source (shift 0) or a target domain: a per-band sensor gain and offset,
    drier cover, higher and steeper terrain, differently coloured soil and rock, older (partly
    revegetated) landslide scars and more haze as shift grows. kind='sensor': only the sensor
    gain and offset and the haze differ (what separated normalization can absorb). kind='scars':
    only the landslides differ, older than the source's (the same land, cover and sensor)."""
    rng = np.random.default_rng([seed, 7])
    d = {'gain': np.exp(0.3 * shift * rng.standard_normal(L.SPECTRAL)),
         'offset': 0.03 * shift * rng.standard_normal(L.SPECTRAL),
         'veg_bias': 1.0 - 1.2 * shift, 'base': 600 + 1500 * shift,
         'relief': 160 * (1 + 0.3 * shift),
         'tint': np.exp(0.25 * shift * rng.standard_normal(L.SPECTRAL)),   # soils of another colour
         'haze': 0.02 * shift, 'older': 0.2 * shift}
    if kind == 'sensor':
        d |= {'veg_bias': 1.0, 'base': 600, 'relief': 160, 'tint': np.ones(L.SPECTRAL),
              'older': 0.0}
    if kind == 'scars':                       # scar freshness 0.5-0.95 -> 0.1-0.55 at shift 1
        d = domain(0.0, seed) | {'older': 0.4 * shift}
    return d


# the codes of synth_patch's cover map
COVER = ('other', 'landslide', 'rock', 'field', 'gravel', 'water')


def synth_patch(rng, dom, n=L.SIZE, cover=False):
    """One patch, or with n > 128 one coherent n x n scene: the same terrain, cover, scars and
    look-alikes, their counts scaled with the area (n = 128 draws exactly as a patch always has).
    -> (img float32 [n, n, 14], mask uint8 [n, n]); with cover=True also what lies where, uint8
    [n, n] indexing COVER (the same draws: the image and mask do not change)"""
    area = (n / L.SIZE) ** 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dem, slope, gy, gx, shade = _terrain(rng, dom, n)
    # cover: vegetation over natural soil, thinner on steep ground
    veg = _sigmoid(2 * _noise(rng, 10, n) + dom['veg_bias'] + rng.normal(0, 0.5) - slope / 40)
    spec = {k: np.asarray(v) * (1 if k in ('vegetation', 'water') else dom['tint'])
            for k, v in SPECTRA.items()}
    refl = veg[..., None] * spec['vegetation'] + (1 - veg[..., None]) * spec['soil']
    mask = _scars(rng, dom, refl, spec, slope, gy, gx, yy, xx, area)
    looks = _lookalikes(rng, refl, spec, slope, mask, yy, xx, area)
    refl = refl * np.clip(0.55 + 0.6 * shade, 0.2, 1.3)[..., None]
    haze = rng.uniform(0, 0.03) + dom['haze']           # adds most to the blue end
    refl = refl + haze * np.linspace(1, 0.1, L.SPECTRAL)
    refl = refl * dom['gain'] + dom['offset'] + rng.normal(0, 0.008, refl.shape)
    img = np.concatenate([refl, slope[..., None], dem[..., None]], -1).astype(np.float32)
    if not cover:
        return img, mask.astype(np.uint8)
    where = np.zeros((n, n), np.uint8)
    for name, region in looks + [('landslide', mask)]:   # look-alikes as painted; labels over them
        where[region] = COVER.index(name)
    return img, mask.astype(np.uint8), where


def _terrain(rng, dom, n):
    """Hills where a smooth field says 'mountain', flat valley floors elsewhere, at 10 m pixels.
    -> (dem, slope in degrees, its gradient gy, gx, hill shading), each float64 [n, n]"""
    hills = 0.6 * _noise(rng, 20, n) + 0.3 * _noise(rng, 8, n) + 0.1 * _noise(rng, 3, n)
    mountain = _sigmoid(3 * _noise(rng, 30, n) + 1.5)
    base = dom['base'] + rng.uniform(0, 400)
    dem = base + dom['relief'] * rng.uniform(0.6, 1.4) * hills * mountain
    gy, gx = np.gradient(dem, 10.0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.arctan2(-gx, gy)
    sun_zen, sun_az = np.radians(40), np.radians(135)
    shade = np.cos(sun_zen) * np.cos(np.radians(slope)) + \
        np.sin(sun_zen) * np.sin(np.radians(slope)) * np.cos(sun_az - aspect)
    return dem, slope, gy, gx, shade


def _scars(rng, dom, refl, spec, slope, gy, gx, yy, xx, area):
    """Landslide scars painted into refl (in place): on steep slopes, elongated downslope, with
    ragged edges, each drawn in the 128 x 128 window around it. -> mask bool [n, n]"""
    n = len(slope)
    mask = np.zeros((n, n), bool)
    steep = np.argwhere(slope > 22)
    for _ in range(rng.poisson(3.0 * area) if len(steep) else 0):
        cy, cx = steep[rng.integers(len(steep))]
        y0 = min(max(cy - L.SIZE // 2, 0), n - L.SIZE)
        x0 = min(max(cx - L.SIZE // 2, 0), n - L.SIZE)
        win = np.s_[y0:y0 + L.SIZE, x0:x0 + L.SIZE]
        ang = np.arctan2(gy[cy, cx], gx[cy, cx])
        u = (xx[win] - cx) * np.cos(ang) + (yy[win] - cy) * np.sin(ang)
        v = -(xx[win] - cx) * np.sin(ang) + (yy[win] - cy) * np.cos(ang)
        a, b = rng.uniform(6, 18), rng.uniform(2, 5)
        scar = (u / a) ** 2 + (v / b) ** 2 < 1 + 0.35 * _noise(rng, 2)
        fresh = rng.uniform(0.5, 0.95) - dom['older']   # older scars are partly green again
        r = refl[win]
        r[scar] = (1 - fresh) * r[scar] + fresh * spec['scar'] * rng.uniform(0.85, 1.15)
        mask[win] |= scar
    return mask


def _lookalikes(rng, refl, spec, slope, mask, yy, xx, area):
    """Bare rock outcrops on steep ground (no landslides: their shape differs), and on flat
    ground, where only slope tells them apart, bare fields and river bars; painted into refl
    (in place). -> [(cover name, bool [n, n])] in the order painted"""
    n = len(slope)
    rock = (_noise(rng, 4, n) > 1.7) & (slope > 28) & ~mask
    flat = slope < 8
    fields = np.zeros((n, n), bool)
    flats = np.argwhere(flat)
    for _ in range(rng.poisson(1.5 * area) if len(flats) else 0):
        cy, cx = flats[rng.integers(len(flats))]
        h, w = rng.integers(4, 12, size=2)
        fields[max(cy - h, 0):cy + h, max(cx - w, 0):cx + w] = True
    fields &= flat
    water, bars, gravel = np.zeros((n, n), bool), np.zeros((n, n), bool), None
    for _ in range(max(1, round(n / L.SIZE))):          # rivers: one chance per 128 pixels of side
        if rng.random() < 0.4:
            t = rng.uniform(0, np.pi)
            along = (xx - n / 2) * np.cos(t) + (yy - n / 2) * np.sin(t)
            d = (xx - n / 2) * np.sin(t) - (yy - n / 2) * np.cos(t) + \
                rng.uniform(-30, 30) * n / L.SIZE + 8 * np.sin(along / 9)
            river = np.abs(d) < rng.uniform(1.5, 3.5)
            gravel = _noise(rng, 4, n) > 0.3 if gravel is None else gravel
            bars |= (np.abs(d) < 8) & ~river & gravel & flat
            water |= river
    bars &= ~water
    looks = [('field', fields), ('gravel', bars), ('water', water), ('rock', rock)]
    for (name, region), mix in zip(looks, (0.9, 0.9, 1.0, 0.8)):
        refl[region] = (1 - mix) * refl[region] + mix * spec[name] * rng.uniform(0.9, 1.1)
    return looks


def split_patches(split, count, shift=1.0, seed=0, kind='all', cover=False):
    """The patches synth writes for one split, in order (the source, 'train', has shift 0):
    yields synth_patch's outputs. Reading them again this way gives their cover maps."""
    rng = np.random.default_rng([seed, list(L.SPLITS).index(split)])
    dom = domain(0.0 if split == 'train' else shift, seed, kind)
    for _ in range(count):
        yield synth_patch(rng, dom, cover=cover)


def synth(out, train=400, valid=60, test=120, shift=1.0, seed=0, target_masks=True, kind='all'):
    """Write a dataset in the Landslide4Sense layout. The source (TrainData) has shift 0;
    ValidData and TestData share one target domain of the given shift. Deterministic in seed."""
    for split, count in (('train', train), ('valid', valid), ('test', test)):
        if count == 0:
            continue
        sdir = os.path.join(out, L.SPLITS[split])
        os.makedirs(os.path.join(sdir, 'img'), exist_ok=True)
        keep_mask = split == 'train' or target_masks
        if keep_mask:
            os.makedirs(os.path.join(sdir, 'mask'), exist_ok=True)
        for i, (img, mask) in enumerate(split_patches(split, count, shift, seed, kind), 1):
            with h5py.File(os.path.join(sdir, 'img', f'image_{i}.h5'), 'w') as f:
                f.create_dataset('img', data=img)
            if keep_mask:
                with h5py.File(os.path.join(sdir, 'mask', f'mask_{i}.h5'), 'w') as f:
                    f.create_dataset('mask', data=mask)


def synth_scene(out, size=1024, shift=1.0, seed=0):
    """One coherent size x size scene of the given target shift (shift 0 = the source domain),
    with its true mask, written by write_scene. -> paths written"""
    img, mask = synth_patch(np.random.default_rng([seed, 3]), domain(shift, seed), size)
    return write_scene(out, img, mask)


def write_scene(out, img, mask, crs='EPSG:32645', origin=(500000.0, 3100000.0), pixel=10.0):
    """Write a synthetic scene as out/scene.h5 ('img' H x W x 14 float32, 'mask' H x W uint8) and,
    when rasterio is installed, out/scene.tif (14 bands) and out/scene_mask.tif, georeferenced in
    `crs` (default UTM 45N) at `pixel` metres from `origin`. -> list of paths written"""
    os.makedirs(out, exist_ok=True)

    def h5(tmp):
        with h5py.File(tmp, 'w') as f:
            chunks = (min(256, img.shape[0]), min(256, img.shape[1]), L.BANDS)
            f.create_dataset('img', data=img, chunks=chunks)
            f.create_dataset('mask', data=mask)
    paths = [os.path.join(out, 'scene.h5')]
    L.atomic_write(paths[0], h5)
    try:
        import rasterio
        from rasterio.transform import from_origin
    except ImportError:
        return paths
    tr = from_origin(origin[0], origin[1], pixel, pixel)
    for name, data in (('scene.tif', img.transpose(2, 0, 1)), ('scene_mask.tif', mask[None])):
        def tif(tmp, data=data):
            with rasterio.open(tmp, 'w', driver='GTiff', height=data.shape[1], width=data.shape[2],
                               count=data.shape[0], dtype=data.dtype, crs=crs, transform=tr) as f:
                f.write(data)
        paths.append(os.path.join(out, name))
        L.atomic_write(paths[-1], tif)
    return paths



# ----------------------------------------------------------------------------- Sentinel-2 products
# where each band lies in a product, and at what resolution: L2A keeps the finest copy of each
# band beside coarser ones (as ESA's products do) and has no B10; L1C has every band once
L2A_FILES = {10: ['B02', 'B03', 'B04', 'B08'],
             20: ['B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B8A', 'B11', 'B12'],
             60: ['B01', 'B02', 'B05', 'B09', 'B11']}
L1C_RES = {'B01': 60, 'B02': 10, 'B03': 10, 'B04': 10, 'B05': 20, 'B06': 20, 'B07': 20, 'B08': 10,
           'B8A': 20, 'B09': 60, 'B10': 60, 'B11': 20, 'B12': 20}
TILE, WHEN = 'T45RUL', '20250101T050000'


def synth_product(out, size=384, shift=1.0, seed=0, level='L2A', baseline='04.00', zip_=False,
                  dem_cover=1.0, crs='EPSG:32645', origin=(500000.0, 3100000.0)):
    """A synthetic Sentinel-2 product of one coherent size x size scene (size a multiple of 6),
    as ESA lays them out (a .SAFE folder, or its .zip), with a no-data corner; beside it a DEM in
    EPSG:4326 at about 30 m covering the top dem_cover share of the rows, the true mask on the
    10 m grid (truth.tif) and the same scene pre-stacked (scene.h5, scene.tif) to compare with.
    DN = reflectance x 10000 - offset, the offset -1000 from baseline 04.00 on, 0 before.
    -> dict(product, dem, truth, scene)"""
    import rasterio
    from rasterio.transform import from_origin
    img, mask = synth_patch(np.random.default_rng([seed, 3]), domain(shift, seed), size)
    corner = np.add.outer(np.arange(size), np.arange(size)) < size // 4      # no data up there
    mask[corner] = 0
    stacked = np.where(corner[..., None], np.nan, img).astype(np.float32)
    paths = dict(scene=write_scene(out, stacked, mask, crs, origin)[0])
    name = f"S2B_MSI{level}_{WHEN}_N{baseline.replace('.', '')}_R019_{TILE}_{WHEN}"
    safe = os.path.join(out, name + '.SAFE')
    offset = -1000.0 if baseline >= '04.00' else 0.0
    for res, bands in band_files(level).items():
        for band in bands:
            dn = band_dn(img, band, res, offset, corner)
            if level == 'L2A':
                rel = f'IMG_DATA/R{res}m/{TILE}_{WHEN}_{band}_{res}m.jp2'
            else:
                rel = f'IMG_DATA/{TILE}_{WHEN}_{band}.jp2'
            path = os.path.join(safe, 'GRANULE', f'{level}_{TILE}_A000001_{WHEN}', rel)
            write_band(path, dn, res, crs, origin)
    open(os.path.join(safe, f'MTD_MSI{level}.xml'), 'w').write(metadata(level, baseline, offset))
    paths['product'] = safe
    if zip_:
        paths['product'] = _zip_folder(safe)
    tr = from_origin(*origin, 10.0, 10.0)
    paths['dem'] = write_dem(os.path.join(out, 'dem.tif'), img[..., 13], crs, tr, dem_cover)
    paths['truth'] = os.path.join(out, 'truth.tif')
    with rasterio.open(paths['truth'], 'w', driver='GTiff', width=size, height=size, count=1,
                       dtype='uint8', crs=crs, transform=tr) as f:
        f.write(mask, 1)
    return paths


def band_dn(img, band, res, offset, nodata=None):
    """One band's DN at `res` metres from a 10 m scene img [n, n, 14] (n a multiple of res / 10):
    DN = reflectance x 10000 - offset, 0 where `nodata` (bool [n, n]), averaged over res / 10
    pixels a side. -> uint16 [n / k, n / k]"""
    refl = img[..., 7 if band == 'B8A' else int(band[1:]) - 1]   # B8A: not a L4S band, any values
    dn = np.clip(np.round(refl * 10000 - offset), 1, 65535)
    if nodata is not None:
        dn[nodata] = 0
    k, n = res // 10, len(img)
    return dn.reshape(n // k, k, n // k, k).mean((1, 3)).round().astype(np.uint16)


def band_files(level):
    """{resolution in m: [band, ...]} of a product's band files, as ESA lays them out."""
    if level == 'L2A':
        return L2A_FILES
    return {r: [b for b, rb in L1C_RES.items() if rb == r] for r in (10, 20, 60)}


def write_band(path, dn, res, crs, origin):
    """One band file: uint16 DN [h, w] as lossless JPEG 2000 in 1024-pixel tiles (as ESA's)."""
    import rasterio
    from rasterio.transform import from_origin
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with rasterio.open(path, 'w', driver='JP2OpenJPEG', width=dn.shape[1], height=dn.shape[0],
                       count=1, dtype='uint16', crs=crs, transform=from_origin(*origin, res, res),
                       QUALITY=100, REVERSIBLE='YES', BLOCKXSIZE=1024, BLOCKYSIZE=1024) as f:
        f.write(dn, 1)


def metadata(level, baseline, offset):
    """The few lines of MTD_MSIL1C/2A.xml that stacking reads, laid out as ESA's are."""
    kind = 'BOA' if level == 'L2A' else 'RADIO'
    quant = 'BOA_QUANTIFICATION_VALUE' if level == 'L2A' else 'QUANTIFICATION_VALUE'
    order = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', 'B9', 'B10', 'B11', 'B12']
    offs = ''.join(f'<{kind}_ADD_OFFSET band_id="{i}">{offset:.0f}</{kind}_ADD_OFFSET>'
                   for i in range(13)) if baseline >= '04.00' else ''
    spectral = ''.join(f'<Spectral_Information bandId="{i}" physicalBand="{b}"/>'
                       for i, b in enumerate(order))
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n<n1:Level-{level[1:]}_User_Product "
            f'xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/'
            f'User_Product_Level-{level[1:]}.xsd">'
            f'<n1:General_Info><Product_Info><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>'
            f'</Product_Info><Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>'
            f'<{quant} unit="none">10000</{quant}></QUANTIFICATION_VALUES_LIST>'
            f'<{kind}_ADD_OFFSET_VALUES_LIST>{offs}</{kind}_ADD_OFFSET_VALUES_LIST>'
            f'<Spectral_Information_List>{spectral}</Spectral_Information_List>'
            f'</Product_Image_Characteristics></n1:General_Info>'
            f'</n1:Level-{level[1:]}_User_Product>\n')


def _zip_folder(folder):
    """folder.zip holding folder itself (as ESA's downloads do); the folder is removed."""
    import shutil
    import zipfile
    path = folder[:-len('.SAFE')] + '.zip'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        for d, _, fs in os.walk(folder):
            for f in fs:
                p = os.path.join(d, f)
                z.write(p, os.path.relpath(p, os.path.dirname(folder)))
    shutil.rmtree(folder)
    return path


def write_dem(path, dem, crs, transform, cover=1.0, res=0.00027, nodata=-32768.0):
    """The DEM [H, W] on a projected grid, warped (bilinear) to EPSG:4326 at about 30 m as
    GLO-30 and SRTM come, float32 with the SRTM no-data value, a little larger than the grid (its
    border rows and columns repeated 32 times); only the top `cover` share of the grid's rows has
    elevation. -> path"""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    H, W = dem.shape
    src = np.where(np.arange(H)[:, None] < round(cover * H), dem, nodata).astype(np.float32)
    p = 32
    src = np.pad(src, p, mode='edge')
    if cover < 1:
        src[p + round(cover * H):] = nodata
    transform = transform * Affine.translation(-p, -p)
    H, W = src.shape
    left, top = transform.c, transform.f
    bounds = (left, top + H * transform.e, left + W * transform.a, top)
    tr, w, h = calculate_default_transform(crs, 'EPSG:4326', W, H, *bounds, resolution=res)
    out = np.full((h, w), nodata, np.float32)
    reproject(src, out, src_transform=transform, src_crs=crs, dst_transform=tr,
              dst_crs='EPSG:4326', resampling=Resampling.bilinear, src_nodata=nodata,
              dst_nodata=nodata)
    with rasterio.open(path, 'w', driver='GTiff', width=w, height=h, count=1, dtype='float32',
                       crs='EPSG:4326', transform=tr, nodata=nodata) as f:
        f.write(out, 1)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description='Landslide4Sense data tools')
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('synth', help='write a synthetic dataset in the Landslide4Sense layout')
    s.add_argument('out')
    s.add_argument('--train', type=int, default=400)
    s.add_argument('--valid', type=int, default=60)
    s.add_argument('--test', type=int, default=120)
    s.add_argument('--shift', type=float, default=1.0, help='strength of the target-domain shift')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--no-target-masks', action='store_true', help='drop ValidData/TestData masks')
    s.add_argument('--shift-kind', choices=['all', 'sensor', 'scars'], default='all',
                   help="sensor: the target differs only by sensor gain/offset and haze; "
                        "scars: only by older, partly revegetated landslides")
    s = sub.add_parser('synth-product', help='a synthetic Sentinel-2 product, a DEM, the truth')
    s.add_argument('out', help='folder for the .SAFE (or .zip), dem.tif, truth.tif, scene.h5')
    s.add_argument('--size', type=int, default=768, help='10 m pixels per side (a multiple of 6)')
    s.add_argument('--level', choices=['L2A', 'L1C'], default='L2A')
    s.add_argument('--baseline', default='04.00', help='processing baseline: 04.00 on has offsets')
    s.add_argument('--zip', action='store_true', help='the product as a .zip')
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    s = sub.add_parser('synth-scene',
                       help='one coherent synthetic scene (HDF5; GeoTIFF with rasterio)')
    s.add_argument('out', help='folder for scene.h5 (img, mask), scene.tif and scene_mask.tif')
    s.add_argument('--size', type=int, default=1024)
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == 'synth-product':
        if a.size < L.SIZE or a.size % 6:
            sys.exit(f'error: --size must be a multiple of 6 and at least {L.SIZE}')
        paths = synth_product(a.out, a.size, a.shift, a.seed, a.level, a.baseline, a.zip)
        print('wrote ' + ', '.join(paths.values()))
        return
    if a.cmd == 'synth-scene':
        if a.size < L.SIZE:
            sys.exit(f'error: --size must be at least {L.SIZE}')
        print('wrote ' + ', '.join(synth_scene(a.out, a.size, a.shift, a.seed)))
        return
    if min(a.train, a.valid, a.test) < 0 or a.train == 0:
        sys.exit('error: --train must be positive and --valid/--test non-negative')
    synth(a.out, a.train, a.valid, a.test, a.shift, a.seed, not a.no_target_masks, a.shift_kind)
    print(f'wrote {a.train}/{a.valid}/{a.test} patches to {a.out} (shift {a.shift}, seed {a.seed})')


if __name__ == '__main__':
    main()
