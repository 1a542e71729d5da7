"""Pseudo-labels for progressive label refinement (paper §2.3), and the label-free signs of
whether the refinement is working. refine.py calls these once per round.

The paper's rule: a target pixel is landslide where the three networks' mean probability is at
least 0.7. Under 49 : 1 imbalance one threshold keeps nearly all background and few landslides;
the errors are one-sided (missed landslides) and each round trained on them misses more.
Class-balanced selection keeps the same top share of each class instead; grown labels spread
each of its landslide labels over the predicted landslide it lies in; the default, 'guarded',
grows them up to the source labels' landslide share and takes the class-balanced ones in a round
that would exceed it. docs/evidence.md compares the rules; `python -m bench.refinement`
measures them.

Every function takes the ensemble's probability on the target, prob [N, H, W] float in [0, 1],
and returns uint8 [N, H, W] labels in {0, 1, IGNORE}. None of them looks at target labels.
"""
import torch
import torch.nn.functional as F

import landslide as L


def threshold_labels(prob, t, ignore_uncertain):
    """The paper's rule: 1 where prob >= t; 0 below (or, with ignore_uncertain, 0 only where
    prob <= 1 - t and IGNORE in between)."""
    y = (prob >= t).to(torch.uint8)
    if ignore_uncertain:
        y[(prob > 1 - t) & (prob < t)] = L.IGNORE
    return y


def balanced_labels(prob, portion):
    """Class-balanced selection (CBST, Zou et al. 2018): of the pixels predicted landslide
    (prob >= 0.5) keep the most confident `portion` as 1, of those predicted background the most
    confident `portion` as 0, ignore the rest. Each class is cut at its own confidence, so the
    rare, less confident class is not starved."""
    y = torch.full(prob.shape, L.IGNORE, dtype=torch.uint8)
    for cls, conf in ((1, prob), (0, 1 - prob)):
        pred = conf >= 0.5 if cls else conf > 0.5
        n = int(pred.sum())
        k = int(portion * n)
        if k:
            cut = conf[pred].kthvalue(n - k + 1).values         # the k-th most confident
            y[pred & (conf >= cut)] = cls
    return y


def grown_labels(prob, portion, balanced=None):
    """Balanced selection (or the labels `balanced` already made by it), then each landslide label
    spread to every pixel connected to it (8 neighbours) that the ensemble predicts landslide
    (prob >= 0.5): seeded region growing (hysteresis, as DSRG grows seeds: Huang et al., CVPR
    2018). A landslide is one object, so a confident core vouches for the less confident rest of
    its predicted extent, which the networks have yet to learn; predicted blobs without a
    confident pixel stay ignored. Background as in balanced_labels."""
    y = (balanced_labels(prob, portion) if balanced is None else balanced).clone()
    inside, grown = prob >= 0.5, (y == 1)
    while True:
        step = F.max_pool2d(grown[:, None].float(), 3, 1, 1)[:, 0].bool() & inside
        if torch.equal(step, grown):
            break
        grown = step
    y[grown] = 1
    return y


def guarded_labels(prob, portion, share):
    """Grown labels with the source labels' landslide share as a ceiling (the default): in a round
    where they would mark more of the target landslide than the source labels mark of theirs
    (share), the class-balanced labels instead. The source share is the one label-free prior on
    how much landslide to expect; growth beyond it has so far meant spreading over look-alikes,
    and the class-balanced labels, a share of the confident predictions, cannot spread
    (docs/evidence.md). -> (labels, a line for the log when the ceiling took the class-balanced
    labels, or None)"""
    balanced = balanced_labels(prob, portion)
    y = grown_labels(prob, portion, balanced)
    grown = float((y == 1).float().mean())
    if grown <= share:
        return y, None
    return balanced, (f'grown labels would mark {100 * grown:.2f} % of target pixels landslide, '
                      f'the source labels {100 * share:.2f} %: class-balanced labels this round')


