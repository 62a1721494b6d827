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
    patches: torch.Tensor, index: torch.Tensor, canvas_pixels: int, epsilon: float, weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted average of overlapping patches on a flat canvas.

    ``patches`` (B, P, n, n) complex, ``index`` (B, P, n·n) from :func:`pixel_indices`,
    ``weight`` (n, n) real, the same for every patch (None: 1 everywhere). Returns (canvas
    (B, canvas_pixels) complex, total weight (B, canvas_pixels) real): canvas =
    Σ w·patches / max(Σ w, ε) — exact weighted averages where the weight is ≫ ε, 0 where no
    patch reaches — and the summed weight at each pixel.
    """
    batch = patches.shape[0]
    flat_index = index.reshape(batch, -1)
    real_dtype = patches.real.dtype
    if weight is None:
        weights = torch.ones(flat_index.shape, dtype=real_dtype, device=patches.device)
    else:
        weights = weight.to(device=patches.device, dtype=real_dtype).expand(patches.shape).reshape(batch, -1)
    summed = torch.zeros(batch, canvas_pixels, dtype=patches.dtype, device=patches.device)
    summed = summed.scatter_add(1, flat_index, patches.reshape(batch, -1) * weights)
    total = torch.zeros(batch, canvas_pixels, dtype=real_dtype, device=patches.device).scatter_add(1, flat_index, weights)
    return summed / total.clamp_min(epsilon), total


def merge_and_extract(patches: torch.Tensor, offsets: torch.Tensor, epsilon: float,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """PtychoPINN's overlap constraint: merge a group's patches into one canvas, cut them out again.

    ``patches`` (B, C, N, N) complex, ``offsets`` (B, C, 2) int64 (dy, dx) px from the
    group centre, ``weight`` (N, N) real: how much each member's pixel counts in the merge.
    With the probe's intensity as weight the merge runs over the region the probe
    constrains: each member's illuminated disc dominates where it is lit, and its
    unconstrained periphery counts for almost nothing. Each returned patch is the weighted
    average, pixel by pixel, of every member that covers it; patches that agree where they
    overlap come back unchanged.
    """
    size = patches.shape[-1]
    reach = int(offsets.abs().max()) if offsets.numel() else 0
    canvas_side = size + 2 * reach
    top = offsets[..., 0] + reach
    left = offsets[..., 1] + reach
    index = pixel_indices(top, left, size, canvas_side)
    canvas, _ = scatter_mean(patches, index, canvas_side * canvas_side, epsilon, weight)
    return torch.gather(canvas, 1, index.reshape(patches.shape[0], -1)).reshape(patches.shape)


def probe_weight(probe: torch.Tensor) -> torch.Tensor:
    """The merge and stitching weight |probe|² / max|probe|² (N, N), real."""
    intensity = probe.real.square() + probe.imag.square()
    return intensity / intensity.max()


def far_field_counts(patches: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Expected counts ``|fftshift(fft2(probe · patch))|²`` over the last two axes.

    ``probe`` is in counts units: ``probeGuess · sqrt(intensity_scale)``.
    """
    spectrum = torch.fft.fftshift(torch.fft.fft2(probe * patches), dim=(-2, -1))
    return spectrum.real.square() + spectrum.imag.square()
