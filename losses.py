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
    """Gradient of the Lovász extension of the Jaccard loss with respect to sorted errors, the
    textbook form on fully sorted rows (the per-image reference that tests and bench/speed.py use).
    gt_sorted, valid_sorted: [B, P] float, rows sorted by decreasing error, invalid pixels last.
    -> [B, P]"""
    gts = gt_sorted.sum(1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(1)
    union = gts + (valid_sorted - gt_sorted).cumsum(1)
    jaccard = 1 - intersection / union.clamp_min(1)        # union is 0 only in all-ignored rows
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], 1)


def lovasz_hinge(logits, labels, per_image=True, ignore=None):
    """Binary Lovász hinge loss for the whole batch at once.
    logits: [B, H, W] float, labels: [B, H, W] in {0, 1} (or `ignore`).
    per_image: mean of per-image losses (an image with no valid pixel counts as 0);
    otherwise one loss over all pixels of the batch. -> scalar

    A pixel whose hinge error e = 1 - logit * sign is <= 0 adds nothing to the loss or to its
    gradient: it sorts after every positive error, where its weight is multiplied by relu(e) = 0.
    The weight of the k-th largest positive error in a row depends only on how many positives
    and negatives come before it and on the row's count of positives. So only the pixels with
    e > 0 are sorted (a few percent of them once a network separates the classes), all rows in
    one flat array: ordered by error, then stably by row."""
    rows = logits.shape[0] if per_image else 1
    logits, labels = logits.reshape(rows, -1), labels.reshape(rows, -1)
    valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
    gt = (labels == 1) & valid
    errors = 1 - logits * (2 * gt.to(logits.dtype) - 1)
    positive = (errors > 0) & valid
    row, col = positive.nonzero(as_tuple=True)                   # [M] each
    e = errors[row, col]
    if e.dtype == torch.float32:     # one integer sort: the row in the high bits, then the error's
        bits = e.detach().view(torch.int32).long()               # bits, monotonic for e > 0
        order = torch.sort((row << 32) | (0x7FFFFFFF - bits), stable=True).indices
    else:
        order = torch.sort(e.detach(), descending=True, stable=True).indices
        order = order[torch.sort(row[order], stable=True).indices]
    row, e, is_gt = row[order], e[order], gt[row[order], col[order]].long()
    counts = positive.sum(1)                                     # [rows] positive errors per row
    start = (counts.cumsum(0) - counts)[row]                     # [M] where each pixel's row begins
    cum_gt = is_gt.cumsum(0)
    cum_gt = cum_gt - torch.cat([cum_gt.new_zeros(1), cum_gt])[start]   # positives so far, in row
    k = torch.arange(1, len(row) + 1, device=row.device) - start        # pixels so far, in row
    gts = gt.sum(1)[row]
    jaccard = 1 - (gts - cum_gt).to(e.dtype) / (gts + k - cum_gt).to(e.dtype)
    prev = torch.cat([jaccard.new_zeros(1), jaccard[:-1]]).masked_fill(k == 1, 0)
    total = torch.cat([e.new_zeros(1, dtype=torch.float64),
                       (e * (jaccard - prev)).double().cumsum(0)])
    ends = counts.cumsum(0)                                      # row sums from one float64 cumsum
    return (total[ends] - total[ends - counts]).mean().to(logits.dtype)


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
