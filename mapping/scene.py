"""Whole scenes on disk: an H x W x 14 raster in the Landslide4Sense band order (B1-B12, slope,
DEM) read in bands of rows, never whole; its per-band statistics in one streaming pass with
no-data left out (separated normalization for a scene: the scene is its own domain); and
single-band uint8 outputs written band by band under a temporary name, renamed when complete.

Formats, by extension: GeoTIFF (.tif, .tiff; 14 raster bands, through rasterio, an optional
extra: pip install -r requirements-geo.txt), HDF5 (.h5, .hdf5; dataset 'img', H x W x 14) and
NumPy (.npy, H x W x 14, read row band by row band). Used by predict.py. A Sentinel-2 product
and a DEM become such a scene with sentinel2.py:

    python -m mapping stack PRODUCT.SAFE --dem DEM.tif --out scene.tif
"""
import os

import h5py
import numpy as np

import landslide as L
from mapping import cirrus, clouds, edges

FORMATS = {'.tif': 'tif', '.tiff': 'tif', '.h5': 'h5', '.hdf5': 'h5', '.npy': 'npy'}
CORRECTIONS = ('edges', 'cirrus')                 # what a stack's tags let rows() correct
CORRECT = ('edges',)                              # ... and what it corrects unless told
NODATA_OUT = 255                                  # the no-data value of every output


