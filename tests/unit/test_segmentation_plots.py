"""Chapter 4's headline figure stays readable at the page's width: at most three panels per row, at most
7.5 inches wide, colour bars on the maps whose values matter, and a crop that shows only the zoom box."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from helpers.plots.segmentation import error_map, plot_segmentation_uncertainty  # noqa: E402


def maps(h=60, w=50):
    rng = np.random.default_rng(0)
    target = rng.random((h, w)) < 0.2
    probs = np.clip(0.6 * target + 0.4 * rng.random((h, w)), 0, 1)
    return (rng.random((h, w, 3)), target, probs, rng.random((h, w)), rng.random((h, w)),
            np.ones((h, w), bool))


def test_headline_figure_fits_the_page():
    fig = plot_segmentation_uncertainty(*maps(), mark=(10, 30, 5, 25), title="t")
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 6
    rows = {round(ax.get_position().y0, 2) for ax in images}
    assert len(rows) == 2                      # two rows of three panels
    assert fig.get_figwidth() <= 7.5
    assert len(fig.axes) - len(images) == 3    # colour bars: probability, epistemic, aleatoric
    assert all(any(isinstance(p, Rectangle) for p in ax.patches) for ax in images)
    plt.close(fig)


def test_crop_shows_only_the_box_with_the_whole_images_colour_scale():
    data = maps()
    whole = plot_segmentation_uncertainty(*data)
    fig = plot_segmentation_uncertainty(*data, crop=(10, 30, 5, 25))
    im = [ax for ax in fig.axes if ax.get_images()][3].get_images()[0]   # epistemic panel
    assert im.get_array().shape == (20, 20)
    assert im.get_clim() == [ax for ax in whole.axes if ax.get_images()][3].get_images()[0].get_clim()
    plt.close("all")


def test_error_map_codes():
    probs = np.array([[0.9, 0.9, 0.1, 0.1]])
    target = np.array([[1, 0, 1, 0]], bool)
    assert error_map(probs, target, np.ones_like(target)).tolist() == [[1, 2, 3, 0]]
