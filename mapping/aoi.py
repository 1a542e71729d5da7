"""An area of interest: a mapper maps a valley, not a 110 km tile. A polygon or multipolygon
(`--aoi AOI.geojson`, in any CRS) or a box in degrees (`--bbox W S E N`) cuts the product's 10 m
grid to the window that covers it, so stacking reads and decodes only the blocks of each band
that window touches (a COG's tiles, a JPEG 2000's code blocks outside are never read), and the
pixels of the window outside the polygon are no data: the map, its statistics, the polygons and
--adapt's tiles stay inside.

    python predict.py --s2 item.json --dem dem.tif --aoi valley.geojson --out maps
    python -m mapping stack PRODUCT.SAFE --dem dem.tif --bbox 85.30 27.70 85.50 27.90 --out s.tif

GeoJSON is in WGS 84 longitude and latitude (RFC 7946); a file that names another CRS in the
older `crs` member ({"type": "name", "properties": {"name": "EPSG:32645"}}) is read in that CRS.
"""
import json
import math

import landslide as L

POLYGONS = ('Polygon', 'MultiPolygon')


def read(path):
    """The polygons of a GeoJSON file (a geometry, a Feature or a FeatureCollection).
    -> dict(geoms [GeoJSON geometry], crs, name)"""
    try:
        obj = json.load(open(path))
    except (OSError, ValueError) as e:
        raise L.DataError(f'{path}: not a readable GeoJSON file ({e.__class__.__name__})')
    if not isinstance(obj, dict):
        raise L.DataError(f'{path}: not a GeoJSON object')
    crs = ((obj.get('crs') or {}).get('properties') or {}).get('name') or 'EPSG:4326'
    feats = obj.get('features') if obj.get('type') == 'FeatureCollection' else [obj]
    geoms = [f.get('geometry') if isinstance(f, dict) and f.get('type') == 'Feature' else f
             for f in feats or []]
    kinds = sorted({g.get('type', '?') if isinstance(g, dict) else 'nothing' for g in geoms})
    if not geoms or any(k not in POLYGONS for k in kinds):
        raise L.DataError(f"{path}: the area of interest must be polygons; it holds "
                          f"{', '.join(kinds) or 'no geometry'}")
    return dict(geoms=geoms, crs=crs.replace('urn:ogc:def:crs:OGC:1.3:CRS84', 'EPSG:4326'),
                name=path)


def from_bbox(bbox):
    """--bbox W S E N in degrees. -> the dict read returns"""
    w, s, e, n = bbox
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise L.DataError(f'--bbox {w} {s} {e} {n}: not a box in degrees (west < east within '
                          f'-180..180, south < north within -90..90)')
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return dict(geoms=[dict(type='Polygon', coordinates=[ring])], crs='EPSG:4326',
                name=f'--bbox {w} {s} {e} {n}')


def window(area, grid, what):
    """The part of a product's grid that covers the area, snapped to its pixels. grid: dict(crs,
    transform, width, height). -> (the window's grid, the polygons in its CRS); an area off the
    grid is bad input."""
    from rasterio.warp import transform_geom
    try:
        geoms = [transform_geom(area['crs'], grid['crs'], g) for g in area['geoms']]
    except Exception:                             # not even expressible there: far off
        raise L.DataError(f"{area['name']}: the area of interest does not overlap {what}")
    xs, ys = zip(*(p for g in geoms for p in points(g)))
    tr = grid['transform']
    inv = ~tr
    corners = [(x, y) for x in (min(xs), max(xs)) for y in (min(ys), max(ys))]
    cols = [inv.a * x + inv.b * y + inv.c for x, y in corners]
    rows = [inv.d * x + inv.e * y + inv.f for x, y in corners]
    c0, c1 = max(math.floor(min(cols)), 0), min(math.ceil(max(cols)), grid['width'])
    r0, r1 = max(math.floor(min(rows)), 0), min(math.ceil(max(rows)), grid['height'])
    if c0 >= c1 or r0 >= r1:
        raise L.DataError(f"{area['name']}: the area of interest does not overlap {what}")
    sub = dict(crs=grid['crs'], transform=shifted(tr, c0, r0), width=c1 - c0, height=r1 - r0)
    return sub, geoms


def shifted(tr, col, row):
    """The transform of a grid whose first pixel is (col, row) of tr's."""
    from rasterio.transform import Affine
    return Affine(tr.a, tr.b, tr.c + col * tr.a + row * tr.b, tr.d, tr.e,
                  tr.f + col * tr.d + row * tr.e)


def points(g):
    """Every vertex of a polygon or multipolygon. -> iterator of (x, y)"""
    rings = g['coordinates'] if g['type'] == 'Polygon' else \
        [r for poly in g['coordinates'] for r in poly]
    return ((p[0], p[1]) for r in rings for p in r)


def inside(geoms, grid, first, n):
    """Which pixels of rows first .. first + n of grid lie inside the polygons (a pixel whose
    centre does). -> bool [n, width]"""
    from rasterio.features import rasterize
    tr = shifted(grid['transform'], 0, first)
    return rasterize(geoms, out_shape=(n, grid['width']), transform=tr, fill=0,
                     default_value=1, dtype='uint8').astype(bool)


def key(area):
    """What identifies an area among others, kept in a stack's tags (AOI) to tell whether a
    stack was cut to it. -> str"""
    import hashlib
    text = json.dumps([area['crs'], area['geoms']], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def add_flags(ap):
    """--aoi and --bbox, as predict.py and `python -m mapping stack` take them."""
    ap.add_argument('--aoi', help='with --s2: map only this area, a GeoJSON polygon or '
                    'multipolygon (WGS 84, or the CRS its crs member names)')
    ap.add_argument('--bbox', type=float, nargs=4, metavar=('W', 'S', 'E', 'N'),
                    help='with --s2: map only this box, in degrees of longitude and latitude')


def of_args(args):
    """The area --aoi or --bbox names, or None. -> the dict read returns"""
    if args.aoi and args.bbox:
        raise L.DataError(f'{args.aoi}: give --aoi or --bbox, not both')
    return read(args.aoi) if args.aoi else from_bbox(args.bbox) if args.bbox else None
