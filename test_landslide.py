"""Tests: the losses against brute force, data handling and the networks.

    python -m pytest -q
"""
import os
import struct
import zipfile
import zlib

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import landslide as L
from losses import lovasz_grad, lovasz_hinge, ohem_bce, segmentation_loss
from models import MODELS, build_model
from report import png_bytes
from synthetic import landscape


# ----------------------------------------------------------------------------- Lovász hinge

def jaccard_loss_of_errors(wrong, gt):
    """Jaccard loss as a set function: |M| / |gt ∪ M| for the set M of mispredicted pixels."""
    wrong, gt = set(wrong), set(gt)
    return len(wrong) / len(gt | wrong) if gt | wrong else 0.0


def brute_lovasz(logits, labels):
    """Lovász extension of the Jaccard loss at m = relu(1 - logit * sign), evaluated as the
    Choquet integral: the integral over t > 0 of the loss of the set {i : m_i >= t}."""
    m = np.maximum(0, 1 - logits * (2 * labels - 1))
    gt = [i for i in range(len(labels)) if labels[i] == 1]
    levels = sorted(set(m[m > 0]), reverse=True) + [0.0]
    return sum((levels[k] - levels[k + 1]) * jaccard_loss_of_errors(np.nonzero(m >= levels[k])[0], gt)
               for k in range(len(levels) - 1))


@pytest.mark.parametrize('seed', range(6))
def test_lovasz_equals_brute_force_lovasz_extension(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 2, 3, generator=g, dtype=torch.float64) * 2
    labels = (torch.rand(3, 2, 3, generator=g) < 0.4).long()
    per = [brute_lovasz(logits[b].flatten().numpy(), labels[b].flatten().numpy()) for b in range(3)]
    assert lovasz_hinge(logits, labels).item() == pytest.approx(np.mean(per), abs=1e-10)
    whole = brute_lovasz(logits.flatten().numpy(), labels.flatten().numpy())
    assert lovasz_hinge(logits, labels, per_image=False).item() == pytest.approx(whole, abs=1e-10)


def test_lovasz_per_image_and_batch_differ():
    logits = torch.tensor([[[2.0, -2.0]], [[0.5, 0.5]]])
    labels = torch.tensor([[[1, 0]], [[0, 1]]])
    assert lovasz_hinge(logits, labels).item() != pytest.approx(lovasz_hinge(logits, labels, per_image=False).item())


def test_lovasz_zero_for_separated_prediction_with_margin():
    labels = (torch.rand(2, 8, 8) < 0.3).long()
    logits = (2 * labels - 1).double() * (1 + torch.rand(2, 8, 8, dtype=torch.float64))
    assert lovasz_hinge(logits, labels).item() == 0.0
    assert lovasz_hinge(logits * 0.5, labels).item() > 0           # margin below 1 costs


def test_lovasz_gradcheck():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    labels = (torch.rand(2, 4, 4) < 0.4).long()
    labels[0, 0, :2] = 255
    for per_image in (True, False):
        assert torch.autograd.gradcheck(lambda z: lovasz_hinge(z, labels, per_image, ignore=255), (logits,))


def test_lovasz_ignore_drops_pixels():
    torch.manual_seed(1)
    logits = torch.randn(1, 3, 5, dtype=torch.float64, requires_grad=True)
    labels = (torch.rand(1, 3, 5) < 0.4).long()
    labels[0, 1] = 255
    loss = lovasz_hinge(logits, labels, ignore=255)
    keep = labels[0] != 255
    ref = brute_lovasz(logits[0][keep].detach().numpy(), labels[0][keep].numpy())
    assert loss.item() == pytest.approx(ref, abs=1e-10)
    loss.backward()
    assert torch.all(logits.grad[0, 1] == 0) and logits.grad[0][keep].abs().sum() > 0


def test_lovasz_all_ignored_image_gives_zero_loss_and_gradient():
    logits = torch.randn(2, 4, 4, requires_grad=True)
    labels = torch.full((2, 4, 4), 255)
    labels[1] = (torch.rand(4, 4) < 0.5).long()
    loss = lovasz_hinge(logits, labels, ignore=255)
    single = lovasz_hinge(logits[1:].detach(), labels[1:], ignore=255)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(single.item() / 2)
    assert torch.all(logits.grad[0] == 0) and torch.isfinite(logits.grad).all()


