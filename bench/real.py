"""The real development set, where it is present, and the one rendering every comparison with it
goes through. ../shared/real-l4s-rgb/l4s_rgb_dev.npz holds 1 964 real Landslide4Sense TrainData
masks with 8-bit renderings of their bands B4, B3, B2, each image multiplied by 255 / (its
largest value over the three bands) and rounded, from the released patches, whose bands were
divided by a per-band mean (its PROVENANCE.md): the ratios between bands
and between pixels of one image survive, its overall brightness does not. It is development
data, never part of the repository: the benchmarks that read it (bench.realism, bench.sim2real)
take its path from --real or find it beside the repository, and skip cleanly without it.

    from bench import real
    path = real.find()                       # None where ../shared is absent
    rgb, mask = real.load(path)              # uint8 [N, 128, 128, 3], uint8 [N, 128, 128]
    rgb = real.render(img)                   # any 14-band patches, rendered the same way
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.normpath(os.path.join(HERE, '..', '..', 'shared', 'real-l4s-rgb',
                                        'l4s_rgb_dev.npz'))
RGB = (3, 2, 1)                             # B4, B3, B2 among the 14 bands
# The release divided each band by this vector (the dataset's authors, iarai/Landslide4Sense-2022
# issues #2 and #4): Sentinel-2 digital numbers (reflectance x 10 000), degrees, metres
IMG_MEAN = [1111.81236406, 824.63171476, 663.41636217, 445.17289745, 645.8582926, 1547.73508126,
            1960.44401001, 1941.32229668, 674.07572865, 9.04787384, 1113.98338755, 519.90397929,
            20.29228266, 772.83144788]


def find(path=None):
    """The development set's file: `path` if given (it must exist), else DEFAULT where it is
    there. -> path or None"""
    if path is not None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path}: no such file (the real development set)')
        return path
    return DEFAULT if os.path.isfile(DEFAULT) else None


def load(path):
    """-> (rgb uint8 [N, 128, 128, 3] as B4, B3, B2; mask uint8 [N, 128, 128] in {0, 1})"""
    with np.load(path) as d:
        return d['rgb'], d['mask']


def render(img):
    """Patches in reflectance rendered as the development set's images were made from the
    released ones: B4, B3, B2 divided by the release's IMG_MEAN, each image then scaled so that
    its largest value over the three bands is 255, rounded; values below 0 clipped to 0.
    img: float [N, 128, 128, 14] (B1-B12 reflectance) -> uint8 [N, 128, 128, 3]"""
    divisor = np.asarray(IMG_MEAN)[list(RGB)] * 1e-4
    x = np.clip(np.asarray(img, np.float64)[..., list(RGB)] / divisor, 0, None)
    top = x.reshape(len(x), -1).max(1)[:, None, None, None]
    return np.round(x * 255 / np.where(top > 0, top, 1)).astype(np.uint8)


def components(mask):
    """The connected objects of each mask, 8-connected. The landslide pixels are the nodes of a
    graph whose edges join 8-neighbours; each round hooks the root of every edge's larger label
    onto the smaller, then compresses every path to its root (pointer jumping), until no edge
    joins two labels. mask: [N, H, W] in {0, 1} -> int64 [N, H, W], 0 outside objects,
    otherwise an index unique over the whole batch"""
    m = np.asarray(mask) > 0
    n, h, w = m.shape
    pos = np.flatnonzero(m)
    idx = np.full(m.shape, -1, np.int64)
    idx.flat[pos] = np.arange(len(pos))
    us, vs = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = idx[:, :h - dy, max(-dx, 0):w - max(dx, 0)]
        b = idx[:, dy:, max(dx, 0):w - max(-dx, 0)]
        keep = (a >= 0) & (b >= 0)
        us.append(a[keep])
        vs.append(b[keep])
    u, v = np.concatenate(us), np.concatenate(vs)
    lab = np.arange(len(pos))
    while True:
        lu, lv = lab[u], lab[v]
        if np.array_equal(lu, lv):
            break
        new = lab.copy()
        np.minimum.at(new, np.maximum(lu, lv), np.minimum(lu, lv))
        while not np.array_equal(new[new], new):
            new = new[new]
        lab = new
    out = np.zeros(m.shape, np.int64)
    out.flat[pos] = lab + 1
    return out
