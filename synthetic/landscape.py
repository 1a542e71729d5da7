"""The synthetic landscape that every synthetic dataset, scene and product is drawn from:
terrain and slope at 10 m, vegetation over soil with Sentinel-2-like spectra and hill shading,
landslide scars on steep ground (about 2 % of pixels), look-alikes (rock outcrops, bare fields,
river bars), and a domain shift (sensor gain and offset, drier cover, higher terrain, tinted
soil, older scars, haze). Then the sensor: each band averaged over its native pixel (60 m for
B1, B9, B10; 20 m for B5-B7, B8A, B11, B12; 10 m for the rest) and, for the Landslide4Sense
layout, resampled bilinearly back to 10 m, as the released patches were made. synth() writes a
dataset of such patches in the Landslide4Sense layout (refine.py --demo calls it):

    python -m synthetic patches data/ --train 400 --valid 60 --test 120 --shift 1.0

Two worlds (WORLDS): v1, the world as first written, which products, events, the demo and the
method's benchmarks are drawn from; and v2, the default for patches, held against real
Landslide4Sense statistics (python -m bench.realism; docs/realism.md): landslide areas heavy-tailed
and clustered by event, denser forest, top-of-atmosphere light, elevations of the competition's
regions, cosine illumination, bright river beds. Each of v2's changes is one flag, and
'v2-<flag>' is v2 without it (bench.sim2real measures each); 'random' draws each patch's flags
at random, the worlds between v1 and v2, which the shipped model (pretrained/) is trained across.

product.py writes Sentinel-2 products and pre-stacked scenes from the same landscape.
"""
import json
import os

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
# v2's closed canopy (forest): darker in the visible and the SWIR than v1's mixed vegetation;
# and its fresh scars, of broken rock and soil, greyer than v1's
FOREST = [.015, .020, .035, .018, .060, .200, .250, .270, .260, .004, .120, .045]
DEBRIS = [.100, .130, .150, .165, .180, .200, .215, .225, .220, .010, .270, .230]

# ----------------------------------------------------------------------------- the worlds
# v2's changes, each a flag (docs/realism.md gives each one's reason and what it moved):
V2 = dict(sizes=True,      # landslide areas heavy-tailed (inverse gamma), aspect near 2
          clusters=True,   # landslides clustered by event: counts over-dispersed, many empty
          forest=True,     # closed forest canopy over most of the land
          toa=True,        # top-of-atmosphere light: path radiance, water vapour, cirrus band
          relief=True,     # elevations of the competition's regions, cosine illumination
          looks=True,      # bright river beds in the valleys, fewer rock outcrops
          texture=True)    # scars rough inside (debris, boulders), fresh as event inventories
WORLDS = {'v1': {}, 'v2': V2} | {f'v2-{k}': V2 | {k: False} for k in V2}
# domain randomization (Tobin et al. 2017): each patch (or scene) its own world, each of v2's
# changes on or off with even odds, so that a network sees the 128 worlds between v1 and v2 and
# has to learn what their landslides share rather than one world's look
WORLDS['random'] = {'random': 0.5}
WORLD = 'v2'                                          # what synth() and split_patches() draw
SCAR_AREA, SCAR_RATE = 36.0, 5.0        # v2: landslide areas' scale (px), landslides a patch


