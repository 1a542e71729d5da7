"""Your own imagery in the Landslide4Sense layout: a stacked scene cut into 128 x 128 patches,
image_N.h5 (and mask_N.h5 from a raster of an inventory), with an index that maps each patch
back to its window, so that a training or target split is made from one's own products and a
prediction per patch goes back on the map. predict.py --adapt cuts its target tiles here.

    python -m mapping patches scene.tif --out mine [--truth inventory.tif] [--split train]
    python refine.py --data L4S --target-data mine --out runs/mine       # mine as the target
    python -m mapping mosaic mine/TestData runs/mine/round3/masks --out mine.tif

- Windows: the scene's non-overlapping 128 x 128 grid from its top-left pixel (a partial window
  at the right or bottom edge is left out). A window is kept when at least `min_analysed` of its
  pixels were analysed (with data and, for a product's stack, not under a cloud, its shadow or
  snow); with `most`, that many of them are drawn at random (seeded), in grid order.
- Values as the scene holds them (reflectance for a product's stack; a scene's own statistics
  normalize it, whatever its units). Pixels that were not analysed are NaN in the spectral
  bands, slope and DEM kept (as mapping feeds a cloud to the networks); no-data pixels are NaN in
  every band. refine.py leaves NaN out of a split's statistics, fills it with the band's mean,
  and never pseudo-labels it.
- <root>/<Split>/index.json: the scene, its size, CRS and transform, and per patch number the
  (row, column) of its window's top-left pixel. A split is written whole or not at all.
"""
import json
import os
import shutil
import types

import h5py
import numpy as np

import landslide as L
from mapping import scene as S

NAN = np.float32('nan')


def analysed_shares(sc, nodata=None):
    """The share of each 128 x 128 window's pixels that were analysed, one pass over the scene.
    -> float [H // 128, W // 128]"""
    T = L.SIZE
    ny, nx = sc.H // T, sc.W // T
    share = np.zeros((ny, nx))
    for j in range(ny):
        seen = np.isfinite(band(sc, j * T, nodata)[:, :nx * T]).all(-1)
        share[j] = seen.reshape(T, nx, T).mean((0, 2))
    return share


def band(sc, row, nodata=None):
    """Rows row..row+127 as patches hold them: float32 [128, W, 14], NaN in the spectral bands
    where not analysed and in every band where there is no data."""
    x = sc.rows(row, row + L.SIZE)
    nd = S.nodata_mask(x, nodata)
    x[nd] = NAN
    x[(sc.unseen(row, row + L.SIZE) > 0) & ~nd, :L.SPECTRAL] = NAN
    return x


def choose(share, min_analysed, most=None, seed=0):
    """The windows to cut: (row, column) of each kept window's top-left pixel, in grid order."""
    j, i = np.nonzero((share >= min_analysed) & (share > 0))
    keep = np.stack([j, i], 1) * L.SIZE
    if most is not None and len(keep) > most:
        pick = np.random.default_rng(seed).choice(len(keep), most, replace=False)
        keep = keep[np.sort(pick)]
    return [tuple(map(int, w)) for w in keep]


def cut(scene_path, root, split='test', truth=None, min_analysed=0.5, most=None, seed=0,
        nodata=None, corrections=S.CORRECT):
    """Write <root>/<Split>/img/image_N.h5 (N from 1), mask/mask_N.h5 with a true mask on the
    scene's grid, and index.json; all of it first under <Split>.partial, renamed when done.
    -> the index"""
    sdir = os.path.join(root, L.SPLITS[split])
    if os.path.exists(sdir):
        raise L.DataError(f'{sdir}: already there; patches are written into a new split')
    sc = S.Scene(scene_path, corrections)
    try:
        nodata = sc.nodata if nodata is None else nodata
        true = S.read_truth(truth, sc.H, sc.W) if truth else None
        windows = choose(analysed_shares(sc, nodata), min_analysed, most, seed)
        if not windows:
            raise L.DataError(f'{scene_path}: no 128 x 128 window with at least '
                              f'{100 * min_analysed:.0f} % of its pixels analysed')
        part = sdir + '.partial'
        shutil.rmtree(part, ignore_errors=True)
        os.makedirs(os.path.join(part, 'img'))
        if true is not None:
            os.makedirs(os.path.join(part, 'mask'))
        T, rows = L.SIZE, {}
        for n, (row, col) in enumerate(windows, 1):
            rows.setdefault(row, []).append((n, col))
        for row, cols in rows.items():                      # each band of rows read once
            x = band(sc, row, nodata)
            for n, col in cols:
                with h5py.File(os.path.join(part, 'img', f'image_{n}.h5'), 'w') as f:
                    f.create_dataset('img', data=x[:, col:col + T])
                if true is not None:
                    L.write_mask(os.path.join(part, 'mask', f'mask_{n}.h5'),
                                 true[row:row + T, col:col + T])
        index = dict(scene=os.path.abspath(scene_path), size=[sc.H, sc.W],
                     crs=sc.crs.to_wkt() if sc.crs is not None else None,
                     transform=list(sc.transform)[:6] if sc.transform is not None else None,
                     min_analysed=min_analysed, most=most, seed=seed,
                     truth=truth and os.path.abspath(truth),
                     windows={str(n): w for n, w in enumerate(windows, 1)})
        L.write_json(os.path.join(part, 'index.json'), index)
        os.replace(part, sdir)
    finally:
        sc.close()
    return index


def read_index(split_dir):
    path = os.path.join(split_dir, 'index.json')
    if not os.path.isfile(path):
        raise L.DataError(f'{path}: not found (a split written by python -m mapping patches)')
    return json.load(open(path))


def mosaic(split_dir, masks, out):
    """Patch masks (mask_N.h5 in the folder masks, as refine.py and predict.py --data write
    them) put back on the scene's grid by the split's index: out, uint8, 255 outside the
    patches, written as the scene's format (GeoTIFF with its CRS and transform, else .npy).
    -> pixels put back"""
    index = read_index(split_dir)
    H, W = index['size']
    grid = types.SimpleNamespace(H=H, W=W, crs=index['crs'], transform=None,
                                 fmt='tif' if out.lower().endswith(('.tif', '.tiff')) else 'npy')
    if grid.fmt == 'tif' and index['transform']:
        grid.transform = L.rasterio_for(out).Affine(*index['transform'])
    full = np.full((H, W), S.NODATA_OUT, np.uint8)
    for n, (row, col) in index['windows'].items():
        full[row:row + L.SIZE, col:col + L.SIZE] = L.read_mask(
            os.path.join(masks, f'mask_{n}.h5'))
    w = S.Writer(out, grid, 'landslide')
    try:
        for a in range(0, H, 1024):
            w.write(a, full[a:a + 1024])
        w.commit()
    except BaseException:
        w.abort()
        raise
    return len(index['windows']) * L.SIZE ** 2
