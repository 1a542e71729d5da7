"""From a Sentinel-2 product and a DEM to a scene in the Landslide4Sense band order (B1-B12,
slope, DEM), the input that predict.py maps. Written once as a tiled, compressed GeoTIFF, so a GIS
opens it and a later run reuses it; streamed in bands of rows, never the whole tile in memory.

    python -m mapping stack PRODUCT.SAFE --dem DEM.tif --out scene.tif
    python predict.py --run RUN --s2 PRODUCT.zip --dem DEM.tif --out maps   # stack, then map

- Layouts: Level-2A (GRANULE/*/IMG_DATA/R10m, R20m, R60m; no B10) and Level-1C
  (GRANULE/*/IMG_DATA/*_Bxx.jp2), as a .SAFE folder or its .zip; STAC items and folders of band
  GeoTIFFs are opened by stac.py into the same product. Each band is read from its
  finest file and resampled bilinearly onto the 10 m grid of B02 (same CRS, transform, size):
  bilinear as the paper's scale promotion is, and it stays within the range of the pixels it
  blends (cubic overshoots at edges). DN 0 is no data, in every band where any band has none.
- Reflectance = (DN + offset) / quantification, both from the product's metadata (offset
  BOA_ADD_OFFSET in L2A, RADIO_ADD_OFFSET in L1C, since processing baseline 04.00; 0 before).
  Landslide4Sense's patches held other units (divided by a per-band mean): harmless, since
  predict.py normalizes every scene by its own per-band statistics (separated normalization).
- L2A has no B10 (cirrus, says nothing of the ground): one constant, which a scene's own
  normalization turns into 0 (docs/mapping.md gives the cost). The stack's tags keep what
  reading it corrected needs: L1C's clear B10 by elevation (cirrus.py), B1's line on B2 (edges.py).
- The DEM, in any CRS, is warped bilinearly onto the grid; slope in degrees by Horn's method
  (`gdaldem slope`, with -compute_edges at the grid's edges) at the grid's pixel size. Pixels
  the DEM does not cover are no data (a warning gives the share); a DEM that does not overlap
  the product, or holds no elevation over it, is an error.
Needs rasterio (pip install -r requirements-geo.txt): its wheels carry the JPEG 2000 driver.
"""
import contextlib
import os
import re
import xml.etree.ElementTree as ET
import zipfile

import numpy as np

import landslide as L
from mapping import aoi, cirrus, clouds, dem as dem_, edges, fringes, scene as S, shadows, stac

BANDS = stac.BANDS
BAND_ORDER = BANDS[:8] + ['B8A'] + BANDS[8:]   # the metadata's band_id 0..12
DESCRIPTIONS = BANDS + ['slope (degrees)', 'DEM (m)']
B10_FILL = 0.0                                  # reflectance given to L2A's missing B10
ROWS = 1024                                     # rows per streamed band (JPEG 2000 tile rows)
FILE = re.compile(r'_(B0[1-9]|B1[0-2]|B8A)(?:_(\d+)m)?\.jp2$', re.IGNORECASE)


MTD, MTD_TL = r'(.*/)?MTD_MSIL(1C|2A)\.xml', r'(.*/)?GRANULE/[^/]+/MTD_TL\.xml'


def _named(names, pattern):
    return next((n for n in names if re.fullmatch(pattern, n, re.I)), None)