def _noise(rng, sigma, n=L.SIZE):
    """Smooth random field, mean 0 and std 1; sigma in pixels. -> float64 [n, n]"""
    m = 2 * n                                           # make it larger, crop: no wrap-around
    f = np.fft.fftfreq(m)
    k = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    z = np.fft.ifft2(np.fft.fft2(rng.standard_normal((m, m))) * k).real[:n, :n]
    return (z - z.mean()) / (z.std() + 1e-12)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def domain(shift, seed, kind='all', world=WORLD):
    """Parameters of the source (shift 0) or a target domain: a per-band sensor gain and offset,
    drier cover, higher and steeper terrain, differently coloured soil and rock, older (partly
    revegetated) landslide scars and more haze as shift grows. kind='sensor': only the sensor
    gain and offset and the haze differ (what separated normalization can absorb). kind='scars':
    only the landslides differ, older than the source's (the same land, cover and sensor).
    kind='product': the land and landslides as 'all', seen as a Sentinel-2 product sees them: gains
    within a few percent (Sentinel-2A and 2B agree to about that), no offset, soils tinted
    smoothly across the spectrum (redder or greyer), not band by band; the strong per-band gains
    of 'all' and 'sensor' stay what the patch benchmarks' sensor shift is made of. world: a name
    of WORLDS, whose flags the drawing reads from d['world']."""
    rng = np.random.default_rng([seed, 7])
    d = {'gain': np.exp(0.3 * shift * rng.standard_normal(L.SPECTRAL)),
         'offset': 0.03 * shift * rng.standard_normal(L.SPECTRAL),
         'veg_bias': 1.0 - 1.2 * shift, 'base': 600 + 1500 * shift,
         'relief': 160 * (1 + 0.3 * shift),
         'tint': np.exp(0.25 * shift * rng.standard_normal(L.SPECTRAL)),   # soils of another colour
         'haze': 0.02 * shift, 'older': 0.2 * shift, 'world': WORLDS[world]}
    if kind == 'sensor':
        d |= {'veg_bias': 1.0, 'base': 600, 'relief': 160, 'tint': np.ones(L.SPECTRAL),
              'older': 0.0}
    if kind == 'scars':                       # scar freshness 0.5-0.95 -> 0.1-0.55 at shift 1
        d = domain(0.0, seed, world=world) | {'older': 0.4 * shift}
    if kind == 'product':
        tilt = 0.25 * shift * rng.standard_normal() * np.linspace(-1, 1, L.SPECTRAL)
        d |= {'gain': np.exp(0.02 * rng.standard_normal(L.SPECTRAL)),
              'offset': np.zeros(L.SPECTRAL), 'tint': np.exp(tilt)}
    return d


# the codes of synth_patch's cover map
COVER = ('other', 'landslide', 'rock', 'field', 'gravel', 'water')


def synth_patch(rng, dom, n=L.SIZE, cover=False, native=True):
    """One patch, or with n > 128 one coherent n x n scene: the same terrain, cover, scars and
    look-alikes, their counts scaled with the area (n = 128 draws exactly as a patch always has).
    native: each band at its native resolution, resampled to 10 m (sensor_resolution); False:
    every band as drawn at 10 m (what product.py averages into a product's band files).
    -> (img float32 [n, n, 14], mask uint8 [n, n]); with cover=True also what lies where, uint8
    [n, n] indexing COVER (the same draws: the image and mask do not change)"""
    dom = one_world(rng, dom)
    g = draw_ground(rng, dom, n)
    img = sense(g, g['refl'], rng, dom, native)
    return (img, g['mask'].astype(np.uint8)) + ((g['cover'],) if cover else ())


def one_world(rng, dom):
    """dom as one patch or scene sees it: a randomized world's flags drawn for it (each on with
    the world's odds); any other world unchanged, and rng untouched. -> dict"""
    odds = dom.get('world', {}).get('random')
    if odds is None:
        return dom
    return dom | {'world': {k: bool(rng.random() < odds) for k in V2}}


def draw_ground(rng, dom, n):
    """The ground of an n x n scene before light and sensor: terrain, cover, scars, look-alikes.
    -> dict(refl: unshaded reflectance float64 [n, n, 12], mask: landslide bool [n, n], cover:
    uint8 [n, n] indexing COVER, dem, slope, gy, gx, shade [n, n], light: the illumination
    factor [n, n], sun_zen (radians), spec: the spectra as tinted, yy, xx, area: what painting
    more into it needs)"""
    w = dom.get('world', {})
    area = (n / L.SIZE) ** 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dem, slope, gy, gx, shade, sun_zen = _terrain(rng, dom, n)
    # cover: vegetation over natural soil, thinner on steep ground (v2: a closed forest canopy)
    bias = dom['veg_bias'] + (3.5 if w.get('forest') else 0.0)
    veg = _sigmoid(2 * _noise(rng, 10, n) + bias + rng.normal(0, 0.5) - slope / 40)
    spec = {k: np.asarray(v) * (1 if k in ('vegetation', 'water') else dom['tint'])
            for k, v in (SPECTRA | ({'vegetation': FOREST} if w.get('forest') else {}) |
                         ({'scar': DEBRIS} if w.get('texture') else {})).items()}
    refl = veg[..., None] * spec['vegetation'] + (1 - veg[..., None]) * spec['soil']
    mask = _scars(rng, dom, refl, spec, slope, gy, gx, yy, xx, area)
    looks = _lookalikes(rng, refl, spec, slope, mask, yy, xx, area, w)
    where = np.zeros((n, n), np.uint8)
    for name, region in looks + [('landslide', mask)]:   # look-alikes as painted; labels over them
        where[region] = COVER.index(name)
    if w.get('relief'):                  # Lambertian, with a share of diffuse skylight
        light = (1 - DIFFUSE) * np.maximum(shade, 0) / np.cos(sun_zen) + DIFFUSE
    else:
        light = np.clip(0.55 + 0.6 * shade, 0.2, 1.3)
    return dict(refl=refl, mask=mask, cover=where, dem=dem, slope=slope, gy=gy, gx=gx,
                shade=shade, light=light, sun_zen=sun_zen, spec=spec, yy=yy, xx=xx, area=area,
                veg=veg)


