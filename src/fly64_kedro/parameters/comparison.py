"""Comparison parameters: how every arm is aligned to the truth and scored (``params:comparison``).

The same values apply to every method, dose, view and split, so a difference between two
cells of the study table is never a difference in how they were scored.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fly64_kedro.parameters.study import _Strict


class SupportParams(_Strict):
    """The support of a cell: the pixels some method could know."""

    threshold: float = Field(gt=0, lt=1)
    """A pixel is in the support when Σ_j |P(r − r_j)|² over the view's kept positions exceeds this fraction of its maximum."""


class AlignmentParams(_Strict):
    """Registration and global-ambiguity removal, fitted on the cell's support."""

    registration_image: Literal["complex", "amplitude"]
    """Image registered by phase cross-correlation: the complex object, or its amplitude only."""

    upsample_factor: int = Field(ge=1)
    """Sub-pixel registration precision 1/upsample_factor px (scikit-image ``phase_cross_correlation``)."""

    max_shift_px: float = Field(gt=0)
    """A registration shift longer than this (px) is rejected (not applied) and recorded as rejected."""

    remove_phase_ramp: bool
    """Remove the linear phase ramp a·y + b·x of reconstruction·conj(truth); measured and recorded either way."""

    border_trim_px: int = Field(ge=0)
    """Pixels dropped from every side after the shift; ≥ max_shift_px, so no pixel the shift filled is scored."""

    @model_validator(mode="after")
    def _trim_covers_shift(self) -> AlignmentParams:
        if self.border_trim_px < math.ceil(self.max_shift_px):
            raise ValueError(
                f"border_trim_px must be ≥ ceil(max_shift_px) = {math.ceil(self.max_shift_px)} so that the "
                f"edge pixels filled by the shift are trimmed; got {self.border_trim_px}"
            )
        return self


class SSIMParams(_Strict):
    """Single-scale SSIM (scikit-image ``structural_similarity``, data range of the truth)."""

    gaussian_weights: bool
    """True: Gaussian window of width ``sigma`` and population covariance (Wang et al. 2004); False: 7×7 uniform."""

    sigma: float = Field(gt=0)
    """Std of the Gaussian window (px); used when gaussian_weights."""

    k1: float = Field(gt=0, lt=1)
    """Luminance stabiliser C1 = (k1·data_range)², for SSIM and MS-SSIM."""

    k2: float = Field(gt=0, lt=1)
    """Contrast stabiliser C2 = (k2·data_range)², for SSIM and MS-SSIM."""


class MSSSIMParams(_Strict):
    """Multi-scale SSIM (pytorch-msssim), adapted to small images and recorded per cell."""

    weights: list[float] = Field(min_length=1, max_length=5)
    """Per-scale exponents, finest first (Wang et al. 2003: 0.0448, 0.2856, 0.3001, 0.2363, 0.1333)."""

    win_size: int = Field(ge=3)
    """Gaussian window side (odd, px) when the image is large enough (standard: 11)."""

    win_sigma: float = Field(gt=0)
    """Gaussian window std (px) at win_size; a smaller window keeps the ratio sigma/win_size."""

    min_win_size: int = Field(ge=3)
    """Smallest window (odd, px) tried before coarse scales are dropped."""

    @field_validator("win_size", "min_win_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"window sizes must be odd; got {value}")
        return value

    @field_validator("weights")
    @classmethod
    def _positive_weights(cls, weights: list[float]) -> list[float]:
        if any(not w > 0 for w in weights):
            raise ValueError(f"every MS-SSIM weight must be > 0; got {weights}")
        return weights

    @model_validator(mode="after")
    def _min_below_max(self) -> MSSSIMParams:
        if self.min_win_size > self.win_size:
            raise ValueError(f"min_win_size ({self.min_win_size}) must be ≤ win_size ({self.win_size})")
        return self


class FRCParams(_Strict):
    """Fourier ring correlation of amplitude and of phase, in cycles per pixel."""

    thresholds: dict[str, float] = Field(min_length=1)
    """Metric name → FRC threshold in (0, 1); the crossing frequency is reported under that name."""

    tukey_alpha: float = Field(ge=0, le=1)
    """Edge taper before the FFT (scipy Tukey window; 0 = none, 1 = Hann): keeps crop edges out of the rings."""

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        bad = {name: value for name, value in thresholds.items() if not 0 < value < 1}
        if bad:
            raise ValueError(f"FRC thresholds must be in (0, 1); got {bad}")
        return thresholds


class ComparisonParams(_Strict):
    """Everything that turns a reconstruction canvas into metric rows (``params:comparison``)."""

    support: SupportParams
    """Which pixels are scored (and fitted)."""
    alignment: AlignmentParams
    """Registration, scale/phase removal and trim."""
    ssim: SSIMParams
    """Single-scale SSIM settings."""
    ms_ssim: MSSSIMParams
    """MS-SSIM settings (the headline metric, phase first)."""
    frc: FRCParams
    """FRC settings."""
