"""Synthetic Sentinel-2 products as ESA lays them out, from the synthetic landscape
(landscape.py) under an optional synthetic sky (sky.py): band files at their native resolutions
as JPEG 2000, the metadata that names them (MTD_MSIL1C/2A.xml with the IMAGE_FILE list, the
granule's MTD_TL.xml with its Pixel_Level_QI masks), the scene classification and cloud masks
(L2A: SCL and MSK_CLDPRB at 20 m and 60 m; since baseline 04.00 MSK_CLASSI_B00 at 60 m in both
levels, before it MSK_CLOUDS_B00.gml), a DEM in EPSG:4326 at about 30 m and the truth.

    python -m synthetic product products/ --level L2A --size 768 [--zip] [--clouds 0.3]
"""
import os

import numpy as np

import h5py

import landslide as L
from synthetic import landscape, sky

# where each band lies in a product, and at what resolution: L2A keeps the finest copy of each
# band beside coarser ones (as ESA's products do) and has no B10; L1C has every band once
L2A_FILES = {10: ['B02', 'B03', 'B04', 'B08'],
             20: ['B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B8A', 'B11', 'B12'],
             60: ['B01', 'B02', 'B05', 'B09', 'B11']}
L1C_RES = landscape.NATIVE | {'B8A': 20}
TILE, WHEN = 'T45RUL', '20250101T050000'
# products, scenes and events are drawn from world v1, on which their benchmarks were measured
# (docs/mapping.md, docs/clouds.md); landscape.WORLD, the patches' world, adds top-of-atmosphere
# light that only a Level-1C product would carry
WORLD = 'v1'


def synth_product(out, size=384, shift=1.0, seed=0, level='L2A', baseline='04.00', zip_=False,
                  dem_cover=1.0, crs='EPSG:32645', origin=(500000.0, 3100000.0), clouds=0.0,
                  kind='product'):
    """A synthetic Sentinel-2 product of one coherent size x size scene (size a multiple of 6),
    as ESA lays them out (a .SAFE folder, or its .zip), with a no-data corner and, with clouds
    > 0, cumulus over about that share of it, their shadows and thin cirrus; beside it a DEM in
    EPSG:4326 at about 30 m covering the top dem_cover share of the rows, the true landslide
    mask (truth.tif) and what the sky hides (sky_truth.tif, indexing sky.TRUTH) on the 10 m
    grid, and the same scene pre-stacked (scene.h5, scene.tif) to compare with. kind: the
    domain's (landscape.domain): 'product' a product's few-percent gains, 'all' the patch
    benchmarks' strong shift.
    -> dict(product, dem, truth, sky_truth, scene)"""
    from rasterio.transform import from_origin
    img, mask, cover = landscape.synth_patch(np.random.default_rng([seed, 3]),
                                             landscape.domain(shift, seed, kind, WORLD), size,
                                             cover=True, native=False)
    sk = sky.draw(np.random.default_rng([seed, 11]), size, clouds)
    corner = np.add.outer(np.arange(size), np.arange(size)) < size // 4      # no data up there
    mask[corner] = 0
    paths = write_product(out, img, sk, cover, corner, level, baseline, WHEN, crs, origin,
                          mask=mask)
    if zip_:
        paths['product'] = _zip_folder(paths['product'])
    tr = from_origin(*origin, 10.0, 10.0)
    paths['dem'] = write_dem(os.path.join(out, 'dem.tif'), img[..., 13], crs, tr, dem_cover)
    paths['truth'] = write_mask(os.path.join(out, 'truth.tif'), mask, crs, tr)
    paths['sky_truth'] = write_mask(os.path.join(out, 'sky_truth.tif'), sky.truth(sk), crs, tr)
    return paths


