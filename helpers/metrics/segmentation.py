"""Segmentation metrics inside the field of view, and measures of how useful an uncertainty map is.

Taught in chapter 4. Every function takes NumPy arrays or tensors of the same shape and, where given, a boolean
field-of-view mask ``fov``: only pixels inside it count (published retinal-vessel numbers are computed inside the
field of view; including the black border inflates accuracy and specificity). Pixels of all images are pooled,
as in the DRIVE and CHASE_DB1 literature (e.g. the orobix retina-unet evaluation).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.morphology import skeletonize
from sklearn.metrics import roc_auc_score

from helpers.errors import BookError


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _inside(fov, *arrays) -> list[np.ndarray]:
    arrays = [_np(a) for a in arrays]
    shape = arrays[0].shape
    for a in arrays[1:]:
        if a.shape != shape:
            raise BookError(f"shapes differ: {shape} vs {a.shape}")
    if fov is None:
        return [a.ravel() for a in arrays]
    m = _np(fov).astype(bool)
    if m.shape != shape:
        raise BookError(f"the field-of-view mask has shape {m.shape}, the maps {shape}")
    return [a[m] for a in arrays]


def dice(pred, target, fov=None) -> float:
    """Dice coefficient 2|P∩G| / (|P| + |G|) of binary masks (Dice 1945), identical to the F1 score of the
    pixels; 1.0 when both are empty."""
    p, g = (a.astype(bool) for a in _inside(fov, pred, target))
    denom = p.sum() + g.sum()
    return 1.0 if denom == 0 else float(2 * (p & g).sum() / denom)


def segmentation_scores(probs, target, fov=None, threshold: float = 0.5) -> dict[str, float]:
    """Pixel scores inside the field of view, pooled over images: ``dice`` (= F1), ``auc`` (area under the ROC
    curve of the probabilities, scikit-learn), ``accuracy`` (TP+TN)/n, ``sensitivity`` TP/(TP+FN) and
    ``specificity`` TN/(TN+FP) of the mask ``probs > threshold``; the definitions of Staal et al. (2004) and Fraz
    et al. (2012)."""
    p, g = _inside(fov, probs, target)
    g = g.astype(bool)
    b = p > threshold
    tp, tn = float((b & g).sum()), float((~b & ~g).sum())
    fp, fn = float((b & ~g).sum()), float((~b & g).sum())
    auc = float(roc_auc_score(g, p)) if 0 < g.sum() < g.size else float("nan")
    return {"dice": 2 * tp / max(2 * tp + fp + fn, 1.0), "auc": auc, "accuracy": (tp + tn) / max(g.size, 1),
            "sensitivity": tp / max(tp + fn, 1.0), "specificity": tn / max(tn + fp, 1.0)}


def uncertainty_error_overlap(unc, error, fov=None, thresholds: int | float = 100) -> tuple[float, float]:
    """Uncertainty-error overlap (U-E) of Jungo & Reyes (2019): the Dice between the error mask and the
    uncertainty mask ``unc > t``. With an integer ``thresholds`` the uncertainty is scaled to [0, 1] and the best
    of that many equally spaced thresholds is taken, as in the paper; a float is used as the threshold itself.
    Returns ``(overlap, threshold)`` (the threshold on the scaled map)."""
    u, e = _inside(fov, unc, error)
    e = e.astype(bool)
    u = u.astype(np.float64)
    if isinstance(thresholds, float):
        return dice(u > thresholds, e), thresholds
    lo, hi = u.min(), u.max()
    u = (u - lo) / (hi - lo) if hi > lo else np.zeros_like(u)
    ts = np.linspace(0, 1, thresholds, endpoint=False)[1:]
    # sort once: for each threshold |U| and |U ∩ E| are suffix counts
    order = np.argsort(u)
    us, es = u[order], e[order]
    idx = np.searchsorted(us, ts, side="right")
    n_u = u.size - idx
    n_ue = np.concatenate([np.cumsum(es[::-1])[::-1], [0]])[idx]
    scores = 2 * n_ue / np.maximum(n_u + e.sum(), 1)
    best = int(np.argmax(scores))
    return float(scores[best]), float(ts[best])


def referral_curve(probs, target, unc, fov=None, fractions=None, threshold: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Dice of the pixels kept when the most uncertain ``fraction`` of field-of-view pixels is referred to a
    human (and removed from the automatic result); the retained-data curves of Leibig et al. (2017) and
    Band et al. (2021) at pixel level. Returns ``(fractions, dice_of_kept)``."""
    p, g, u = _inside(fov, probs, target, unc)
    fractions = np.linspace(0, 0.5, 11) if fractions is None else np.asarray(fractions, dtype=float)
    if ((fractions < 0) | (fractions >= 1)).any():
        raise BookError("referral fractions must be in [0, 1)")
    order = np.argsort(-u, kind="stable")  # most uncertain first
    b, g = (p > threshold)[order], g.astype(bool)[order]
    out = []
    for f in fractions:
        k = int(round(f * u.size))
        bk, gk = b[k:], g[k:]
        denom = bk.sum() + gk.sum()
        out.append(1.0 if denom == 0 else 2 * (bk & gk).sum() / denom)
    return fractions, np.asarray(out)