def open_product(path):
    """Find the bands and the cloud mask and read the metadata of a product. -> dict(path, name,
    level 'L1C'|'L2A', files {band: path rasterio opens}, offset {band: DN offset},
    quantification, sensed (the sensing start, ISO 8601 text, or None), mask (clouds.find's,
    or None), mask_warning)"""
    p = path.rstrip('/')
    if not os.path.exists(p):
        raise L.DataError(f'{path}: Sentinel-2 product not found')
    if p.lower().endswith('.json'):
        return stac.open_item(path)
    if p.lower().endswith('.zip'):
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
                meta, tile = _named(names, MTD), _named(names, MTD_TL)
                xml = z.read(meta) if meta else None
                tile_xml = z.read(tile) if tile else b''
        except (zipfile.BadZipFile, OSError) as e:
            raise L.DataError(f'{path}: not a readable zip, truncated or corrupt? '
                              f'({e.__class__.__name__})')
        root = f'/vsizip/{os.path.abspath(p)}/'
    else:
        if not os.path.isdir(p):
            raise L.DataError(f'{path}: not a Sentinel-2 product (a .SAFE folder or its .zip, a '
                              f'STAC item .json or a folder of band GeoTIFFs)')
        names = [os.path.relpath(os.path.join(d, f), p) for d, _, fs in os.walk(p) for f in fs]
        meta, tile = _named(names, MTD), _named(names, MTD_TL)
        xml = open(os.path.join(p, meta), 'rb').read() if meta else None
        tile_xml = open(os.path.join(p, tile), 'rb').read() if tile else b''
        root = os.path.abspath(p) + '/'
    if meta is None and os.path.isdir(p) and not p.lower().endswith('.safe'):
        return stac.open_folder(path)             # per-band GeoTIFFs (Earth Engine's downloads)
    if meta is None:
        raise L.DataError(f'{path}: not a Sentinel-2 product (no MTD_MSIL1C.xml or MTD_MSIL2A.xml)')
    level = 'L1C' if '1C' in os.path.basename(meta).upper() else 'L2A'
    product = dict(path=path, level=level, files=_band_files(names, root, path, level),
                   name=re.sub(r'\.(safe|zip)$', '', os.path.basename(p), flags=re.I))
    product.update(_radiometry(xml, f'{path}: {meta}'))
    listed = xml.decode('utf-8', 'replace') + tile_xml.decode('utf-8', 'replace')
    product['mask'], product['mask_warning'] = clouds.find(names, root, level, listed)
    product['sun'] = shadows.sun_angles(tile_xml.decode('utf-8', 'replace'))
    return product


def _band_files(names, root, path, level):
    """The finest file of each band under GRANULE/*/IMG_DATA. -> {band: path}"""
    found, granules = {}, set()
    for n in names:
        m = FILE.search(n)
        if m and '/IMG_DATA/' in '/' + n.replace('\\', '/') and m.group(1).upper() != 'B8A':
            res = int(m.group(2) or 0)
            band = m.group(1).upper()
            granules.add(re.sub(r'.*GRANULE/([^/]+)/.*', r'\1', n.replace('\\', '/')))
            if band not in found or res < found[band][0]:
                found[band] = (res, root + n)
    if len(granules) > 1:                         # the layout before processing baseline 02.04
        raise L.DataError(f'{path}: {len(granules)} granules in one product; stack one tile '
                          f'at a time (products since 2016-12 hold one)')
    need = [b for b in BANDS if not (b == 'B10' and level == 'L2A')]
    missing = [b for b in need if b not in found]
    if missing:
        raise L.DataError(f"{path}: the product has no {', '.join(missing)} "
                          f'(expected GRANULE/*/IMG_DATA/..._{missing[0]}...jp2)')
    return {b: found[b][1] for b in need}


def _radiometry(xml, where):
    """Quantification value and per-band DN offsets from the product metadata's text."""
    try:
        tree = ET.fromstring(xml)
    except ET.ParseError as e:
        raise L.DataError(f'{where}: unreadable metadata ({e})')
    quant, offsets, ids, sensed = None, {}, {}, None
    for el in tree.iter():
        tag = el.tag.split('}')[-1]
        if tag == 'PRODUCT_START_TIME' and sensed is None:
            sensed = (el.text or '').strip() or None
        elif tag in ('BOA_QUANTIFICATION_VALUE', 'QUANTIFICATION_VALUE') and quant is None:
            quant = float(el.text)
        elif tag in ('BOA_ADD_OFFSET', 'RADIO_ADD_OFFSET'):
            offsets[int(el.get('band_id'))] = float(el.text)
        elif tag == 'Spectral_Information' and el.get('physicalBand'):
            ids[int(el.get('bandId'))] = el.get('physicalBand')
    if not quant:
        raise L.DataError(f'{where}: no quantification value in the metadata')

    def name(i):                                 # 'B1' -> 'B01', as the files spell it
        b = ids.get(i, BAND_ORDER[i] if i < len(BAND_ORDER) else '')
        return re.sub(r'^B(\d)$', r'B0\1', b)
    off = {name(i): v for i, v in offsets.items()}
    return dict(quantification=quant, offset={b: off.get(b, 0.0) for b in BANDS}, sensed=sensed)


