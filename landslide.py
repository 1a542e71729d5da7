"""Landslide4Sense data: reading and checking, a synthetic generator with a domain shift,
separated normalization (paper §2.1), augmentation, scale promotion (§2.1), metrics (§3) and
writing masks in the competition format.

Layout (one 128x128 patch per HDF5 file, paired by the number N):
    <root>/TrainData/img/image_N.h5    dataset 'img'  : 128 x 128 x 14 float
    <root>/TrainData/mask/mask_N.h5    dataset 'mask' : 128 x 128 uint8 in {0, 1}
    <root>/ValidData/..., <root>/TestData/...          (masks optional)
Bands: 0-11 Sentinel-2 B1-B12, 12 slope, 13 DEM.

Make a synthetic dataset in that layout, or one whole synthetic scene:
    python landslide.py synth data/ --train 400 --valid 60 --test 120 --shift 1.0
    python landslide.py synth-scene scenes/ --size 2048 --shift 1.0 --seed 0
"""
import argparse
import json
import os
import re
import sys
import tempfile
import zipfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SIZE, BANDS, SPECTRAL = 128, 14, 12          # patch side, all bands, Sentinel-2 bands
SPLITS = {'train': 'TrainData', 'valid': 'ValidData', 'test': 'TestData'}
IGNORE = 255                                 # label value that no loss counts
_UMASK = os.umask(0)
os.umask(_UMASK)


class DataError(Exception):
    """Bad input. The message is one line that names the file and what is wrong."""


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
                raise DataError(f"{path}: no dataset '{key}' (found: {', '.join(f.keys()) or 'none'})")
            d = f[key]
            if d.shape != shape:
                raise DataError(f"{path}: '{key}' has shape {d.shape}, expected {shape}")
            return d[()] if load else None
    except OSError as e:
        raise DataError(f'{path}: not a readable HDF5 file, truncated or corrupt? ({e.__class__.__name__})')


def read_image(path):
    """-> float32 [128, 128, 14] as stored (may hold NaN/Inf; see load_images)."""
    return _read(path, 'img', (SIZE, SIZE, BANDS)).astype(np.float32)


def read_mask(path):
    """-> uint8 [128, 128] in {0, 1}."""
    m = _read(path, 'mask', (SIZE, SIZE))
    bad = (m != 0) & (m != 1)
    if bad.any():
        raise DataError(f'{path}: mask values must be 0 or 1, found {np.unique(m[bad])[:5].tolist()}')
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


# ----------------------------------------------------------------------------- separated normalization

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


def load_images(paths, stats):
    """Read and normalize a split with the given statistics; NaN/Inf become 0, i.e. the band's
    mean. -> float16 tensor [N, 14, 128, 128] (2 bytes a value: the real data fit in 2.2 GB)."""
    mean = np.asarray(stats['mean'], np.float32)
    std = np.asarray(stats['std'], np.float32)
    out = torch.empty(len(paths), BANDS, SIZE, SIZE, dtype=torch.float16)
    for i, p in enumerate(paths):
        x = (read_image(p) - mean) / std
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        out[i] = torch.from_numpy(x.transpose(2, 0, 1).copy())
    return out


def load_masks(paths):
    """-> uint8 tensor [N, 128, 128]"""
    return torch.from_numpy(np.stack([read_mask(p) for p in paths])) if paths else None


# ----------------------------------------------------------------------------- augmentation, scale

def augment(x, y, g, colour=0.1):
    """Random flips and 90-degree rotations of image and mask together, and a per-sample,
    per-band gain and offset on the spectral bands 0-11 only (slope and DEM are never touched).
    x: [B, 14, H, W] float, y: [B, H, W]; g: a CPU torch.Generator. -> (x, y)"""
    B, dev = x.shape[0], x.device
    r = torch.rand(B, 3, generator=g).to(dev)
    xy = torch.cat([x, y[:, None].to(x.dtype)], 1)                   # move mask with image
    xy = torch.where(r[:, 0, None, None, None] < 0.5, xy.flip(-1), xy)
    xy = torch.where(r[:, 1, None, None, None] < 0.5, xy.flip(-2), xy)
    xy = torch.where(r[:, 2, None, None, None] < 0.5, xy.transpose(-1, -2), xy)  # with flips: rot90s
    x, y = xy[:, :BANDS], xy[:, BANDS].round().to(y.dtype)
    gain = 1 + colour * (2 * torch.rand(B, SPECTRAL, 1, 1, generator=g) - 1)
    offset = colour * torch.randn(B, SPECTRAL, 1, 1, generator=g)
    spec = x[:, :SPECTRAL] * gain.to(dev, x.dtype) + offset.to(dev, x.dtype)
    return torch.cat([spec, x[:, SPECTRAL:]], 1), y