def lovasz_full_sort(logits, labels, per_image=True, ignore=None):
    """The textbook batched form, every pixel of a row sorted: the reference for the fast one."""
    rows = logits.shape[0] if per_image else 1
    logits, labels = logits.reshape(rows, -1), labels.reshape(rows, -1)
    valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
    gt = (labels == 1) & valid
    errors = torch.where(valid, 1 - logits * (2 * gt.to(logits.dtype) - 1), -torch.inf)
    errors_sorted, perm = torch.sort(errors, dim=1, descending=True)
    grad = lovasz_grad(gt.gather(1, perm).to(logits.dtype), valid.gather(1, perm).to(logits.dtype))
    return (F.relu(errors_sorted) * grad).sum(1).mean()


@pytest.mark.parametrize('kind', ['random', 'trained-like'])
@pytest.mark.parametrize('per_image', [True, False])
def test_lovasz_positive_prefix_equals_full_sort(kind, per_image):
    """Values and gradients equal the full sort, with ignored pixels and an all-ignored image."""
    g = torch.Generator().manual_seed(3)
    labels = (torch.rand(5, 32, 32, generator=g) < 0.05).long()
    noise = torch.randn(5, 32, 32, generator=g)
    logits = noise if kind == 'random' else (2 * labels - 1) * 3.0 + noise
    labels[1, :8] = 255
    labels[3] = 255
    grads = []
    for fn in (lovasz_hinge, lovasz_full_sort):
        z = logits.clone().requires_grad_()
        loss = fn(z, labels, per_image, ignore=255)
        loss.backward()
        grads.append((loss.detach(), z.grad))
    (a, ga), (b, gb) = grads
    assert a.item() > 0 and a.item() == pytest.approx(b.item(), rel=1e-5)
    assert torch.allclose(ga, gb, rtol=1e-5, atol=1e-8) and ga.abs().sum() > 0
    assert torch.all(ga[3] == 0)


# ----------------------------------------------------------------------------- OHEM

def test_ohem_equals_mean_bce_when_all_kept():
    logits, labels = torch.randn(2, 6, 6), (torch.rand(2, 6, 6) < 0.3).long()
    ref = F.binary_cross_entropy_with_logits(logits, labels.float())
    assert ohem_bce(logits, labels, thresh=1.01, min_kept=1).item() == pytest.approx(ref.item(), rel=1e-6)
    assert ohem_bce(logits, labels, thresh=0.0, min_kept=10 ** 6).item() == pytest.approx(ref.item(), rel=1e-6)


def test_ohem_keeps_exactly_the_hardest_min_kept():
    logits = torch.linspace(-3, 3, 20).reshape(1, 4, 5)
    labels = torch.ones(1, 4, 5, dtype=torch.long)                # hardest = most negative logits
    bce = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction='none').flatten()
    hard_by_thresh = int((torch.sigmoid(logits) < 0.2).sum())
    assert 0 < hard_by_thresh < 7
    assert ohem_bce(logits, labels, thresh=0.2, min_kept=7).item() == pytest.approx(bce.sort().values[-7:].mean().item())
    assert ohem_bce(logits, labels, thresh=0.2, min_kept=1).item() == pytest.approx(bce.sort().values[-hard_by_thresh:].mean().item())


def test_ohem_never_counts_ignored_pixels():
    logits, labels = torch.randn(1, 4, 4), (torch.rand(1, 4, 4) < 0.5).long()
    labels[0, 0] = 255
    a = ohem_bce(logits, labels, thresh=1.01, min_kept=1)
    logits2 = logits.clone()
    logits2[0, 0] = 50.0
    assert ohem_bce(logits2, labels, thresh=1.01, min_kept=1).item() == pytest.approx(a.item())


