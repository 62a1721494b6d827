"""Image-quality metrics of a real image against a reference (the truth), on a support, with explicit data range.

Every function takes ``test`` and ``reference`` real arrays of the same 2-D shape. Pixel
metrics (MAE, RMSE, PSNR, Pearson) take the support's pixels only. SSIM is the mean of
scikit-image's SSIM map over the support pixels at least half a window from the image's
border (scikit-image's own mean drops that border too, so a full support gives exactly its
value). Where a metric needs a dynamic range (SSIM's constants, PSNR's peak) it is passed
explicitly: the comparison uses the truth's range over the support, never 255 or the test
image's range.

**MS-SSIM on a support, masked per scale.** MS-SSIM (Wang et al. 2003, as pytorch-msssim
computes it) averages a contrast-structure map at every scale but the coarsest and the
full SSIM map at the coarsest; here each average runs over the map pixels whose centre lies
in the support at that scale (the support is 2× average-pooled with the image, a pixel
counting when at least half of it is support). With a full support this is exactly
pytorch-msssim's value. Why masked per scale rather than the support's largest inscribed
rectangle: a sparse view's support is a set of separate probe discs, whose largest
rectangle (about one disc) is too small for more than one scale, while the masked average
keeps every scale the support's extent allows and weighs every support pixel alike. A
coarse scale with no support pixel left is dropped (the remaining weights renormalised to
their original sum) and the settings actually used are recorded with the value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pytorch_msssim.ssim import gaussian_filter
from skimage.metrics import structural_similarity
from torch.nn import functional

from fly64_kedro.parameters.comparison import MSSSIMParams, SSIMParams


class MetricUndefined(ValueError):
    """A metric cannot be computed on this image or support (the reason is the message)."""


def data_range(reference: np.ndarray) -> float:
    """Dynamic range max − min of the reference values."""
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
    """Pearson correlation coefficient of the pixel values.

    A constant ``test`` has zero covariance with any reference and carries no information:
    it scores 0 (the flat object every method starts from scores here). A constant
    reference leaves the coefficient undefined: ``MetricUndefined``.
    """
    a = test.ravel() - test.mean()
    b = reference.ravel() - reference.mean()
    reference_power = np.dot(b, b)
    if not reference_power > 0:
        raise MetricUndefined("the truth is constant on the support: correlation undefined")
    test_power = np.dot(a, a)
    return float(np.dot(a, b) / np.sqrt(test_power * reference_power)) if test_power > 0 else 0.0


def ssim_window_radius(params: SSIMParams) -> int:
    """Half-width (px) of scikit-image's SSIM window: 3 for the 7×7 uniform window, else int(3.5·sigma + 0.5)."""
    return int(3.5 * params.sigma + 0.5) if params.gaussian_weights else 3


def ssim(test: np.ndarray, reference: np.ndarray, peak: float, params: SSIMParams, support: np.ndarray) -> float:
    """Mean SSIM map (scikit-image ``structural_similarity``) over the support, dynamic range ``peak``.

    With ``params.gaussian_weights`` the window is Wang et al.'s Gaussian (std ``sigma``,
    population covariance); otherwise scikit-image's 7×7 uniform window. Pixels within half
    a window of the border are left out, as scikit-image does.
    """
    pad = ssim_window_radius(params)
    if min(support.shape) < 2 * pad + 1:
        raise MetricUndefined(f"region {support.shape} is smaller than the {2 * pad + 1}-px SSIM window")
    extra = {"sigma": params.sigma, "use_sample_covariance": False} if params.gaussian_weights else {}
    _, ssim_map = structural_similarity(
        test.astype(np.float64), reference.astype(np.float64), data_range=peak,
        gaussian_weights=params.gaussian_weights, K1=params.k1, K2=params.k2, full=True, **extra,
    )
    inner = np.zeros_like(support)
    inner[pad:support.shape[0] - pad, pad:support.shape[1] - pad] = True
    counted = support & inner
    if not counted.any():
        raise MetricUndefined(f"no support pixel lies {pad} px inside the {support.shape} region (SSIM window)")
    return float(ssim_map[counted].mean())


@dataclass(frozen=True)
class MSSSIMSettings:
    """The MS-SSIM computed for one image size (recorded with the cell)."""

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


def _renormalised(weights: tuple[float, ...] | list[float], kept: int) -> tuple[float, ...]:
    """The first ``kept`` weights scaled to the sum of all of them."""
    first = weights[:kept]
    return tuple(first) if kept == len(weights) else tuple(w * sum(weights) / sum(first) for w in first)


