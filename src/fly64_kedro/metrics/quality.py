"""Image-quality metrics of a real image against a reference (the truth), all with explicit data range.

Every function takes ``test`` and ``reference`` real arrays of the same 2-D shape. Where a
metric needs a dynamic range (SSIM's constants, PSNR's peak) it is passed explicitly: the
comparison uses the truth's range (max − min), never 255 or the test image's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytorch_msssim
import torch
from skimage.metrics import structural_similarity

from fly64_kedro.parameters.comparison import MSSSIMParams, SSIMParams


def data_range(reference: np.ndarray) -> float:
    """Dynamic range max − min of the reference image."""
    return float(np.max(reference) - np.min(reference))


def mae(test: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute error, in the images' unit."""
    return float(np.mean(np.abs(test - reference)))


def rmse(test: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square error, in the images' unit."""
    return float(np.sqrt(np.mean(np.abs(test - reference) ** 2)))


def psnr(test: np.ndarray, reference: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio 20·log10(peak / RMSE) in dB; +inf for identical images."""
    error = rmse(test, reference)
    return float("inf") if error == 0 else float(20 * np.log10(peak / error))


def pearson(test: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation coefficient of the pixel values; NaN if either image is constant."""
    a = test.ravel() - test.mean()
    b = reference.ravel() - reference.mean()
    norm = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / norm) if norm > 0 else float("nan")


def ssim(test: np.ndarray, reference: np.ndarray, peak: float, params: SSIMParams) -> float:
    """Mean SSIM (scikit-image ``structural_similarity``) with dynamic range ``peak``.

    With ``params.gaussian_weights`` the window is Wang et al.'s Gaussian (std ``sigma``,
    population covariance); otherwise scikit-image's 7×7 uniform window.
    """
    extra = {"sigma": params.sigma, "use_sample_covariance": False} if params.gaussian_weights else {}
    return float(structural_similarity(
        test.astype(np.float64), reference.astype(np.float64), data_range=peak,
        gaussian_weights=params.gaussian_weights, K1=params.k1, K2=params.k2, **extra,
    ))


@dataclass(frozen=True)
class MSSSIMSettings:
    """The MS-SSIM actually computed for one image size (recorded with the cell)."""

    shape: tuple[int, int]
    """Central crop (px) the value is computed on: each side a multiple of 2^(scales − 1)."""
    win_size: int
    """Gaussian window side (px)."""
    win_sigma: float
    """Gaussian window std (px)."""
    weights: tuple[float, ...]
    """Per-scale exponents, finest first; one per scale."""

    @property
    def scales(self) -> int:
        """Number of scales (each a 2× average-pool of the previous)."""
        return len(self.weights)

    def as_record(self) -> dict[str, object]:
        """JSON-ready description."""
        return {"ms_ssim_shape": list(self.shape), "ms_ssim_scales": self.scales, "ms_ssim_win_size": self.win_size,
                "ms_ssim_win_sigma": self.win_sigma, "ms_ssim_weights": list(self.weights)}


def _pooling_shape(shape: tuple[int, ...], scales: int) -> tuple[int, int]:
    """Largest shape within ``shape`` whose sides halve exactly at every one of ``scales − 1`` poolings."""
    factor = 2 ** (scales - 1)
    return (shape[0] // factor * factor, shape[1] // factor * factor)


def adapt_ms_ssim(shape: tuple[int, ...], params: MSSSIMParams) -> MSSSIMSettings:
    """Largest standard MS-SSIM that fits an image of ``shape``.

    The image is centre-cropped to sides divisible by 2^(scales − 1), so no pooling meets
    an odd side (pytorch-msssim would pad it with zeros, darkening the border at coarse
    scales). pytorch-msssim needs the smaller side > (win_size − 1)·2^(scales − 1): every
    scale of ``params.weights`` is kept and the window shrinks first (odd sizes, sigma
    scaled with it, down to ``min_win_size``); if even that does not fit, the coarsest
    scales are dropped and the remaining weights renormalised to the original sum.
    Raises ValueError if no single-scale window fits.
    """
    total = sum(params.weights)
    for scales in range(len(params.weights), 0, -1):
        cropped = _pooling_shape(shape, scales)
        for win in range(params.win_size, params.min_win_size - 1, -2):
            if min(cropped) > (win - 1) * 2 ** (scales - 1):
                kept = params.weights[:scales]
                weights = tuple(w * total / sum(kept) for w in kept) if scales < len(params.weights) else tuple(kept)
                return MSSSIMSettings(cropped, win, params.win_sigma * win / params.win_size, weights)
    raise ValueError(f"image of shape {tuple(shape)} is too small for MS-SSIM with a {params.min_win_size}-px window")


def _centre_crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    top, left = (image.shape[0] - shape[0]) // 2, (image.shape[1] - shape[1]) // 2
    return image[top:top + shape[0], left:left + shape[1]]


def ms_ssim(test: np.ndarray, reference: np.ndarray, peak: float, settings: MSSSIMSettings,
            k: tuple[float, float]) -> float:
    """Multi-scale SSIM (Wang et al. 2003; pytorch-msssim) with dynamic range ``peak``.

    Computed on the central ``settings.shape`` crop: contrast-structure at every scale but
    the last, full SSIM at the last, each clipped at 0, combined as Π_l value_l^{w_l};
    scales are 2× average pools (low-pass downsampling). Computed in float32 (6× faster
    than float64 on CPU; the two agree to ~1e-6).
    """
    x = torch.from_numpy(np.ascontiguousarray(_centre_crop(test, settings.shape), dtype=np.float32))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(_centre_crop(reference, settings.shape), dtype=np.float32))[None, None]
    value = pytorch_msssim.ms_ssim(x, y, data_range=peak, win_size=settings.win_size,
                                   win_sigma=settings.win_sigma, weights=list(settings.weights), K=k)
    return float(value)
