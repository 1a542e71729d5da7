"""Whole scenes on disk: an H x W x 14 raster in the Landslide4Sense band order (B1-B12, slope,
DEM) read in bands of rows, never whole; its per-band statistics in one streaming pass with
no-data left out (separated normalization for a scene: the scene is its own domain); and
single-band uint8 outputs written band by band under a temporary name, renamed when complete.

Formats, by extension: GeoTIFF (.tif, .tiff; 14 raster bands, through rasterio, an optional
extra: pip install -r requirements-geo.txt), HDF5 (.h5, .hdf5; dataset 'img', H x W x 14) and
NumPy (.npy, H x W x 14, read row band by row band). Used by predict.py and `landslide.py synth-scene`.
"""
import os

import h5py
import numpy as np

import landslide as L

GEO_INSTALL = 'pip install -r requirements-geo.txt'
FORMATS = {'.tif': 'tif', '.tiff': 'tif', '.h5': 'h5', '.hdf5': 'h5', '.npy': 'npy'}
NODATA_OUT = 255                                  # the no-data value of every output


def rasterio_for(path):
    """Import rasterio only when a GeoTIFF is in play; say how to install it when missing."""
    try:
        import rasterio
        return rasterio
    except ImportError:
        raise L.DataError(f'{path}: GeoTIFF needs the optional rasterio package, which is not '
                          f'installed: {GEO_INSTALL}')


class Scene:
    """A scene opened for reading in row bands. Attributes: path, name, fmt, H, W, crs and
    transform (GeoTIFF only, else None), nodata (the file's own no-data value, if it names one)."""

    def __init__(self, path):
        self.path, self.fmt = path, FORMATS.get(os.path.splitext(path)[1].lower())
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.crs = self.transform = self.nodata = None
        if self.fmt is None:
            raise L.DataError(f"{path}: unknown scene format (use {', '.join(FORMATS)})")
        if not os.path.isfile(path):
            raise L.DataError(f'{path}: scene not found')
        try:
            if self.fmt == 'tif':
                self._f = rasterio_for(path).open(path)
                shape = (self._f.height, self._f.width, self._f.count)
                self.crs, self.transform, self.nodata = self._f.crs, self._f.transform, self._f.nodata
            elif self.fmt == 'h5':
                self._h5 = h5py.File(path, 'r')
                if 'img' not in self._h5:
                    raise L.DataError(f"{path}: no dataset 'img' (found: {', '.join(self._h5.keys()) or 'none'})")
                self._f = self._h5['img']
                shape = self._f.shape
            else:                                 # read rows with plain reads: memory stays
                with open(path, 'rb') as f:       # bounded (a memory map's pages count as resident)
                    version = np.lib.format.read_magic(f)
                    shape, fortran, self._dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                                   else np.lib.format.read_array_header_2_0)(f)
                    self._offset = f.tell()
                need = self._offset + int(np.prod(shape)) * self._dtype.itemsize
                if fortran or os.path.getsize(path) < need:
                    raise L.DataError(f'{path}: truncated or Fortran-ordered .npy ({os.path.getsize(path)} bytes, '
                                      f'{need} expected in C order)')
        except L.DataError:
            raise
        except Exception as e:                    # rasterio, h5py and numpy each say it their way
            raise L.DataError(f'{path}: not a readable scene, truncated or corrupt? ({e.__class__.__name__})')
        if len(shape) != 3 or shape[2] != L.BANDS:
            raise L.DataError(f'{path}: expected H x W x {L.BANDS} bands (B1-B12, slope, DEM), got shape {shape}')
        if min(shape[:2]) < L.SIZE:
            raise L.DataError(f'{path}: scene is {shape[0]} x {shape[1]}, smaller than one {L.SIZE} x {L.SIZE} window')
        self.H, self.W = int(shape[0]), int(shape[1])

    def rows(self, a, b):
        """Rows a..b-1, all columns. -> float32 [b - a, W, 14]"""
        try:
            if self.fmt == 'tif':
                from rasterio.windows import Window
                return self._f.read(window=Window(0, a, self.W, b - a)).transpose(1, 2, 0).astype(np.float32)
            if self.fmt == 'npy':
                n = (b - a) * self.W * L.BANDS
                x = np.fromfile(self.path, self._dtype, n, offset=self._offset + a * self.W * L.BANDS * self._dtype.itemsize)
                return x.reshape(b - a, self.W, L.BANDS).astype(np.float32, copy=False)
            return np.asarray(self._f[a:b], dtype=np.float32)
        except Exception as e:
            raise L.DataError(f'{self.path}: rows {a}-{b} unreadable, truncated or corrupt? ({e.__class__.__name__})')

    def close(self):
        if self.fmt != 'npy':
            getattr(self, '_h5', self._f).close()


