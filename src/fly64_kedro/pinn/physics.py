"""The network's differentiable physics: overlap merge, re-extraction and far-field model.

Torch twins of ``fly64_kedro.physics`` with the same conventions: a patch of side n at
canvas position (y, x) covers rows y − n/2 … y + n/2 − 1; expected counts are
``|fftshift(fft2(probe · patch))|²`` (unnormalised FFT, DC centred) for a probe scaled by
the square root of the data's intensity scale.
Shifts are whole pixels, so merging and extracting are exact gathers and scatters.
"""

from __future__ import annotations

import torch


def pixel_indices(top: torch.Tensor, left: torch.Tensor, size: int, canvas_width: int) -> torch.Tensor:
    """Flat canvas index of every pixel of patches with top-left corners ``(top, left)``.

    ``top``, ``left``: (..., P) int64 → (..., P, size·size) int64, rows then columns.
    """
    steps = torch.arange(size, device=top.device, dtype=torch.int64)
    rows = (top[..., None] + steps)[..., :, None]
    cols = (left[..., None] + steps)[..., None, :]
    return (rows * canvas_width + cols).flatten(-2)


def scatter_mean(
    patches: torch.Tensor, index: torch.Tensor, canvas_pixels: int, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average of overlapping patches on a flat canvas.

    ``patches`` (B, P, n, n) complex, ``index`` (B, P, n·n) from :func:`pixel_indices`.
    Returns (canvas (B, canvas_pixels) complex, weight (B, canvas_pixels) real): canvas =
    Σ shifted patches / max(Σ shifted masks, ε) — exact averages where patches reach, 0
    elsewhere — and weight = Σ shifted masks, the number of patches at each pixel.
    """
    batch = patches.shape[0]
    flat_index = index.reshape(batch, -1)
    real_dtype = patches.real.dtype
    summed = torch.zeros(batch, canvas_pixels, dtype=patches.dtype, device=patches.device)
    summed = summed.scatter_add(1, flat_index, patches.reshape(batch, -1))
    ones = torch.ones(flat_index.shape, dtype=real_dtype, device=patches.device)
    weight = torch.zeros(batch, canvas_pixels, dtype=real_dtype, device=patches.device).scatter_add(1, flat_index, ones)
    return summed / weight.clamp_min(epsilon), weight


def merge_and_extract(patches: torch.Tensor, offsets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """PtychoPINN's overlap constraint: merge a group's patches into one canvas, cut them out again.

    ``patches`` (B, C, N, N) complex, ``offsets`` (B, C, 2) int64 (dy, dx) px from the
    group centre. Each returned patch is the average, pixel by pixel, of every member
    patch that covers it; patches that agree where they overlap come back unchanged.
    """
    size = patches.shape[-1]
    reach = int(offsets.abs().max()) if offsets.numel() else 0
    canvas_side = size + 2 * reach
    top = offsets[..., 0] + reach
    left = offsets[..., 1] + reach
    index = pixel_indices(top, left, size, canvas_side)
    canvas, _ = scatter_mean(patches, index, canvas_side * canvas_side, epsilon)
    return torch.gather(canvas, 1, index.reshape(patches.shape[0], -1)).reshape(patches.shape)


def far_field_counts(patches: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Expected counts ``|fftshift(fft2(probe · patch))|²`` over the last two axes.

    ``probe`` is in counts units: ``probeGuess · sqrt(intensity_scale)``.
    """
    spectrum = torch.fft.fftshift(torch.fft.fft2(probe * patches), dim=(-2, -1))
    return spectrum.real.square() + spectrum.imag.square()