def sense(g, refl, rng, dom, native=True):
    """The ground g's reflectance refl [n, n, 12] as the sensor sees it: hill shading, haze
    (most in the blue; v2: the atmosphere, toa()), the domain's gain and offset, noise, and with
    native each band at its native resolution. -> img float32 [n, n, 14] (slope and DEM
    appended)"""
    refl = refl * g.get('light', np.clip(0.55 + 0.6 * g['shade'], 0.2, 1.3))[..., None]
    if dom.get('world', {}).get('toa'):
        refl = toa(refl, rng, dom['haze'], g.get('sun_zen', np.radians(40)))
        noise = NOISE
    else:
        haze = rng.uniform(0, 0.03) + dom['haze']       # adds most to the blue end
        refl = refl + haze * np.linspace(1, 0.1, L.SPECTRAL)
        noise = 0.008
    refl = refl * dom['gain'] + dom['offset'] + rng.normal(0, 1, refl.shape) * noise
    if native:
        refl = sensor_resolution(refl)
    return np.concatenate([refl, g['slope'][..., None], g['dem'][..., None]], -1).astype(
        np.float32)


# v2's light: Sentinel-2's band centres (µm), the diffuse share of illumination, and the noise of
# each band (reflectance; about what an SNR of 100-170 at the reference radiances gives, and
# less in B10, whose signal is a hundredth of the others')
WAVELENGTH = np.array([.443, .490, .560, .665, .705, .740, .783, .842, .945, 1.375, 1.610, 2.190])
DIFFUSE = 0.15
NOISE = np.r_[np.full(9, 0.002), 0.0002, 0.002, 0.002]


def toa(refl, rng, haze, sun_zen):
    """Surface reflectance [n, n, 12] as top-of-atmosphere reflectance, as Level-1C (and the
    Landslide4Sense patches, whose B1 exceeds B2 and whose B10 is near 0) record it: a path
    reflectance of single scattering by air (Rayleigh optical depth 0.0088 λ^-4.05) and aerosol
    (optical depth at 550 nm drawn per scene, Ångström exponent 1.3), both attenuating the
    ground's light; water vapour absorbing in B9 (945 nm); B10 (1375 nm) seeing the ground through
    almost all the water vapour of the column, a few thousandths of B11. haze: the domain's."""
    tau_r = 0.0088 * WAVELENGTH ** -4.05
    tau_a = (rng.uniform(0.02, 0.2) + 5 * haze) * (WAVELENGTH / 0.55) ** -1.3
    path = 0.25 * (tau_r + 0.5 * tau_a)                 # ~ phase / (4 cos θs cos θv)
    trans = np.exp(-0.5 * (tau_r + tau_a) * (1 / np.cos(sun_zen) + 1))
    out = refl * trans + path
    out[..., 8] = refl[..., 8] * trans[8] * rng.uniform(0.25, 0.45) + path[8]
    out[..., 9] = refl[..., 10] * rng.uniform(0.004, 0.01)
    return out


def paint_scars(rng, dom, g, refl):
    """More landslide scars, as fresh as dom says, painted into refl (the ground g's, in place),
    as _scars paints them. -> their mask bool [n, n]"""
    return _scars(rng, dom, refl, g['spec'], g['slope'], g['gy'], g['gx'], g['yy'], g['xx'],
                  g['area'])


