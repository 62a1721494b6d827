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

    phase_head: Literal["linear", "tanh"]
    """Phase output: 'linear' (unbounded, rad) or 'tanh' (π·tanh, the original's, which can saturate for good)."""


class TrainingParams(_Strict):
    """Training, inference and stitching of the physics-informed network."""

    network: NetworkParams
    """Width and depth of the network."""

    loss: Literal["poisson", "mae"] = "poisson"
    """'poisson': negative log-likelihood of the counts; 'mae': mean absolute error of the amplitudes."""

    data: Literal["view", "regime"] = "regime"
    """Gridsize-2 training data: 'view' — groups of the view's own train positions (the original rule);
    'regime' — groups drawn from every train-split position whose members keep the view's spacing S."""

    gridsize2_start: Literal["gs1", "random"] = "gs1"
    """Where a gridsize-2 network starts: 'gs1' — the trained gridsize-1 network of the same dose (the study's gs1
    reference view; the same per-pattern network, trained on the train split only), fine-tuned with the overlap
    constraint for at most ``fine_tune_epochs``; 'random' — a fresh initialisation trained like the gridsize-1
    network."""

    fine_tune_epochs: int = Field(default=5, gt=0)
    """Most epochs of a gridsize-2 network that starts from the gridsize-1 network (no plateau to leave, so no
    ``min_epochs``)."""

    initialisations: int = Field(default=1, ge=1)
    """Differently initialised networks that train the first initialisation_epochs; the best by loss goes on."""

    initialisation_epochs: int = Field(default=1, ge=1)
    """Epochs every initialisation trains before the best is chosen."""

    max_epochs: int = Field(gt=0)
    """Most passes over the training groups (training usually stops earlier, see early_stopping_patience)."""

    batch_size: int = Field(gt=0)
    """Patterns per optimiser step (gridsize 2: batch_size / 4 groups), so every gridsize takes as many steps."""

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

    early_stopping_patience: int = Field(ge=1)
    """Stop after this many epochs without a relative improvement of min_improvement of the validation loss."""

    min_epochs: int = Field(default=1, ge=1)
    """No early stop before this epoch: the flat-object plateau a network starts on can be flat for several epochs."""

    min_improvement: float = Field(ge=0, lt=1)
    """Relative decrease of the validation loss that counts as an improvement."""

    validation_fraction: float = Field(ge=0, lt=0.5)
    """Fraction of the train positions held out (whole positions, never shared with a training group)."""

    groups_per_anchor: int = Field(gt=0)
    """Gridsize 2: distinct groups drawn per anchor ('view': from its K nearest neighbours, capped at
    K-choose-(C−1); 'regime': from the positions S to 2S away)."""

    trainable_intensity_scale: bool = True
    """Learn a global amplitude factor on top of the data's known intensity scale (the paper's trainable scale)."""

    merge_epsilon: float = Field(gt=0, le=1)
    """Floor of the summed probe-intensity weight when merging a group's patches (avoids 0/0 where no member is lit)."""

    stitch_min_weight: float = Field(gt=0, lt=1)
    """Stitched pixels whose summed probe intensity is below this fraction of one probe's peak read 1+0j (unlit)."""

    canvas_margin_px: int = Field(ge=0)
    """Margin of the stitched canvas around the outermost patches (px)."""

    inference_batch_size: int = Field(gt=0)
    """Groups per forward pass at inference."""

    device: str = Field(pattern=r"^(cpu|cuda(:\d+)?)$")
    """Torch device: 'cpu', 'cuda' or 'cuda:N'."""

    progress_bar: bool = True
    """Show a progress bar over the epochs of each training (on a terminal; log files get one line per job)."""

    @model_validator(mode="after")
    def _initialisation_within_budget(self) -> TrainingParams:
        if self.initialisations > 1 and self.initialisation_epochs >= self.max_epochs:
            raise ValueError(f"initialisation_epochs ({self.initialisation_epochs}) must be below max_epochs "
                             f"({self.max_epochs})")
        return self

    @model_validator(mode="after")
    def _schedule_floor(self) -> TrainingParams:
        if self.lr_min > self.learning_rate:
            raise ValueError(f"lr_min ({self.lr_min}) must not exceed learning_rate ({self.learning_rate})")
        return self