def vessel_width(vessels) -> np.ndarray:
    """Local vessel width in pixels at every vessel pixel (0 elsewhere): twice the distance from the vessel's
    centre line (skeleton, scikit-image) to the background, carried to each vessel pixel from its nearest
    centre-line pixel."""
    v = _np(vessels).astype(bool)
    if not v.any():
        return np.zeros(v.shape)
    inside = ndi.distance_transform_edt(v)
    skel = skeletonize(v)
    _, (ri, ci) = ndi.distance_transform_edt(~skel, return_indices=True)
    return np.where(v, 2 * inside[ri, ci] - 1, 0.0)


def signed_distance_to_edge(vessels) -> np.ndarray:
    """Distance in pixels from each pixel centre to the vessel edge (scipy EDT): +0.5 for a vessel pixel that
    touches the background, −0.5 for a background pixel that touches a vessel; positive inside vessels."""
    v = _np(vessels).astype(bool)
    return np.where(v, ndi.distance_transform_edt(v) - 0.5, 0.5 - ndi.distance_transform_edt(~v))


def binned_mean(values, keys, edges, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``values`` in bins of ``keys`` (bin edges ``edges``), inside ``mask``. Returns (bin centres,
    means, counts); empty bins give NaN."""
    v, k = _inside(mask, values, keys)
    edges = np.asarray(edges, dtype=float)
    which = np.digitize(k, edges) - 1
    ok = (which >= 0) & (which < len(edges) - 1)
    counts = np.bincount(which[ok], minlength=len(edges) - 1)
    sums = np.bincount(which[ok], weights=v[ok], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return (edges[:-1] + edges[1:]) / 2, means, counts


# ----------------------------------------------------------------- per-image counts, for the bootstrap
# A bootstrap over test images recomputes a pooled metric on hundreds of resamples of the images; recomputing it
# from millions of pixels each time is slow. These functions reduce each image to a few counts once; the pooled
# metric of any resample is then computed from the summed counts. Taught in chapter 4 (confidence intervals).
def class_histograms(probs, target, fov=None, bins: int = 10_000) -> np.ndarray:
    """Counts of background (row 0) and vessel (row 1) pixels in ``bins`` equal-width probability bins on
    [0, 1], inside the field of view: ``[2, bins]``. Stack one per image for :func:`scores_from_histograms`."""
    p, g = _inside(fov, probs, target)
    idx = np.clip((p.astype(np.float64) * bins).astype(np.int64), 0, bins - 1)
    g = g.astype(bool)
    return np.stack([np.bincount(idx[~g], minlength=bins), np.bincount(idx[g], minlength=bins)])


def scores_from_histograms(hist, threshold: float = 0.5) -> dict[str, float]:
    """:func:`segmentation_scores` from :func:`class_histograms` (``[2, bins]``, or ``[N, 2, bins]`` summed over
    the N images). A pixel counts as vessel when its bin starts at or above ``threshold`` (exact for a threshold
    on a bin edge, up to pixels exactly at it); for the AUC, a vessel and a background pixel in the same bin count
    as a tie (one half), so the AUC is exact up to pairs closer than one bin width."""
    h = np.asarray(hist)
    if h.ndim == 3:
        h = h.sum(0)
    h = h.astype(np.float64)
    if h.ndim != 2 or h.shape[0] != 2:
        raise BookError(f"class histograms must be [2, bins] or [N, 2, bins], got {np.shape(hist)}")
    neg, pos = h
    bins = h.shape[1]
    above = np.arange(bins) >= int(round(threshold * bins))
    tp, fn = pos[above].sum(), pos[~above].sum()
    fp, tn = neg[above].sum(), neg[~above].sum()
    n_pos, n_neg = pos.sum(), neg.sum()
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # background pixels in lower bins
    auc = float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg)) if n_pos and n_neg else float("nan")
    return {"dice": 2 * tp / max(2 * tp + fp + fn, 1.0), "auc": auc,
            "accuracy": (tp + tn) / max(n_pos + n_neg, 1.0), "sensitivity": tp / max(tp + fn, 1.0),
            "specificity": tn / max(tn + fp, 1.0)}


def fit_overlap_threshold(unc, error, fov=None, thresholds: int = 100) -> float:
    """The threshold, in the uncertainty's own units, that maximises the :func:`uncertainty_error_overlap` of
    ``unc`` with ``error``. Fit it on validation images and apply it to test images (a threshold chosen on the
    test images would report a best case nobody could have chosen in advance)."""
    u, e = _inside(fov, unc, error)
    _, t = uncertainty_error_overlap(u, e, thresholds=thresholds)
    lo, hi = float(u.min()), float(u.max())
    return lo + t * (hi - lo)


def overlap_counts(unc, error, threshold: float, fov=None) -> np.ndarray:
    """``[|U|, |U ∩ E|, |E|]`` for the uncertainty mask ``U = unc > threshold`` and the error mask ``E`` of one
    image; :func:`overlap_from_counts` pools them."""
    u, e = _inside(fov, unc, error)
    e = e.astype(bool)
    m = u > threshold
    return np.array([m.sum(), (m & e).sum(), e.sum()], dtype=np.int64)


def overlap_from_counts(counts) -> float:
    """Uncertainty-error overlap, 2|U ∩ E| / (|U| + |E|), of pooled :func:`overlap_counts` (``[3]`` or
    ``[N, 3]``)."""
    c = np.asarray(counts, dtype=np.float64)
    n_u, n_ue, n_e = c.reshape(-1, 3).sum(0)
    return float(2 * n_ue / max(n_u + n_e, 1.0))


def referral_counts(probs, target, unc, edges, fov=None, threshold: float = 0.5) -> np.ndarray:
    """True positives, false positives, false negatives and true negatives of one image in each bin of the
    uncertainty (bin edges ``edges``, increasing; e.g. quantiles of the pooled map): ``[4, len(edges) - 1]``.
    :func:`referral_dice_from_counts` pools them."""
    p, g, u = _inside(fov, probs, target, unc)
    edges = np.asarray(edges, dtype=np.float64)
    n_bins = len(edges) - 1
    which = np.clip(np.searchsorted(edges[1:-1], u, side="right"), 0, n_bins - 1)
    b, g = p > threshold, g.astype(bool)
    return np.stack([np.bincount(which[m], minlength=n_bins)
                     for m in (b & g, b & ~g, ~b & g, ~b & ~g)])


def referral_dice_from_counts(counts, fraction: float) -> float:
    """Dice of the pixels kept when the most uncertain ``fraction`` of pixels is referred, from pooled
    :func:`referral_counts` (``[4, bins]`` or ``[N, 4, bins]``). Bins are referred from the most uncertain down;
    the last one in part, in proportion, so the result matches :func:`referral_curve` up to the order of pixels
    inside one bin."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim == 3:
        c = c.sum(0)
    if not 0 <= fraction < 1:
        raise BookError("referral fraction must be in [0, 1)")
    per_bin = c.sum(0)[::-1]                     # most uncertain bin first
    to_refer = fraction * per_bin.sum()
    before = np.concatenate([[0.0], np.cumsum(per_bin)[:-1]])
    share = np.clip((to_refer - before) / np.maximum(per_bin, 1e-12), 0, 1)  # referred share of each bin
    kept = (c[:, ::-1] * (1 - share)).sum(1)
    tp, fp, fn = kept[:3]
    return 1.0 if 2 * tp + fp + fn == 0 else float(2 * tp / (2 * tp + fp + fn))


__all__ = ["binned_mean", "class_histograms", "dice", "fit_overlap_threshold", "overlap_counts",
           "overlap_from_counts", "referral_counts", "referral_curve", "referral_dice_from_counts",
           "scores_from_histograms", "segmentation_scores", "signed_distance_to_edge", "uncertainty_error_overlap",
           "vessel_width"]
