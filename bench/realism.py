"""The synthetic world held against the real one: statistics of real Landslide4Sense patches
beside the same statistics of synthetic ones, each with its source. Landslide shapes and the
images' looks come from the real development set (bench/real.py: 1 964 TrainData masks with
8-bit B4, B3, B2 renderings), measured on synthetic patches rendered the same way; the 14 bands
from the TrainData's per-band statistics as published (SOURCES says which and why). The
development set is never in the repository: without it the table has the 14-band rows only.

    python -m bench.realism                          # the default world beside the real one
    python -m bench.realism --worlds v1 v2 --n 800   # worlds side by side (before and after)
"""
import argparse
import sys

import numpy as np

from bench import real
from synthetic import landscape

# ----------------------------------------------------------------------------- published figures
# The released TrainData is the raw data divided by a per-band mean vector (the dataset's
# authors, iarai/Landslide4Sense-2022 issues #2 and #4): real.IMG_MEAN, in Sentinel-2 digital
# numbers (reflectance x 10 000), degrees of slope and metres. RELEASE_MEAN / RELEASE_STD: the
# released TrainData's own per-band mean and std, printed identically by independent public
# competition solutions (every mean near 1, as dividing by a mean makes it). Not used: the mean
# and std in iarai's dataset/landslide_dataset.py (-0.4914, ...), which its __main__ computed
# over images its __getitem__ had already standardized: they are negative for bands the release
# never takes below 0, so they are not the release's.
RELEASE_MEAN = [0.9257, 0.9227, 0.9541, 0.9596, 1.0228, 1.0426, 1.0358, 1.0468, 1.1699, 1.1736,
                1.0495, 1.0370, 1.2511, 1.6495]
RELEASE_STD = [0.1410, 0.2207, 0.3184, 0.5724, 0.4601, 0.4465, 0.4651, 0.4948, 0.5133, 0.6836,
               0.5323, 0.6628, 0.6784, 1.0727]
SOURCES = {
    'masks': 'development set, masks',
    'rgb': 'development set, renderings',
    'bands': 'TrainData, published (RELEASE_MEAN, RELEASE_STD)',
}
NAMES = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B9', 'B10', 'B11', 'B12', 'slope',
         'DEM']


def published_bands():
    """The TrainData's per-band mean (reflectance for B1-B12, degrees, metres) and coefficient
    of variation (std / mean, which the division by a mean leaves as it was). -> (mean [14],
    cv [14])"""
    scale = np.r_[np.full(12, 1e-4), 1.0, 1.0]
    mean = np.asarray(real.IMG_MEAN) * np.asarray(RELEASE_MEAN) * scale
    return mean, np.asarray(RELEASE_STD) / np.asarray(RELEASE_MEAN)


# ----------------------------------------------------------------------------- statistics

