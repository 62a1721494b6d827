"""Alignment and image-quality metrics: plain functions of arrays, usable without Kedro.

* ``alignment``: evaluated region, registration, global complex scale, phase ramp;
* ``quality``: MAE, RMSE, PSNR, Pearson, SSIM (scikit-image), MS-SSIM (pytorch-msssim);
* ``frc``: Fourier ring correlation and its threshold crossings (cycles/pixel);
* ``score``: one arm of one cell → aligned images, FRC curves and tidy metric rows.
"""

from fly64_kedro.metrics.score import (
    CellResult,
    expected_metrics,
    not_scored,
    score_cell,
    score_reconstruction,
)

__all__ = ["CellResult", "expected_metrics", "not_scored", "score_cell", "score_reconstruction"]
