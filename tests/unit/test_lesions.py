"""helpers.data.lesions: the synthetic nodule task and its shortcut variant (chapter 3)."""

from __future__ import annotations

import torch

from helpers.data.lesions import make_lesion_images


def test_masks_match_labels_and_generation_is_reproducible():
    d = make_lesion_images(60, size=32, seed=3)
    assert d.x.shape == (60, 1, 32, 32) and d.x.min() >= 0 and d.x.max() <= 1
    has_lesion = d.lesion.flatten(1).any(1)
    assert torch.equal(has_lesion, d.y.bool()), "positives (and only they) have a lesion mask"
    assert not d.marker.any()
    again = make_lesion_images(60, size=32, seed=3)
    assert torch.equal(d.x, again.x) and not torch.equal(d.x, make_lesion_images(60, size=32, seed=4).x)


def test_the_lesion_is_brighter_than_its_surroundings():
    d = make_lesion_images(40, size=48, seed=0, prevalence=1.0, noise=0.0)
    ring = torch.nn.functional.max_pool2d(d.lesion.float(), 7, 1, 3).bool() & ~d.lesion
    inside = (d.x * d.lesion).flatten(1).sum(1) / d.lesion.flatten(1).sum(1)
    around = (d.x * ring).flatten(1).sum(1) / ring.flatten(1).sum(1)
    assert (inside > around).float().mean() > 0.9


def test_marker_follows_marker_rate():
    d = make_lesion_images(400, size=32, seed=1, marker_rate=(0.1, 0.9))
    marked = d.marker.flatten(1).any(1).float()
    assert marked[d.y == 1].mean() > 0.8 and marked[d.y == 0].mean() < 0.2
    assert d.x[d.marker].mean() > 0.9 > d.x[~d.marker].mean(), "the marker is burned in brightly"
    sub = d[:5]
    assert len(sub) == 5 and sub.x.shape[0] == 5