def promote(x, scale, y=None):
    """Scale promotion: images bilinear (align_corners=False), masks nearest, 128 -> 128*scale.
    x: [B, C, H, W], y: [B, H, W] or None."""
    if scale == 1:
        return x, y
    x = F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)
    if y is not None:
        y = F.interpolate(y[:, None].float(), scale_factor=scale, mode='nearest')[:, 0].to(torch.uint8)
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


# ----------------------------------------------------------------------------- synthetic data
# Approximate surface reflectance for Sentinel-2 B1..B12 (443 ... 2190 nm; B10 is cirrus).
SPECTRA = {
    'vegetation': [.030, .040, .070, .040, .100, .250, .320, .350, .300, .005, .180, .090],
    'soil':       [.060, .075, .100, .120, .140, .170, .190, .200, .190, .006, .260, .200],
    'scar':       [.100, .125, .165, .205, .225, .245, .260, .270, .260, .010, .300, .250],
    'field':      [.095, .120, .160, .200, .220, .240, .255, .265, .255, .010, .305, .260],
    'gravel':     [.105, .130, .170, .200, .215, .230, .240, .245, .240, .010, .280, .230],
    'rock':       [.110, .130, .160, .185, .200, .215, .225, .230, .225, .010, .260, .220],
    'water':      [.050, .060, .050, .030, .030, .020, .020, .020, .010, .002, .010, .005],
}


def _noise(rng, sigma, n=SIZE):
    """Smooth random field, mean 0 and std 1; sigma in pixels. -> float64 [n, n]"""
    m = 2 * n                                           # make it larger, crop: no wrap-around
    f = np.fft.fftfreq(m)
    k = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    z = np.fft.ifft2(np.fft.fft2(rng.standard_normal((m, m))) * k).real[:n, :n]
    return (z - z.mean()) / (z.std() + 1e-12)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def domain(shift, seed, kind='all'):
    """Parameters of the source (shift 0) or a target domain: a per-band sensor gain and offset,
    drier cover, higher and steeper terrain, differently coloured soil and rock, older (partly
    revegetated) landslide scars and more haze as shift grows. kind='sensor': only the sensor
    gain and offset and the haze differ (what separated normalization can absorb)."""
    rng = np.random.default_rng([seed, 7])
    d = {'gain': np.exp(0.3 * shift * rng.standard_normal(SPECTRAL)),
         'offset': 0.03 * shift * rng.standard_normal(SPECTRAL),
         'veg_bias': 1.0 - 1.2 * shift, 'base': 600 + 1500 * shift, 'relief': 160 * (1 + 0.3 * shift),
         'tint': np.exp(0.25 * shift * rng.standard_normal(SPECTRAL)),   # soils of another colour
         'haze': 0.02 * shift, 'older': 0.2 * shift}
    if kind == 'sensor':
        d |= {'veg_bias': 1.0, 'base': 600, 'relief': 160, 'tint': np.ones(SPECTRAL), 'older': 0.0}
    return d