def mask_stats(mask):
    """Per-patch and per-object statistics of landslide masks, 8-connected objects.
    mask: [N, 128, 128] in {0, 1} -> {name: value}"""
    lab = real.components(mask)
    share = mask.reshape(len(mask), -1).mean(1)
    ids, area = np.unique(lab[lab > 0], return_counts=True)
    per_patch = np.array([len(np.unique(p[p > 0])) for p in lab])
    yy, xx = np.mgrid[0:lab.shape[1], 0:lab.shape[2]]
    flat, y, x = lab.ravel(), np.broadcast_to(yy, lab.shape).ravel(), \
        np.broadcast_to(xx, lab.shape).ravel()
    k = np.searchsorted(ids, flat[flat > 0])
    y, x = y[flat > 0].astype(np.float64), x[flat > 0].astype(np.float64)

    def s(v):
        return np.bincount(k, v, len(ids))
    my, mx = s(y) / area, s(x) / area
    vy, vx = s(y * y) / area - my ** 2 + 1 / 12, s(x * x) / area - mx ** 2 + 1 / 12
    cxy = s(x * y) / area - mx * my
    tr, det = vy + vx, vy * vx - cxy ** 2
    l1 = tr / 2 + np.sqrt(np.maximum(tr ** 2 / 4 - det, 0))
    l2 = np.maximum(tr - l1, 1e-6)
    edges = np.zeros(len(ids))
    padded = np.pad(lab, ((0, 0), (1, 1), (1, 1)))
    inner = padded[:, 1:-1, 1:-1]
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        nb = padded[:, 1 + dy:padded.shape[1] - 1 + dy, 1 + dx:padded.shape[2] - 1 + dx]
        cut = (inner > 0) & (nb != inner)
        edges += np.bincount(np.searchsorted(ids, inner[cut]), minlength=len(ids))
    big = area >= 5
    has = share > 0
    return {
        'patches with a landslide %': 100 * has.mean(),
        'landslide share % (patches with one)': 100 * share[has].mean(),
        'landslide share %, median (patches with one)': 100 * np.median(share[has]),
        'objects per patch, mean (patches with one)': per_patch[has].mean(),
        'objects per patch, median': np.median(per_patch[has]),
        'object area px, median': np.median(area),
        'object area px, 90th percentile': np.percentile(area, 90),
        'object area px, 99th percentile': np.percentile(area, 99),
        'object area px, half the landslide pixels in larger': weighted_median(area),
        'objects under 10 px %': 100 * (area < 10).mean(),
        'elongation, median (objects >= 5 px)': np.median(np.sqrt(l1 / l2)[big]),
        'compactness 4πA/P², median (>= 5 px)': np.median((4 * np.pi * area / edges ** 2)[big]),
    }


def weighted_median(area):
    """The object area above which half of all landslide pixels lie (what a pixel F1 weighs)."""
    a = np.sort(area)
    c = np.cumsum(a)
    return a[np.searchsorted(c, c[-1] / 2)]


def acf_length(lum, cap=40):
    """Autocorrelation length of each image: the lag in pixels at which the radially averaged
    autocorrelation of its luminance first falls below 1/e. lum: float [N, H, W] -> [N]"""
    n, h, w = lum.shape
    z = lum - lum.mean((1, 2), keepdims=True)
    f = np.fft.rfft2(z, s=(2 * h, 2 * w))
    acf = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w))
    ones = np.fft.rfft2(np.ones((h, w)), s=(2 * h, 2 * w))
    overlap = np.maximum(np.fft.irfft2(np.abs(ones) ** 2, s=(2 * h, 2 * w)), 1)
    acf = acf / overlap
    acf = acf / np.maximum(acf[:, :1, :1], 1e-12)
    dy = np.minimum(np.arange(2 * h), 2 * h - np.arange(2 * h))
    dx = np.minimum(np.arange(2 * w), 2 * w - np.arange(2 * w))
    r = np.rint(np.hypot(dy[:, None], dx[None, :])).astype(int)
    keep = r <= cap
    radial = np.stack([np.bincount(r[keep], a[keep], cap + 1) / np.bincount(r[keep], None, cap + 1)
                       for a in acf])
    below = radial < 1 / np.e
    first = np.where(below.any(1), below.argmax(1), cap)
    return first.astype(np.float64)


def image_stats(rgb, mask):
    """Statistics of rendered images (see real.render) against their masks, the median over
    images (over images with at least 20 landslide pixels where a statistic needs scars).
    rgb: uint8 [N, 128, 128, 3] (B4, B3, B2), mask: [N, 128, 128] -> {name: value}"""
    x = rgb.astype(np.float64)
    lum = x.mean(-1)
    m = mask.astype(bool)
    use = m.reshape(len(m), -1).sum(1) >= 20
    out = {'brightness: image mean / image max': np.median(x.reshape(len(x), -1).mean(1) / 255)}
    bg, ls = {}, {}
    for j, b in enumerate(('B4', 'B3', 'B2')):
        v = x[..., j]
        bg[b] = np.array([v[i][~m[i]].mean() for i in range(len(v))])
        ls[b] = np.array([v[i][m[i]].mean() if use[i] else np.nan for i in range(len(v))])
        out[f'{b} landslide / background'] = np.nanmedian(ls[b] / bg[b])
    out['B4 / B2 on landslides'] = np.nanmedian(ls['B4'] / ls['B2'])
    out['B4 / B2 on background'] = np.median(bg['B4'] / bg['B2'])
    out['B3 / B2 on background'] = np.median(bg['B3'] / bg['B2'])
    scar_lum = [lum[i][m[i]] for i in range(len(lum))]
    out['scar luminance CV'] = np.median([s.std() / s.mean() for s, u in zip(scar_lum, use) if u])
    out['background luminance CV'] = np.median([lum[i][~m[i]].std() / lum[i][~m[i]].mean()
                                                for i in range(len(lum))])
    out['background brighter than the median scar %'] = 100 * np.median(
        [(lum[i][~m[i]] > np.median(s)).mean() for i, s in enumerate(scar_lum) if use[i]])
    out['dark pixels (< half the median) %'] = 100 * np.median(
        [(lum[i] < 0.5 * np.median(lum[i])).mean() for i in range(len(lum))])
    out['autocorrelation length px, median'] = np.median(acf_length(lum))
    return out