def write_product(out, img, sk, cover, nodata, level, baseline, when, crs, origin, tile=TILE,
                  mask=None):
    """A product in out/<name>.SAFE of the ground img [n, n, 14] (every band at 10 m) under the
    sky sk, no data where `nodata` (bool [n, n]); given the landslide mask, also the scene
    pre-stacked with it (out/scene.h5, scene.tif: each band at its native resolution, resampled
    to 10 m, as stacking the product resamples it).
    DN = reflectance x 10000 - offset, the offset -1000 from baseline 04.00 on, 0 before.
    -> dict(product, scene)"""
    refl = sky.apply(img[..., :12], sk)
    paths = {}
    if mask is not None:
        stacked = np.concatenate([landscape.sensor_resolution(refl), img[..., 12:]], -1)
        stacked = np.where(nodata[..., None], np.nan, stacked).astype(np.float32)
        paths['scene'] = write_scene(out, stacked, mask, crs, origin)[0]
    name = f"S2B_MSI{level}_{when}_N{baseline.replace('.', '')}_R019_{tile}_{when}"
    granule = f'GRANULE/{level}_{tile}_A000001_{when}'
    safe = os.path.join(out, name + '.SAFE')
    offset = -1000.0 if baseline >= '04.00' else 0.0
    files = []
    for res, bands in band_files(level).items():
        for band in bands:
            if level == 'L2A':
                rel = f'{granule}/IMG_DATA/R{res}m/{tile}_{when}_{band}_{res}m'
            else:
                rel = f'{granule}/IMG_DATA/{tile}_{when}_{band}'
            write_raster(os.path.join(safe, rel + '.jp2'), band_dn(refl, band, res, offset, nodata),
                         res, crs, origin)
            files.append(rel)
    masks = write_masks(safe, granule, tile, when, sk, img[..., :12], cover, nodata, level,
                        baseline, crs, origin)
    files += [m[:-4] for m in masks if '/IMG_DATA/' in m]
    open(os.path.join(safe, f'MTD_MSI{level}.xml'), 'w').write(
        metadata(level, baseline, offset, files, when))
    open(os.path.join(safe, granule, 'MTD_TL.xml'), 'w').write(
        tile_metadata(level, [m for m in masks if '/QI_DATA/' in m], crs))
    paths['product'] = safe
    return paths


def write_masks(safe, granule, tile, when, sk, ground, cover, nodata, level, baseline, crs,
                origin):
    """The product's cloud masks, where ESA puts them. -> their paths inside the product"""
    written = []

    def put(rel, data, res):
        write_raster(os.path.join(safe, rel), data, res, crs, origin)
        written.append(rel)
    if level == 'L2A':
        for res in (20, 60):
            k = res // 10
            put(f'{granule}/IMG_DATA/R{res}m/{tile}_{when}_SCL_{res}m.jp2',
                sky.scene_classification(sk, ground, cover, nodata, k), res)
            put(f'{granule}/QI_DATA/MSK_CLDPRB_{res}m.jp2', sky.cloud_probability(sk, k), res)
    if baseline >= '04.00':
        put(f'{granule}/QI_DATA/MSK_CLASSI_B00.jp2', sky.classi(sk, nodata), 60)
    else:
        rel = f'{granule}/QI_DATA/MSK_CLOUDS_B00.gml'
        os.makedirs(os.path.dirname(os.path.join(safe, rel)), exist_ok=True)
        open(os.path.join(safe, rel), 'w').write(cloud_gml(sky.classi(sk, nodata), crs, origin))
        written.append(rel)
    return written


def band_dn(refl, band, res, offset, nodata=None):
    """One band's DN at `res` metres from reflectance drawn at 10 m, refl [n, n, >= 12] (n a
    multiple of res / 10): the mean over each res / 10 pixels a side, DN = reflectance x 10000
    - offset, 0 where any of its 10 m pixels is in `nodata` (bool [n, n]). -> uint16"""
    k = res // 10
    r = landscape.block_mean(refl[..., 7 if band == 'B8A' else int(band[1:]) - 1], k)
    dn = np.clip(np.round(r * 10000 - offset), 1, 65535)     # B8A: not a L4S band, any values
    if nodata is not None:
        dn[landscape.block_mean(nodata.astype(np.float64), k) > 0] = 0
    return dn.astype(np.uint16)


