"""A synthetic Sentinel-2 product (product.py) written again as mappers get imagery: as STAC Items
of the three catalogues' conventions (Planetary Computer, Earth Search v1, Copernicus Data Space;
docs/mapping.md has the table), whose assets are local cloud-optimised GeoTIFFs or the product's
own JPEG 2000 files, and as a folder of per-band GeoTIFFs as Earth Engine downloads them.
mapping/stac.py reads them; mapping/test_stac.py checks that each maps as the .SAFE does.

    python -m synthetic items products/S2B_MSIL2A_....SAFE items/
"""
import glob
import json
import os
import re

import numpy as np

ES = dict(B01='coastal', B02='blue', B03='green', B04='red', B05='rededge1', B06='rededge2',
          B07='rededge3', B08='nir', B8A='nir08', B09='nir09', B10='cirrus', B11='swir16',
          B12='swir22', SCL='scl')                   # Earth Search v1's asset keys


def read_safe(safe):
    """What the writers need of a product written by product.py: its name, level, the finest
    file of each band and of the scene classification, the DN offset and the sun's angles."""
    name = os.path.basename(safe.rstrip('/'))[:-5]
    finest = {}
    for path in sorted(glob.glob(os.path.join(safe, 'GRANULE', '*', 'IMG_DATA', '**', '*.jp2'),
                                 recursive=True)):
        m = re.search(r'_(B\d\d|B8A|SCL)(?:_(\d+)m)?\.jp2$', path)
        res = int(m.group(2) or 0) if m else 0
        if m and (m.group(1) not in finest or res < finest[m.group(1)][0]):
            finest[m.group(1)] = (res, path)
    tile = open(glob.glob(os.path.join(safe, 'GRANULE', '*', 'MTD_TL.xml'))[0]).read()
    sun = [float(re.search(rf'<{k}_ANGLE[^>]*>\s*([-\d.]+)', tile).group(1))
           for k in ('ZENITH', 'AZIMUTH')] if '<Mean_Sun_Angle>' in tile else (30.0, 150.0)
    baseline = re.search(r'_N(\d\d)(\d\d)_', name)
    baseline = f'{baseline.group(1)}.{baseline.group(2)}'
    return dict(name=name, level='L1C' if 'MSIL1C' in name else 'L2A', baseline=baseline,
                files={b: p for b, (_, p) in finest.items() if b not in ('B8A', 'SCL')},
                scl=finest.get('SCL', (0, None))[1], sun=sun,
                offset=-1000 if baseline >= '04.00' else 0)


def write_items(safe, out, lost_offset=False):
    """Items of the product in out: pc.json, earthsearch.json (assets: COGs in out/cogs/) and
    cdse.json (assets: the product's JPEG 2000 files). lost_offset: Earth Search's COGs without
    the +1000 offset their item still declares, as on the items of earth-search #66 and #71.
    -> {convention: item path}"""
    pr = read_safe(safe)
    os.makedirs(os.path.join(out, 'cogs'), exist_ok=True)
    files = dict(pr['files'], SCL=pr['scl']) if pr['scl'] else dict(pr['files'])
    cogs, res = {}, {}
    for band, path in files.items():
        cogs[band], res[band] = f'cogs/{band}.tif', write_cog(path, os.path.join(out, 'cogs',
                                                                                   f'{band}.tif'))
    if lost_offset:
        os.makedirs(os.path.join(out, 'cogs-lost'), exist_ok=True)
        for band in pr['files']:
            write_cog(files[band], os.path.join(out, 'cogs-lost', f'{band}.tif'),
                      add=pr['offset'])
    baseline = pr['baseline']
    level = pr['level'].lower()
    zen, azi = pr['sun']
    items = {}
    items['pc'] = dict(base_item(pr), collection=f'sentinel-2-{level}', assets={
        b: dict(href=cogs[b], type='image/tiff; application=geotiff; profile=cloud-optimized',
                gsd=float(res[b])) for b in cogs})
    items['pc']['properties'] |= {'platform': 'Sentinel-2B', 's2:processing_baseline': baseline,
                                  's2:mgrs_tile': '45RUL', 's2:mean_solar_zenith': zen,
                                  's2:mean_solar_azimuth': azi}
    folder = 'cogs-lost' if lost_offset else 'cogs'
    items['earthsearch'] = dict(base_item(pr), collection=f'sentinel-2-{level}', assets={
        ES[b]: dict(href=(f'{folder}/{b}.tif' if b != 'SCL' else cogs[b]), type='image/tiff',
                    **{'raster:bands': [dict(nodata=0, data_type='uint16',
                                             spatial_resolution=res[b])
                                        | (dict(scale=0.0001, offset=-0.1) if b != 'SCL'
                                           else {})]}) for b in cogs})
    items['earthsearch']['properties'] |= {
        'platform': 'sentinel-2b', 's2:processing_baseline': baseline,
        'earthsearch:boa_offset_applied': False, 'mgrs:utm_zone': 45, 'mgrs:latitude_band': 'R',
        'mgrs:grid_square': 'UL', 'view:sun_elevation': 90 - zen, 'view:sun_azimuth': azi}
    assets = {}
    for path in sorted(glob.glob(os.path.join(safe, 'GRANULE', '*', 'IMG_DATA', '**', '*.jp2'),
                                 recursive=True)):
        m = re.search(r'_(B\d\d|B8A|SCL)_?(\d+m)?\.jp2$', path)
        if m:
            key = f'{m.group(1)}_{m.group(2)}' if m.group(2) else m.group(1)
            assets[key] = dict(href=os.path.abspath(path), type='image/jp2', nodata=0) | (
                {'raster:scale': 0.0001, 'raster:offset': -0.1 if pr['offset'] else 0.0}
                if m.group(1) != 'SCL' else {})
    items['cdse'] = dict(base_item(pr), stac_version='1.1.0', collection=f'sentinel-2-{level}',
                         assets=assets)
    items['cdse']['properties'] |= {'platform': 'sentinel-2b', 'processing:version': baseline,
                                    'grid:code': 'MGRS-45RUL', 'view:sun_elevation': 90 - zen,
                                    'view:sun_azimuth': azi}
    paths = {}
    for kind, item in items.items():
        paths[kind] = os.path.join(out, f'{kind}.json')
        with open(paths[kind], 'w') as f:
            json.dump(item, f, indent=1)
    return paths