def test_losses_finite_on_all_background_and_all_ignored():
    logits = torch.randn(2, 8, 8, requires_grad=True)
    for labels in (torch.zeros(2, 8, 8, dtype=torch.long), torch.full((2, 8, 8), 255)):
        loss = segmentation_loss(logits, labels, ohem_min_kept=10)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert segmentation_loss(logits, torch.full((2, 8, 8), 255)).item() == 0.0


# ----------------------------------------------------------------------------- data

def test_synth_layout_and_determinism(tmp_path):
    landscape.synth(str(tmp_path / 'a'), train=3, valid=0, test=2, seed=5, target_masks=False)
    landscape.synth(str(tmp_path / 'b'), train=3, valid=0, test=2, seed=5, target_masks=False)
    landscape.synth(str(tmp_path / 'c'), train=3, valid=0, test=2, seed=6, target_masks=False)
    ids, imgs, masks = L.list_split(str(tmp_path / 'a'), 'train')
    assert ids == [1, 2, 3] and masks is not None
    with h5py.File(imgs[0]) as f:
        assert f['img'].shape == (128, 128, 14) and f['img'].dtype == np.float32
    assert L.list_split(str(tmp_path / 'a'), 'test')[2] is None
    a, b, c = (L.read_image(os.path.join(tmp_path, d, 'TestData/img/image_2.h5')) for d in 'abc')
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_randomized_world_draws_each_patch_its_own_flags_and_paints_with_them():
    dom = landscape.domain(0.0, 0, world='random')
    flags = [landscape.one_world(np.random.default_rng(i), dom)['world'] for i in range(40)]
    assert all({f[k] for f in flags} == {True, False} for k in landscape.V2)
    rng = np.random.default_rng(5)                  # the patch is its drawn world's patch
    drawn = landscape.one_world(rng, dom)
    a = landscape.synth_patch(np.random.default_rng(5), dom)[0]
    assert np.array_equal(a, landscape.synth_patch(rng, drawn)[0])
    v2, rng = landscape.domain(0.0, 0), np.random.default_rng(5)
    assert landscape.one_world(rng, v2) is v2 and rng.random() == np.random.default_rng(5).random()


def test_synth_looks_like_the_problem(tiny):
    _, ip, mp = L.list_split(tiny, 'train')
    x = np.stack([L.read_image(p) for p in ip])
    m = np.stack([L.read_mask(p) for p in mp]).astype(bool)
    assert 0.01 < m.mean() < 0.04                                   # about 2 % landslide
    red, nir, slope = x[..., 3], x[..., 7], x[..., 12]
    ndvi = (nir - red) / (nir + red)
    bare = (ndvi < 0.25) & ~m                                       # bare ground that is no landslide
    assert bare.sum() > 0
    assert ndvi[m].mean() < ndvi[~m].mean()                        # scars lost their vegetation
    assert (slope[bare] < 8).mean() > 0.15                          # look-alikes on flat ground...
    assert (slope[m] < 8).mean() < 0.06                             # ...where landslides are rare
    assert slope[m].mean() > slope[~m].mean()
    t = target_split(tiny)[0]
    assert abs(t[..., 13].mean() - x[..., 13].mean()) > 500         # target terrain is shifted


def target_split(path):
    """A written dataset's TestData. -> (images float32 [N, H, W, 14], masks uint8 [N, H, W])"""
    _, ip, mp = L.list_split(str(path), 'test')
    return np.stack([L.read_image(p) for p in ip]), np.stack([L.read_mask(p) for p in mp])


def test_sensor_only_shift_changes_the_spectra_and_nothing_else(tmp_path):
    landscape.synth(str(tmp_path / 'all'), train=2, valid=0, test=3, seed=1)
    landscape.synth(str(tmp_path / 'sensor'), train=2, valid=0, test=3, seed=1, kind='sensor')
    landscape.synth(str(tmp_path / 'none'), train=2, valid=0, test=3, seed=1, shift=0.0)
    (xa, ma), (xs, ms), (x0, m0) = (target_split(tmp_path / d) for d in ('all', 'sensor', 'none'))
    assert np.array_equal(xs[..., 12:], x0[..., 12:]) and np.array_equal(ms, m0)   # terrain, scars alike
    assert np.abs(xs[..., :12] - x0[..., :12]).mean() > 0.01                       # the sensor differs
    assert np.abs(xa[..., 13] - x0[..., 13]).mean() > 500                          # the full shift moves more