def band_files(level):
    """{resolution in m: [band, ...]} of a product's band files, as ESA lays them out."""
    if level == 'L2A':
        return L2A_FILES
    return {r: [b for b, rb in L1C_RES.items() if rb == r] for r in (10, 20, 60)}


def write_raster(path, data, res, crs, origin):
    """One band or mask file: uint16 or uint8 [h, w] (or [bands, h, w]) as lossless JPEG 2000
    in 1024-pixel tiles, as ESA's."""
    import rasterio
    from rasterio.transform import from_origin
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, 'w', driver='JP2OpenJPEG', width=data.shape[2],
                       height=data.shape[1], count=len(data), dtype=data.dtype, crs=crs,
                       transform=from_origin(*origin, res, res), QUALITY=100, REVERSIBLE='YES',
                       BLOCKXSIZE=1024, BLOCKYSIZE=1024) as f:
        f.write(data)


def metadata(level, baseline, offset, files=(), when=WHEN):
    """The lines of MTD_MSIL1C/2A.xml that stacking reads, laid out as ESA's are: the sensing
    time, the baseline, the IMAGE_FILE list, quantification and offsets."""
    kind = 'BOA' if level == 'L2A' else 'RADIO'
    quant = 'BOA_QUANTIFICATION_VALUE' if level == 'L2A' else 'QUANTIFICATION_VALUE'
    order = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', 'B9', 'B10', 'B11', 'B12']
    offs = ''.join(f'<{kind}_ADD_OFFSET band_id="{i}">{offset:.0f}</{kind}_ADD_OFFSET>'
                   for i in range(13)) if baseline >= '04.00' else ''
    spectral = ''.join(f'<Spectral_Information bandId="{i}" physicalBand="{b}"/>'
                       for i, b in enumerate(order))
    images = ''.join(f'<IMAGE_FILE>{f}</IMAGE_FILE>' for f in files)
    t = f'{when[:4]}-{when[4:6]}-{when[6:8]}T{when[9:11]}:{when[11:13]}:{when[13:15]}.024Z'
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n<n1:Level-{level[1:]}_User_Product "
            f'xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/'
            f'User_Product_Level-{level[1:]}.xsd">'
            f'<n1:General_Info><Product_Info><PRODUCT_START_TIME>{t}</PRODUCT_START_TIME>'
            f'<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>'
            f'<Product_Organisation><Granule_List><Granule imageFormat="JPEG2000">{images}'
            f'</Granule></Granule_List></Product_Organisation>'
            f'</Product_Info><Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>'
            f'<{quant} unit="none">10000</{quant}></QUANTIFICATION_VALUES_LIST>'
            f'<{kind}_ADD_OFFSET_VALUES_LIST>{offs}</{kind}_ADD_OFFSET_VALUES_LIST>'
            f'<Spectral_Information_List>{spectral}</Spectral_Information_List>'
            f'</Product_Image_Characteristics></n1:General_Info>'
            f'</n1:Level-{level[1:]}_User_Product>\n')


