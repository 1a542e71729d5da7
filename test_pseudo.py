"""Tests: the pseudo-label rules (pseudo.py) and the label-free signs of whether refinement works.

    python -m pytest -q test_pseudo.py
"""
import torch

import pseudo
import refine


def test_pseudo_label_rules():
    p = torch.tensor([[0.1, 0.5, 0.69, 0.7, 0.95]])
    assert pseudo.threshold_labels(p, 0.7, False).tolist() == [[0, 0, 0, 1, 1]]
    assert pseudo.threshold_labels(p, 0.7, True).tolist() == [[0, 255, 255, 1, 1]]


def test_balanced_pseudo_labels_keep_the_same_share_of_each_class():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(3, 40, 40, generator=g)                        # as after round 0: confident
    prob = torch.where(u < 0.95, 0.05 * u, 0.5 + 5 * (u - 0.95))   # background, unsure landslides
    y = pseudo.balanced_labels(prob, 0.3)
    for cls, pred, conf in ((1, prob >= 0.5, prob), (0, prob < 0.5, 1 - prob)):
        kept = y == cls
        assert (kept <= pred).all()                               # a class only where predicted
        assert abs(int(kept.sum()) - 0.3 * int(pred.sum())) <= 1  # the same share of each class
        assert conf[kept].min() >= conf[pred & ~kept].max()       # and its most confident pixels
    assert ((y == 255) == ~((y == 0) | (y == 1))).all()
    t = pseudo.threshold_labels(prob, 0.7, True)                     # the threshold starves landslides:
    assert (t == 1).sum() / (prob >= 0.5).sum() < (y == 1).sum() / (prob >= 0.5).sum()
    assert (t == 0).sum() / (prob < 0.5).sum() > (y == 0).sum() / (prob < 0.5).sum()


def test_grown_labels_spread_a_confident_core_over_its_predicted_object_only():
    prob = torch.full((1, 12, 12), 0.02)
    prob[0, 1:6, 1:6] = 0.6                                   # object A: one confident pixel, its
    prob[0, 3, 3] = 0.99                                      # rim only just predicted landslide
    prob[0, 1:6, 7] = 0.45                                    # a column not predicted: the gap
    prob[0, 1:6, 8:11] = 0.6                                  # object B beside it, no confident pixel
    prob[0, 9, 1] = 0.6                                       # a corner away: diagonal contact counts
    prob[0, 6, 6] = 0.6
    prob[0, 8:11, 9:12] = 0.98                                # object C: all confident (seeds)
    b, y = pseudo.balanced_labels(prob, 0.2), pseudo.grown_labels(prob, 0.2)
    assert b[0, 3, 3] == 1 and b[0, 1, 1] == 255              # balanced keeps the core, not the rim
    assert (y[0, 1:7, 1:7][prob[0, 1:7, 1:7] >= 0.5] == 1).all()   # grown: all of A and its diagonal pixel
    assert (y[0, :, 7:11] == b[0, :, 7:11]).all() and (y[0, 1:6, 8:11] != 1).all()   # not across the gap
    assert y[0, 9, 1] != 1                                    # nor to a blob that touches nothing
    assert torch.equal(y == 0, b == 0)                        # background as balanced


def test_guarded_labels_grow_up_to_the_source_share_and_fall_back_beyond_it():
    prob = torch.full((2, 16, 16), 0.02)
    prob[:, 2:8, 2:8] = 0.5 + 0.2 * torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(0))
    prob[:, 4, 4] = 0.99                                      # one predicted object per image, a confident core
    c = refine.parse_args(['--pseudo', 'guarded', '--portion', '0.2'])     # round 0: portion 0.2
    grown, balanced = pseudo.grown_labels(prob, 0.2), pseudo.balanced_labels(prob, 0.2)
    share = float((grown == 1).float().mean())                # 36 of 256 pixels per image
    y, note = pseudo.make(prob, 0, c, share)             # at the source share: grown labels
    assert torch.equal(y, grown) and note is None and not torch.equal(grown, balanced)
    y, note = pseudo.make(prob, 0, c, share - 0.01)      # beyond it: this round class-balanced
    assert torch.equal(y, balanced) and 'class-balanced labels this round' in note and '14.06 %' in note
    c.pseudo = 'grow'                                          # the unguarded rule grows regardless
    assert torch.equal(pseudo.make(prob, 0, c, share - 0.01)[0], grown)


def test_label_free_signs():
    new = torch.tensor([[[1, 1, 0, 255]]], dtype=torch.uint8)
    prev = torch.tensor([[[1, 0, 0, 255]]], dtype=torch.uint8)
    prob = torch.tensor([[[0.9, 0.8, 0.1, 0.6]]])
    own = torch.tensor([[[[0.9, 0.8, 0.1, 0.6]]], [[[0.9, 0.3, 0.1, 0.2]]]])
    s = pseudo.signs(new, prev, prob, own, 0.25, truth=torch.tensor([[[1, 0, 0, 1]]]))
    assert (s['positive'], s['ignored'], s['changed'], s['vs_source']) == (0.5, 0.25, 0.25, 2.0)
    assert s['predicted_positive'] == 0.75 and abs(s["agreement"] - 1 / 3) < 1e-6
    assert s['of_landslide'] == {'landslide': 0.5, 'ignored': 0.5, 'background': 0.0}
    assert s['background_as_landslide'] == 0.5


def test_warnings_name_too_little_and_too_much_landslide():
    warn = pseudo.label_free_warnings
    s = {'positive': 0.005, 'predicted_positive': 0.04}
    assert warn(s, 0.02, 'balanced') == []                              # predictions 2x, labels 1/4
    low = warn(s, 0.02, 'threshold')                                     # the threshold's own labels
    assert len(low) == 1 and 'pseudo-labels mark 0.50 %' in low[0] and 'erode recall' in low[0]
    assert 'predictions mark 0.80 %' in warn({'positive': 0.004, 'predicted_positive': 0.008}, 0.02, 'balanced')[0]
    high = warn({'positive': 0.03, 'predicted_positive': 0.05}, 0.02, 'grow')
    assert len(high) == 1 and '3.00 %' in high[0] and 'look-alikes' in high[0]
    assert warn({'positive': 0.019, 'predicted_positive': 0.05}, 0.02, 'grow') == []
