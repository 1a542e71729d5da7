"""Sentinel-2 imagery as mappers get it, beside the .SAFE products that sentinel2.py reads: a
STAC Item (a JSON file) of a Level-2A or Level-1C scene, and a folder of per-band GeoTIFFs (Earth
Engine's downloads, or B02.tif-style names). Each is opened into the product dict that
sentinel2.open_product returns, so stacking, clouds and mapping are those of a .SAFE.

    python predict.py --s2 S2B_45RUL_20250101_0_L2A.json --dem dem.tif --out maps
    python predict.py --s2 ee_download/ --dem dem.tif --out maps

- Items: the finest asset of each band, found by the three conventions of real catalogues
  (docs/mapping.md has the table and its sources): Planetary Computer (B01 ... B12, B8A, SCL),
  Earth Search v1 (coastal, blue, ..., swir22, scl) and Copernicus Data Space (B02_10m, ...,
  SCL_20m). An href is relative to the item, an absolute path, or a URL read through GDAL
  (/vsicurl/, /vsis3/), so a catalogue's item works online unchanged.
- Radiometry: reflectance = (DN + offset) / quantification, as in a .SAFE. The quantification is
  1 / the assets' scale (raster:bands or raster:scale), 10 000 where none is given. The offset is
  what the metadata say the pixels hold: the assets' offset over their scale, else -1000 from
  processing baseline 04.00 on (ESA's BOA_ADD_OFFSET; s2:processing_baseline or
  processing:version). The pixels overrule it where they show they do not hold it (pixels_hold):
  catalogues have stated an offset the pixels had already lost (Element84/earth-search #66, #71).
  earthsearch:boa_offset_applied is recorded, not trusted.
- Folders: Earth Engine's harmonized collections hold DN = reflectance x 10 000 with no offset
  (download.B1.tif ... download.B12.tif, download.SCL.tif); other names (B02.tif) are read with
  the offset when the pixels hold one. All bands must lie on one grid. A folder in a geographic
  CRS (Earth Engine's EPSG:4326) is mapped on the 10 m grid of the UTM zone of its centre, the
  CRS of Sentinel-2's own tiles, each band warped onto it bilinearly.
"""
import json
import os
import re

import landslide as L

BANDS = [f'B{i:02d}' for i in range(1, 13)]     # B01 ... B12, as sentinel2 stacks them

NAMES = {'coastal': 'B01', 'blue': 'B02', 'green': 'B03', 'red': 'B04', 'rededge1': 'B05',
         'rededge2': 'B06', 'rededge3': 'B07', 'nir': 'B08', 'nir08': 'B8A', 'nir09': 'B09',
         'cirrus': 'B10', 'swir16': 'B11', 'swir22': 'B12', 'scl': 'SCL'}   # Earth Search's keys
KEY = re.compile(r'^(B0?[1-9]|B1[0-2]|B8A|SCL)(?:_(\d+)m)?$', re.I)        # B02, B02_10m, SCL_20m
FILE = re.compile(r'(?:^|[._])(B0?[1-9]|B1[0-2]|B8A|SCL)(?:_(\d+)m)?\.tiff?$', re.I)
QUANT, OFFSET = 10000.0, -1000.0               # ESA's since baseline 04.00


def band_name(key):
    """An asset key or a file's band as sentinel2.BANDS spells it ('B1', 'blue' -> 'B01'), the
    finest resolution it says (0 where it says none), or None."""
    k = NAMES.get(key.lower(), key)
    m = KEY.match(k)
    if not m:
        return None
    return re.sub(r'^B(\d)$', r'B0\1', m.group(1).upper()), int(m.group(2) or 0)


def href(item_path, h):
    """An asset's href as rasterio opens it: URLs through GDAL's virtual file systems, relative
    paths from the item's folder."""
    if re.match(r'https?://', h):
        return '/vsicurl/' + h
    if h.startswith('s3://'):
        return '/vsis3/' + h[5:]
    if h.startswith('file://'):
        h = h[7:]
    return h if os.path.isabs(h) or h.startswith('/vsi') else \
        os.path.join(os.path.dirname(os.path.abspath(item_path)), h)


