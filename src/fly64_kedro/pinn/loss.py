"""Losses in diffraction space: the network never sees a real-space reference."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional

POISSON_EPSILON = 1e-8
"""Added to the expected counts inside the logarithm (counts can be predicted as ~0)."""


def poisson_nll(expected_counts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean Poisson negative log-likelihood per pixel relative to a perfect fit: λ − n − n·log(λ/n) ≥ 0.

    That is the NLL λ − n·log λ plus the data's constant n·log n − n (half the Poisson
    deviance): same gradients, but 0 for a perfect fit and positive otherwise, so relative
    improvements (plateau schedule, early stopping) mean what they say at every dose.
    """
    nll = functional.poisson_nll_loss(expected_counts, counts, log_input=False, full=False, eps=POISSON_EPSILON)
    return nll + (torch.special.xlogy(counts, counts) - counts).mean()


def amplitude_mae(expected_counts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between predicted and measured amplitudes √λ and √n."""
    return functional.l1_loss(torch.sqrt(expected_counts + POISSON_EPSILON), torch.sqrt(counts))


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "poisson": poisson_nll,
    "mae": amplitude_mae,
}
