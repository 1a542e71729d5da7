"""Landslides as polygons, and a map checked against an inventory. predict.py calls these after
mapping a scene:

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

import numpy as np

import landslide as L
import scene as S

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


def label_sums(labels, prob, areas, n, rows=1024):
    """Per connected landslide, in bands of `rows` rows (no whole-scene float arrays): pixel
    count, probability sum and max, area. labels: int32 [H, W] (0 outside any, 1..n-1); prob:
    uint8 [H, W] (x 250); areas: per-row pixel area [H] or None. -> four arrays [n] (area None)"""
    pixels, psum, pmax = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    area = None if areas is None else np.zeros(n)
    for a in range(0, len(labels), rows):
        lab = labels[a:a + rows].ravel()
        p = prob[a:a + rows].ravel() / 250.0
        pixels += np.bincount(lab, minlength=n)
        psum += np.bincount(lab, weights=p, minlength=n)
        np.maximum.at(pmax, lab, p)
        if area is not None:
            w = np.repeat(areas[a:a + rows], labels.shape[1])
            area += np.bincount(lab, weights=w, minlength=n)
    return pixels, psum, pmax, area


def landslide_polygons(mask, prob, transform, crs, min_area=0.0, found=None):
    """mask: uint8 [H, W] (1 landslide, 0, 255 no data); prob: uint8 [H, W], probability x 250;
    found: components(mask == 1, transform) when already traced. -> (GeoJSON FeatureCollection
    dict, total area m² or None)"""
    from rasterio.warp import transform_geom
    labels, shapes = found or components(mask == 1, transform)
    pixels, psum, pmax, area = label_sums(labels, prob, pixel_areas(transform, crs, len(mask)),
                                          len(shapes) + 1)
    feats, total = [], 0.0
    for k, geom in shapes:
        a = None if area is None else float(area[k])
        if a is not None and a < min_area:
            continue
        total += a or 0.0
        g = transform_geom(crs, 'EPSG:4326', geom) if crs is not None else geom
        feats.append({'type': 'Feature', 'geometry': g, 'properties': {
            'id': len(feats) + 1, 'area_m2': None if a is None else round(a, 1),
            'pixels': int(pixels[k]), 'mean_probability': round(float(psum[k] / pixels[k]), 4),
            'max_probability': round(float(pmax[k]), 4)}})
    fc = {'type': 'FeatureCollection', 'features': feats}
    return fc, (None if area is None else round(total, 1))


def write_geojson(path, fc):
    L.atomic_write(path, lambda t: open(t, 'w').write(json.dumps(fc, separators=(',', ':')) + '\n'))


def read_truth(path, H, W):
    """A true mask on the scene's grid (GeoTIFF, or .npy/.h5 with dataset 'mask'), 1 landslide.
    -> bool [H, W]"""
    try:
        if path.lower().endswith(('.tif', '.tiff')):
            with L.rasterio_for(path).open(path) as f:
                m = f.read(1)
        elif path.lower().endswith('.npy'):
            m = np.load(path)
        else:
            import h5py
            with h5py.File(path, 'r') as f:
                m = f['mask'][()]
    except L.DataError:
        raise
    except Exception as e:
        raise L.DataError(f'{path}: not a readable mask ({e.__class__.__name__})')
    if m.shape != (H, W):
        raise L.DataError(f'{path}: the true mask is {m.shape[0]} x {m.shape[1]}, the scene '
                          f'{H} x {W}: it must lie on the scene\'s grid')
    return m == 1


def inventory_check(mask, truth, transform=None, found=None):
    """mask: uint8 [H, W] (1, 0, 255 no data); truth: bool [H, W]. No-data pixels are left out;
    found: components(mask == 1, transform) when already traced. -> dict(pixels: precision,
    recall, f1, iou; objects: true, found, missed, predicted, false)"""
    valid = mask != S.NODATA_OUT
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
    return dict(pixels=pix, objects=objects)