def tile_metadata(level, masks, crs):
    """The granule's MTD_TL.xml: its CRS, the sun's mean angles (sky.SUN) and, under
    Pixel_Level_QI, the masks it holds."""
    kinds = {'CLASSI': 'MSK_CLASSI', 'CLDPRB': 'MSK_CLDPRB', 'CLOUDS': 'MSK_CLOUDS'}
    entries = ''.join(f'<MASK_FILENAME type="{kinds[m.split("MSK_")[1][:6]]}">{m}</MASK_FILENAME>'
                      for m in masks)
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n<n1:Level-{level[1:]}_Tile_ID "
            f'xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}'
            f'_Tile_Metadata.xsd"><n1:Geometric_Info><Tile_Geocoding>'
            f'<HORIZONTAL_CS_CODE>{crs}</HORIZONTAL_CS_CODE></Tile_Geocoding><Tile_Angles>'
            f'<Mean_Sun_Angle><ZENITH_ANGLE unit="deg">{sky.SUN["zenith"]}</ZENITH_ANGLE>'
            f'<AZIMUTH_ANGLE unit="deg">{sky.SUN["azimuth"]}</AZIMUTH_ANGLE></Mean_Sun_Angle>'
            f'</Tile_Angles></n1:Geometric_Info>'
            f'<n1:Quality_Indicators_Info><Pixel_Level_QI geometry="FULL_RESOLUTION">{entries}'
            f'</Pixel_Level_QI></n1:Quality_Indicators_Info></n1:Level-{level[1:]}_Tile_ID>\n')


def cloud_gml(classi, crs, origin):
    """MSK_CLOUDS_B00.gml, the vector cloud mask of products before baseline 04.00: the opaque
    and cirrus bands of classi [3, h, w] at 60 m as OPAQUE and CIRRUS polygons in the tile's CRS."""
    from rasterio import features
    from rasterio.transform import from_origin
    tr, members = from_origin(*origin, 60, 60), []
    for band, kind in ((0, 'OPAQUE'), (1, 'CIRRUS')):
        m = classi[band].astype(bool)
        for geom, _ in features.shapes(m.astype(np.uint8), mask=m, transform=tr):
            rings = [' '.join(f'{x:.0f} {y:.0f}' for x, y in ring) for ring in geom['coordinates']]
            inner = ''.join(f'<gml:interior><gml:LinearRing><gml:posList srsDimension="2">{r}'
                            f'</gml:posList></gml:LinearRing></gml:interior>' for r in rings[1:])
            i = len(members)
            members.append(
                f'<eop:MaskFeature gml:id="{kind}.{i}"><eop:maskType codeSpace="urn:gs2:S2PDGS:'
                f'maskType">{kind}</eop:maskType><eop:extentOf><gml:Polygon gml:id="{kind}.{i}_P">'
                f'<gml:exterior><gml:LinearRing><gml:posList srsDimension="2">{rings[0]}'
                f'</gml:posList></gml:LinearRing></gml:exterior>{inner}</gml:Polygon>'
                f'</eop:extentOf></eop:MaskFeature>')
    epsg = crs.split(':')[-1]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<eop:Mask xmlns:eop="http://www.opengis.net/'
            'eop/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="MSK_CLOUDS_B00">'
            f'<gml:boundedBy><gml:Envelope srsName="urn:ogc:def:crs:EPSG:8.7:{epsg}"/>'
            f'</gml:boundedBy><eop:maskMembers>{"".join(members)}</eop:maskMembers></eop:Mask>\n')


def write_mask(path, mask, crs, transform):
    """A uint8 mask [H, W] on the 10 m grid as a GeoTIFF. -> path"""
    import rasterio
    with rasterio.open(path, 'w', driver='GTiff', width=mask.shape[1], height=mask.shape[0],
                       count=1, dtype='uint8', crs=crs, transform=transform) as f:
        f.write(mask, 1)
    return path


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
    transform = transform @ Affine.translation(-p, -p)
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




# ----------------------------------------------------------------------------- stacked scenes

def synth_scene(out, size=1024, shift=1.0, seed=0):
    """One coherent size x size scene of the given target shift (shift 0 = the source domain),
    with its true mask, written by write_scene. -> paths written"""
    img, mask = landscape.synth_patch(np.random.default_rng([seed, 3]),
                                      landscape.domain(shift, seed, world=WORLD), size)
    return write_scene(out, img, mask)


def write_scene(out, img, mask, crs='EPSG:32645', origin=(500000.0, 3100000.0), pixel=10.0):
    """Write a scene as out/scene.h5 ('img' H x W x 14 float32, 'mask' H x W uint8) and,
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