def synth_patch(rng, dom, n=SIZE):
    """One patch, or with n > 128 one coherent n x n scene: the same terrain, cover, scars and
    look-alikes, their counts scaled with the area (n = 128 draws exactly as a patch always has).
    -> (img float32 [n, n, 14], mask uint8 [n, n])"""
    area = (n / SIZE) ** 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    # terrain: hills where a smooth field says 'mountain', flat valley floors elsewhere
    hills = 0.6 * _noise(rng, 20, n) + 0.3 * _noise(rng, 8, n) + 0.1 * _noise(rng, 3, n)
    mountain = _sigmoid(3 * _noise(rng, 30, n) + 1.5)
    dem = dom['base'] + rng.uniform(0, 400) + dom['relief'] * rng.uniform(0.6, 1.4) * hills * mountain
    gy, gx = np.gradient(dem, 10.0)                     # 10 m pixels
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.arctan2(-gx, gy)
    sun_zen, sun_az = np.radians(40), np.radians(135)
    shade = np.cos(sun_zen) * np.cos(np.radians(slope)) + \
        np.sin(sun_zen) * np.sin(np.radians(slope)) * np.cos(sun_az - aspect)
    # cover: vegetation over natural soil, thinner on steep ground
    veg = _sigmoid(2 * _noise(rng, 10, n) + dom['veg_bias'] + rng.normal(0, 0.5) - slope / 40)
    spec = {k: np.asarray(v) * (1 if k in ('vegetation', 'water') else dom['tint']) for k, v in SPECTRA.items()}
    refl = veg[..., None] * spec['vegetation'] + (1 - veg[..., None]) * spec['soil']
    mask = np.zeros((n, n), bool)
    # landslide scars: on steep slopes, elongated downslope, with ragged edges; each drawn in
    # the 128 x 128 window around it (the whole patch when n = 128)
    steep = np.argwhere(slope > 22)
    for _ in range(rng.poisson(3.0 * area) if len(steep) else 0):
        cy, cx = steep[rng.integers(len(steep))]
        y0, x0 = min(max(cy - SIZE // 2, 0), n - SIZE), min(max(cx - SIZE // 2, 0), n - SIZE)
        win = np.s_[y0:y0 + SIZE, x0:x0 + SIZE]
        ang = np.arctan2(gy[cy, cx], gx[cy, cx])
        u = (xx[win] - cx) * np.cos(ang) + (yy[win] - cy) * np.sin(ang)
        v = -(xx[win] - cx) * np.sin(ang) + (yy[win] - cy) * np.cos(ang)
        a, b = rng.uniform(6, 18), rng.uniform(2, 5)
        scar = (u / a) ** 2 + (v / b) ** 2 < 1 + 0.35 * _noise(rng, 2)
        fresh = rng.uniform(0.5, 0.95) - dom['older']   # older scars are partly green again
        r = refl[win]
        r[scar] = (1 - fresh) * r[scar] + fresh * spec['scar'] * rng.uniform(0.85, 1.15)
        mask[win] |= scar
    # look-alikes: bare rock outcrops on steep ground (no landslides: their shape differs), and
    # on flat ground, where only slope tells them apart, bare fields and river bars
    rock = (_noise(rng, 4, n) > 1.7) & (slope > 28) & ~mask
    flat = slope < 8
    fields = np.zeros((n, n), bool)
    flats = np.argwhere(flat)
    for _ in range(rng.poisson(1.5 * area) if len(flats) else 0):
        cy, cx = flats[rng.integers(len(flats))]
        h, w = rng.integers(4, 12, size=2)
        fields[max(cy - h, 0):cy + h, max(cx - w, 0):cx + w] = True
    fields &= flat
    water, bars, gravel = np.zeros((n, n), bool), np.zeros((n, n), bool), None
    for _ in range(max(1, round(n / SIZE))):            # rivers: one chance per 128 pixels of side
        if rng.random() < 0.4:
            t = rng.uniform(0, np.pi)
            d = (xx - n / 2) * np.sin(t) - (yy - n / 2) * np.cos(t) + rng.uniform(-30, 30) * n / SIZE + \
                8 * np.sin(((xx - n / 2) * np.cos(t) + (yy - n / 2) * np.sin(t)) / 9)
            river = np.abs(d) < rng.uniform(1.5, 3.5)
            gravel = _noise(rng, 4, n) > 0.3 if gravel is None else gravel
            bars |= (np.abs(d) < 8) & ~river & gravel & flat
            water |= river
    bars &= ~water
    for region, name, mix in ((fields, 'field', 0.9), (bars, 'gravel', 0.9), (water, 'water', 1.0),
                              (rock, 'rock', 0.8)):
        refl[region] = (1 - mix) * refl[region] + mix * spec[name] * rng.uniform(0.9, 1.1)
    refl = refl * np.clip(0.55 + 0.6 * shade, 0.2, 1.3)[..., None]
    haze = rng.uniform(0, 0.03) + dom['haze']           # adds most to the blue end
    refl = refl + haze * np.linspace(1, 0.1, SPECTRAL)
    refl = refl * dom['gain'] + dom['offset'] + rng.normal(0, 0.008, refl.shape)
    img = np.concatenate([refl, slope[..., None], dem[..., None]], -1).astype(np.float32)
    return img, mask.astype(np.uint8)


def synth(out, train=400, valid=60, test=120, shift=1.0, seed=0, target_masks=True, kind='all'):
    """Write a dataset in the Landslide4Sense layout. The source (TrainData) has shift 0;
    ValidData and TestData share one target domain of the given shift. Deterministic in seed."""
    for split, count, sh in (('train', train, 0.0), ('valid', valid, shift), ('test', test, shift)):
        if count == 0:
            continue
        dom = domain(sh, seed, kind)
        rng = np.random.default_rng([seed, list(SPLITS).index(split)])
        sdir = os.path.join(out, SPLITS[split])
        os.makedirs(os.path.join(sdir, 'img'), exist_ok=True)
        keep_mask = split == 'train' or target_masks
        if keep_mask:
            os.makedirs(os.path.join(sdir, 'mask'), exist_ok=True)
        for i in range(1, count + 1):
            img, mask = synth_patch(rng, dom)
            with h5py.File(os.path.join(sdir, 'img', f'image_{i}.h5'), 'w') as f:
                f.create_dataset('img', data=img)
            if keep_mask:
                with h5py.File(os.path.join(sdir, 'mask', f'mask_{i}.h5'), 'w') as f:
                    f.create_dataset('mask', data=mask)


def synth_scene(out, size=1024, shift=1.0, seed=0):
    """One coherent size x size scene of the given target shift (shift 0 = the source domain),
    with its true mask, written by scene.write_scene. -> paths written"""
    import scene                                    # scene I/O lives there; it imports this module
    img, mask = synth_patch(np.random.default_rng([seed, 3]), domain(shift, seed), size)
    return scene.write_scene(out, img, mask)


def main(argv=None):
    ap = argparse.ArgumentParser(description='Landslide4Sense data tools')
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('synth', help='write a synthetic dataset in the Landslide4Sense layout')
    s.add_argument('out')
    s.add_argument('--train', type=int, default=400)
    s.add_argument('--valid', type=int, default=60)
    s.add_argument('--test', type=int, default=120)
    s.add_argument('--shift', type=float, default=1.0, help='strength of the target-domain shift')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--no-target-masks', action='store_true', help='drop ValidData/TestData masks')
    s.add_argument('--shift-kind', choices=['all', 'sensor'], default='all',
                   help="sensor: the target differs only by sensor gain/offset and haze")
    s = sub.add_parser('synth-scene', help='write one coherent synthetic scene (HDF5, and GeoTIFF with rasterio)')
    s.add_argument('out', help='folder for scene.h5 (img, mask), scene.tif and scene_mask.tif')
    s.add_argument('--size', type=int, default=1024)
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == 'synth-scene':
        if a.size < SIZE:
            sys.exit(f'error: --size must be at least {SIZE}')
        print('wrote ' + ', '.join(synth_scene(a.out, a.size, a.shift, a.seed)))
        return
    if min(a.train, a.valid, a.test) < 0 or a.train == 0:
        sys.exit('error: --train must be positive and --valid/--test non-negative')
    synth(a.out, a.train, a.valid, a.test, a.shift, a.seed, not a.no_target_masks, a.shift_kind)
    print(f'wrote {a.train}/{a.valid}/{a.test} patches to {a.out} (shift {a.shift}, seed {a.seed})')


if __name__ == '__main__':
    main()