RULES = ('guarded', 'balanced', 'grow', 'threshold', 'none')    # --pseudo's choices


def make(prob, rnd, c, source_share, seen=None):
    """This round's pseudo-labels by the rule c.pseudo. The class-balanced share of each class
    grows each round (CBST's schedule). 'none' ignores every pixel: the target patches still fill
    their share of each batch, but no loss counts them (an ablation: what the labels add over
    the batches they come in). seen: bool [N, H, W] or None, the pixels with data in every band;
    the others (under a cloud, no data) are never labelled and no rule counts them.
    -> (labels uint8 [N, H, W], a line for the log or None)"""
    portion = min(0.5, c.portion + c.portion_step * rnd)
    if seen is not None:                          # NaN: never >= or > anything, never chosen
        prob = prob.masked_fill(~seen, float('nan'))
    note = None
    if c.pseudo == 'guarded':
        y, note = guarded_labels(prob, portion, source_share)
    elif c.pseudo == 'balanced':
        y = balanced_labels(prob, portion)
    elif c.pseudo == 'grow':
        y = grown_labels(prob, portion)
    elif c.pseudo == 'threshold':
        y = threshold_labels(prob, c.threshold, c.ignore_uncertain)
    else:
        y = torch.full(prob.shape, L.IGNORE, dtype=torch.uint8)
    if seen is not None:
        y[~seen] = L.IGNORE
    return y, note


def signs(new, prev, prob, own, source_share, truth=None):
    """What a user without target labels can watch, per round: the pseudo-labels' landslide share
    (and vs the source labels'), the share predicted landslide, the share of pixels whose
    pseudo-label changed since the last round, and the networks' agreement (pixels all call
    landslide / pixels any calls landslide). With truth (reporting only): how right they are.
    new, prev: uint8 [N, H, W] (prev None in round 0); own: [M, N, H, W]. -> dict"""
    votes = (own >= 0.5).sum(0)
    pos = float((new == 1).float().mean())
    s = {'positive': pos, 'ignored': float((new == L.IGNORE).float().mean()),
         'changed': None if prev is None else float((new != prev).float().mean()),
         'vs_source': pos / max(source_share, 1e-12),
         'predicted_positive': float((prob >= 0.5).float().mean()),
         'agreement': float((votes == len(own)).sum() / max(int((votes > 0).sum()), 1))}
    if truth is not None:
        gt = truth.bool()
        s['of_landslide'] = {k: float((new[gt] == v).float().mean()) for k, v in
                             (('landslide', 1), ('ignored', L.IGNORE), ('background', 0))}
        s['background_as_landslide'] = float((new[~gt] == 1).float().mean())
    return s


def label_free_warnings(s, source_share, rule):
    """Label-free warnings from one round's signs s (signs' dict), measured against the source
    labels' landslide share. Too little landslide predicted (under half the source's): each
    round trained on it may lose more recall (the paper's threshold on small networks). More
    landslide labelled than the source holds: unless the target is known to hold more, the
    labels are spreading over look-alikes (grown labels on CPU-sized networks,
    docs/evidence.md). -> [str]"""
    if rule == 'threshold':
        what, share = 'pseudo-labels', s['positive']
    else:                                       # the balanced rules keep a share of predictions
        what, share = 'predictions', s['predicted_positive']
    src, out = 100 * source_share, []
    if share < source_share / 2:
        out.append(f'{what} mark {100 * share:.2f} % of target pixels landslide, the source labels '
                   f'{src:.2f} %: refinement may erode recall (docs/evidence.md)')
    if s['positive'] > source_share:
        pos = 100 * s['positive']
        out.append(f'pseudo-labels mark {pos:.2f} % of target pixels landslide, more than the '
                   f'source labels ({src:.2f} %): unless the target holds more landslide, they '
                   f'are spreading over look-alikes (docs/evidence.md)')
    return out