# ----------------------------------------------------------------------------- stacking

def stack(product_path, dem_path, out, log=print, buffer=0, grid=None, fringe=fringes.CELLS,
          detect=False, area=None):
    """Stack a product and a DEM into out (GeoTIFF, 14 float32 bands, NaN = no data) and its
    cloud mask into <out>_clouds.tif (clouds.CLASSES; its clouds' fringes, fringes.py; `buffer`
    pixels around clouds; without a mask and with `detect`, clouds from the spectra alone), on
    B02's 10 m grid or on `grid` (another product's: dict crs, transform, width, height), each
    written under a temporary name and renamed when complete, the mask first.
    -> dict(path, size, level, covered, nodata, mask, not_analysed, fringe)"""
    rio = L.rasterio_for(out)
    from rasterio.vrt import WarpedVRT
    pr = open_product(product_path)
    srcs, dem, grid, geoms = _open_inputs(rio, pr, dem_path, grid, area)
    H, W, tr = grid['height'], grid['width'], grid['transform']
    res = rio.enums.Resampling.bilinear
    mask = on_grid_mask(rio, pr, grid, buffer, detect, log)
    vrts = {k: on_grid(s, grid, WarpedVRT, res) for k, s in srcs.items()}
    dvrt = WarpedVRT(dem, resampling=res, src_nodata=dem.nodata, nodata=np.nan,
                     dtype='float32', **grid)
    common = dict(driver='GTiff', width=W, height=H, crs=grid['crs'], transform=tr, tiled=True,
                  blockxsize=256, blockysize=256, compress='deflate', BIGTIFF='IF_SAFER')
    # Zstandard, level 1: lossless, as small as deflate's, 3.5x cheaper to write (docs/speed.md)
    profile = dict(common, count=L.BANDS, dtype='float32', nodata=np.nan, predictor=3,
                   compress='zstd', zstd_level=1, num_threads='ALL_CPUS')
    counts, side = {}, clouds.sidecar(out)

    def write(tmp, tmp_mask=None):
        # GDAL's block cache bounded: 512 MB holds a row of every band's JPEG 2000 tiles
        with rio.Env(GDAL_CACHEMAX=512), rio.open(tmp, 'w', **profile) as dst, \
                (rio.open(tmp_mask, 'w', **common, count=1, dtype='uint8', nodata=255)
                 if tmp_mask else contextlib.nullcontext()) as mdst:
            for i, d in enumerate(DESCRIPTIONS, 1):
                dst.set_band_description(i, d)
            if mdst is not None:
                clouds.write_tags(mdst, buffer, fringe, pr['mask']['kind'] == 'spectral')
            counts.update(_write_rows(dst, mdst, vrts, dvrt, mask, pr, dem_path, grid, fringe,
                                      edges.cell(abs(srcs['B01'].transform.a), abs(tr.a)), geoms))
            dst.update_tags(**_tags(counts), **({'AOI': aoi.key(area)} if area else {}))
        if tmp_mask and pr['mask']['kind'] != 'SCL':   # L1C's masks have no cloud shadows
            counts['unseen'] += find_shadows(tmp, tmp_mask, pr, buffer, log)
        if counts['covered'] == 0 and counts['no_dem'] > 0:
            raise L.DataError(f'{dem_path}: the DEM holds no elevation over the product '
                              f'(all no-data there)')
    try:
        if mask is None:
            L.atomic_write(out, write)
            if os.path.exists(side):                # a mask left by an earlier stack of out
                os.remove(side)
        else:                                       # the mask renamed first, the stack last
            L.atomic_write(out, lambda t: L.atomic_write(side, lambda tm: write(t, tm)))
    finally:
        for s in list(srcs.values()) + [dem] + ([mask] if mask else []):
            s.close()
    covered, no_dem = counts['covered'], counts['no_dem']
    if no_dem:
        share = covered / (covered + no_dem)
        log(f"warning: {dem_path}: the DEM covers {100 * share:.1f} % of the product's valid "
            f'pixels; the rest is no-data in every output')
    return dict(path=out, size=[H, W], level=pr['level'], covered=covered,
                nodata=counts['nodata'], mask=pr['mask'] and pr['mask']['name'],
                not_analysed=counts['unseen'], fringe=counts.get('fringe', 0))


