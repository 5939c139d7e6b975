"""helpers.plots: the book's style and its offline animation player."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402

from helpers.plots import DIVERGING, SEQUENTIAL, show_image, use_book_style  # noqa: E402
from helpers.plots.animation import animation_html  # noqa: E402


def test_animation_player_loads_nothing_from_the_network():
    fig, ax = plt.subplots()
    line, = ax.plot([0, 1], [0, 1])
    anim = FuncAnimation(fig, lambda k: line.set_ydata([0, k]), frames=3)
    html = animation_html(anim).data
    plt.close(fig)
    assert "http://" not in html and "https://" not in html
    assert 'class="fa' not in html and "▶" in html
    assert html.count("data:image/png;base64") == 3


def test_animation_frames_are_saved_at_screen_resolution_whatever_savefig_dpi_says():
    import base64
    import io
    import re

    from PIL import Image

    with plt.rc_context({"savefig.dpi": 150}):   # the book style's print resolution
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        line, = ax.plot([0, 1], [0, 1])
        html = animation_html(FuncAnimation(fig, lambda k: line.set_ydata([0, k]), frames=2)).data
        plt.close(fig)
    png = re.search(r"data:image/png;base64,([^\"]+)\"", html).group(1).replace("\\n", "")
    assert Image.open(io.BytesIO(base64.b64decode(png))).size == (704, 352)   # 6.4 in x 110 dpi


def test_show_image_colour_maps():
    use_book_style()
    fig, axes = plt.subplots(1, 3)
    grey = show_image(axes[0], torch.rand(1, 8, 8))
    signed = show_image(axes[1], np.array([[-2.0, 1.0]]), signed=True, percentile=100)
    unc = show_image(axes[2], np.random.rand(4, 4), colorbar="entropy (nats)")
    assert grey.get_cmap().name == "gray"
    assert signed.get_cmap().name == DIVERGING and signed.get_clim() == (-2.0, 2.0)
    assert unc.get_cmap().name == SEQUENTIAL and len(fig.axes) == 4  # the colour bar is an extra axes
    plt.close(fig)


def test_signed_maps_are_clipped_at_a_percentile_so_one_hot_pixel_does_not_wash_out_the_rest():
    from helpers.plots.style import signed_limit

    values = np.concatenate([np.linspace(-1, 1, 999), [50.0]])
    assert signed_limit(values) < 1.01 and signed_limit(values, 100) == 50.0
    fig, ax = plt.subplots()
    im = show_image(ax, values.reshape(20, 50), signed=True)
    assert im.get_clim()[0] == -im.get_clim()[1] and im.get_clim()[1] < 1.01
    plt.close(fig)


def test_book_style_has_no_text_below_ten_points():
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    use_book_style()
    for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
                "legend.fontsize"):
        assert FontProperties(size=mpl.rcParams[key]).get_size_in_points() >= 10, key
