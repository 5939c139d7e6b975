"""Metrics with their published definitions, one module per topic; each function cites the definition it follows.

- :mod:`.regression`    RMSE, Gaussian test log-likelihood over MC samples, PICP, calibration curve (chapter 1)
- :mod:`.calibration`   ECE, reliability diagram, NLL, Brier, temperature scaling, risk-coverage (chapter 2)
- :mod:`.attribution`   sanity checks of saliency maps: randomisation, completeness, deletion/insertion,
                        localisation (chapter 3)
- :mod:`.segmentation`  Dice, AUC, sensitivity/specificity in the field of view, uncertainty-error overlap,
                        referral curves (chapter 4)
"""
