"""The PtychoPINN-style network: a CNN encoder–decoder followed by a fixed physics model.

G (the CNN) maps each normalised diffraction amplitude of a group to its complex object
patch (amplitude head: sigmoid; phase head: linear, or the original's π·tanh); the C members of a group go through
the same G one by one (a patch depends on its own pattern, as the physics says; the original
stacks the C patterns as channels of one CNN, which splits one network's width between C
patterns that share nothing but their overlap). F (the physics) merges the patches
by their offsets, weighted by the probe's intensity (the overlap constraint over the region
the probe constrains), multiplies by the known probe (in counts units,
``probeGuess · sqrt(intensity_scale)``) and propagates to the far field; a trainable
global factor on the amplitude plays the paper's trainable intensity scale.

The phase enters the physics only through e^{iφ}, and its global offset is not measured, so a
linear phase head loses nothing. The original's π·tanh bounds it: when the predicted phase
drifts to ±π the head saturates, its gradient vanishes, and Adam (which normalises gradient
size) keeps pushing it further — the phase is then dead for good (measured: one seed in three
at 1e3 photons, pre-activations ~ −10⁴, the object phase a constant π). Every
tensor is created with an explicit dtype and device, so a process-wide default changed by
another library (pty-chi sets float64 or cuda globally) does not leak in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fly64_kedro.pinn.physics import far_field_counts, merge_and_extract, probe_weight

FLOAT = torch.float32
COMPLEX = torch.complex64
CHECKPOINT_FORMAT = "fly64_kedro.pinn/3"


@dataclass(frozen=True)
class PINNConfig:
    """Everything needed to rebuild a model besides its weights (stored in the checkpoint)."""

    patch_size: int
    """N (px)."""
    gridsize: int
    """1 or 2: groups of C = gridsize² patterns, each reconstructed by the same network, merged by the physics."""
    width: int
    """Filters of the first encoder block."""
    n_blocks: int
    """Encoder (and decoder) blocks."""
    input_scale: float
    """Factor on measured amplitudes making the training set's mean total intensity (N/2)²."""
    merge_epsilon: float
    """Floor of the summed probe-intensity weight in the merge (avoids 0/0 where no member is lit)."""
    trainable_intensity_scale: bool
    """Whether the global amplitude factor is learned."""
    phase_head: str = "linear"
    """'linear' (phase in rad, unbounded) or 'tanh' (π·tanh, the original's)."""

    @property
    def channels(self) -> int:
        """C = gridsize²."""
        return self.gridsize * self.gridsize


def input_scale_for(counts: np.ndarray) -> float:
    """Factor on amplitudes √counts making the mean total intensity of ``counts`` (n, N, N) equal (N/2)²."""
    mean_total = float(counts.sum(axis=(-2, -1), dtype=np.float64).mean())
    if not mean_total > 0:
        raise ValueError(f"diffraction must hold photons to normalise; mean total counts {mean_total}")
    return math.sqrt((counts.shape[-1] / 2) ** 2 / mean_total)


def _unbounded(x: torch.Tensor) -> torch.Tensor:
    return x


def _pi_tanh(x: torch.Tensor) -> torch.Tensor:
    return math.pi * torch.tanh(x)


PHASE_HEADS = {"linear": _unbounded, "tanh": _pi_tanh}
"""The phase head's activation (pre-activation → phase in rad), by name."""


def _conv(in_channels: int, out_channels: int, device: torch.device) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, device=device, dtype=FLOAT)


def _block(in_channels: int, out_channels: int, device: torch.device) -> list[nn.Module]:
    return [_conv(in_channels, out_channels, device), nn.ReLU(), _conv(out_channels, out_channels, device), nn.ReLU()]