def adapt_ms_ssim(shape: tuple[int, ...], params: MSSSIMParams) -> MSSSIMSettings:
    """Largest standard MS-SSIM that fits an image of ``shape``.

    The image is centre-cropped to sides divisible by 2^(scales − 1), so no pooling meets
    an odd side. The smaller side must exceed (win_size − 1)·2^(scales − 1): every scale of
    ``params.weights`` is kept and the window shrinks first (odd sizes, sigma scaled with
    it, down to ``min_win_size``); if even that does not fit, the coarsest scales are
    dropped and the remaining weights renormalised to the original sum. Raises
    ``MetricUndefined`` if no single-scale window fits.
    """
    for scales in range(len(params.weights), 0, -1):
        cropped = _pooling_shape(shape, scales)
        for win in range(params.win_size, params.min_win_size - 1, -2):
            if min(cropped) > (win - 1) * 2 ** (scales - 1):
                return MSSSIMSettings(cropped, win, params.win_sigma * win / params.win_size,
                                      _renormalised(params.weights, scales))
    raise MetricUndefined(f"region {tuple(shape)} is too small for MS-SSIM with a {params.min_win_size}-px window")


def _centre_crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    top, left = (image.shape[0] - shape[0]) // 2, (image.shape[1] - shape[1]) // 2
    return image[top:top + shape[0], left:left + shape[1]]


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """pytorch-msssim's 1-D Gaussian window for one channel, (1, 1, 1, size), normalised to sum 1."""
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return (window / window.sum())[None, None, None]


def _ssim_maps(x: torch.Tensor, y: torch.Tensor, peak: float, window: torch.Tensor,
               k: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(SSIM map, contrast-structure map), valid convolution, as pytorch-msssim computes them."""
    c1, c2 = (k[0] * peak) ** 2, (k[1] * peak) ** 2
    mu1, mu2 = gaussian_filter(x, window), gaussian_filter(y, window)
    sigma1 = gaussian_filter(x * x, window) - mu1**2
    sigma2 = gaussian_filter(y * y, window) - mu2**2
    sigma12 = gaussian_filter(x * y, window) - mu1 * mu2
    cs_map = (2 * sigma12 + c2) / (sigma1 + sigma2 + c2)
    return (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs_map, cs_map


def ms_ssim(test: np.ndarray, reference: np.ndarray, peak: float, settings: MSSSIMSettings,
            k: tuple[float, float], support: np.ndarray) -> tuple[float, dict[str, object]]:
    """Multi-scale SSIM masked per scale to the support (module doc), dynamic range ``peak``.

    Computed on the central ``settings.shape`` crop in float32 (6× faster than float64 on
    CPU; the two agree to ~1e-6). Returns the value and a record: scales used, weights used
    and the support pixels counted at each scale. Raises ``MetricUndefined`` when no
    support pixel is counted at the finest scale.
    """
    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(_centre_crop(image, settings.shape), dtype=np.float32))[None, None]

    x, y, mask = tensor(test), tensor(reference), tensor(support.astype(np.float32))
    window = _gaussian_window(settings.win_size, settings.win_sigma)
    radius = settings.win_size // 2
    values: list[torch.Tensor] = []
    counts: list[int] = []
    for scale in range(settings.scales):
        if scale:
            x, y, mask = (functional.avg_pool2d(t, kernel_size=2) for t in (x, y, mask))
        ssim_map, cs_map = _ssim_maps(x, y, peak, window, k)
        centres = mask[..., radius:mask.shape[-2] - radius, radius:mask.shape[-1] - radius] >= 0.5
        counted = int(centres.sum())
        if counted == 0:
            break
        counts.append(counted)
        values.append((torch.relu(ssim_map[centres].mean()), torch.relu(cs_map[centres].mean())))
    if not values:
        raise MetricUndefined(f"no support pixel lies {radius} px inside the {settings.shape} MS-SSIM crop")
    weights = _renormalised(settings.weights, len(values))
    terms = [cs for _, cs in values[:-1]] + [values[-1][0]]  # full SSIM at the coarsest scale kept
    value = float(torch.prod(torch.stack([term ** weight for term, weight in zip(terms, weights)])))
    return value, {"ms_ssim_scales_used": len(values), "ms_ssim_weights_used": list(weights),
                   "ms_ssim_support_pixels_per_scale": counts}
