"""Tests of a coarse mask's fringes found from the spectra (fringes.py): Fmask's tests call a
cloud and a cloud's thin edge cloud and no bare ground, only pixels within one 60 m cell of the
mask are touched, and a stack marks them band by band as the whole frame would.

    python -m pytest -q mapping/test_fringes.py
"""
import numpy as np
import pytest

from mapping import clouds, fringes, sentinel2
from synthetic import landscape, product, sky

rasterio = pytest.importorskip('rasterio', reason='rasterio not installed (requirements-geo.txt)')


def as_stack(reflectance):
    """B1..B12 reflectances as one pixel of the stack's 14 bands. -> float32 [14]"""
    return np.concatenate([np.asarray(reflectance, np.float32), [10.0, 1000.0]])   # slope, DEM


def test_fmask_tests_call_a_cloud_and_its_thin_edge_cloud_and_no_bare_ground():
    ground = landscape.SPECTRA
    pixels = {'cloud': sky.CLOUD, 'a third of a cloud over a scar':
              2 / 3 * np.asarray(ground['scar']) + 1 / 3 * sky.CLOUD, **ground}
    x = np.stack([as_stack(v) for v in pixels.values()], 1)[:, None, :]     # [14, 1, k]
    got = dict(zip(pixels, fringes.cloudy(x)[0]))
    assert got['cloud'] and got['a third of a cloud over a scar']
    assert not any(got[k] for k in ground), got                     # scar, soil, rock, water...


def test_only_pixels_within_one_60m_cell_of_the_mask_are_marked():
    m = np.zeros((40, 40), np.uint8)
    m[:, :10] = 1                                                   # the mask's cloud
    m[:, 12] = 4                                                    # snow: not the test's to mark
    x = np.repeat(as_stack(sky.CLOUD)[:, None, None], 40, 1).repeat(40, 2)  # cloud everywhere
    n = fringes.mark(x, m, fringes.near_clouds(m, 0, 40, 6))
    assert (m[:, 10:12] == 1).all() and (m[:, 13:16] == 1).all() and (m[:, 12] == 4).all()
    assert (m[:, 16:] == 0).all() and n == 40 * 5


@pytest.fixture(scope='module')
def l1c(tmp_path_factory):
    d = tmp_path_factory.mktemp('fringes')
    return product.synth_product(str(d / 'p'), 192, seed=4, level='L1C', clouds=0.3), d


def stacked_mask(p, path, fringe=1):
    sentinel2.stack(p['product'], p['dem'], path, log=lambda *a: None, fringe=fringe)
    with rasterio.open(clouds.sidecar(path)) as f:
        return f.read(1)


def test_a_stack_marks_fringes_band_by_band_as_the_whole_frame(l1c, monkeypatch):
    """The stack is written in bands of rows; a fringe near a cloud in the next band is found
    all the same (the mask read with a cell's rows each side), and the generator's cloud pixels the
    60 m mask missed are fewer with the fringes than without."""
    p, d = l1c
    whole = stacked_mask(p, str(d / 'whole.tif'))
    monkeypatch.setattr(sentinel2, 'ROWS', 16)
    banded = stacked_mask(p, str(d / 'banded.tif'))
    without = stacked_mask(p, str(d / 'without.tif'), fringe=0)
    assert np.array_equal(banded, whole)
    with rasterio.open(p['sky_truth']) as f:
        truth = f.read(1)
    cloud = truth == sky.TRUTH.index('cloud')
    missed = [float((m[cloud] == 0).mean()) for m in (whole, without)]
    assert missed[0] < missed[1]
    clear = truth == 0
    assert ((whole[clear] == 1).mean() - (without[clear] == 1).mean()) < 0.005
