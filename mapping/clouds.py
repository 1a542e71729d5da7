"""What a Sentinel-2 product could not see, from the product's own masks, put onto the stack's
10 m grid: the finest mask the product holds is read, reduced to the classes below and written
beside the stack as <name>_clouds.tif, which mapping reads to leave those pixels out (254 in
the landslide map, out of the scene's statistics and of AdaBN). sentinel2.stack calls it.

- Level-2A: the scene classification, IMG_DATA/R20m/*_SCL_20m.jp2 (else R60m's). Not analysed:
  cloud of medium and high probability (8, 9), thin cirrus (10), cloud shadow (3), snow or ice
  (11), saturated or defective (1). Analysed: vegetation (4), not vegetated (5: a landslide scar
  is bare ground, never a cloud), water (6), dark area or topographic shadow (2: steep slopes
  facing away from the sun, where landslides are), unclassified (7).
- Level-1C and 2A since processing baseline 04.00: QI_DATA/MSK_CLASSI_B00.jp2 at 60 m, three
  bands (opaque clouds, cirrus, snow or ice); it has no cloud shadows, so in L1C they are mapped
  as ground (docs/mapping.md gives what that costs).
- Before 04.00: QI_DATA/MSK_CLOUDS_B00.gml, OPAQUE and CIRRUS polygons in the tile's CRS, read
  with the standard library and rasterized onto the grid.
Classes are put on the grid by nearest neighbour (they are classes, not quantities). buffer
pixels around clouds, cirrus and shadows are not analysed either: a cloud's semi-transparent
edge lies below the masks' probability thresholds and inside their 20 m or 60 m pixels.
A product without any of these masks maps as before, with a warning naming what is missing; a
mask that is present but unreadable is bad input.
"""
import os
import re
import xml.etree.ElementTree as ET

import numpy as np

import landslide as L

CLASSES = {0: 'analysed', 1: 'cloud', 2: 'thin cirrus', 3: 'cloud shadow', 4: 'snow or ice',
           5: 'saturated or defective', 6: 'near a cloud', 255: 'no data'}
COLOURS = {0: (0, 0, 0), 1: (255, 255, 255), 2: (150, 210, 255), 3: (90, 70, 50),
           4: (200, 240, 255), 5: (255, 0, 255), 6: (200, 200, 200), 255: (0, 0, 0)}
FROM_SCL = {1: 5, 3: 3, 8: 1, 9: 1, 10: 2, 11: 4}       # SCL class -> ours; the rest analysed
BUFFERED = (1, 2, 3)                                     # classes whose edges get the buffer
PATTERNS = [('SCL', 20, r'IMG_DATA/R20m/[^/]*_SCL_20m\.(jp2|tif)$', 'R20m/*_SCL_20m.jp2'),
            ('SCL', 60, r'IMG_DATA/R60m/[^/]*_SCL_60m\.(jp2|tif)$', 'R60m/*_SCL_60m.jp2'),
            ('MSK_CLASSI', 60, r'QI_DATA/[^/]*MSK_CLASSI_B00[^/]*\.(jp2|tif)$',
             'QI_DATA/MSK_CLASSI_B00.jp2'),
            ('MSK_CLOUDS', 60, r'QI_DATA/[^/]*MSK_CLOUDS_[^/]*B00[^/]*\.gml$',
             'QI_DATA/MSK_CLOUDS_B00.gml')]


def find(names, root, level, listed=''):
    """The finest mask among a product's files (names: paths inside it; root: the prefix rasterio
    opens them with; listed: the metadata's text, which names the masks it lists).
    -> (dict(kind, res, path, name) or None, warning or None)"""
    order = PATTERNS if level == 'L2A' else PATTERNS[2:]
    for kind, res, pat, _ in order:
        hit = sorted(n for n in names if re.search(pat, n.replace('\\', '/')))
        if hit:
            return dict(kind=kind, res=res, path=root + hit[0], name=hit[0]), None
    want = [shown for *_, shown in order]
    gone = re.findall(r'>([^<>]*(?:_SCL_[26]0m|MSK_CLASSI_B00|MSK_CLOUDS_B00)[^<>]*)<', listed)
    said = f'; the metadata lists {gone[0]}, which the product does not hold' if gone else ''
    return None, (f"no cloud mask in the product (looked for {', '.join(want)}){said}: clouds "
                  f'are mapped as ground')


class OnGrid:
    """A mask read onto the stack's grid in bands of rows: read(a, n) -> uint8 [n, W] of CLASSES
    (0 where the mask says nothing), the buffer included."""

    def __init__(self, rio, mask, grid, buffer=0):
        from rasterio.vrt import WarpedVRT
        self.mask, self.grid, self.buffer, self.srcs = mask, grid, buffer, []
        self.shapes = None
        where = mask['path']
        try:
            if mask['kind'] == 'MSK_CLOUDS':
                self.shapes = read_gml(mask['path'], grid['crs'])
                return
            src = rio.open(where)
            self.srcs.append(src)
            bands = 3 if mask['kind'] == 'MSK_CLASSI' else 1
            if src.count < bands or src.dtypes[0] != 'uint8':
                raise L.DataError(f"{where}: expected {bands} uint8 band(s) for {mask['kind']}, "
                                  f'found {src.count} {src.dtypes[0]}')
            self.vrt = WarpedVRT(src, resampling=rio.enums.Resampling.nearest, nodata=0, **grid)
            self.srcs.append(self.vrt)
        except L.DataError:
            raise
        except Exception as e:
            raise L.DataError(f'{where}: unreadable cloud mask, truncated or corrupt? '
                              f'({e.__class__.__name__})')

    def read(self, a, n):
        b = self.buffer
        lo, hi = max(a - b, 0), min(a + n + b, self.grid['height'])
        c = self._classes(lo, hi - lo)
        if b:
            c = dilate(c, b)
        return c[a - lo:a - lo + n]

    def _classes(self, a, n):
        from rasterio.windows import Window
        W = self.grid['width']
        if self.shapes is not None:
            return rasterize(self.shapes, self.grid['transform'], a, n, W)
        try:
            x = self.vrt.read(window=Window(0, a, W, n))
        except Exception as e:
            raise L.DataError(f"{self.mask['path']}: unreadable cloud mask, truncated or corrupt? "
                              f'({e.__class__.__name__})')
        out = np.zeros((n, W), np.uint8)
        if self.mask['kind'] == 'SCL':
            for scl, ours in FROM_SCL.items():
                out[x[0] == scl] = ours
        else:                                            # opaque, cirrus, snow: 0 or 1 each
            for band, ours in ((2, 4), (1, 2), (0, 1)):  # opaque wins where several are set
                out[x[band] > 0] = ours
        return out

    def close(self):
        for s in reversed(self.srcs):
            s.close()