def nodata_mask(x, nodata=None):
    """No-data pixels: any band NaN/Inf or equal to `nodata`, or all 14 bands zero.
    x: [..., 14] -> bool [...]"""
    nd = ~np.isfinite(x).all(-1) | (x == 0).all(-1)
    return nd | (x == nodata).any(-1) if nodata is not None else nd


def scene_stats(scene, nodata=None):
    """Per-band mean/std of the scene's valid pixels, one streaming pass over bands of rows of
    about 256 K pixels (Chan's update, as landslide.band_stats).
    -> dict(mean=[14], std=[14], nonfinite, valid=pixels counted)"""
    acc, band_rows = L.StatsAccumulator(), max(32, 2 ** 18 // scene.W)
    for a in range(0, scene.H, band_rows):
        x = scene.rows(a, min(a + band_rows, scene.H)).reshape(-1, L.BANDS)
        acc.add_valid(x[~nodata_mask(x, nodata)])
    return acc.result()


class Writer:
    """A single-band uint8 H x W output in the input's format (GeoTIFF with the input's CRS and
    transform), written in row bands to a temporary name; commit() renames it into place."""

    def __init__(self, path, scene, key):
        self.path, self.fmt = path, scene.fmt
        self.tmp = os.path.join(os.path.dirname(path), f'.{os.path.basename(path)}.{os.getpid()}.tmp')
        H, W = scene.H, scene.W
        if self.fmt == 'tif':
            self._f = rasterio_for(path).open(
                self.tmp, 'w', driver='GTiff', height=H, width=W, count=1, dtype='uint8', crs=scene.crs,
                transform=scene.transform, nodata=NODATA_OUT, compress='deflate')
        elif self.fmt == 'h5':
            self._h5 = h5py.File(self.tmp, 'w')
            self._f = self._h5.create_dataset(key, (H, W), np.uint8, chunks=(min(H, 256), min(W, 256)),
                                              compression='gzip')
        else:
            self._f = np.lib.format.open_memmap(self.tmp, 'w+', np.uint8, (H, W))

    def write(self, a, block):
        """block: uint8 [rows, W] for rows a, a+1, ..."""
        if self.fmt == 'tif':
            from rasterio.windows import Window
            self._f.write(block[None], window=Window(0, a, block.shape[1], block.shape[0]))
        else:
            self._f[a:a + len(block)] = block

    def commit(self):
        self._close()
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


def write_scene(out, img, mask, crs='EPSG:32645', origin=(500000.0, 3100000.0), pixel=10.0):
    """Write a synthetic scene as out/scene.h5 ('img' H x W x 14 float32, 'mask' H x W uint8) and,
    when rasterio is installed, out/scene.tif (14 bands) and out/scene_mask.tif, georeferenced in
    `crs` (default UTM 45N) at `pixel` metres from `origin`. -> list of paths written"""
    os.makedirs(out, exist_ok=True)

    def h5(tmp):
        with h5py.File(tmp, 'w') as f:
            f.create_dataset('img', data=img, chunks=(min(256, img.shape[0]), min(256, img.shape[1]), L.BANDS))
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