def level_of(item, path):
    """'L2A' or 'L1C' from an item's collection or product type; any other item is bad input."""
    props = item.get('properties', {})
    said = ' '.join(str(v) for v in (item.get('collection'), props.get('s2:product_type'),
                                     props.get('product:type'), props.get('processing:level'),
                                     props.get('platform'), props.get('constellation')) if v)
    if not re.search(r'sentinel-?2', said, re.I):
        raise L.DataError(f"{path}: a STAC item of {item.get('collection') or 'no collection'} "
                          f'({props.get("platform", "no platform")}), not a Sentinel-2 scene')
    if re.search(r'l1c|msil1c|level-?1c', said, re.I):
        return 'L1C'
    if re.search(r'l2a|msil2a|level-?2a', said, re.I):
        return 'L2A'
    raise L.DataError(f"{path}: a Sentinel-2 item of {item.get('collection')}, neither Level-1C "
                      f'nor Level-2A')


def open_item(path):
    """A STAC Item of a Sentinel-2 scene. -> the dict sentinel2.open_product returns, with
    provenance (what the item says of the scene) and radiometry (what was trusted, and why)."""
    try:
        item = json.load(open(path))
    except (OSError, ValueError) as e:
        raise L.DataError(f'{path}: not a readable STAC item ({e.__class__.__name__})')
    if not isinstance(item, dict) or item.get('type') != 'Feature' or 'assets' not in item:
        raise L.DataError(f'{path}: not a STAC item (a GeoJSON Feature with assets)')
    level, props = level_of(item, path), item.get('properties', {})
    found, need = band_assets(item, path, level)
    files = {b: href(path, found[b][2]['href']) for b in need}
    scale, offset = scale_offset(found[need[1]][2])
    baseline = props.get('s2:processing_baseline') or props.get('processing:version')
    if offset is not None:                       # the assets' own offset, in reflectance
        declared = round(offset / scale, 6) if scale else offset
    else:                                        # none stated: ESA's, by the baseline
        declared = OFFSET if baseline_at_least(baseline, (4, 0)) else 0.0
    quant = round(1 / scale, 6) if scale else QUANT
    held = declared == 0 or pixels_hold(files, declared, path)
    mask = None
    if 'SCL' in found and level == 'L2A':
        mask = dict(kind='SCL', res=found['SCL'][0] or 20, name=f"SCL ({found['SCL'][1]})",
                    path=href(path, found['SCL'][2]['href']))
    warning = None if mask else ('no scene classification asset in the item (looked for SCL, '
                                 'scl, SCL_20m): clouds are mapped as ground')
    return dict(path=path, level=level, files=files, name=item.get('id') or stem(path),
                quantification=quant, offset={b: declared if held else 0.0 for b in BANDS},
                sensed=props.get('datetime') or props.get('start_datetime'), mask=mask,
                mask_warning=warning, sun=sun_angles(props),
                radiometry=dict(declared_offset=declared, quantification=quant, pixels_hold=held,
                                boa_offset_applied=props.get('earthsearch:boa_offset_applied')),
                provenance=dict(kind='STAC item', id=item.get('id'),
                                collection=item.get('collection'), platform=props.get('platform'),
                                sensed=props.get('datetime'), level=level, baseline=baseline,
                                tile=props.get('s2:mgrs_tile') or props.get('grid:code') or
                                tile_of(props), cloud_cover=props.get('eo:cloud_cover')))


def band_assets(item, path, level):
    """The finest asset of each band an item holds; a band the level needs and the item lacks is
    bad input. -> ({band: (resolution, key, asset)}, the bands needed)"""
    found = {}
    for key, asset in item['assets'].items():
        got = band_name(key)
        if got and isinstance(asset, dict) and asset.get('href') and \
                not asset['href'].lower().endswith(('.jpg', '.png', '.xml', '.json')):
            band, res = got
            res = res or resolution(asset)
            if band not in found or res < found[band][0]:
                found[band] = (res, key, asset)
    need = [b for b in BANDS if not (b == 'B10' and level == 'L2A')]
    missing = [b for b in need if b not in found]
    if missing:
        raise L.DataError(f"{path}: the item has no asset for band {', '.join(missing)} (looked "
                          f'for keys such as {missing[0]}, '
                          f"{next((k for k, v in NAMES.items() if v == missing[0]), '-')} or "
                          f'{missing[0]}_20m)')
    return found, need


