"""Landslides as polygons, and a map checked against an inventory. predict.py calls trace_scene
after mapping a scene:

- landslide_polygons: one polygon per connected landslide of the mask (4-connected pixels, so
  that every ring is simple), traced by rasterio.features.shapes, in WGS 84 longitude/latitude
  as RFC 7946 requires, with id, area in m², pixel count, mean and max probability; --min-area
  drops specks. Written as <name>_landslides.geojson.
- inventory_check: pixel precision, recall, F1 and IoU against a true mask on the scene's grid,
  and objects: true landslides found (sharing a pixel with a predicted one), missed, and
  predicted landslides that share a pixel with none.
Needs rasterio (pip install -r requirements-geo.txt).
"""
import json
import math
import os

import numpy as np

import landslide as L
from mapping import scene as S

EARTH_RADIUS = 6_371_008.8                      # mean radius, m (for areas in a geographic CRS)


def components(mask, transform):
    """Connected landslides of a mask. mask: bool [H, W] -> (labels int32 [H, W], 0 outside
    any, k inside the k-th; [(k, polygon in the mask's CRS)])"""
    from rasterio import features
    from rasterio.transform import Affine
    transform = Affine.identity() if transform is None else transform    # a scene without CRS
    shapes = [geom for geom, _ in features.shapes(mask.astype(np.uint8), mask=mask,
                                                  connectivity=4, transform=transform)]
    labels = np.zeros(mask.shape, np.int32)
    if shapes:
        labels = features.rasterize(((g, k) for k, g in enumerate(shapes, 1)), out_shape=mask.shape,
                                    transform=transform, dtype='int32')
    return labels, list(enumerate(shapes, 1))


def pixel_areas(transform, crs, rows):
    """Area in m² of one pixel in each of `rows` (float64 [rows]): constant in a projected CRS in
    metres, by latitude in a geographic one; None where the CRS says neither."""
    if crs is None:
        return None
    if crs.is_geographic:
        top = transform.f + transform.e * np.arange(rows)
        lat1, lat2 = np.radians(top), np.radians(top + transform.e)
        band = np.abs(np.sin(lat1) - np.sin(lat2))      # sphere: R² dλ |sin φ1 - sin φ2|
        return EARTH_RADIUS ** 2 * math.radians(abs(transform.a)) * band
    units = str(crs.linear_units).lower()
    if units not in ('metre', 'meter', 'metres', 'meters', 'm'):
        return None
    return np.full(rows, abs(transform.a * transform.e - transform.b * transform.d))


def label_sums(labels, prob, areas, n, mask=None, rows=1024):
    """Per connected landslide, in bands of `rows` rows (no whole-scene float arrays): pixel
    count, probability sum and max, area, and pixels next to (8 neighbours) the not-analysed
    area and to no data. labels: int32 [H, W] (0 outside any, 1..n-1); prob: float [H, W] (NaN
    outside the analysed area); areas: per-row pixel area [H] or None; mask: the map, uint8
    [H, W] (254 not analysed, 255 no data). -> dict of arrays [n] (area None without areas)"""
    out = {k: np.zeros(n) for k in ('psum', 'pmax', 'near_unseen', 'near_nodata')}
    out['pixels'], out['area'] = np.zeros(n, np.int64), None if areas is None else np.zeros(n)
    for a in range(0, len(labels), rows):
        lab = labels[a:a + rows].ravel()
        p = np.nan_to_num(prob[a:a + rows].astype(np.float64)).ravel()
        out['pixels'] += np.bincount(lab, minlength=n)
        out['psum'] += np.bincount(lab, weights=p, minlength=n)
        np.maximum.at(out['pmax'], lab, p)
        if areas is not None:
            w = np.repeat(areas[a:a + rows], labels.shape[1])
            out['area'] += np.bincount(lab, weights=w, minlength=n)
        if mask is not None:
            lo = max(a - 1, 0)
            halo = mask[lo:a + rows + 1]
            for key, value in (('near_unseen', 254), ('near_nodata', S.NODATA_OUT)):
                near = neighbours(halo == value)[a - lo:a - lo + len(labels[a:a + rows])]
                out[key] += np.bincount(lab, weights=near.ravel(), minlength=n)
    return out