class Scene:
    """A scene opened for reading in row bands. Attributes: path, name, fmt, H, W, crs and
    transform (GeoTIFF only, else None), nodata (the file's own no-data value, if it names one),
    clouds (the path of its cloud mask, <name>_clouds.tif beside a GeoTIFF stack, or None);
    edges, cirrus: what a stack's tags hold for the `corrections` asked (of CORRECTIONS; CORRECT
    unless told), which rows() then makes (B1 beside the mask's clouds from B2, edges.py; a
    Level-1C stack's thin cirrus taken out, cirrus.py), or None."""

    def __init__(self, path, corrections=CORRECT):
        self.path, self.fmt = path, FORMATS.get(os.path.splitext(path)[1].lower())
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.crs = self.transform = self.nodata = self.clouds = self._clouds = None
        self.edges = self.cirrus = None
        self.provenance = {}                     # tags for the maps made of it (provenance.py)
        if self.fmt is None:
            raise L.DataError(f"{path}: unknown scene format (use {', '.join(FORMATS)})")
        if not os.path.isfile(path):
            raise L.DataError(f'{path}: scene not found')
        try:
            if self.fmt == 'tif':
                self._f = L.rasterio_for(path).open(path)
                shape = (self._f.height, self._f.width, self._f.count)
                self.crs, self.transform = self._f.crs, self._f.transform
                self.nodata, tags = self._f.nodata, self._f.tags()
                self.cirrus = cirrus.from_tags(tags) if 'cirrus' in corrections else None
                self.edges = edges.from_tags(tags) if 'edges' in corrections else None
            elif self.fmt == 'h5':
                self._h5 = h5py.File(path, 'r')
                if 'img' not in self._h5:
                    raise L.DataError(f"{path}: no dataset 'img' (found: "
                                      f"{', '.join(self._h5.keys()) or 'none'})")
                self._f = self._h5['img']
                shape = self._f.shape
            else:                                 # read rows with plain reads: memory stays
                with open(path, 'rb') as f:       # bounded (a memory map's pages count as resident)
                    version = np.lib.format.read_magic(f)
                    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, fortran, self._dtype = header(f)
                    self._offset = f.tell()
                need = self._offset + int(np.prod(shape)) * self._dtype.itemsize
                if fortran or os.path.getsize(path) < need:
                    raise L.DataError(f'{path}: truncated or Fortran-ordered .npy '
                                      f'({os.path.getsize(path)} bytes, '
                                      f'{need} expected in C order)')
        except L.DataError:
            raise
        except Exception as e:                    # rasterio, h5py and numpy each say it their way
            raise L.DataError(f'{path}: not a readable scene, truncated or corrupt? '
                              f'({e.__class__.__name__})')
        if len(shape) != 3 or shape[2] != L.BANDS:
            raise L.DataError(f'{path}: expected H x W x {L.BANDS} bands '
                              f'(B1-B12, slope, DEM), got shape {shape}')
        if min(shape[:2]) < L.SIZE:
            raise L.DataError(f'{path}: scene is {shape[0]} x {shape[1]}, smaller than one '
                              f'{L.SIZE} x {L.SIZE} window')
        self.H, self.W = int(shape[0]), int(shape[1])
        if self.fmt == 'tif' and os.path.isfile(clouds.sidecar(path)):
            self._open_clouds(clouds.sidecar(path))

    def _open_clouds(self, path):
        try:
            self._clouds = L.rasterio_for(path).open(path)
        except Exception as e:
            raise L.DataError(f'{path}: unreadable cloud mask, truncated or corrupt? '
                              f'({e.__class__.__name__})')
        f = self._clouds
        if (f.height, f.width, f.count, f.dtypes[0]) != (self.H, self.W, 1, 'uint8'):
            raise L.DataError(f'{path}: a cloud mask must be one uint8 band of the scene\'s '
                              f'{self.H} x {self.W}, found {f.count} {f.dtypes[0]} band(s) of '
                              f'{f.height} x {f.width}')
        self.clouds = path

    def unseen(self, a, b):
        """Rows a..b-1 of the cloud mask, clouds.CLASSES (all 0, analysed, without one).
        -> uint8 [b - a, W]"""
        if self._clouds is None:
            return np.zeros((b - a, self.W), np.uint8)
        from rasterio.windows import Window
        try:
            return self._clouds.read(1, window=Window(0, a, self.W, b - a))
        except Exception as e:
            raise L.DataError(f'{self.clouds}: rows {a}-{b} unreadable, truncated or corrupt? '
                              f'({e.__class__.__name__})')

    def rows(self, a, b):
        """Rows a..b-1, all columns. -> float32 [b - a, W, 14]"""
        try:
            if self.fmt == 'tif':
                from rasterio.windows import Window
                x = self._f.read(window=Window(0, a, self.W, b - a))
                return self._corrected(x.transpose(1, 2, 0).astype(np.float32), a, b)
            if self.fmt == 'npy':
                n = (b - a) * self.W * L.BANDS
                at = self._offset + a * self.W * L.BANDS * self._dtype.itemsize
                x = np.fromfile(self.path, self._dtype, n, offset=at)
                return x.reshape(b - a, self.W, L.BANDS).astype(np.float32, copy=False)
            return np.asarray(self._f[a:b], dtype=np.float32)
        except Exception as e:
            raise L.DataError(f'{self.path}: rows {a}-{b} unreadable, truncated or corrupt? '
                              f'({e.__class__.__name__})')

    def _corrected(self, x, a, b):
        """Rows a..b-1 with the corrections asked made, in place. x: float32 [b - a, W, 14]"""
        if self.edges is not None and self._clouds is not None:
            cell = self.edges[2]
            lo, hi = max(a - cell, 0), min(b + cell, self.H)
            near = clouds.dilate(self.unseen(lo, hi), cell)[a - lo:b - lo] == 6
            edges.replace(x, near, self.edges)
        return x if self.cirrus is None else cirrus.correct(x, self.cirrus)

    def close(self):
        if self.fmt != 'npy':
            getattr(self, '_h5', self._f).close()
        if self._clouds is not None:
            self._clouds.close()


def nodata_mask(x, nodata=None):
    """No-data pixels: any band NaN/Inf or equal to `nodata`, or all 14 bands zero.
    x: [..., 14] -> bool [...]"""
    nd = ~np.isfinite(x).all(-1) | (x == 0).all(-1)
    return nd | (x == nodata).any(-1) if nodata is not None else nd