def _terrain(rng, dom, n):
    """Hills where a smooth field says 'mountain', flat valley floors elsewhere, at 10 m pixels
    (v2: the base elevation anywhere from near the sea to high mountains, as the competition's
    regions lie, and the sun anywhere from 25 to 55 degrees from the zenith).
    -> (dem, slope in degrees, its gradient gy, gx, hill shading cos i, each float64 [n, n];
    the sun's zenith angle in radians)"""
    hills = 0.6 * _noise(rng, 20, n) + 0.3 * _noise(rng, 8, n) + 0.1 * _noise(rng, 3, n)
    mountain = _sigmoid(3 * _noise(rng, 30, n) + 1.5)
    relief = dom.get('world', {}).get('relief')
    base = dom['base'] + (rng.uniform(-550, 2000) if relief else rng.uniform(0, 400))
    dem = base + dom['relief'] * rng.uniform(0.6, 1.4) * hills * mountain
    gy, gx = np.gradient(dem, 10.0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.arctan2(-gx, gy)
    sun_zen, sun_az = np.radians(40), np.radians(135)
    if relief:
        sun_zen, sun_az = np.radians(rng.uniform(25, 55)), np.radians(rng.uniform(100, 170))
    shade = np.cos(sun_zen) * np.cos(np.radians(slope)) + \
        np.sin(sun_zen) * np.sin(np.radians(slope)) * np.cos(sun_az - aspect)
    return dem, slope, gy, gx, shade, sun_zen


def _scars(rng, dom, refl, spec, slope, gy, gx, yy, xx, area):
    """Landslide scars painted into refl (in place): on steep slopes, elongated downslope, with
    ragged edges, each drawn in the 128 x 128 window around it (v2: areas heavy-tailed, counts
    clustered by event, scars rough inside; see _scar_size and _scar_sites). -> mask bool [n, n]"""
    n, w = len(slope), dom.get('world', {})
    mask = np.zeros((n, n), bool)
    steep = np.argwhere(slope > 22)
    sites = _scar_sites(rng, steep, area, n) if w.get('clusters') and len(steep) else None
    count = len(sites) if sites is not None else rng.poisson(3.0 * area) if len(steep) else 0
    for i in range(count):
        cy, cx = steep[sites[i] if sites is not None else rng.integers(len(steep))]
        y0 = min(max(cy - L.SIZE // 2, 0), n - L.SIZE)
        x0 = min(max(cx - L.SIZE // 2, 0), n - L.SIZE)
        win = np.s_[y0:y0 + L.SIZE, x0:x0 + L.SIZE]
        ang = np.arctan2(gy[cy, cx], gx[cy, cx])
        u = (xx[win] - cx) * np.cos(ang) + (yy[win] - cy) * np.sin(ang)
        v = -(xx[win] - cx) * np.sin(ang) + (yy[win] - cy) * np.cos(ang)
        a, b = _scar_size(rng) if w.get('sizes') else (rng.uniform(6, 18), rng.uniform(2, 5))
        edge = 0.6 * _noise(rng, max(2.0, b / 2)) if w.get('sizes') else 0.35 * _noise(rng, 2)
        scar = (u / a) ** 2 + (v / b) ** 2 < 1 + edge
        r = refl[win]
        if w.get('texture'):             # event inventories: mapped while the scars are bare
            fresh = rng.uniform(0.75, 1.0) - dom['older']
            rough = 1 + 0.25 * _noise(rng, 1.5)[scar, None]
            r[scar] = (1 - fresh) * r[scar] + fresh * spec['scar'] * rng.uniform(0.85, 1.15) * rough
        else:
            fresh = rng.uniform(0.5, 0.95) - dom['older']   # older scars are partly green again
            r[scar] = (1 - fresh) * r[scar] + fresh * spec['scar'] * rng.uniform(0.85, 1.15)
        mask[win] |= scar
    return mask


def _scar_size(rng, scale=SCAR_AREA):
    """v2: one landslide's semi-axes in pixels, downslope and across. Its area A (px) is drawn
    from an inverse gamma distribution with shape 1.4, the power-law tail A^-2.4 that event
    inventories follow (Malamud et al. 2004), its scale set so that the median mapped object,
    and the object that half the landslide pixels lie in, come near the real development set's
    (docs/realism.md), kept within 3-4000 px; its length-to-width ratio lognormal about 2.5.
    -> (a, b)"""
    A = min(3 + scale / rng.gamma(1.4), 4000)
    ratio = np.exp(rng.normal(np.log(2.5), 0.35))
    return np.sqrt(A * ratio / np.pi), np.sqrt(A / (np.pi * ratio))


def _scar_sites(rng, steep, area, n):
    """v2: where the landslides of one scene start, as an event clusters them: their number is
    Poisson with a mean that is itself gamma-distributed (shape 0.3 per 128 x 128 of area: many
    patches hold none, some dozens), and their places on the steep ground are drawn with a
    weight exp(2 z) of a smooth field z (the storm's or the shaking's intensity).
    steep: int [k, 2] candidate pixels. -> indices into steep"""
    count = rng.poisson(SCAR_RATE * area * rng.gamma(0.3 * area) / (0.3 * area))
    weight = np.exp(2 * _noise(rng, 25, n))[steep[:, 0], steep[:, 1]]
    return rng.choice(len(steep), size=count, p=weight / weight.sum())


def _lookalikes(rng, refl, spec, slope, mask, yy, xx, area, w={}):
    """Bare rock outcrops on steep ground (no landslides: their shape differs), and on flat
    ground, where only slope tells them apart, bare fields and river bars; painted into refl
    (in place). v2: fewer outcrops and fields, and rivers more often, in wide beds of bright
    gravel.
    -> [(cover name, bool [n, n])] in the order painted"""
    n = len(slope)
    rock = (_noise(rng, 4, n) > (2.3 if w.get('looks') else 1.7)) & (slope > 28) & ~mask
    flat = slope < 8
    fields = np.zeros((n, n), bool)
    flats = np.argwhere(flat)
    for _ in range(rng.poisson((0.75 if w.get('looks') else 1.5) * area) if len(flats) else 0):
        cy, cx = flats[rng.integers(len(flats))]
        h, w_ = rng.integers(4, 12, size=2)
        fields[max(cy - h, 0):cy + h, max(cx - w_, 0):cx + w_] = True
    fields &= flat
    water, bars, gravel = np.zeros((n, n), bool), np.zeros((n, n), bool), None
    for _ in range(max(1, round(n / L.SIZE))):          # rivers: one chance per 128 pixels of side
        if rng.random() < (0.6 if w.get('looks') else 0.4):
            t = rng.uniform(0, np.pi)
            along = (xx - n / 2) * np.cos(t) + (yy - n / 2) * np.sin(t)
            d = (xx - n / 2) * np.sin(t) - (yy - n / 2) * np.cos(t) + \
                rng.uniform(-30, 30) * n / L.SIZE + 8 * np.sin(along / 9)
            river = np.abs(d) < rng.uniform(1.5, 3.5)
            gravel = _noise(rng, 4, n) > 0.3 if gravel is None else gravel
            if w.get('looks'):           # a braided bed of bright gravel along the valley floor
                bars |= (np.abs(d) < rng.uniform(5, 14)) & ~river & (gravel | (slope < 4)) & \
                    (slope < 12)
            else:
                bars |= (np.abs(d) < 8) & ~river & gravel & flat
            water |= river
    bars &= ~water
    looks = [('field', fields), ('gravel', bars), ('water', water), ('rock', rock)]
    for (name, region), mix in zip(looks, (0.9, 0.9, 1.0, 0.8)):
        refl[region] = (1 - mix) * refl[region] + mix * spec[name] * rng.uniform(0.9, 1.1)
    return looks


# ----------------------------------------------------------------------------- the sensor
BANDS = ['B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B09', 'B10', 'B11', 'B12']
NATIVE = dict(zip(BANDS, [60, 10, 10, 10, 20, 20, 20, 10, 60, 60, 20, 20]))   # metres


def block_mean(x, k):
    """x [n, m] averaged over k x k blocks from the top-left corner (edge rows and columns
    repeated to fill the last block). -> [ceil(n / k), ceil(m / k)]"""
    if k == 1:
        return x
    n, m = x.shape
    p = np.pad(x, ((0, -n % k), (0, -m % k)), mode='edge')
    return p.reshape(p.shape[0] // k, k, p.shape[1] // k, k).mean((1, 3))


def upsample(c, k, shape):
    """Bilinear resampling of c [h, w] (pixels k times as large) to shape [n, m], pixel centres
    aligned as GDAL's bilinear warp aligns them and edges held, as sentinel2.py's stacking
    resamples a product's coarse bands. -> float64 [n, m]"""
    if k == 1:
        return np.asarray(c, np.float64)[:shape[0], :shape[1]]

    def axis(n, size):                                # source index and weight per output pixel
        u = np.clip((np.arange(n) + 0.5) / k - 0.5, 0, size - 1)
        i0 = np.minimum(np.floor(u).astype(int), size - 2) if size > 1 else np.zeros(n, int)
        return i0, np.minimum(i0 + 1, size - 1), u - i0
    r0, r1, tr = axis(shape[0], c.shape[0])
    c0, c1, tc = axis(shape[1], c.shape[1])
    rows = c[r0] * (1 - tr)[:, None] + c[r1] * tr[:, None]
    return rows[:, c0] * (1 - tc) + rows[:, c1] * tc


def sensor_resolution(refl):
    """Each band of refl [n, m, 12] (drawn at 10 m) averaged over its native pixel and resampled
    back to 10 m: what a Landslide4Sense patch or a stacked product holds. -> float64 [n, m, 12]"""
    out = np.empty(refl.shape)
    for i, b in enumerate(BANDS):
        k = NATIVE[b] // 10
        out[..., i] = upsample(block_mean(refl[..., i], k), k, refl.shape[:2])
    return out


# ----------------------------------------------------------------------------- the dataset

def split_patches(split, count, shift=1.0, seed=0, kind='all', cover=False, world=WORLD):
    """The patches synth writes for one split, in order (the source, 'train', has shift 0):
    yields synth_patch's outputs. Reading them again this way gives their cover maps."""
    rng = np.random.default_rng([seed, list(L.SPLITS).index(split)])
    dom = domain(0.0 if split == 'train' else shift, seed, kind, world)
    for _ in range(count):
        yield synth_patch(rng, dom, cover=cover)


RECIPE = 'synthetic.json'                # what synth() wrote, beside the splits


def fingerprint(world, seed, count=4):
    """What identifies a world's source as drawn from one seed, to compare a dataset written
    again against the one a run saw: the per-band means of its first `count` TrainData patches
    and their landslide pixels, rounded well above float noise. -> list of 15 numbers"""
    pairs = list(split_patches('train', count, seed=seed, world=world))
    img = np.stack([p[0] for p in pairs]).astype(np.float64)
    means = img.reshape(-1, L.BANDS).mean(0)
    return [float(f'{v:.5g}') for v in means] + [int(sum(p[1].sum() for p in pairs))]


def synth(out, train=400, valid=60, test=120, shift=1.0, seed=0, target_masks=True, kind='all',
          world=WORLD):
    """Write a dataset in the Landslide4Sense layout. The source (TrainData) has shift 0;
    ValidData and TestData share one target domain of the given shift, both of one world.
    Deterministic in seed: out/synthetic.json records the arguments and the source's
    fingerprint, so that a run trained on it can have it written again (rewrite)."""
    recipe = dict(train=train, valid=valid, test=test, shift=shift, seed=seed,
                  target_masks=target_masks, kind=kind, world=world,
                  fingerprint=fingerprint(world, seed))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, RECIPE), 'w') as f:
        json.dump(recipe, f, indent=1)
    for split, count in (('train', train), ('valid', valid), ('test', test)):
        if count == 0:
            continue
        sdir = os.path.join(out, L.SPLITS[split])
        os.makedirs(os.path.join(sdir, 'img'), exist_ok=True)
        keep_mask = split == 'train' or target_masks
        if keep_mask:
            os.makedirs(os.path.join(sdir, 'mask'), exist_ok=True)
        for i, (img, mask) in enumerate(split_patches(split, count, shift, seed, kind,
                                                      world=world), 1):
            with h5py.File(os.path.join(sdir, 'img', f'image_{i}.h5'), 'w') as f:
                f.create_dataset('img', data=img)
            if keep_mask:
                with h5py.File(os.path.join(sdir, 'mask', f'mask_{i}.h5'), 'w') as f:
                    f.create_dataset('mask', data=mask)


def rewrite(recipe, out):
    """The dataset a recipe (synthetic.json's contents) describes, written again into out,
    after check(recipe)."""
    check(recipe)
    args = {k: recipe[k] for k in ('train', 'valid', 'test', 'shift', 'seed', 'target_masks',
                                   'kind', 'world')}
    synth(out, **args)


def check(recipe):
    """That this code still draws the world a recipe was written from: a world unknown here or
    changed since (another version of this code) raises ValueError naming what differs."""
    if recipe.get('world') not in WORLDS:
        raise ValueError(f"world {recipe.get('world')!r} is not one this code draws "
                         f"({', '.join(WORLDS)})")
    now = fingerprint(recipe['world'], recipe['seed'])
    if now != recipe['fingerprint']:
        bad = [i for i, (a, b) in enumerate(zip(now, recipe['fingerprint'])) if a != b]
        raise ValueError(f"world {recipe['world']} has changed since: its first source patches "
                         f"differ in {', '.join(str(i + 1) for i in bad[:4])} of 15 statistics")