def neighbours(m):
    """Pixels of m (bool [h, w]) or next to one of them, 8-connected. -> bool [h, w]"""
    p = np.pad(m, 1)
    h, w = m.shape
    return np.logical_or.reduce([p[i:i + h, j:j + w] for i in range(3) for j in range(3)])


def landslide_polygons(mask, prob, transform, crs, min_area=0.0, found=None, extra=None):
    """mask: uint8 [H, W] (1 landslide, 0, 254 not analysed, 255 no data); prob: float [H, W];
    found: components(mask == 1, transform) when already traced; extra(k) -> more properties
    of landslide k. Each polygon says whether it touches the not-analysed area or no data: its
    outline may go on under a cloud or beyond the image. -> (GeoJSON FeatureCollection dict,
    total area m² or None)"""
    from rasterio.warp import transform_geom
    labels, shapes = found or components(mask == 1, transform)
    n = label_sums(labels, prob, pixel_areas(transform, crs, len(mask)), len(shapes) + 1, mask)
    feats, total = [], 0.0
    for k, geom in shapes:
        a = None if n['area'] is None else float(n['area'][k])
        if a is not None and a < min_area:
            continue
        total += a or 0.0
        g = transform_geom(crs, 'EPSG:4326', geom) if crs is not None else geom
        px = int(n['pixels'][k])
        feats.append({'type': 'Feature', 'geometry': g, 'properties': {
            'id': len(feats) + 1, 'area_m2': None if a is None else round(a, 1), 'pixels': px,
            'mean_probability': round(float(n['psum'][k] / px), 4),
            'max_probability': round(float(n['pmax'][k]), 4),
            'touches_not_analysed': bool(n['near_unseen'][k] > 0),
            'touches_no_data': bool(n['near_nodata'][k] > 0), **(extra(k) if extra else {})}})
    fc = {'type': 'FeatureCollection', 'features': feats}
    return fc, (None if n['area'] is None else round(total, 1))


