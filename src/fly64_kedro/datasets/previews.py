"""Pictures for kedro-viz previews, drawn without pyplot (no backend or global state touched)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def complex_image_png(image: np.ndarray, title: str) -> bytes:
    """PNG bytes of a complex image's (H, W) amplitude and phase (rad) side by side."""
    figure = Figure(figsize=(8, 4), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, (name, part) in zip(axes, (("amplitude", np.abs(image)), ("phase (rad)", np.angle(image)))):
        shown = axis.imshow(part, cmap="gray" if name == "amplitude" else "twilight")
        axis.set_title(f"{title}: {name}")
        axis.axis("off")
        figure.colorbar(shown, ax=axis, shrink=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
