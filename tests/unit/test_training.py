"""helpers.training: the shared classifier loop learns, is repeatable, and leaves the model in eval mode."""

from __future__ import annotations

import torch
from torch import nn

from helpers.config import seed_everything
from helpers.training import predict_logits, random_flips, train_classifier


def _toy(n=256):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.5
    x[:, :, 2:6, 2:6] += y[:, None, None, None].float() * 2  # class 1: a bright square in the centre
    return x, y


def _model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.1), nn.Linear(4, 2))


def test_training_learns_a_separable_problem_and_returns_eval_mode():
    x, y = _toy()
    seed_everything(0)
    model = _model()
    history = train_classifier(model, x, y, epochs=15, lr=1e-2, progress=False)
    assert history[-1] < 0.5 * history[0]
    assert not model.training
    acc = (predict_logits(model, x).argmax(1) == y).float().mean()
    assert acc > 0.95


def test_training_is_repeatable_with_the_same_seed():
    x, y = _toy(64)
    runs = []
    for _ in range(2):
        seed_everything(3)
        model = _model()
        train_classifier(model, x, y, epochs=2, progress=False, seed=3)
        runs.append(predict_logits(model, x))
    assert torch.equal(runs[0], runs[1])


def test_random_flips_flip_some_images_left_right_only():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float).reshape(2, 1, 2, 3).repeat(20, 1, 1, 1)
    out = random_flips(x, torch.Generator().manual_seed(0))
    flipped = [(o == xi.flip(-1)).all() and not (o == xi).all() for o, xi in zip(out, x)]
    same = [(o == xi).all() for o, xi in zip(out, x)]
    assert all(f or s for f, s in zip(flipped, same)) and 0 < sum(flipped) < len(x)


def test_one_cycle_adamw_learns_and_ends_at_a_small_learning_rate():
    x, y = _toy()
    seed_everything(0)
    model = _model()
    history = train_classifier(model, x, y, epochs=10, lr=2e-2, optimizer="adamw", one_cycle=True, progress=False)
    assert history[-1] < 0.5 * history[0]
    assert (predict_logits(model, x).argmax(1) == y).float().mean() > 0.95
