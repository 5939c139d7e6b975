"""Helpers shared by the chapters of *Trustworthy deep learning for medical imaging*.

Small modules, one job each; chapters import what they use, e.g. ``from helpers.uncertainty import mc_predict``.

- :mod:`helpers.config`       profile (quick/full), seed, device, data directory
- :mod:`helpers.data`         the registry of the book's sample data and loaders for public layouts
- :mod:`helpers.models`       networks (MLP, small CNNs, U-Net) and uncertainty heads
- :mod:`helpers.uncertainty`  MC dropout and the decomposition of predictive uncertainty
- :mod:`helpers.losses`       heteroscedastic, logit-noise and Dice losses
- :mod:`helpers.metrics`      regression, calibration, segmentation and saliency metrics
- :mod:`helpers.saliency`     attribution methods (captum) and their sanity checks
- :mod:`helpers.plots`        the book's figures, in one style
- :mod:`helpers.experiments`  the pipelines behind ``python -m helpers <experiment>``
"""

from helpers.config import get_device, get_profile, pick, seed_everything
from helpers.errors import BookError, DataError

__version__ = "0.1.0"
__all__ = ["BookError", "DataError", "get_device", "get_profile", "pick", "seed_everything", "__version__"]