def base_item(pr):
    """The fields every convention shares: id, geometry and bbox in degrees, the sensing time."""
    import rasterio
    from rasterio.warp import transform_bounds
    with rasterio.open(pr['files']['B02']) as f:
        w, s, e, n = transform_bounds(f.crs, 'EPSG:4326', *f.bounds)
    when = re.search(r'_(\d{8}T\d{6})_', pr['name']).group(1)
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return dict(type='Feature', stac_version='1.0.0', id=pr['name'], bbox=[w, s, e, n],
                geometry=dict(type='Polygon', coordinates=[ring]),
                properties={'datetime': f'{when[:4]}-{when[4:6]}-{when[6:8]}T{when[9:11]}:'
                                        f'{when[11:13]}:{when[13:15]}Z', 'eo:cloud_cover': 0.0})


def write_cog(src_path, out, add=0):
    """One band file copied as a cloud-optimised GeoTIFF, `add` added to its valid DNs (kept
    >= 1). -> its resolution in m"""
    import rasterio
    with rasterio.open(src_path) as src:
        x, profile = src.read(1), src.profile
    if add:
        x = np.where(x > 0, np.clip(x.astype(np.int32) + add, 1, 65535), 0).astype(x.dtype)
    with rasterio.open(out, 'w', driver='COG', width=x.shape[1], height=x.shape[0], count=1,
                       dtype=x.dtype, crs=profile['crs'], transform=profile['transform'],
                       nodata=0, compress='deflate', blocksize=256) as f:
        f.write(x[None])
    return int(round(abs(profile['transform'].a)))


def write_ee_folder(safe, out):
    """The product as Earth Engine downloads a harmonized collection's image: one GeoTIFF a band
    (download.B1.tif ... download.B12.tif, download.SCL.tif), all on one EPSG:4326 grid of about
    10 m, resampled by nearest neighbour (Earth Engine's default), DN without the +1000 offset.
    -> the folder"""
    import rasterio
    from rasterio.warp import calculate_default_transform, reproject, Resampling
    pr = read_safe(safe)
    files = dict(pr['files'], SCL=pr['scl']) if pr['scl'] else dict(pr['files'])
    os.makedirs(out, exist_ok=True)
    with rasterio.open(pr['files']['B02']) as ref:
        tr, W, H = calculate_default_transform(ref.crs, 'EPSG:4326', ref.width, ref.height,
                                               *ref.bounds)
    for band, path in files.items():
        with rasterio.open(path) as src:
            x = src.read(1)
            if band != 'SCL' and pr['offset']:
                x = np.where(x > 0, np.clip(x.astype(np.int32) + pr['offset'], 1,
                                            65535), 0).astype(x.dtype)
            y = np.zeros((H, W), x.dtype)
            reproject(x, y, src_transform=src.transform, src_crs=src.crs, dst_transform=tr,
                      dst_crs='EPSG:4326', src_nodata=0, dst_nodata=0,
                      resampling=Resampling.nearest)
        name = 'SCL' if band == 'SCL' else re.sub(r'^B0', 'B', band)
        with rasterio.open(os.path.join(out, f'download.{name}.tif'), 'w', driver='GTiff',
                           width=W, height=H, count=1, dtype=y.dtype, crs='EPSG:4326',
                           transform=tr, nodata=0, compress='deflate') as f:
            f.write(y[None])
    return out
