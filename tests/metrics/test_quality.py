"""Image-quality metrics: identities, closed-form values and agreement with reference libraries."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_msssim
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fly64_kedro.metrics import quality
from fly64_kedro.parameters.comparison import ComparisonParams


def _checkerboard(shape: tuple[int, int]) -> np.ndarray:
    return np.where(np.indices(shape).sum(axis=0) % 2 == 0, 1.0, -1.0)


def _everywhere(image: np.ndarray) -> np.ndarray:
    return np.ones(image.shape, dtype=bool)


def _discs(shape: tuple[int, int], centres: list[tuple[int, int]], radius: float) -> np.ndarray:
    """A support of separate discs, like a sparse view's."""
    yy, xx = np.indices(shape)
    return np.any([np.hypot(yy - cy, xx - cx) <= radius for cy, cx in centres], axis=0)


@pytest.fixture(scope="module")
def amplitude(fly_object: np.ndarray) -> np.ndarray:
    """A 208×256 amplitude crop of the fly64 object (float64); sides divisible by 16."""
    return np.abs(fly_object[150:358, 60:316]).astype(np.float64)


def test_identical_images_score_perfectly(amplitude: np.ndarray, params: ComparisonParams) -> None:
    peak = quality.data_range(amplitude)
    settings = quality.adapt_ms_ssim(amplitude.shape, params.ms_ssim)
    full = _everywhere(amplitude)
    assert quality.ssim(amplitude, amplitude, peak, params.ssim, full) == pytest.approx(1.0, abs=1e-12)
    assert quality.ms_ssim(amplitude, amplitude, peak, settings, (0.01, 0.03), full)[0] == pytest.approx(1.0, abs=1e-6)
    assert quality.rmse(amplitude, amplitude) == 0.0
    assert quality.mae(amplitude, amplitude) == 0.0
    assert quality.psnr(amplitude, amplitude, peak) == float("inf")
    assert quality.pearson(amplitude, amplitude) == pytest.approx(1.0, abs=1e-12)


def test_errors_of_a_checkerboard_perturbation(amplitude: np.ndarray) -> None:
    """test = truth ± d: MAE = RMSE = d, PSNR = 20·log10(range / d) with the truth's range, not 255."""
    d = 0.01
    test = amplitude + d * _checkerboard(amplitude.shape)
    peak = quality.data_range(amplitude)
    assert quality.mae(test, amplitude) == pytest.approx(d, rel=1e-9)
    assert quality.rmse(test, amplitude) == pytest.approx(d, rel=1e-9)
    assert quality.psnr(test, amplitude, peak) == pytest.approx(20 * np.log10(peak / d), rel=1e-9)
    assert quality.psnr(test, amplitude, peak) == pytest.approx(
        peak_signal_noise_ratio(amplitude, test, data_range=peak), rel=1e-9)
    assert quality.psnr(test, amplitude, peak) < 40  # with a peak of 255 it would read ≈ 88 dB
    # scaling both images by k scales the range and the error alike: PSNR is unchanged
    assert quality.psnr(3 * test, 3 * amplitude, quality.data_range(3 * amplitude)) == pytest.approx(
        quality.psnr(test, amplitude, peak), rel=1e-9)


def test_pearson_known_values(amplitude: np.ndarray) -> None:
    noisy = amplitude + 0.05 * np.random.default_rng(0).standard_normal(amplitude.shape)
    assert quality.pearson(2 * amplitude + 3, amplitude) == pytest.approx(1.0, abs=1e-12)
    assert quality.pearson(-amplitude, amplitude) == pytest.approx(-1.0, abs=1e-12)
    expected = np.corrcoef(noisy.ravel(), amplitude.ravel())[0, 1]
    assert quality.pearson(noisy, amplitude) == pytest.approx(expected, abs=1e-12)
    assert quality.pearson(np.ones_like(amplitude), amplitude) == 0.0  # a constant carries no information
    with pytest.raises(quality.MetricUndefined, match="truth is constant"):
        quality.pearson(amplitude, np.ones_like(amplitude))


def test_ssim_and_ms_ssim_of_constant_images_follow_the_luminance_term(params: ComparisonParams) -> None:
    """Flat images have no contrast or structure: SSIM = l = (2ab + C1)/(a² + b² + C1), MS-SSIM = l^{w_last}."""
    a, b, peak = 0.4, 0.7, 1.0
    shape = (208, 208)
    c1 = (params.ssim.k1 * peak) ** 2
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)
    settings = quality.adapt_ms_ssim(shape, params.ms_ssim)
    full = np.ones(shape, dtype=bool)
    value, _ = quality.ms_ssim(np.full(shape, b), np.full(shape, a), peak, settings, (params.ssim.k1, params.ssim.k2),
                               full)
    assert quality.ssim(np.full(shape, b), np.full(shape, a), peak, params.ssim, full) == pytest.approx(luminance,
                                                                                                       rel=1e-9)
    assert value == pytest.approx(luminance ** settings.weights[-1], rel=1e-5)


