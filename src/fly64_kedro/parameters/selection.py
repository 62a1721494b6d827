"""Selection parameters (``params:selection``): the acceptance floor, minimum view sizes, the figure."""

from __future__ import annotations

from pydantic import Field

from fly64_kedro.parameters.study import _Strict


class SelectionFigureParams(_Strict):
    """The figure of kept positions over the object."""

    panel_size_in: float = Field(gt=0, le=20)
    """Side of one view's panel (inches)."""
    dpi: int = Field(ge=20, le=600)
    """Resolution of the saved PNG (dots per inch)."""
    disc_alpha: float = Field(gt=0, le=1)
    """Opacity of the probe-diameter discs."""


class SelectionParams(_Strict):
    """Minimum-spacing selection of the scan views (one strategy per dose and view, for both splits)."""

    bound_cap: float = Field(gt=0, le=1)
    """Cap of the geometry bound min(box area / (n π (S/2)²), cap) on the acceptance rate."""
    bound_factor: float = Field(gt=0, le=1)
    """Floor = max(floor_minimum, bound_factor · bound): the share of the bound a rule must reach."""
    floor_minimum: float = Field(ge=0, lt=1)
    """Absolute lower limit of the acceptance floor."""
    iterative_min_positions: int = Field(ge=1)
    """Fewest positions an iterative engine accepts; a smaller view is flagged and skipped downstream."""
    figure: SelectionFigureParams
    """Settings of ``selection_figure``."""