def not_analysed_polygons(mask, transform, crs, cell=6):
    """Where the map could not see, as polygons in WGS 84: cells of cell x cell pixels (60 m at
    10 m, the coarsest cloud mask's pixel) holding any not-analysed pixel, so that the outlines
    stay few and simple on a full tile. mask: uint8 [H, W] (254 not analysed). -> GeoJSON dict"""
    from rasterio import features
    from rasterio.transform import Affine
    from rasterio.warp import transform_geom
    H, W = mask.shape
    coarse = np.zeros((-(-H // cell), -(-W // cell)), bool)
    for a in range(0, H, 1024 // cell * cell):               # bands of rows, whole cells each
        m = np.pad(mask[a:a + 1024 // cell * cell] == 254,
                   ((0, -min(1024 // cell * cell, H - a) % cell), (0, -W % cell)))
        coarse[a // cell:a // cell + len(m) // cell] = \
            m.reshape(len(m) // cell, cell, -1, cell).any((1, 3))
    tr = (Affine.identity() if transform is None else transform) @ Affine.scale(cell)
    feats = []
    for geom, _ in features.shapes(coarse.astype(np.uint8), mask=coarse, transform=tr):
        g = transform_geom(crs, 'EPSG:4326', geom) if crs is not None else geom
        feats.append({'type': 'Feature', 'geometry': g,
                      'properties': {'id': len(feats) + 1, 'status': 'not analysed'}})
    return {'type': 'FeatureCollection', 'features': feats}


def write_geojson(path, fc):
    L.atomic_write(path, lambda t: open(t, 'w').write(json.dumps(fc, separators=(',', ':')) + '\n'))


def inventory_check(mask, truth, transform=None, found=None):
    """mask: uint8 [H, W] (1, 0, 254 not analysed, 255 no data); truth: bool [H, W]. Only the
    analysed pixels count; found: components(mask == 1, transform) when already traced.
    -> dict(pixels: precision, recall, f1, iou; objects: true, found, missed, predicted, false;
    true_not_analysed: true landslide pixels the map could not see)"""
    valid = mask < 254
    pred = (mask == 1) & valid
    gt = truth & valid
    pix = L.scores(*L.confusion(pred, gt))
    t_lab, t_shapes = components(gt, transform)
    p_lab, p_shapes = found or components(pred, transform)
    both = pred & gt
    found = np.unique(t_lab[both])
    hit = np.unique(p_lab[both])
    objects = dict(true=len(t_shapes), found=int((found > 0).sum()),
                   missed=len(t_shapes) - int((found > 0).sum()), predicted=len(p_shapes),
                   false=len(p_shapes) - int((hit > 0).sum()))
    return dict(pixels=pix, objects=objects, true_not_analysed=int((truth & (mask == 254)).sum()))


# ----------------------------------------------------------------------------- a mapped scene

def trace_scene(sc, out, min_area, truth, log, change=False):
    """A mapped scene's landslides as polygons (<name>_landslides.geojson; for a change map each
    with its status, traced status by status), the not-analysed area as polygons and, with a true
    mask, the metrics (of the new landslides for a change map).
    -> (what summary.json adds, what metrics.json records or None)"""
    try:
        L.rasterio_for(sc.path)
    except L.DataError:
        log(f'{sc.name}: no polygons: they need rasterio ({L.GEO_INSTALL})')
        return {}, None
    ext = {'tif': '.tif', 'h5': '.h5', 'npy': '.npy'}[sc.fmt]
    mask = S.read_output(os.path.join(out, f'{sc.name}_landslide{ext}'), 'landslide')
    added, new = {}, None                          # class 1 traced once, for both uses
    if sc.crs is None:
        log(f'{sc.name}: no polygons: the scene has no CRS (a GeoTIFF has one)')
    else:
        prob = S.read_output(os.path.join(out, f'{sc.name}_probability{ext}'), 'probability')
        added, new = write_scene_polygons(sc, out, mask, prob, min_area, change)
    if not truth:
        return added, None
    m = inventory_check(mask, S.read_truth(truth, sc.H, sc.W), sc.transform,
                        new or components(mask == 1, sc.transform))
    p, o = m['pixels'], m['objects']
    log(f"{sc.name} against {truth}: precision {p['precision']:.4f} recall {p['recall']:.4f} "
        f"F1 {p['f1']:.4f} IoU {p['iou']:.4f}; landslides found {o['found']}/{o['true']}, "
        f"false {o['false']}/{o['predicted']}" + (' (new landslides)' if change else ''))
    return added, {'truth': os.path.abspath(truth), **m}


def write_scene_polygons(sc, out, mask, prob, min_area, change):
    """The polygons of trace_scene, written. -> (what summary.json adds, the new landslides'
    components)"""
    statuses = {1: 'new', 2: 'before', 3: 'unseen before'} if change else {1: None}
    feats, areas, new = [], {}, None
    for v, status in statuses.items():            # one status's labels at a time (a full
        found = components(mask == v, sc.transform)    # tile's are 0.5 GB each)
        new = found if v == 1 else new
        extra = (lambda k, s=status: {'status': s}) if status else None
        fc, areas[status] = landslide_polygons(mask, prob, sc.transform, sc.crs, min_area,
                                               found, extra)
        feats += fc['features']
        del found
    for i, f in enumerate(feats, 1):
        f['properties']['id'] = i
    gname = f'{sc.name}_landslides.geojson'
    write_geojson(os.path.join(out, gname), {'type': 'FeatureCollection', 'features': feats})
    added = dict(landslides=len(feats), landslides_m2=sum(a or 0 for a in areas.values()),
                 min_area_m2=min_area, geojson=gname)
    if change:
        added['by_status'] = {s: dict(landslides=sum(f['properties']['status'] == s
                                                     for f in feats), m2=areas[s])
                              for s in statuses.values()}
    if (mask == 254).any():
        uname = f'{sc.name}_not_analysed.geojson'
        write_geojson(os.path.join(out, uname), not_analysed_polygons(mask, sc.transform, sc.crs))
        added['not_analysed_geojson'] = uname
    return added, new