def test_ssim_is_scikit_image_and_matches_an_independent_implementation(amplitude: np.ndarray, params) -> None:
    test = amplitude + 0.05 * np.random.default_rng(1).standard_normal(amplitude.shape)
    peak = quality.data_range(amplitude)
    ours = quality.ssim(test, amplitude, peak, params.ssim, _everywhere(amplitude))
    assert ours == pytest.approx(structural_similarity(test, amplitude, data_range=peak, gaussian_weights=True,
                                                       sigma=1.5, use_sample_covariance=False), abs=1e-12)
    # pytorch-msssim's single-scale SSIM uses the same 11-tap Gaussian over the same valid pixels
    torch_value = pytorch_msssim.ssim(torch.from_numpy(test)[None, None], torch.from_numpy(amplitude)[None, None],
                                      data_range=peak)
    assert ours == pytest.approx(float(torch_value), abs=1e-5)  # the library builds its window in float32
    assert 0.3 < ours < 0.95


def test_ms_ssim_standard_settings_agree_with_pytorch_msssim(amplitude: np.ndarray, params: ComparisonParams) -> None:
    """On an image > 160 px nothing is adapted: the library's defaults (float64) to 1e-4."""
    test = ndimage.gaussian_filter(amplitude, 1.0) + 0.03 * np.random.default_rng(2).standard_normal(amplitude.shape)
    peak = quality.data_range(amplitude)
    settings = quality.adapt_ms_ssim(amplitude.shape, params.ms_ssim)
    assert (settings.shape, settings.win_size, settings.win_sigma, settings.scales) == (amplitude.shape, 11, 1.5, 5)
    reference = pytorch_msssim.ms_ssim(torch.from_numpy(test)[None, None], torch.from_numpy(amplitude)[None, None],
                                       data_range=peak)
    ours, used = quality.ms_ssim(test, amplitude, peak, settings, (params.ssim.k1, params.ssim.k2),
                                 _everywhere(amplitude))
    assert ours == pytest.approx(float(reference), abs=1e-4)
    assert 0.5 < ours < 0.99
    assert used["ms_ssim_scales_used"] == 5 and used["ms_ssim_weights_used"] == list(params.ms_ssim.weights)


