"""Landslide4Sense data: reading and checking, separated normalization (paper §2.1),
augmentation, scale promotion (§2.1), metrics (§3) and writing masks in the competition format.

Layout (one 128x128 patch per HDF5 file, paired by the number N):
    <root>/TrainData/img/image_N.h5    dataset 'img'  : 128 x 128 x 14 float
    <root>/TrainData/mask/mask_N.h5    dataset 'mask' : 128 x 128 uint8 in {0, 1}
    <root>/ValidData/..., <root>/TestData/...          (masks optional)
Bands: 0-11 Sentinel-2 B1-B12, 12 slope, 13 DEM.

synthetic/ writes data in this layout: python -m synthetic patches data/ --shift 1.0
"""
import json
import os
import re
import tempfile
import zipfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SIZE, BANDS, SPECTRAL = 128, 14, 12          # patch side, all bands, Sentinel-2 bands
SPLITS = {'train': 'TrainData', 'valid': 'ValidData', 'test': 'TestData'}
IGNORE = 255                                 # label value that no loss counts
GEO_INSTALL = 'pip install -r requirements-geo.txt'   # the optional GeoTIFF extra
_UMASK = os.umask(0)
os.umask(_UMASK)


class DataError(Exception):
    """Bad input. The message is one line that names the file and what is wrong."""


def rasterio_for(path):
    """Import rasterio only when a GeoTIFF is in play; say how to install it when missing."""
    try:
        import rasterio
        return rasterio
    except ImportError:
        raise DataError(f'{path}: GeoTIFF needs the optional rasterio package, which is not '
                        f"installed: {GEO_INSTALL}")


# ----------------------------------------------------------------------------- reading

def list_split(root, split):
    """Pair a split's images and masks by N. Returns (ids, image paths, mask paths or None)."""
    sdir = os.path.join(root, SPLITS[split])
    idir, mdir = os.path.join(sdir, 'img'), os.path.join(sdir, 'mask')
    if not os.path.isdir(idir):
        raise DataError(f'{idir}: folder not found (expected {SPLITS[split]}/img/image_N.h5)')
    imgs = _numbered(idir, 'image')
    if not imgs:
        raise DataError(f'{idir}: no image_N.h5 files')
    masks = _numbered(mdir, 'mask') if os.path.isdir(mdir) else {}
    ids = sorted(imgs)
    if masks:
        for n in ids:
            if n not in masks:
                raise DataError(f'{imgs[n]}: has no mask (expected {mdir}/mask_{n}.h5)')
        for n in sorted(masks):
            if n not in imgs:
                raise DataError(f'{masks[n]}: mask without an image (expected {idir}/image_{n}.h5)')
    return ids, [imgs[n] for n in ids], ([masks[n] for n in ids] if masks else None)


def _numbered(folder, stem):
    pat = re.compile(rf'{stem}_(\d+)\.h5$')
    return {int(m.group(1)): os.path.join(folder, f)
            for f in os.listdir(folder) if (m := pat.match(f))}


def _read(path, key, shape, load=True):
    """The dataset `key` of an HDF5 file, checked for its shape; load=False checks only."""
    try:
        with h5py.File(path, 'r') as f:
            if key not in f:
                raise DataError(f"{path}: no dataset '{key}' (found: "
                                f"{', '.join(f.keys()) or 'none'})")
            d = f[key]
            if d.shape != shape:
                raise DataError(f"{path}: '{key}' has shape {d.shape}, expected {shape}")
            return d[()] if load else None
    except OSError as e:
        raise DataError(f'{path}: not a readable HDF5 file, truncated or corrupt? '
                        f'({e.__class__.__name__})')


def read_image(path):
    """-> float32 [128, 128, 14] as stored (may hold NaN/Inf; see load_images)."""
    return _read(path, 'img', (SIZE, SIZE, BANDS)).astype(np.float32)


def read_mask(path):
    """-> uint8 [128, 128] in {0, 1}."""
    m = _read(path, 'mask', (SIZE, SIZE))
    bad = (m != 0) & (m != 1)
    if bad.any():
        raise DataError(f'{path}: mask values must be 0 or 1, found '
                        f'{np.unique(m[bad])[:5].tolist()}')
    return m.astype(np.uint8)