class Blank:
    """A mask that flags nothing, for a product without one whose clouds are found from the
    spectra (sentinel2.on_grid_mask): read(a, n) -> uint8 [n, W] of zeros."""

    def __init__(self, width):
        self.width = width

    def read(self, a, n):
        return np.zeros((n, self.width), np.uint8)

    def close(self):
        pass


def dilate(c, b):
    """Pixels within b pixels (a square) of a BUFFERED class and of no class themselves become 6.
    c: uint8 [n, W] -> uint8 [n, W]"""
    src = np.isin(c, BUFFERED)
    near = src.copy()
    for axis in (0, 1):
        grown = near.copy()
        for d in range(1, b + 1):
            if axis == 0:
                grown[d:] |= near[:-d]
                grown[:-d] |= near[d:]
            else:
                grown[:, d:] |= near[:, :-d]
                grown[:, :-d] |= near[:, d:]
        near = grown
    out = c.copy()
    out[near & (c == 0)] = 6
    return out


GML = {'gml': 'http://www.opengis.net/gml/3.2', 'eop': 'http://www.opengis.net/eop/2.0'}


def read_gml(path, crs):
    """MSK_CLOUDS_B00.gml: [(GeoJSON-like polygon in crs, class)] of its OPAQUE (1) and CIRRUS (2)
    features, exterior and interior rings."""
    try:
        if path.startswith('/vsizip/'):
            import zipfile
            zpath, inner = re.match(r'/vsizip/(.+?\.zip)/(.*)', path).groups()
            with zipfile.ZipFile(zpath) as z:
                root = ET.fromstring(z.read(inner))
        else:
            root = ET.parse(path).getroot()
    except (ET.ParseError, OSError, KeyError) as e:
        raise L.DataError(f'{path}: unreadable cloud mask ({e.__class__.__name__}: {e})')
    shapes = []
    for f in root.iter(f"{{{GML['eop']}}}MaskFeature"):
        kind = (f.findtext('eop:maskType', '', GML) or '').strip().upper()
        cls = {'OPAQUE': 1, 'CIRRUS': 2}.get(kind)
        for poly in f.iter(f"{{{GML['gml']}}}Polygon") if cls else []:
            rings = []
            for ring in poly.iter(f"{{{GML['gml']}}}posList"):
                dim = int(ring.get('srsDimension', '2'))
                try:
                    v = np.array(ring.text.split(), float).reshape(-1, dim)[:, :2]
                except (ValueError, AttributeError):
                    raise L.DataError(f'{path}: unreadable cloud mask (a posList is not a list '
                                      f'of {dim}-D coordinates)')
                rings.append(v.tolist())
            if rings:
                shapes.append(({'type': 'Polygon', 'coordinates': rings}, cls))
    epsg = re.search(r'EPSG:[\d.]*:(\d+)', ET.tostring(root, 'unicode')[:4000])
    if shapes and epsg and crs is not None and crs.to_epsg() not in (None, int(epsg.group(1))):
        from rasterio.warp import transform_geom
        shapes = [(transform_geom(f'EPSG:{epsg.group(1)}', crs, g), c) for g, c in shapes]
    return shapes


def rasterize(shapes, transform, a, n, W):
    """Polygons [(geometry, class)] burnt onto rows a..a+n-1 of the grid (a later class over an
    earlier one). -> uint8 [n, W]"""
    from rasterio import features
    from rasterio.transform import Affine
    if not shapes:
        return np.zeros((n, W), np.uint8)
    win = transform @ Affine.translation(0, a)
    order = sorted(shapes, key=lambda s: -s[1])          # cirrus first, opaque over it
    return features.rasterize(order, out_shape=(n, W), transform=win, fill=0, dtype='uint8')


def write_tags(dst, buffer=0, fringe=0, spectral=False):
    """Class names and a colour table, so that a GIS shows a legend; how the mask was made."""
    dst.update_tags(1, CLASSES=';'.join(f'{k}={v}' for k, v in CLASSES.items()))
    dst.update_tags(CLOUD_BUFFER_PX=str(buffer), CLOUD_FRINGE_CELLS=str(fringe),
                    CLOUDS_FROM_SPECTRA='yes' if spectral else 'no')
    dst.write_colormap(1, {k: COLOURS.get(k, (0, 0, 0)) for k in range(256)})


def sidecar(stack_path):
    """The cloud mask beside a stack: <stack without .tif>_clouds.tif"""
    return os.path.splitext(stack_path)[0] + '_clouds.tif'