def test_scars_shift_ages_the_landslides_and_changes_nothing_else(tmp_path):
    landscape.synth(str(tmp_path / 'scars'), train=1, valid=0, test=4, seed=2, kind='scars')
    landscape.synth(str(tmp_path / 'none'), train=1, valid=0, test=4, seed=2, shift=0.0)
    (xs, ms), (x0, m0) = target_split(tmp_path / 'scars'), target_split(tmp_path / 'none')
    ms, m0 = ms.astype(bool), m0.astype(bool)
    assert np.array_equal(ms, m0) and ms.sum() > 100                # the same landslides, where they were
    ten_m = [1, 2, 3, 7, 12, 13]                                     # B2-B4, B8, slope, DEM
    assert np.array_equal(xs[~ms][:, ten_m], x0[~ms][:, ten_m])     # off the scars the same bytes
    far = ~ms                                                        # the 20 and 60 m bands: beyond
    for _ in range(12):                                              # a 60 m pixel and its bilinear
        far[:, 1:] &= far[:, :-1]                                    # reach of any scar
        far[:, :-1] &= far[:, 1:]
        far[:, :, 1:] &= far[:, :, :-1]
        far[:, :, :-1] &= far[:, :, 1:]
    assert far.sum() > 1000 and np.array_equal(xs[far], x0[far])
    def blue(x):                                                     # B2: scars bright, vegetation dark
        return x[..., 1][ms].mean()
    assert blue(xs) < blue(x0) - 0.01                                # older scars: greener, darker in blue


def test_cover_maps_come_from_the_same_draws_as_the_written_patches(tmp_path):
    landscape.synth(str(tmp_path), train=2, valid=0, test=4, seed=3)
    _, ip, mp = L.list_split(str(tmp_path), 'test')
    drawn = list(landscape.split_patches('test', 4, 1.0, 3, cover=True))
    for (img, mask, cover), i, m in zip(drawn, ip, mp):
        assert np.array_equal(img, L.read_image(i)) and np.array_equal(mask, L.read_mask(m))
        assert np.array_equal(cover == landscape.COVER.index('landslide'), mask == 1)
    cover, slope = np.stack([d[2] for d in drawn]), np.stack([d[0][..., L.SPECTRAL] for d in drawn])
    rock = cover == landscape.COVER.index('rock')
    assert rock.any() and (slope[rock] > 28).all()                  # outcrops only on steep ground


def test_pairing_by_number_not_position(tmp_path):
    for split_n in (2, 10):                                         # sorted as text: 10 before 2
        os.makedirs(tmp_path / 'TrainData/img', exist_ok=True)
        os.makedirs(tmp_path / 'TrainData/mask', exist_ok=True)
        with h5py.File(tmp_path / f'TrainData/img/image_{split_n}.h5', 'w') as f:
            f['img'] = np.full((128, 128, 14), split_n, np.float32)
        with h5py.File(tmp_path / f'TrainData/mask/mask_{split_n}.h5', 'w') as f:
            f['mask'] = np.full((128, 128), split_n == 10, np.uint8)
    ids, ip, mp = L.list_split(str(tmp_path), 'train')
    assert ids == [2, 10]
    for n, i, m in zip(ids, ip, mp):
        assert L.read_image(i)[0, 0, 0] == n and L.read_mask(m)[0, 0] == (n == 10)