class EncoderDecoder(nn.Module):
    """One pattern's amplitudes (B, 1, N, N) → (amplitude ∈ (0, 1), phase in rad), each (B, 1, N, N).

    ``phase_head`` 'linear' leaves the phase unbounded; 'tanh' bounds it to (−π, π) as π·tanh.

    Encoder: ``n_blocks`` × [Conv3×3-ReLU, Conv3×3-ReLU, MaxPool2] with width·2^i filters;
    two decoders (amplitude, phase) mirror it with [Conv, Conv, Upsample2] and end in a
    Conv3×3 to one channel. No skip connections (input and output live in different spaces).
    """

    def __init__(self, width: int, n_blocks: int, device: torch.device, phase_head: str = "linear") -> None:
        super().__init__()
        if phase_head not in PHASE_HEADS:
            raise ValueError(f"phase_head must be one of {sorted(PHASE_HEADS)}; got {phase_head!r}")
        self.phase_activation = PHASE_HEADS[phase_head]
        widths = [width * 2**i for i in range(n_blocks)]
        encoder: list[nn.Module] = []
        previous = 1
        for filters in widths:
            encoder += [*_block(previous, filters, device), nn.MaxPool2d(2)]
            previous = filters
        self.encoder = nn.Sequential(*encoder)
        self.amplitude = self._decoder(widths, device)
        self.phase = self._decoder(widths, device)

    @staticmethod
    def _decoder(widths: list[int], device: torch.device) -> nn.Sequential:
        layers: list[nn.Module] = []
        previous = widths[-1]
        for filters in reversed(widths):
            layers += [*_block(previous, filters, device), nn.Upsample(scale_factor=2, mode="nearest")]
            previous = filters
        layers.append(_conv(previous, 1, device))
        return nn.Sequential(*layers)

    def forward(self, amplitudes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(amplitudes.contiguous(memory_format=torch.channels_last))
        return torch.sigmoid(self.amplitude(code)), self.phase_activation(self.phase(code))


class PtychoPINN(nn.Module):
    """Network G plus physics F; ``forward`` gives expected counts (B, C, N, N).

    Buffers (saved with the weights): ``probe`` (N, N) complex64 in counts units and
    ``input_scale``; parameter ``log_amplitude_scale`` (trainable or not, starts at 0).
    """

    probe: torch.Tensor
    input_scale: torch.Tensor

    def __init__(self, config: PINNConfig, probe: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> None:
        super().__init__()
        device = torch.device(device)
        if config.patch_size % 2**config.n_blocks:
            raise ValueError(f"patch_size {config.patch_size} must be divisible by 2^n_blocks = {2**config.n_blocks}")
        self.config = config
        # channels-last convolutions: 1.4–1.7× the throughput of the default layout on a CPU (measured)
        self.network = EncoderDecoder(config.width, config.n_blocks, device, config.phase_head)
        self.network = self.network.to(memory_format=torch.channels_last)
        self.register_buffer("probe", torch.as_tensor(probe).to(device=device, dtype=COMPLEX))
        self.register_buffer("input_scale", torch.tensor(config.input_scale, dtype=FLOAT, device=device))
        self.log_amplitude_scale = nn.Parameter(
            torch.zeros((), dtype=FLOAT, device=device), requires_grad=config.trainable_intensity_scale
        )

    @property
    def amplitude_factor(self) -> float:
        """The learned global amplitude factor exp(log_amplitude_scale) (1 when not trainable)."""
        return float(self.log_amplitude_scale.detach().exp())

    def object_patches(self, amplitudes: torch.Tensor) -> torch.Tensor:
        """Complex object patches (B, C, N, N) on the physical scale of the physics model.

        ``amplitudes`` are measured sqrt-counts (B, C, N, N). The returned patches O
        explain the data as counts = |F(probe·O)|² with the probe in counts units, i.e.
        intensity_scale·|F(probeGuess·O)|², so their amplitude is on the true object's scale.
        """
        batch, members, size = amplitudes.shape[0], amplitudes.shape[1], amplitudes.shape[-1]
        singles = (amplitudes * self.input_scale).reshape(batch * members, 1, size, size)
        amplitude, phase = (part.reshape(batch, members, size, size) for part in self.network(singles))
        return torch.polar(amplitude * torch.exp(self.log_amplitude_scale), phase)

    def constrained_patches(self, amplitudes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The patches (B, C, N, N) the physics sees: for C > 1 merged over the group, weighted by the probe's
        intensity (the region the probe constrains); for C = 1 the predicted patches themselves."""
        patches = self.object_patches(amplitudes)
        if self.config.channels > 1:
            patches = merge_and_extract(patches, offsets, self.config.merge_epsilon, probe_weight(self.probe))
        return patches

    def forward(self, amplitudes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Expected counts (B, C, N, N) for groups of amplitudes with member offsets (B, C, 2)."""
        return far_field_counts(self.constrained_patches(amplitudes, offsets), self.probe)


def _initialise(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Conv2d initialisation (Kaiming-uniform weights, uniform biases) drawn from ``generator``."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                bound = 1 / math.sqrt(layer.weight[0].numel())  # 1/sqrt(fan_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def build_model(config: PINNConfig, probe: np.ndarray, seed: int, device: str) -> PtychoPINN:
    """A freshly initialised model: weights drawn on the CPU from their own generator seeded with ``seed``.

    The same on every device, and independent of (and invisible to) torch's global random
    stream, which other threads or libraries (pty-chi seeds it) may be using.
    """
    with torch.random.fork_rng(devices=[]):  # the layers' own default initialisation draws from it
        model = PtychoPINN(config, probe, "cpu")
    _initialise(model, torch.Generator(device="cpu").manual_seed(seed))
    return model.to(torch.device(device))


def to_checkpoint(model: PtychoPINN, metadata: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint that loads with ``torch.load(weights_only=True)``: tensors and plain values only."""
    return {
        "format": CHECKPOINT_FORMAT,
        "status": "ok",
        "reason": None,
        "config": asdict(model.config),
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "metadata": metadata,
    }


def unusable_checkpoint(status: str, reason: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of a training that was skipped or failed: no weights, ``status`` and ``reason`` say why."""
    return {"format": CHECKPOINT_FORMAT, "status": status, "reason": reason, "config": None, "state_dict": {},
            "metadata": metadata}


def from_checkpoint(checkpoint: dict[str, Any], device: str) -> PtychoPINN:
    """Rebuild a trained model (eval mode) on ``device`` from :func:`to_checkpoint`'s output."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a PINN checkpoint of format {CHECKPOINT_FORMAT!r}; got {checkpoint.get('format')!r}")
    config = PINNConfig(**checkpoint["config"])
    state = checkpoint["state_dict"]
    model = PtychoPINN(config, state["probe"], device)
    model.load_state_dict(state)
    return model.eval()
