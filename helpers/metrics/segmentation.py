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


__all__ = ["binned_mean", "dice", "referral_curve", "segmentation_scores", "signed_distance_to_edge",
           "uncertainty_error_overlap", "vessel_width"]
