"""The network: shapes, output ranges, the phase head, float32 whatever the global default, seeded initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pinn_support import one_torch_thread, synthetic_scan

from fly64_kedro.pinn.network import (
    PINNConfig,
    PtychoPINN,
    build_model,
    input_scale_for,
)

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _config(gridsize: int = 1, patch_size: int = 16, **overrides: object) -> PINNConfig:
    values = {"patch_size": patch_size, "gridsize": gridsize, "width": 4, "n_blocks": 2, "input_scale": 0.1,
              "merge_epsilon": 1e-3, "trainable_intensity_scale": True, **overrides}
    return PINNConfig(**values)  # type: ignore[arg-type]


def _probe(size: int = 16) -> np.ndarray:
    return np.ones((size, size), np.complex64)


@pytest.mark.parametrize("gridsize", [1, 2])
def test_outputs_are_patches_in_range_and_counts(gridsize: int) -> None:
    model = build_model(_config(gridsize), _probe(), seed=0, device="cpu")
    c = gridsize**2
    amplitudes = torch.rand(3, c, 16, 16) * 10
    patches = model.object_patches(amplitudes)
    assert patches.shape == (3, c, 16, 16) and patches.dtype == torch.complex64
    assert ((patches.abs() > 0) & (patches.abs() < 1)).all()     # sigmoid head, amplitude factor 1 at start
    counts = model(amplitudes, torch.zeros(3, c, 2, dtype=torch.int64))
    assert counts.shape == (3, c, 16, 16) and counts.dtype == torch.float32 and (counts >= 0).all()


def test_float32_even_when_the_process_default_is_float64() -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # what a float64 pty-chi task leaves behind
    try:
        model = build_model(_config(), _probe(), seed=0, device="cpu")
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        assert model.probe.dtype == torch.complex64
        counts = model(torch.rand(2, 1, 16, 16, dtype=torch.float32), torch.zeros(2, 1, 2, dtype=torch.int64))
        assert counts.dtype == torch.float32
    finally:
        torch.set_default_dtype(previous)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    first, again, other = (build_model(_config(), _probe(), seed, "cpu").state_dict() for seed in (5, 5, 6))
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first if first[key].is_floating_point())


def _amplitudes() -> torch.Tensor:
    """Seeded measured amplitudes (2, 1, 16, 16)."""
    return torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(4)) * 10


def _phase_drifted_to(model: PtychoPINN, pre_activation: float) -> torch.Tensor:
    """The phase patches after the phase decoder's last bias is set to ``pre_activation`` and its weights to 0."""
    last = model.network.phase[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(pre_activation)
    return model.object_patches(_amplitudes()).angle()


def test_a_tanh_phase_head_is_bounded_and_a_linear_one_is_not() -> None:
    tanh = build_model(_config(phase_head="tanh"), _probe(), seed=0, device="cpu")
    linear = build_model(_config(phase_head="linear"), _probe(), seed=0, device="cpu")
    inputs = _amplitudes()
    _, tanh_phase = tanh.network(inputs * tanh.input_scale)
    assert tanh_phase.abs().max() < np.pi
    pre_activation = tanh.network.phase(tanh.network.encoder(inputs * tanh.input_scale))
    torch.testing.assert_close(tanh_phase, np.pi * torch.tanh(pre_activation))
    _, linear_phase = linear.network(inputs * linear.input_scale)
    torch.testing.assert_close(linear_phase, linear.network.phase(linear.network.encoder(inputs * linear.input_scale)))
    torch.testing.assert_close(_phase_drifted_to(linear, 2.5), torch.full((2, 1, 16, 16), 2.5))
    with pytest.raises(ValueError, match=r"phase_head must be one of \['linear', 'tanh'\]; got 'sine'"):
        build_model(_config(phase_head="sine"), _probe(), seed=0, device="cpu")


def test_a_phase_drifted_to_pi_keeps_its_gradient_only_with_a_linear_head() -> None:
    """Why the head is linear: at a phase near ±π the original's π·tanh has saturated and passes no gradient."""
    def gradient_at_pi(phase_head: str, pre_activation: float) -> float:
        model = build_model(_config(phase_head=phase_head), _probe(), seed=0, device="cpu")
        phase = _phase_drifted_to(model, pre_activation)
        (phase.sin() - np.sin(0.5)).square().mean().backward()  # pull towards 0.5 rad
        return float(model.network.phase[-1].bias.grad.abs())

    assert gradient_at_pi("tanh", 12.0) < 1e-8              # π·tanh(12) = π − 1e-10: saturated for good
    assert gradient_at_pi("linear", 3.1) > 1e-2


def test_building_a_model_leaves_the_global_random_stream_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(_config(), _probe(), seed=0, device="cpu")
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_patch_size_must_fit_the_encoder() -> None:
    with pytest.raises(ValueError, match="divisible by 2\\^n_blocks = 8"):
        PtychoPINN(_config(patch_size=20, n_blocks=3), _probe(20))


def test_input_scale_fixes_the_mean_total_intensity() -> None:
    scan = synthetic_scan(patch_size=16, object_size=64, n_positions=40)
    scale = input_scale_for(scan.counts)
    normalised = (np.sqrt(scan.counts) * scale) ** 2
    assert normalised.sum(axis=(-2, -1)).mean() == pytest.approx((16 / 2) ** 2, rel=1e-6)
    with pytest.raises(ValueError, match="must hold photons"):
        input_scale_for(np.zeros((2, 16, 16), np.float32))


def test_amplitude_factor_is_learned_only_when_trainable() -> None:
    fixed = build_model(_config(trainable_intensity_scale=False), _probe(), 0, "cpu")
    assert not fixed.log_amplitude_scale.requires_grad
    learned = build_model(_config(), _probe(), 0, "cpu")
    assert learned.log_amplitude_scale.requires_grad


def test_weights_do_not_depend_on_the_global_random_state() -> None:
    torch.manual_seed(1)
    first = build_model(_config(), _probe(), seed=9, device="cpu").state_dict()
    torch.manual_seed(2)
    second = build_model(_config(), _probe(), seed=9, device="cpu").state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