def test_ssim_on_a_support_is_the_mean_of_scikit_images_map_there(amplitude: np.ndarray, params) -> None:
    test = amplitude + 0.05 * np.random.default_rng(4).standard_normal(amplitude.shape)
    peak = quality.data_range(amplitude)
    support = _discs(amplitude.shape, [(60, 60), (60, 180), (150, 120)], 22)
    _, ssim_map = structural_similarity(test, amplitude, data_range=peak, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    assert quality.ssim(test, amplitude, peak, params.ssim, support) == pytest.approx(ssim_map[support].mean(),
                                                                                      abs=1e-12)
    corner = np.zeros_like(support)
    corner[:3, :3] = True  # within the window's half-width of the border: nothing to average
    with pytest.raises(quality.MetricUndefined, match="no support pixel"):
        quality.ssim(test, amplitude, peak, params.ssim, corner)


def _reference_ms_ssim(x: np.ndarray, y: np.ndarray, peak: float, win: int, sigma: float, weights: tuple[float, ...],
                       k: tuple[float, float], support: np.ndarray | None = None) -> float:
    """Wang et al.'s MS-SSIM written out with numpy/scipy: valid Gaussian window, 2×2 average pooling
    (padded as pytorch-msssim pads odd sides); with ``support``, every scale's mean runs over the map
    pixels whose centre is in the support, pooled alike (≥ half of a pooled pixel)."""
    mask = np.ones(x.shape) if support is None else support.astype(np.float64)
    taps = np.exp(-((np.arange(win) - win // 2) ** 2) / (2 * sigma**2))
    taps /= taps.sum()

    def blur(image: np.ndarray) -> np.ndarray:
        out = ndimage.correlate1d(ndimage.correlate1d(image, taps, axis=0), taps, axis=1)
        return out[win // 2:image.shape[0] - win // 2, win // 2:image.shape[1] - win // 2]

    def pool(image: np.ndarray) -> np.ndarray:  # 2×2 mean; an odd side gets one zero row/column each side
        image = np.pad(image, [(side % 2, side % 2) for side in image.shape])
        h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
        return image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    c1, c2 = (k[0] * peak) ** 2, (k[1] * peak) ** 2
    result = 1.0
    for level, weight in enumerate(weights):
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        centres = mask[win // 2:mask.shape[0] - win // 2, win // 2:mask.shape[1] - win // 2] >= 0.5
        if level == len(weights) - 1:
            value = np.mean(((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs)[centres])
        else:
            value = np.mean(cs[centres])
            x, y, mask = pool(x), pool(y), pool(mask)
        result *= max(value, 0.0) ** weight
    return float(result)


def test_adapted_ms_ssim_matches_the_written_out_definition(params: ComparisonParams, fly_object: np.ndarray) -> None:
    """A 112×128 image gets a smaller window (recorded); the value still is Wang's MS-SSIM to 1e-4."""
    truth = np.angle(fly_object[200:312, 100:228]).astype(np.float64)
    test = ndimage.gaussian_filter(truth, 0.8) + 0.05 * np.random.default_rng(3).standard_normal(truth.shape)
    settings = quality.adapt_ms_ssim(truth.shape, params.ms_ssim)
    assert settings.scales == 5 and settings.win_size == 7  # (7 − 1)·16 = 96 < 112 ≤ (9 − 1)·16
    assert settings.win_sigma == pytest.approx(1.5 * 7 / 11)
    peak = quality.data_range(truth)
    k = (params.ssim.k1, params.ssim.k2)
    shifted = test - truth.min(), truth - truth.min()
    expected = _reference_ms_ssim(*shifted, peak, settings.win_size, settings.win_sigma, settings.weights, k)
    assert quality.ms_ssim(*shifted, peak, settings, k, _everywhere(truth))[0] == pytest.approx(expected, abs=1e-4)


def test_masked_ms_ssim_matches_the_written_out_masked_definition(params: ComparisonParams, fly_object) -> None:
    """Three separate discs (a sparse view's support): every scale averages over the support's pixels only."""
    truth = np.angle(fly_object[120:328, 60:316]).astype(np.float64)
    test = ndimage.gaussian_filter(truth, 0.8) + 0.05 * np.random.default_rng(5).standard_normal(truth.shape)
    support = _discs(truth.shape, [(60, 60), (60, 180), (150, 120)], 40)
    settings = quality.adapt_ms_ssim(truth.shape, params.ms_ssim)
    peak, k = quality.data_range(truth[support]), (params.ssim.k1, params.ssim.k2)
    floor = truth[support].min()
    value, used = quality.ms_ssim(test - floor, truth - floor, peak, settings, k, support)
    expected = _reference_ms_ssim(test - floor, truth - floor, peak, settings.win_size, settings.win_sigma,
                                  settings.weights, k, support)
    assert value == pytest.approx(expected, abs=1e-4)
    assert used["ms_ssim_scales_used"] == 5
    assert used["ms_ssim_support_pixels_per_scale"][0] == support.sum()  # every disc lies a window inside
    # pixels outside the support enter only through windows that straddle its edge
    elsewhere = np.where(support, test, 7.0)
    assert quality.ms_ssim(elsewhere - floor, truth - floor, peak, settings, k, support)[0] < value


def test_masked_ms_ssim_drops_the_scales_its_support_cannot_reach(params: ComparisonParams, fly_object) -> None:
    truth = np.abs(fly_object[100:308, 100:356]).astype(np.float64)
    support = _discs(truth.shape, [(100, 128)], 6)  # one small disc: gone after a few poolings
    settings = quality.adapt_ms_ssim(truth.shape, params.ms_ssim)
    value, used = quality.ms_ssim(truth, truth, quality.data_range(truth), settings, (0.01, 0.03), support)
    assert 1 <= used["ms_ssim_scales_used"] < 5
    assert sum(used["ms_ssim_weights_used"]) == pytest.approx(sum(params.ms_ssim.weights))
    assert value == pytest.approx(1.0, abs=1e-6)
    nowhere = np.zeros_like(support)
    with pytest.raises(quality.MetricUndefined, match="no support pixel"):
        quality.ms_ssim(truth, truth, 1.0, settings, (0.01, 0.03), nowhere)


def test_ms_ssim_adaptation_drops_coarse_scales_only_when_the_smallest_window_fails(params: ComparisonParams) -> None:
    settings = quality.adapt_ms_ssim((60, 401), params.ms_ssim)
    # 5 scales: 60 → 48 px (÷16) ≤ (5 − 1)·16 even with a 5-px window; 4 scales: 60 → 56 (÷8) > (7 − 1)·8
    assert (settings.scales, settings.win_size, settings.shape) == (4, 7, (56, 400))
    assert sum(settings.weights) == pytest.approx(sum(params.ms_ssim.weights))
    assert np.allclose(np.array(settings.weights) / settings.weights[0],
                       np.array(params.ms_ssim.weights[:4]) / params.ms_ssim.weights[0])
    assert settings.as_record()["ms_ssim_scales"] == 4
    with pytest.raises(quality.MetricUndefined, match="too small for MS-SSIM"):
        quality.adapt_ms_ssim((4, 400), params.ms_ssim)