def baseline_at_least(baseline, version):
    """A processing baseline ('04.00', '5.2', 5.11) compared as numbers, not text (as text
    '05.11' sorts below '5.2'); an unreadable one is not."""
    m = re.fullmatch(r'\s*0*(\d+)(?:\.(\d+))?\s*', str(baseline or ''))
    return bool(m) and (int(m.group(1)), int(m.group(2) or 0)) >= version


def resolution(asset):
    """An asset's ground sample distance in metres, 0 where the item does not say."""
    bands = asset.get('raster:bands') or asset.get('bands') or [{}]
    return int(asset.get('gsd') or bands[0].get('spatial_resolution') or
               asset.get('raster:spatial_resolution') or 0)


def scale_offset(asset):
    """(scale, offset) an asset declares, on itself (STAC 1.1) or in raster:bands; None each
    where it declares none."""
    bands = asset.get('raster:bands') or asset.get('bands') or [{}]
    first = bands[0] if isinstance(bands[0], dict) else {}
    scale = asset.get('raster:scale', first.get('scale', first.get('raster:scale')))
    offset = asset.get('raster:offset', first.get('offset', first.get('raster:offset')))
    return (float(scale) if scale else None), (float(offset) if offset is not None else None)


def sun_angles(props):
    """(zenith, azimuth) in degrees from an item's properties, or None."""
    if 's2:mean_solar_zenith' in props and 's2:mean_solar_azimuth' in props:
        return float(props['s2:mean_solar_zenith']), float(props['s2:mean_solar_azimuth'])
    if 'view:sun_elevation' in props and 'view:sun_azimuth' in props:
        return 90 - float(props['view:sun_elevation']), float(props['view:sun_azimuth'])
    return None


def tile_of(props):
    parts = [props.get(k) for k in ('mgrs:utm_zone', 'mgrs:latitude_band', 'mgrs:grid_square')]
    return ''.join(str(p) for p in parts) if all(parts) else None


