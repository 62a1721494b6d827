"""PINN training and inference parameters (``params:training``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fly64_kedro.parameters.study import _Strict


class NetworkParams(_Strict):
    """Shape of the encoder–decoder (PtychoPINN's CNN without skip connections)."""

    width: int = Field(gt=0, le=512)
    """Filters of the first encoder block; block i has width·2^i (the paper's N = 64 network: 64)."""

    n_blocks: int = Field(ge=1, le=6)
    """Encoder blocks (Conv-ReLU-Conv-ReLU-MaxPool), mirrored by each decoder; N must be divisible by 2^n_blocks."""


class TrainingParams(_Strict):
    """Training, inference and stitching of the physics-informed network."""

    network: NetworkParams
    """Width and depth of the network."""

    loss: Literal["poisson", "mae"] = "poisson"
    """'poisson': negative log-likelihood of the counts; 'mae': mean absolute error of the amplitudes."""

    epochs: int = Field(gt=0)
    """Passes over the training groups."""

    batch_size: int = Field(gt=0)
    """Groups per optimiser step."""

    learning_rate: float = Field(gt=0, le=1)
    """Initial Adam learning rate."""

    lr_schedule: Literal["plateau", "constant"] = "plateau"
    """'plateau': multiply the rate by ``lr_factor`` after ``lr_patience`` epochs without improvement."""

    lr_factor: float = Field(gt=0, lt=1)
    """Factor of each plateau reduction."""

    lr_patience: int = Field(ge=0)
    """Epochs without improvement of the monitored loss before a reduction."""

    lr_min: float = Field(ge=0)
    """Floor of the learning rate."""

    early_stopping_patience: int | None = Field(default=None, ge=1)
    """Stop after this many epochs without improvement of the monitored loss; null trains every epoch."""

    validation_fraction: float = Field(ge=0, lt=0.5)
    """Fraction of the groups held out to monitor the loss (validation loss drives the schedule)."""

    groups_per_anchor: int = Field(gt=0)
    """Gridsize 2: distinct groups drawn per anchor from its K nearest neighbours (capped at K-choose-(C−1))."""

    trainable_intensity_scale: bool = True
    """Learn a global amplitude factor on top of the data's known intensity scale (the paper's trainable scale)."""

    merge_epsilon: float = Field(gt=0, le=1)
    """Floor of the overlap count when merging a group's patches (avoids 0/0 where no patch reaches)."""

    stitch_crop_fraction: float = Field(gt=0, le=1)
    """Side of the central region of each predicted patch kept for stitching, as a fraction of N."""

    canvas_margin_px: int = Field(ge=0)
    """Margin of the stitched canvas around the outermost patches (px)."""

    inference_batch_size: int = Field(gt=0)
    """Groups per forward pass at inference."""

    device: str = Field(pattern=r"^(cpu|cuda(:\d+)?)$")
    """Torch device: 'cpu', 'cuda' or 'cuda:N'."""

    progress_bar: bool = True
    """Show a progress bar over the epochs of each training (on a terminal; log files get one line per job)."""

    @model_validator(mode="after")
    def _schedule_floor(self) -> TrainingParams:
        if self.lr_min > self.learning_rate:
            raise ValueError(f"lr_min ({self.lr_min}) must not exceed learning_rate ({self.learning_rate})")
        return self