def on_grid_mask(rio, pr, grid, buffer, detect, log):
    """The product's cloud mask read onto the grid (clouds.OnGrid). A product without one gets,
    with detect, a blank mask whose clouds Fmask's tests find over the whole scene (kind
    'spectral'; fringes.py), else None; one warning either way."""
    if pr['mask']:
        return clouds.OnGrid(rio, pr['mask'], grid, buffer)
    if not detect:
        log(f"warning: {pr['path']}: {pr['mask_warning']}")
        return None
    log(f"warning: {pr['path']}: " + pr['mask_warning'].replace(
        'clouds are mapped as ground', "clouds are found by Fmask's spectral tests alone"))
    pr['mask'] = dict(kind='spectral', res=0, path=None, name="Fmask's spectral tests")
    return clouds.Blank(grid['width'])


def find_shadows(stack, mask, pr, buffer, log):
    """Cloud shadows marked in a mask that has none, from the sun's angles (shadows.py).
    -> pixels marked"""
    if pr['sun'] is None:
        log(f"warning: {pr['path']}: no Mean_Sun_Angle in MTD_TL.xml: cloud shadows, which its "
            f"{pr['mask']['kind']} does not mark, are mapped as ground")
        return 0
    n = shadows.add(stack, mask, *pr['sun'], buffer)
    log(f"{pr['name']}: {n} pixels of cloud shadow found from the sun's angles "
        f"(zenith {pr['sun'][0]:.1f}, azimuth {pr['sun'][1]:.1f} degrees)")
    return n


def stacked(product, dem, out, name, log, buffer=0, grid=None, fringe=fringes.CELLS,
            detect=False, corrections=S.CORRECT, area=None):
    """The product stacked with the DEM into <out>/<name>.tif, its cloud mask beside it (a
    finished stack is reused when its mask was made as asked); opened as a Scene that reads it
    with the `corrections` asked (scene.CORRECT unless told)."""
    path = os.path.join(out, f'{name}.tif')
    if os.path.exists(path) and stack_on_grid(path, grid, area) and \
            mask_as_asked(stack_mask(path), buffer, fringe, detect):
        log(f'{name}: stacked earlier, reused {path}')
    else:
        log(f'{name}: stacking {product} with {dem}...')
        info = stack(product, dem, path, log, buffer, grid, fringe, detect, area)
        if info['mask']:
            log(f"{name}: not analysed: {info['not_analysed']} pixels by its "
                f"{os.path.basename(info['mask'])}, {info['fringe']} of them at its clouds' edges "
                f"by Fmask's tests{f' and {buffer} pixels around its clouds' if buffer else ''} "
                f'({os.path.basename(clouds.sidecar(path))})')
    return S.Scene(path, corrections)


def mask_as_asked(made, buffer, fringe, detect):
    """Whether a stack's mask, made as stack_mask says, is the one these flags would make."""
    if made is None:                              # a product without a mask, none found
        return not detect
    b, f, from_spectra = made
    return (b, f) == (buffer, fringe) and (detect or not from_spectra)


def stack_on_grid(path, grid, area=None):
    """Whether a stack lies on grid (None: any grid will do), cut to the same area or to none."""
    with L.rasterio_for(path).open(path) as f:
        if f.tags().get('AOI') != (aoi.key(area) if area else None):
            return False
        return grid is None or (f.crs, f.transform, f.width, f.height) == \
            (grid['crs'], grid['transform'], grid['width'], grid['height'])


def stack_mask(path):
    """How a stack's cloud mask was made: (buffer, fringe, found from the spectra alone); None
    without a mask."""
    side = clouds.sidecar(path)
    if not os.path.exists(side):
        return None
    with L.rasterio_for(side).open(side) as f:
        t = f.tags()
    return (int(t.get('CLOUD_BUFFER_PX', 0)), int(t.get('CLOUD_FRINGE_CELLS', 0)),
            t.get('CLOUDS_FROM_SPECTRA') == 'yes')