def scene_stats(scene, nodata=None):
    """Per-band mean/std of the scene's analysed pixels (with data, not under a cloud), one
    streaming pass over bands of rows of about 256 K pixels (Chan's update, as
    landslide.band_stats). -> dict(mean=[14], std=[14], nonfinite, valid=pixels counted,
    unseen=pixels with data left out as not analysed, unseen_by_class={class name: pixels})"""
    acc, band_rows = L.StatsAccumulator(), max(32, 2 ** 18 // scene.W)
    by_class = np.zeros(256, np.int64)
    for a in range(0, scene.H, band_rows):
        b = min(a + band_rows, scene.H)
        x = scene.rows(a, b).reshape(-1, L.BANDS)
        data, classes = ~nodata_mask(x, nodata), scene.unseen(a, b).ravel()
        acc.add_valid(x[data & (classes == 0)])
        by_class += np.bincount(classes[data & (classes > 0)], minlength=256)
    named = {clouds.CLASSES.get(k, str(k)): int(v) for k, v in enumerate(by_class) if v}
    return acc.result() | {'unseen': int(by_class.sum()), 'unseen_by_class': named}


class Writer:
    """A single-band H x W output in the input's format (GeoTIFF with the input's CRS and
    transform; uint8 with no-data 255, or float32 with NaN), written in row bands to a temporary
    name; commit() renames it into place. classes: {value: (name, rgb)}, a uint8 GeoTIFF's class
    names (in its tags and, for a GIS's legend, its .aux.xml) and colour table."""

    def __init__(self, path, scene, key, dtype='uint8', classes=None):
        self.path, self.fmt, self.classes = path, scene.fmt, classes
        name = f'.{os.path.basename(path)}.{os.getpid()}.tmp'
        self.tmp = os.path.join(os.path.dirname(path), name)
        H, W = scene.H, scene.W
        nodata = NODATA_OUT if dtype == 'uint8' else np.nan
        if self.fmt == 'tif':
            self._f = L.rasterio_for(path).open(
                self.tmp, 'w', driver='GTiff', height=H, width=W, count=1, dtype=dtype,
                crs=scene.crs, transform=scene.transform, nodata=nodata, compress='deflate',
                tiled=True, predictor=2 if dtype == 'uint8' else 3, BIGTIFF='IF_SAFER')
            self._f.update_tags(**getattr(scene, 'provenance', {}))   # a grid may stand in
            if classes:
                self._f.update_tags(1, CLASSES=';'.join(f'{k}={v[0]}' for k, v in classes.items()))
                self._f.write_colormap(1, {k: classes.get(k, ('', (0, 0, 0, 0)))[1]
                                           for k in range(256)})
        elif self.fmt == 'h5':
            self._h5 = h5py.File(self.tmp, 'w')
            chunks = (min(H, 256), min(W, 256))
            self._f = self._h5.create_dataset(key, (H, W), dtype, chunks=chunks,
                                              compression='gzip')
        else:
            self._f = np.lib.format.open_memmap(self.tmp, 'w+', dtype, (H, W))

    def write(self, a, block):
        """block: uint8 [rows, W] for rows a, a+1, ..."""
        if self.fmt == 'tif':
            from rasterio.windows import Window
            self._f.write(block[None], window=Window(0, a, block.shape[1], block.shape[0]))
        else:
            self._f[a:a + len(block)] = block

    def commit(self):
        self._close()
        if self.classes and self.fmt == 'tif':       # the names first: a GIS finds both or none
            L.atomic_write(self.path + '.aux.xml', lambda t: open(t, 'w').write(
                category_xml(self.classes)))
        os.chmod(self.tmp, 0o666 & ~L._UMASK)
        os.replace(self.tmp, self.path)

    def abort(self):
        self._close()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)

    def _close(self):
        if self.fmt == 'npy':
            self._f.flush()
            del self._f
            self._f = None
        elif self._f is not None:
            getattr(self, '_h5', self._f).close()
            self._f = None


def category_xml(classes):
    """GDAL's .aux.xml naming a uint8 band's classes (GDAL reads them as its category names; QGIS
    shows them in its legend). classes: {value: (name, rgb)}"""
    top = max(classes)
    cats = ''.join(f'<Category>{classes[k][0] if k in classes else ""}</Category>'
                   for k in range(top + 1))
    return (f'<PAMDataset><PAMRasterBand band="1"><CategoryNames>{cats}</CategoryNames>'
            '</PAMRasterBand></PAMDataset>\n')


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


def read_output(path, key):
    """A single-band output written by tiles.map_scene: the mask uint8 [H, W], the
    probability as float16 [H, W] (read in bands of rows: half a float32 copy's memory)"""
    if path.endswith('.tif'):
        from rasterio.windows import Window
        with L.rasterio_for(path).open(path) as f:
            if f.dtypes[0] == 'uint8':
                return f.read(1)
            out = np.empty((f.height, f.width), np.float16)
            for a in range(0, f.height, 1024):
                n = min(1024, f.height - a)
                out[a:a + n] = f.read(1, window=Window(0, a, f.width, n))
            return out
    if path.endswith('.npy'):
        return np.load(path)
    with h5py.File(path, 'r') as f:
        return f[key][()]