def pixels_hold(files, offset, what, every=16):
    """Whether the pixels hold the offset the metadata declare (-1000: DN = reflectance x 10 000
    + 1000). Held, a DN below -offset is a negative reflectance, which atmospheric correction
    leaves on a few pixels at most; lost, the same DNs are dark ground (forest in B2 at 0.02-0.04,
    water and shade in B12 below 0.05), which every scene with vegetation or water holds far more
    than 1 % of. So the offset is held unless the 1st percentile of B02's or B12's valid DNs,
    read at 1/every of the resolution (an overview where the file has one), lies below -offset.
    A scene bright everywhere (snow, cloud) keeps what the metadata say."""
    import numpy as np
    rio = L.rasterio_for(what)
    for band in ('B02', 'B12'):
        try:
            with rio.open(files[band]) as src:
                dn = src.read(1, out_shape=(max(src.height // every, 1),
                                            max(src.width // every, 1)),
                              resampling=rio.enums.Resampling.nearest)
        except Exception as e:
            raise L.DataError(f'{files[band]} (of {what}): unreadable band file, missing, '
                              f'truncated or corrupt? ({e.__class__.__name__})')
        dn = dn[dn > 0]
        if dn.size and np.percentile(dn, 1) < -offset:
            return False
    return True


def stem(path):
    return os.path.splitext(os.path.basename(path.rstrip('/')))[0]


def open_folder(path):
    """A folder of per-band GeoTIFFs (Earth Engine's download.B1.tif, or B01.tif, B02_10m.tif).
    -> the dict sentinel2.open_product returns, with the metric grid to stack on where the
    folder's is geographic."""
    found = {}
    for f in sorted(os.listdir(path)):
        m = FILE.search(f)
        if m:
            band, res = band_name(m.group(1) + (f'_{m.group(2)}m' if m.group(2) else ''))
            if band not in found or res < found[band][0]:
                found[band] = (res, os.path.join(path, f))
    if not found:
        raise L.DataError(f'{path}: not a Sentinel-2 product (a .SAFE folder or its .zip), a STAC '
                          f'item (.json) or a folder of band GeoTIFFs (download.B2.tif, B02.tif)')
    level = 'L1C' if 'B10' in found else 'L2A'
    need = [b for b in BANDS if not (b == 'B10' and level == 'L2A')]
    missing = [b for b in need if b not in found]
    if missing:
        raise L.DataError(f"{path}: the folder has no GeoTIFF of band {', '.join(missing)} "
                          f"(expected a name such as download.{missing[0].replace('B0', 'B')}.tif "
                          f'or {missing[0]}.tif)')
    files = {b: found[b][1] for b in need}
    grid, grid_name = check_one_grid(files | {k: v[1] for k, v in found.items() if k == 'SCL'},
                                     path)
    ee = all(os.path.basename(f).lower().startswith('download.') for f in files.values())
    held = not ee and pixels_hold(files, OFFSET, path)
    mask = dict(kind='SCL', res=20, path=found['SCL'][1], name=os.path.basename(found['SCL'][1])) \
        if 'SCL' in found and level == 'L2A' else None
    warning = None if mask else ('no scene classification in the folder (looked for '
                                 'download.SCL.tif, SCL.tif): clouds are mapped as ground')
    return dict(path=path, level=level, files=files, name=stem(path), quantification=QUANT,
                offset={b: OFFSET if held else 0.0 for b in BANDS}, sensed=None, mask=mask,
                mask_warning=warning, sun=None, grid=grid,
                radiometry=dict(declared_offset=OFFSET if held else 0.0, quantification=QUANT,
                                pixels_hold=held, harmonized='Earth Engine' if ee else None),
                provenance=dict(kind='Earth Engine download' if ee else 'folder of band GeoTIFFs',
                                id=stem(path), level=level, grid=grid_name))


def check_one_grid(files, path):
    """Every band file on one grid (one CRS and the same bounds within a pixel of the coarsest);
    -> (the grid to stack on, dict(crs, transform, width, height): B02's where its CRS is
    metric, else the UTM zone of its centre at 10 m; the grid in words)"""
    rio = L.rasterio_for(path)
    from rasterio.warp import calculate_default_transform, transform_bounds
    with rio.open(files['B02']) as ref:
        crs, bounds, w, h, tr = ref.crs, ref.bounds, ref.width, ref.height, ref.transform
    for b, f in files.items():
        try:
            with rio.open(f) as src:
                cell = max(abs(src.transform.a), abs(tr.a), abs(src.transform.e), abs(tr.e))
                if src.crs != crs or max(abs(u - v) for u, v in zip(src.bounds, bounds)) > cell:
                    raise L.DataError(f"{f}: on another grid than {os.path.basename(files['B02'])} "
                                      f'({src.crs}, bounds {tuple(round(v, 6) for v in src.bounds)}'
                                      f'); the bands of a folder must share one')
        except L.DataError:
            raise
        except Exception as e:
            raise L.DataError(f'{f}: unreadable band file, truncated or corrupt? '
                              f'({e.__class__.__name__})')
    if crs is None:
        raise L.DataError(f"{files['B02']}: the band has no CRS")
    if crs.is_projected and crs.linear_units in ('metre', 'meter'):
        return dict(crs=crs, transform=tr, width=w, height=h), f'{crs} as the files lie'
    west, south, east, north = transform_bounds(crs, 'EPSG:4326', *bounds)
    zone = int(((west + east) / 2 + 180) // 6) % 60 + 1
    utm = rio.crs.CRS.from_epsg((32600 if south + north >= 0 else 32700) + zone)
    tr, W, H = calculate_default_transform(crs, utm, w, h, *bounds, resolution=10)
    return dict(crs=utm, transform=tr, width=W, height=H), \
        f'{utm} (UTM zone {zone}) at 10 m, warped bilinearly from {crs}'