def test_band_stats_stream_matches_numpy_and_skips_nonfinite(tiny, tmp_path):
    _, ip, _ = L.list_split(tiny, 'train')
    x = np.stack([L.read_image(p) for p in ip]).astype(np.float64).reshape(-1, 14)
    s = L.band_stats(ip)
    assert np.allclose(s['mean'], x.mean(0), rtol=1e-9) and np.allclose(s['std'], x.std(0), rtol=1e-9)
    img = L.read_image(ip[0])
    img[0, :3, 13] = np.nan
    img[5, 5, 0] = np.inf
    with h5py.File(tmp_path / 'image_1.h5', 'w') as f:
        f['img'] = img
    s = L.band_stats([str(tmp_path / 'image_1.h5')])
    assert s['nonfinite'] == 4 and np.isfinite(s['mean']).all()
    assert s['mean'][13] == pytest.approx(np.nanmean(img[..., 13].astype(np.float64)))
    assert torch.isfinite(L.load_images([str(tmp_path / 'image_1.h5')], s).float()).all()


def test_separated_normalization_centres_each_domain(tiny):
    for split in ('train', 'test'):
        _, ip, _ = L.list_split(tiny, split)
        x = L.load_images(ip, L.band_stats(ip)).float()
        assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(14), atol=1e-2)
        assert torch.allclose(x.std((0, 2, 3)), torch.ones(14), atol=1e-2)
    _, ip_s, _ = L.list_split(tiny, 'train')
    _, ip_t, _ = L.list_split(tiny, 'test')
    shared = L.load_images(ip_t, L.band_stats(ip_s)).float()           # --no-separate-norm
    assert shared.mean((0, 2, 3)).abs().max() > 1                     # the shift stays


def test_augment_moves_mask_with_image_and_spares_slope_and_dem():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(16, 32, 32) < 0.3).to(torch.uint8)
    x = torch.randn(16, 14, 32, 32)
    x[:, 0] = y.float()                                             # band 0 carries the mask
    x0, y0 = x.clone(), y.clone()
    xa, ya = L.augment(x, y, g, colour=0.0)
    assert torch.equal(xa[:, 0], ya.float())
    assert not torch.equal(ya, y)                                   # something moved
    assert torch.equal(x, x0) and torch.equal(y, y0)                # the inputs are left alone
    turns = [lambda t, k=k, f=f: t.rot90(k, (-2, -1)).flip(-1) if f else t.rot90(k, (-2, -1))
             for k in range(4) for f in (0, 1)]                     # the eight symmetries of a square
    used = [[torch.equal(ya[b], t(y[b])) for t in turns].index(True) for b in range(16)]
    assert len(set(used)) > 4                                       # flips alone give only four
    xc, _ = L.augment(x, y, torch.Generator().manual_seed(0), colour=0.2)
    assert torch.equal(xc[:, 12:], xa[:, 12:])                      # slope, DEM: same pixels, no colour
    assert not torch.allclose(xc[:, 1:12], xa[:, 1:12])


def test_holes_hide_smooth_blobs_in_some_patches_and_ignore_their_labels():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 14, 128, 128), torch.randint(0, 2, (64, 128, 128), dtype=torch.uint8)
    xh, yh = L.holes(x, y, g, 0.5)
    hidden = yh == L.IGNORE
    share = hidden.float().mean((1, 2))
    hit = share > 0
    assert 20 < hit.sum() < 44                                      # about half the patches
    assert share[hit].min() >= 0.04 and share[hit].max() <= 0.51    # 5 to 50 % each
    assert (xh[:, :12][hidden[:, None].expand(-1, 12, -1, -1)] == 0).all()
    assert torch.equal(xh[:, 12:], x[:, 12:])                       # slope and DEM kept
    assert torch.equal(xh[:, :12][~hidden[:, None].expand(-1, 12, -1, -1)],
                       x[:, :12][~hidden[:, None].expand(-1, 12, -1, -1)])
    assert torch.equal(yh[~hidden], y[~hidden])
    edge = hidden[:, 1:] != hidden[:, :-1]                          # blobs, not salt and pepper
    assert edge.float().mean() < 0.02
    g0 = torch.Generator().manual_seed(1)
    xn, yn = L.holes(x, y, g0, 0.0)
    assert torch.equal(xn, x) and torch.equal(yn, y)
    assert torch.equal(g0.get_state(), torch.Generator().manual_seed(1).get_state())  # no draws


