"""Networks of the book, one module each, and the uncertainty heads any backbone can use.

- :mod:`.mlp`    the dropout MLP of Gal & Ghahramani and its batched (grid-of-networks) version (chapter 1)
- :mod:`.heads`  Gaussian, Laplace, logit-noise and per-pixel log-variance heads (chapter 2)
- :mod:`.cnn`    a small CNN classifier with dropout for grey or RGB images (chapters 0 and 3)
- :mod:`.unet`   the vessel U-Net with placed MC dropout and an aleatoric output (chapter 4)
"""
