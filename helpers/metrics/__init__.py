"""Metrics with their published definitions, one module per topic (regression, calibration, segmentation,
attribution). Each function cites the definition it follows."""