def _open_inputs(rio, pr, dem_path, grid=None, area=None):
    """The product's bands and the DEM opened, and the grid to stack on (B02's by default; with
    an area, its window over the area), both checked to overlap it.
    -> ({band: dataset}, DEM dataset, grid, the area's polygons in its CRS or None)"""
    from rasterio.warp import transform_bounds
    srcs = {b: open_band(rio, pr, b) for b in pr['files']}
    ref = srcs['B02']
    for b, s in srcs.items():
        if s.crs != ref.crs:
            raise L.DataError(f"{pr['files'][b]}: CRS {s.crs} differs from B02's {ref.crs}")
    grid, geoms = grid or product_grid(pr, ref), None
    if area:                                      # the window over it, no data outside it
        grid, geoms = aoi.window(area, grid, os.path.basename(pr['path'].rstrip('/')))
    tr = grid['transform']
    bounds = (tr.c, tr.f + grid['height'] * tr.e, tr.c + grid['width'] * tr.a, tr.f)
    if not overlaps(transform_bounds(ref.crs, grid['crs'], *ref.bounds), bounds):
        raise L.DataError(f"{pr['path']}: the product does not overlap the grid it is to be "
                          f'stacked on')
    dem = dem_.open_dem(rio, dem_path)
    if not overlaps(transform_bounds(dem.crs, grid['crs'], *dem.bounds), bounds):
        raise L.DataError(f'{dem_path}: the DEM does not overlap the product '
                          f"({os.path.basename(pr['path'].rstrip('/'))})")
    return srcs, dem, grid, geoms


def product_grid(pr, b02=None):
    """The grid a product is stacked on: a folder's metric grid (stac.py), else B02's 10 m one.
    -> dict(crs, transform, width, height)"""
    if pr.get('grid'):
        return pr['grid']
    with contextlib.nullcontext(b02) if b02 else open_band(L.rasterio_for(pr['path']), pr,
                                                           'B02') as ref:
        return dict(crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height)


def on_grid(src, grid, WarpedVRT, resampling):
    """A band as read on the 10 m grid: itself when it lies on it, else warped (DN 0 is no data
    and takes no part in the resampling)."""
    same = (src.width, src.height) == (grid['width'], grid['height']) and \
        src.transform == grid['transform']
    return src if same else WarpedVRT(src, resampling=resampling, src_nodata=0, nodata=0, **grid)


def _write_rows(dst, mdst, vrts, dvrt, mask, pr, dem_path, grid, fringe, b1_cell, geoms=None):
    """Stream the stack into dst, and the cloud mask into mdst, in bands of ROWS rows; a
    mask's fringes refined from the spectra (fringes.py).
    -> dict(covered: pixels with data, nodata: without, no_dem: with imagery but no elevation,
    unseen: with data but not analysed, fringe: of those, marked from the spectra, cirrus: B10's
    clear level by elevation, cirrus.clear_levels; edges: B1's line on B2, edges.fit, with a
    mask). b1_cell: B1's cell in grid pixels."""
    from rasterio.windows import Window
    H, W, tr = grid['height'], grid['width'], grid['transform']
    xres, yres = abs(tr.a), abs(tr.e)
    w = fringes.width(pr['mask'], xres, fringe) if mdst is not None else 0
    n_ = dict(covered=0, nodata=0, no_dem=0, unseen=0, fringe=0)
    cir, edg = [], []                          # sampled: (elevation, B10), (B2, B1)
    for a in range(0, H, ROWS):
        n = min(ROWS, H - a)
        out = np.empty((L.BANDS, n, W), np.float32)
        bad = np.zeros((n, W), bool)
        for i, band in enumerate(BANDS):
            if band not in vrts:                  # L2A's B10
                out[i] = B10_FILL
                continue
            dn = _read(vrts[band], Window(0, a, W, n), pr['files'][band])
            bad |= dn == 0
            out[i] = (dn.astype(np.float32) + pr['offset'][band]) / pr['quantification']
        lo, hi = max(a - 1, 0), min(a + n + 1, H)  # one row of halo each side for the slope
        z = _read(dvrt, Window(0, lo, W, hi - lo), dem_path)
        z = np.pad(z, ((a - lo == 0, a + n + 1 - hi), (0, 0)), mode='edge')
        out[12], out[13] = dem_.horn_slope(z, xres, yres), z[1:-1]
        gap = ~np.isfinite(out[12]) & ~bad
        n_['no_dem'] += int(gap.sum())
        bad |= gap | (~aoi.inside(geoms, grid, a, n) if geoms else False)
        out[:, bad] = np.nan
        dst.write(out, window=Window(0, a, W, n))
        seen = ~bad
        if mdst is not None:
            m, far = _mask_rows(mdst, mask, out, bad, a, w, b1_cell, pr, n_)
            seen = m == 0
            edg.append(_sample(out, far, a, edges.B2, edges.B1))
        if 'B10' in vrts:                          # Level-1C (L2A's B10 is a constant)
            cir.append(_sample(out, seen, a, cirrus.DEM, cirrus.B10))
        n_['nodata'] += int(bad.sum())
        n_['covered'] += int((~bad).sum())
    n_['cirrus'] = cirrus.clear_levels(*map(np.concatenate, zip(*cir))) if cir else None
    n_['edges'] = edges.fit(*map(np.concatenate, zip(*edg)), b1_cell) if edg else None
    return n_