def check_split(root, split):
    """Check a split's structure before any work: pairing, every file's key and shape, mask
    values. Reads only headers and the (small) masks. -> (ids, image paths, mask paths or None)"""
    ids, ipaths, mpaths = list_split(root, split)
    for p in ipaths:
        _read(p, 'img', (SIZE, SIZE, BANDS), load=False)
    for p in mpaths or []:
        read_mask(p)
    return ids, ipaths, mpaths


# ---------------------------------------------------------------------- separated normalization

class StatsAccumulator:
    """Per-band mean and std in one streaming float64 pass (Chan's pairwise update); NaN/Inf
    values are skipped and counted. add(x) with x [N, 14] any number of times, then result()."""

    def __init__(self):
        self.n, self.mean, self.m2, self.bad = np.zeros(BANDS), np.zeros(BANDS), np.zeros(BANDS), 0

    def add(self, x):
        x = np.asarray(x, np.float64)
        ok = np.isfinite(x)
        self.bad += int((~ok).sum())
        nb = ok.sum(0)
        mb = np.where(ok, x, 0.0).sum(0) / np.maximum(nb, 1)
        self._merge(nb, mb, (np.where(ok, x - mb, 0.0) ** 2).sum(0))

    def add_valid(self, x):
        """The same for rows known to be finite, about three times faster: float32 arithmetic,
        float64 sums (a whole scene streams through here)."""
        if len(x):
            mb = x.sum(0, dtype=np.float64) / len(x)
            d = x - mb.astype(np.float32)
            self._merge(np.full(BANDS, len(x)), mb, (d * d).sum(0, dtype=np.float64))

    def _merge(self, nb, mb, m2b):
        tot = self.n + nb
        d = mb - self.mean
        self.mean = self.mean + d * nb / np.maximum(tot, 1)
        self.m2 = self.m2 + m2b + d ** 2 * self.n * nb / np.maximum(tot, 1)
        self.n = tot

    def result(self):
        """-> dict(mean=[14], std=[14] (1 where a band is constant or empty), nonfinite, valid)"""
        std = np.sqrt(self.m2 / np.maximum(self.n, 1))
        return {'mean': self.mean.tolist(), 'std': np.where(std > 1e-8, std, 1.0).tolist(),
                'nonfinite': self.bad, 'valid': int(self.n.min())}


def band_stats(paths):
    """Per-band mean and std of a split's patches, NaN/Inf skipped.
    -> dict(mean=[14], std=[14], nonfinite=int, n=patches)"""
    acc = StatsAccumulator()
    for p in paths:
        acc.add(read_image(p).reshape(-1, BANDS))
    r = acc.result()
    del r['valid']
    return r | {'n': len(paths)}


def load_images(paths, stats, with_seen=False):
    """Read and normalize a split with the given statistics; NaN/Inf become 0, i.e. the band's
    mean. -> float16 tensor [N, 14, 128, 128] (2 bytes a value: the real data fit in 2.2 GB);
    with_seen, also bool [N, 128, 128]: the pixels finite in every band (a patch cut from a
    cloudy scene holds NaN where it was not analysed: mapping/patches.py)."""
    mean = np.asarray(stats['mean'], np.float32)
    std = np.asarray(stats['std'], np.float32)
    out = torch.empty(len(paths), BANDS, SIZE, SIZE, dtype=torch.float16)
    seen = torch.empty(len(paths), SIZE, SIZE, dtype=torch.bool)
    for i, p in enumerate(paths):
        x = (read_image(p) - mean) / std
        seen[i] = torch.from_numpy(np.isfinite(x).all(-1))
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        out[i] = torch.from_numpy(x.transpose(2, 0, 1).copy())
    return (out, seen) if with_seen else out


def load_masks(paths):
    """-> uint8 tensor [N, 128, 128]"""
    return torch.from_numpy(np.stack([read_mask(p) for p in paths])) if paths else None


# ----------------------------------------------------------------------------- augmentation, scale