def band_stats(img):
    """Per-band mean and coefficient of variation of 14-band patches (reflectance, degrees,
    metres). img: float [N, 128, 128, 14] -> (mean [14], cv [14])"""
    v = img.reshape(-1, img.shape[-1]).astype(np.float64)
    mean = v.mean(0)
    return mean, v.std(0) / np.where(np.abs(mean) > 1e-12, np.abs(mean), 1)


# ----------------------------------------------------------------------------- the table

def world_sample(world, n, seed):
    """n source patches of a world. -> (img float32 [n, 128, 128, 14], mask uint8 [n, 128, 128])"""
    pairs = list(landscape.split_patches('train', n, seed=seed, world=world))
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def table(worlds, n=600, seed=0, real_path=None, log=print):
    """Markdown: each statistic for the real data and each world. -> str"""
    path = real.find(real_path)
    cols = {}
    if path:
        rgb, mask = real.load(path)
        cols['real'] = mask_stats(mask) | image_stats(rgb, mask)
    else:
        log('the real development set is absent: the 14-band rows only')
    pmean, pcv = published_bands()
    for k in range(14):
        cols.setdefault('real', {})[f'{NAMES[k]} mean'] = pmean[k]
        cols['real'][f'{NAMES[k]} CV'] = pcv[k]
    for w in worlds:
        log(f'world {w}: drawing {n} patches...')
        img, mask = world_sample(w, n, seed)
        has = mask.reshape(n, -1).max(1) > 0
        col = (mask_stats(mask) | image_stats(real.render(img[has]), mask[has])) if path else {}
        bmean, bcv = band_stats(img)
        for k in range(14):
            col[f'{NAMES[k]} mean'], col[f'{NAMES[k]} CV'] = bmean[k], bcv[k]
        cols[f'world {w}'] = col
    names = list(cols['real'])
    lines = ['| statistic | ' + ' | '.join(cols) + ' | source of the real figure |',
             '|---' * (len(cols) + 2) + '|']
    for name in names:
        src = SOURCES['bands'] if name.split()[0] in NAMES and \
            name.split()[1] in ('mean', 'CV') else (
            SOURCES['masks'] if name.startswith(('patches', 'landslide', 'object', 'elong',
                                                 'compact')) else SOURCES['rgb'])
        cells = ' | '.join(fmt(c.get(name)) for c in cols.values())
        lines.append(f'| {name} | {cells} | {src} |')
    return '\n'.join(lines) + '\n'


def fmt(v):
    if v is None:
        return '—'
    return f'{v:.4f}' if abs(v) < 1 else f'{v:.3g}' if abs(v) < 100 else f'{v:.0f}'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--worlds', nargs='+', default=[landscape.WORLD],
                    choices=list(landscape.WORLDS),
                    help=f'synthetic worlds to compare [default: {landscape.WORLD}]')
    ap.add_argument('--n', type=int, default=600, help='synthetic patches per world')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--real', help=f'the real development set [default: {real.DEFAULT}]')
    a = ap.parse_args(argv)
    print(table(a.worlds, a.n, a.seed, a.real))
    return 0


if __name__ == '__main__':
    sys.exit(main())
