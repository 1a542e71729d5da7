"""Losses against small objects and class imbalance (paper §2.2): the Lovász hinge, a convex
surrogate of the Jaccard (IoU) loss (Berman, Rannen Triki & Blaschko, CVPR 2018), plus binary
cross-entropy with online hard example mining (OHEM). The training loss is their weighted sum.

Both take logits and labels shaped [B, H, W]; labels are 0/1 and `ignore` (255) marks pixels
that no loss counts (uncertain pseudo-labels).

    python -m pytest -q test_landslide.py -k loss
"""
import torch
import torch.nn.functional as F


def lovasz_grad(gt_sorted, valid_sorted):
    """Gradient of the Lovász extension of the Jaccard loss with respect to sorted errors.
    gt_sorted, valid_sorted: [B, P] float, rows sorted by decreasing error, invalid pixels last.
    -> [B, P]"""
    gts = gt_sorted.sum(1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(1)
    union = gts + (valid_sorted - gt_sorted).cumsum(1)
    jaccard = 1 - intersection / union.clamp_min(1)        # union is 0 only in all-ignored rows
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], 1)


def lovasz_hinge(logits, labels, per_image=True, ignore=None):
    """Binary Lovász hinge loss, vectorized across the batch (one sort of a [B, P] tensor).
    logits: [B, H, W] float, labels: [B, H, W] in {0, 1} (or `ignore`).
    per_image: mean of per-image losses (an image with no valid pixel counts as 0);
    otherwise one loss over all pixels of the batch. -> scalar"""
    B = logits.shape[0]
    logits, labels = (logits.reshape(B, -1), labels.reshape(B, -1)) if per_image else \
        (logits.reshape(1, -1), labels.reshape(1, -1))
    valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
    gt = (labels == 1) & valid
    signs = 2 * gt.to(logits.dtype) - 1
    errors = torch.where(valid, 1 - logits * signs, torch.full_like(logits, -torch.inf))
    errors_sorted, perm = torch.sort(errors, dim=1, descending=True)
    grad = lovasz_grad(gt.gather(1, perm).to(logits.dtype), valid.gather(1, perm).to(logits.dtype))
    loss = (F.relu(errors_sorted) * grad).sum(1)           # relu(-inf) = 0: ignored pixels drop out
    return loss.mean()


def ohem_bce(logits, labels, thresh=0.7, min_kept=100_000, ignore=255):
    """Binary cross-entropy on hard pixels only: those whose probability of the true class is
    below `thresh`, but at least the `min_kept` hardest valid pixels (all, if fewer are valid).
    logits: [B, H, W] float, labels: [B, H, W] in {0, 1, ignore}. -> scalar (0 if none valid)"""
    logits, labels = logits.reshape(-1), labels.reshape(-1)
    valid = labels != ignore
    if not valid.any():
        return logits.sum() * 0.0
    z, y = logits[valid], labels[valid].to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(z, y, reduction='none')
    p_true = torch.exp(-loss.detach())                     # BCE = -log p(true class)
    hard = p_true < thresh
    k = min(min_kept, loss.numel())
    if int(hard.sum()) >= k:
        return loss[hard].mean()
    return loss.topk(k).values.mean()


def segmentation_loss(logits, labels, w_lovasz=1.0, w_ohem=1.0, ohem_thresh=0.7,
                      ohem_min_kept=100_000, ignore=255):
    """The training loss: w_lovasz * Lovász hinge (per image) + w_ohem * OHEM BCE.
    logits: [B, H, W], labels: [B, H, W] uint8 in {0, 1, ignore}."""
    logits = logits.float()
    loss = logits.new_zeros(())
    if w_lovasz:
        loss = loss + w_lovasz * lovasz_hinge(logits, labels, per_image=True, ignore=ignore)
    if w_ohem:
        loss = loss + w_ohem * ohem_bce(logits, labels, ohem_thresh, ohem_min_kept, ignore)
    return loss