def augment(x, y, g, colour=0.1):
    """Random flips and 90-degree rotations of image and mask together, and a per-sample,
    per-band gain and offset on the spectral bands 0-11 only (slope and DEM are never touched).
    x: [B, 14, H, W] float, y: [B, H, W]; g: a CPU torch.Generator. -> (x, y)"""
    B, dev = x.shape[0], x.device
    r = torch.rand(B, 3, generator=g)
    x, y = x.clone(), y.clone()
    for j, turn in enumerate((lambda t: t.flip(-1), lambda t: t.flip(-2),
                              lambda t: t.transpose(-1, -2))):   # with the flips: the rot90s
        i = torch.nonzero(r[:, j] < 0.5)[:, 0].to(dev)         # the samples that turn (about half)
        x[i], y[i] = turn(x[i]), turn(y[i])
    gain = 1 + colour * (2 * torch.rand(B, SPECTRAL, 1, 1, generator=g) - 1)
    offset = colour * torch.randn(B, SPECTRAL, 1, 1, generator=g)
    x[:, :SPECTRAL] = x[:, :SPECTRAL] * gain.to(dev, x.dtype) + offset.to(dev, x.dtype)
    return x, y


def region(B, H, W, g, size):
    """One smooth random field per sample and the level above which it covers a random share of
    the sample, drawn from the range `size`. -> (field [B, H * W], level [B, 1])"""
    field = F.interpolate(torch.rand(B, 1, 6, 6, generator=g), size=(H, W), mode='bicubic',
                          align_corners=False)[:, 0].flatten(1)
    cover = size[0] + (size[1] - size[0]) * torch.rand(B, generator=g)
    k = ((1 - cover) * (H * W - 1)).long()[:, None]             # each sample's own quantile
    return field, field.sort(dim=1).values.gather(1, k)


def holes(x, y, g, share, size=(0.05, 0.5)):
    """Random not-analysed blobs, filled exactly as mapping fills a cloud: the spectral bands at
    their mean (0 once normalized), slope and DEM kept, the labels there ignored. Each sample
    with probability `share` gets one smooth random field thresholded to cover a random part of
    it (size, a range of shares), so that a cloud's edge is something the networks have seen.
    x: [B, 14, H, W] normalized, y: [B, H, W]; g: a CPU torch.Generator. -> (x, y), as they
    are and with nothing drawn from g at share 0"""
    if not share:
        return x, y
    B, _, H, W = x.shape
    hit = torch.rand(B, generator=g) < share
    field, level = region(B, H, W, g, size)
    return hide(x, ((field > level) & hit[:, None]).view(B, H, W).to(x.device), y)


def shade(x, g, share, depth=1.5, size=(0.1, 0.9), edge=0.15):
    """An uneven sky the networks can see through: each sample with probability `share` gets one
    smooth random region (drawn as holes() draws it, its edge soft over `edge` of the field)
    where every spectral band is offset by depth * U(-1, 1) of its std, times U(0.5, 1.5) per
    band: darker, as under a faint cloud shadow, or brighter, as under a thin veil. Slope, DEM
    and labels are kept: the ground is still seen. The colour perturbation of augment() made
    local. x: [B, 14, H, W] normalized; g: a CPU torch.Generator. -> x (x itself, nothing drawn
    from g, at share 0)"""
    if not share:
        return x
    B, _, H, W = x.shape
    hit = torch.rand(B, generator=g) < share
    field, level = region(B, H, W, g, size)
    soft = ((field - level) / edge).clamp(0, 1).view(B, 1, H, W)
    amount = depth * (2 * torch.rand(B, 1, 1, 1, generator=g) - 1) * hit.view(B, 1, 1, 1)
    per_band = 0.5 + torch.rand(B, SPECTRAL, 1, 1, generator=g)
    x = x.clone()
    x[:, :SPECTRAL] += (amount * per_band * soft).to(x.device, x.dtype)
    return x


