"""Synthetic Landslide4Sense data with a domain shift, written by code anyone can read and rerun:
terrain and slope, vegetation over soil with Sentinel-2-like spectra and hill shading, landslide
scars on steep ground (about 2 % of pixels), and look-alikes (rock outcrops, bare fields, river
bars). The target domain differs by sensor gain/offset, drier cover, higher terrain, tinted soil,
older scars and haze (README: the synthetic data).

    python landslide.py synth data/ --train 400 --valid 60 --test 120 --shift 1.0
    python landslide.py synth-scene scenes/ --size 2048 --shift 1.0 --seed 0
"""
import argparse
import os
import sys

import h5py
import numpy as np

import landslide as L

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


def _noise(rng, sigma, n=L.SIZE):
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
    gain and offset and the haze differ (what separated normalization can absorb). kind='scars':
    only the landslides differ, older than the source's (the same land, cover and sensor)."""
    rng = np.random.default_rng([seed, 7])
    d = {'gain': np.exp(0.3 * shift * rng.standard_normal(L.SPECTRAL)),
         'offset': 0.03 * shift * rng.standard_normal(L.SPECTRAL),
         'veg_bias': 1.0 - 1.2 * shift, 'base': 600 + 1500 * shift, 'relief': 160 * (1 + 0.3 * shift),
         'tint': np.exp(0.25 * shift * rng.standard_normal(L.SPECTRAL)),   # soils of another colour
         'haze': 0.02 * shift, 'older': 0.2 * shift}
    if kind == 'sensor':
        d |= {'veg_bias': 1.0, 'base': 600, 'relief': 160, 'tint': np.ones(L.SPECTRAL), 'older': 0.0}
    if kind == 'scars':                                 # scar freshness 0.5-0.95 -> 0.1-0.55 at shift 1
        d = domain(0.0, seed) | {'older': 0.4 * shift}
    return d


COVER = ('other', 'landslide', 'rock', 'field', 'gravel', 'water')   # codes of synth_patch's cover map


def synth_patch(rng, dom, n=L.SIZE, cover=False):
    """One patch, or with n > 128 one coherent n x n scene: the same terrain, cover, scars and
    look-alikes, their counts scaled with the area (n = 128 draws exactly as a patch always has).
    -> (img float32 [n, n, 14], mask uint8 [n, n]); with cover=True also what lies where, uint8
    [n, n] indexing COVER (the same draws: the image and mask do not change)"""
    area = (n / L.SIZE) ** 2
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
        y0, x0 = min(max(cy - L.SIZE // 2, 0), n - L.SIZE), min(max(cx - L.SIZE // 2, 0), n - L.SIZE)
        win = np.s_[y0:y0 + L.SIZE, x0:x0 + L.SIZE]
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
    for _ in range(max(1, round(n / L.SIZE))):            # rivers: one chance per 128 pixels of side
        if rng.random() < 0.4:
            t = rng.uniform(0, np.pi)
            d = (xx - n / 2) * np.sin(t) - (yy - n / 2) * np.cos(t) + rng.uniform(-30, 30) * n / L.SIZE + \
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
    refl = refl + haze * np.linspace(1, 0.1, L.SPECTRAL)
    refl = refl * dom['gain'] + dom['offset'] + rng.normal(0, 0.008, refl.shape)
    img = np.concatenate([refl, slope[..., None], dem[..., None]], -1).astype(np.float32)
    if not cover:
        return img, mask.astype(np.uint8)
    where = np.zeros((n, n), np.uint8)
    for name, region in (('field', fields), ('gravel', bars), ('water', water), ('rock', rock),
                         ('landslide', mask)):          # look-alikes as painted; the labels over them
        where[region] = COVER.index(name)
    return img, mask.astype(np.uint8), where


def split_patches(split, count, shift=1.0, seed=0, kind='all', cover=False):
    """The patches synth writes for one split, in order (the source, 'train', has shift 0):
    yields synth_patch's outputs. Reading them again this way gives their cover maps."""
    rng = np.random.default_rng([seed, list(L.SPLITS).index(split)])
    dom = domain(0.0 if split == 'train' else shift, seed, kind)
    for _ in range(count):
        yield synth_patch(rng, dom, cover=cover)


def synth(out, train=400, valid=60, test=120, shift=1.0, seed=0, target_masks=True, kind='all'):
    """Write a dataset in the Landslide4Sense layout. The source (TrainData) has shift 0;
    ValidData and TestData share one target domain of the given shift. Deterministic in seed."""
    for split, count in (('train', train), ('valid', valid), ('test', test)):
        if count == 0:
            continue
        sdir = os.path.join(out, L.SPLITS[split])
        os.makedirs(os.path.join(sdir, 'img'), exist_ok=True)
        keep_mask = split == 'train' or target_masks
        if keep_mask:
            os.makedirs(os.path.join(sdir, 'mask'), exist_ok=True)
        for i, (img, mask) in enumerate(split_patches(split, count, shift, seed, kind), 1):
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
    s.add_argument('--shift-kind', choices=['all', 'sensor', 'scars'], default='all',
                   help="sensor: the target differs only by sensor gain/offset and haze; "
                        "scars: only by older, partly revegetated landslides")
    s = sub.add_parser('synth-scene', help='write one coherent synthetic scene (HDF5, and GeoTIFF with rasterio)')
    s.add_argument('out', help='folder for scene.h5 (img, mask), scene.tif and scene_mask.tif')
    s.add_argument('--size', type=int, default=1024)
    s.add_argument('--shift', type=float, default=1.0)
    s.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == 'synth-scene':
        if a.size < L.SIZE:
            sys.exit(f'error: --size must be at least {L.SIZE}')
        print('wrote ' + ', '.join(synth_scene(a.out, a.size, a.shift, a.seed)))
        return
    if min(a.train, a.valid, a.test) < 0 or a.train == 0:
        sys.exit('error: --train must be positive and --valid/--test non-negative')
    synth(a.out, a.train, a.valid, a.test, a.shift, a.seed, not a.no_target_masks, a.shift_kind)
    print(f'wrote {a.train}/{a.valid}/{a.test} patches to {a.out} (shift {a.shift}, seed {a.seed})')