def test_shade_darkens_or_brightens_a_smooth_region_of_the_spectral_bands_only():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 14, 128, 128)
    d = L.shade(x, g, 0.5) - x
    hit = d[:, :12].abs().amax((1, 2, 3)) > 0
    assert 20 < hit.sum() < 44                                      # about half the patches
    assert torch.equal(d[:, 12:], torch.zeros_like(d[:, 12:]))      # slope and DEM kept
    assert d.abs().max() <= 1.5 * 1.5 + 1e-5                        # depth 1.5, band factor <= 1.5
    sign = torch.sign(d[:, :12].sum((2, 3)))                        # one way in every band
    assert ((sign == sign[:, :1]) | (sign == 0)).all()
    assert (sign[hit, 0] < 0).any() and (sign[hit, 0] > 0).any()    # shadows and veils both
    touched = d[hit, 0] != 0
    assert 0.05 < touched.float().mean() < 0.95                      # a region, not the patch
    step = (d[hit, 0, 1:] - d[hit, 0, :-1]).abs().max()             # a soft edge, no cliff
    assert step < 0.5 * d[hit, 0].abs().amax()
    g0 = torch.Generator().manual_seed(2)
    assert torch.equal(L.shade(x, g0, 0.0), x)
    assert torch.equal(g0.get_state(), torch.Generator().manual_seed(2).get_state())  # no draws


def test_promote_shapes_and_nearest_masks():
    x, y = torch.randn(2, 14, 128, 128), torch.randint(0, 2, (2, 128, 128), dtype=torch.uint8)
    y[0, 0, 0] = 255
    xp, yp = L.promote(x, 4, y)
    assert xp.shape == (2, 14, 512, 512) and yp.shape == (2, 512, 512)
    assert set(yp.unique().tolist()) <= {0, 1, 255} and torch.equal(yp[:, ::4, ::4], y)


def test_metrics_are_split_wide():
    pred = torch.tensor([[1, 1, 0, 0]])
    gt = torch.tensor([[1, 0, 1, 0]])
    s = L.scores(*L.confusion(pred, gt))
    assert (s['precision'], s['recall'], s['f1'], s['iou']) == (0.5, 0.5, 0.5, pytest.approx(1 / 3))
    assert L.scores(0, 0, 0)['f1'] == 0.0


def test_masks_and_flat_zip(tmp_path):
    masks = np.random.default_rng(0).integers(0, 2, (3, 128, 128)).astype(np.uint8)
    L.write_masks(str(tmp_path / 'masks'), ['mask_4.h5', 'mask_7.h5', 'mask_12.h5'], masks)
    L.write_zip(str(tmp_path / 's.zip'), str(tmp_path / 'masks'))
    with zipfile.ZipFile(tmp_path / 's.zip') as z:
        assert z.namelist() == ['mask_4.h5', 'mask_7.h5', 'mask_12.h5']
    assert np.array_equal(L.read_mask(str(tmp_path / 'masks/mask_7.h5')), masks[1])
    assert not any(f.startswith('.') for f in os.listdir(tmp_path / 'masks'))


def test_png_decodes_to_the_same_pixels():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    png = png_bytes(rgb)
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and png[12:16] == b'IHDR'
    w, h = struct.unpack('>II', png[16:24])
    n = struct.unpack('>I', png[33:37])[0]
    assert png[37:41] == b'IDAT' and zlib.crc32(png[37:41 + n]) == struct.unpack('>I', png[41 + n:45 + n])[0]
    rows = np.frombuffer(zlib.decompress(png[41:41 + n]), np.uint8).reshape(h, 1 + 3 * w)
    assert (w, h) == (7, 5) and (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(5, 7, 3), rgb)


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize('name', list(MODELS))
def test_model_shapes_and_gradients(name):
    torch.manual_seed(0)
    m = build_model(name, width=4)
    x = torch.randn(2, 14, 32, 48)
    out = m(x)
    assert out.shape == (2, 1, 32, 48)
    out.mean().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_models_are_distinct():
    counts = {sum(p.numel() for p in build_model(n, 8).parameters()) for n in MODELS}
    assert len(counts) == len(MODELS) >= 3
    with pytest.raises(ValueError):
        build_model('segformer')