def hide(x, blob, y=None):
    """What a cloud leaves the networks, as mapping fills it: the spectral bands at their mean
    (0 once normalized), slope and DEM kept; the labels there ignored. x: [B, 14, H, W]
    normalized, blob: bool [B, H, W], y: [B, H, W] or None. -> (x, y)"""
    x = x.clone()
    x[:, :SPECTRAL] = x[:, :SPECTRAL].masked_fill(blob[:, None], 0.0)
    if y is not None:
        y = y.masked_fill(blob, IGNORE)
    return x, y


def promote(x, scale, y=None):
    """Scale promotion: images bilinear (align_corners=False), masks nearest, 128 -> 128*scale.
    x: [B, C, H, W], y: [B, H, W] or None."""
    if scale == 1:
        return x, y
    x = F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)
    if y is not None:
        y = F.interpolate(y[:, None].float(), scale_factor=scale, mode='nearest')
        y = y[:, 0].to(torch.uint8)
    return x, y


# ----------------------------------------------------------------------------- metrics

def confusion(pred, gt):
    """Counts of the landslide class over all pixels. pred, gt: [..] in {0, 1} -> (tp, fp, fn)"""
    pred, gt = torch.as_tensor(pred).bool(), torch.as_tensor(gt).bool()
    return int((pred & gt).sum()), int((pred & ~gt).sum()), int((~pred & gt).sum())


def scores(tp, fp, fn):
    """Precision, recall, F1 and IoU of the landslide class from split-wide counts."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 0.0
    return {'precision': p, 'recall': r, 'f1': f1, 'iou': iou}


# ----------------------------------------------------------------------------- safe writing

def atomic_write(path, write):
    """Call write(tmp_path), then rename the result into place: no reader sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)                   # as an ordinary open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def check_out_folder(out, inside=(), noun='output folder'):
    """An output folder must not lie inside any of `inside`, [(flag, folder)] (inputs are never
    written to), and must be creatable."""
    real = os.path.realpath(out)
    for what, p in inside:
        if os.path.commonpath([real, os.path.realpath(p)]) == os.path.realpath(p):
            raise DataError(f'{out}: --out must not be inside {what} ({p} is never written to)')
    parent = real
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise DataError(f'{out}: cannot create the {noun} here ({parent} is not a writable folder)')


def write_json(path, obj):
    atomic_write(path, lambda t: open(t, 'w').write(json.dumps(obj, indent=1) + '\n'))


def write_mask(path, mask):
    """mask: uint8 [128, 128] -> HDF5 file with dataset 'mask', written atomically."""
    def w(tmp):
        with h5py.File(tmp, 'w') as f:
            f.create_dataset('mask', data=np.asarray(mask, dtype=np.uint8))
    atomic_write(path, w)


def mask_name(image_path):
    """image_N.h5 -> mask_N.h5, keeping N exactly as written (image_007.h5 -> mask_007.h5)."""
    return 'mask_' + os.path.basename(image_path)[len('image_'):]


def write_masks(folder, files, masks):
    """Write each mask under its file name into folder, all or nothing: the files go to a
    sibling folder that is renamed into place. files: names; masks: uint8 [N, 128, 128]"""
    part = folder + '.partial'
    if os.path.isdir(part):
        _rmtree(part)
    os.makedirs(part)
    for f, m in zip(files, masks):
        write_mask(os.path.join(part, f), m)
    if os.path.isdir(folder):
        _rmtree(folder)
    os.replace(part, folder)


def sweep(folder):
    """Remove what an interrupted run left half-done in folder (not below it): temporary
    files of atomic_write and .partial mask folders."""
    for f in os.listdir(folder):
        p = os.path.join(folder, f)
        if f.startswith('.') and f.endswith('.tmp'):
            os.remove(p)
        elif f.endswith('.partial') and os.path.isdir(p):
            _rmtree(p)


def _rmtree(folder):
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    os.rmdir(folder)


def write_zip(path, folder):
    """A flat zip (no folder inside) of every file in folder, in sorted order."""
    def w(tmp):
        with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as z:
            for f in sorted(os.listdir(folder), key=lambda s: (len(s), s)):
                z.write(os.path.join(folder, f), arcname=f)
    atomic_write(path, w)

