"""The synthetic sky over a synthetic scene: cumulus clouds with semi-transparent edges, their
shadows on the ground, thin cirrus (raising B10, the cirrus band), drawn at 10 m; and the masks a
product's processor would make of them, as coarse and as imperfect as ESA's: the scene
classification (SCL) and cloud probability at 20 m and 60 m, the MSK_CLASSI bands at 60 m, each
flagging a cloud only above a probability, so a cloud's faintest edge goes unflagged, as on real
products. product.py writes them into a product:

    python -m synthetic product runs/cloudy --level L2A --clouds 0.3
"""
import numpy as np

from synthetic import landscape

# reflectance of an opaque cumulus, B1..B12: white in every visible band, darker in the SWIR,
# little in B10 (1375 nm: water vapour absorbs above low clouds' tops)
CLOUD = np.array([.62, .63, .64, .65, .65, .64, .63, .62, .56, .06, .42, .30])
# what thin cirrus adds per unit of B10 reflectance (the cirrus band sees it alone)
CIRRUS = np.array([.95, .95, .95, .95, .95, .95, .95, .95, .95, 1.0, .85, .70])
SHADOW_DEPTH = 0.65          # the share of light a cloud's shadow takes from the ground
# the scene classification's classes (Sentinel-2 Level-2A product specification)
SCL = dict(no_data=0, defective=1, dark=2, cloud_shadow=3, vegetation=4, not_vegetated=5,
           water=6, unclassified=7, cloud_medium=8, cloud_high=9, cirrus=10, snow=11)
# the truth drawn with the sky: what each 10 m pixel is, and when a pixel counts as touched
TRUTH = ('clear', 'cloud', 'cirrus', 'shadow')
# the sun, as a product's MTD_TL.xml gives it, and the cumulus' height: shadows fall 45 px away
SUN = dict(zenith=40.0, azimuth=135.0)
CLOUD_HEIGHT = 540.0                                   # metres
SHIFT_PX = round(CLOUD_HEIGHT * np.tan(np.radians(SUN['zenith'])) / 10)
VISIBLE = dict(cloud=0.05, cirrus=0.01, shadow=0.05)


def streaks(rng, n, along=40, across=5):
    """A smooth random field stretched along a random axis (cirrus lies in bands), mean 0 and
    std 1. -> float64 [n, n]"""
    m = 2 * n
    f = np.fft.fftfreq(m)
    k = np.exp(-2 * np.pi ** 2 * ((along * f[:, None]) ** 2 + (across * f[None, :]) ** 2))
    z = np.fft.ifft2(np.fft.fft2(rng.standard_normal((m, m))) * k).real[:n, :n]
    z = z.T if rng.random() < 0.5 else z
    return (z - z.mean()) / (z.std() + 1e-12)


def draw(rng, n, cover, sun_azimuth=SUN['azimuth'], shift_px=SHIFT_PX):
    """A sky over an n x n scene with cumulus over about `cover` of it, cirrus over about half as
    much, and the cumulus' shadows cast `shift_px` pixels away from the sun. -> dict(cloud:
    opacity 0..1, cirrus: B10 reflectance it adds, shadow: share of light taken), float64 [n, n]"""
    zero = np.zeros((n, n))
    if cover <= 0:
        return dict(cloud=zero, cirrus=zero, shadow=zero)
    f = 0.75 * landscape._noise(rng, 22, n) + 0.25 * landscape._noise(rng, 5, n)
    cloud = np.clip((f - np.quantile(f, 1 - cover)) / 0.45, 0, 1) ** 0.8
    g = streaks(rng, n)
    cirrus = 0.06 * np.clip((g - np.quantile(g, 1 - cover / 2)) / 0.8, 0, 1)
    az = np.radians(sun_azimuth)                      # the shadow falls away from the sun
    dy, dx = int(round(shift_px * np.cos(az))), int(round(-shift_px * np.sin(az)))
    shadow = np.zeros((n + 2 * shift_px, n + 2 * shift_px))
    shadow[shift_px + dy:shift_px + dy + n, shift_px + dx:shift_px + dx + n] = cloud
    shadow = SHADOW_DEPTH * shadow[shift_px:shift_px + n, shift_px:shift_px + n]
    return dict(cloud=cloud, cirrus=cirrus, shadow=shadow)


def apply(refl, sky):
    """The sky over the ground: shadows darken it, cirrus adds a thin veil (and B10), cumulus
    hides it as far as it is opaque. refl: float [n, n, 12] at 10 m -> float64 [n, n, 12]"""
    r = refl * (1 - sky['shadow'])[..., None]
    r = r + sky['cirrus'][..., None] * CIRRUS
    c = sky['cloud'][..., None]
    return (1 - c) * r + c * CLOUD


def truth(sky):
    """What each pixel is, by priority cloud > shadow > cirrus: uint8 [n, n] indexing TRUTH
    (clear: touched by none beyond VISIBLE)."""
    t = np.zeros(sky['cloud'].shape, np.uint8)
    t[sky['cirrus'] > VISIBLE['cirrus']] = TRUTH.index('cirrus')
    t[sky['shadow'] > VISIBLE['shadow']] = TRUTH.index('shadow')
    t[sky['cloud'] > VISIBLE['cloud']] = TRUTH.index('cloud')
    return t


def cloud_probability(sky, k):
    """A processor's cloud probability (0-100) at k x 10 m: the mean opacity over the pixel,
    certain from 0.3 on. -> uint8 [n / k, n / k]"""
    return np.round(100 * np.clip(landscape.block_mean(sky['cloud'], k) / 0.3, 0, 1)).astype(
        np.uint8)


def scene_classification(sky, refl, cover, nodata, k):
    """The SCL a processor would make at k x 10 m: clouds of medium (probability 35-65) and high
    (>= 65) probability, thin cirrus (B10 above 0.02), dark cloud shadows (more than a third of
    the light taken), and on the rest of the ground vegetation (NDVI > 0.4), water, dark areas
    and not vegetated, which a landslide scar is. refl: the ground under the sky [n, n, 12];
    cover: landscape.synth_patch's cover map; nodata: bool [n, n]. -> uint8 [n / k, n / k]"""
    def mean(x):
        return landscape.block_mean(x.astype(np.float64), k)
    red, nir = mean(refl[..., 3]), mean(refl[..., 7])
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    s = np.where(ndvi > 0.4, SCL['vegetation'], SCL['not_vegetated']).astype(np.uint8)
    s[nir < 0.04] = SCL['dark']
    s[mean(cover == landscape.COVER.index('water')) > 0.5] = SCL['water']
    s[mean(sky['shadow']) > 0.33] = SCL['cloud_shadow']
    s[mean(sky['cirrus']) > 0.02] = SCL['cirrus']
    p = cloud_probability(sky, k)
    s[p >= 35] = SCL['cloud_medium']
    s[p >= 65] = SCL['cloud_high']
    s[mean(nodata) > 0.5] = SCL['no_data']
    return s


def classi(sky, nodata):
    """MSK_CLASSI_B00 at 60 m: opaque clouds (probability >= 35), cirrus (B10 above 0.02) and
    snow (none here), 0 or 1, each a band. -> uint8 [3, n / 6, n / 6]"""
    opaque = cloud_probability(sky, 6) >= 35
    cirrus = landscape.block_mean(sky['cirrus'], 6) > 0.02
    out = np.stack([opaque, cirrus & ~opaque, np.zeros_like(opaque)]).astype(np.uint8)
    out[:, landscape.block_mean(nodata.astype(np.float64), 6) > 0.5] = 0
    return out