def _sample(x, keep, first, i, j, every=8):
    """Bands i, j of every `every`-th row and column where `keep` and both finite. x: float32
    [14, n, W], the stack's rows first .. first + n; keep: bool [n, W]. -> (float32 [m]) * 2"""
    r = np.s_[(-first) % every::every, ::every]
    u, v = x[i][r], x[j][r]
    ok = keep[r] & np.isfinite(u) & np.isfinite(v)
    return u[ok], v[ok]


def _tags(counts):
    """What the stack keeps to be read corrected: B10's clear levels (Level-1C, cirrus.py) and
    B1's line on B2 (a stack with a cloud mask, edges.py). -> {tag: text}"""
    return ({cirrus.TAG: cirrus.to_tag(counts['cirrus'])} if counts['cirrus'] else {}) | \
        ({edges.TAG: edges.to_tag(counts['edges'])} if counts['edges'] else {})


def _mask_rows(mdst, mask, out, bad, a, w, cell, pr, n_):
    """The cloud mask's rows a .. a + n written, its fringes marked (within w of its clouds, or
    over the whole scene for a mask from the spectra). out: float32 [14, n, W], the stack's
    rows; bad: bool [n, W], no data. -> (the rows, uint8 [n, W]; analysed pixels farther than
    `cell` from cloud, cirrus and shadow, bool [n, W])"""
    from rasterio.windows import Window
    n, W = bad.shape
    reach = max(w, cell)                           # a cloud's fringe and B1's cell: rows around
    lo, hi = max(a - reach, 0), min(a + n + reach, mdst.height)
    c = mask.read(lo, hi - lo)
    m = c[a - lo:a - lo + n].copy()
    if w:
        n_['fringe'] += fringes.mark(out, m, fringes.near_clouds(c, a - lo, n, w))
    elif pr['mask']['kind'] == 'spectral':         # no mask: the whole scene tested
        n_['fringe'] += fringes.mark(out, m, np.ones(m.shape, bool))
    m[bad] = 255
    mdst.write(m[None], window=Window(0, a, W, n))
    n_['unseen'] += int(((m > 0) & (m < 255)).sum())
    return m, (m == 0) & (clouds.dilate(c, cell)[a - lo:a - lo + n] != 6)


def open_band(rio, pr, band):
    try:
        return rio.open(pr['files'][band])
    except Exception as e:
        raise L.DataError(f"{pr['files'][band]}: unreadable band file, truncated or corrupt? "
                          f'({e.__class__.__name__})')


def _read(src, window, what):
    try:
        return src.read(1, window=window)
    except Exception as e:
        raise L.DataError(f'{what}: unreadable, truncated or corrupt? ({e.__class__.__name__})')


def overlaps(a, b):
    """a, b: (left, bottom, right, top) in one CRS."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
