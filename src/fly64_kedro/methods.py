"""The study's arms in one place: what each is, where its object is, how it is drawn and tabulated.

Comparison, figures and summary iterate ``study_methods``: the flat floor, the network of the
view, the gridsize-1 network on the view, one arm per iterative engine that runs, the truth
ceiling. Adding an engine adds its arm here by itself (``reconstruction.engines``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fly64_kedro.parameters.study import Cell, StudyDesign
from fly64_kedro.reconstruction.engines import ENGINES

ENGINE_COLOURS = ("C3", "C4", "C5", "C6", "C8")
"""Line colours of the iterative engines, in the order they are listed."""


@dataclass(frozen=True)
class Method:
    """One arm of a study cell."""

    name: str
    """Arm name: the ``method`` column of the table, and the object dataset's stem."""
    label: str
    """Name in figures and the summary."""
    description: str
    """What the arm is, for the summary."""
    colour: str
    """Matplotlib colour of its lines."""
    parameters: str | None
    """The parameter section that configures it (None for the controls)."""
    control: bool = False
    """A control (floor or ceiling) built by the comparison itself, drawn dotted."""
    iterative: bool = False
    """An iterative engine: the summary shows the network's difference to it."""

    def object_dataset(self, cell: Cell, study: StudyDesign) -> str | None:
        """The catalog dataset holding this arm's ``ObjectEstimate`` for a (dose, view, split) cell; None for a control.

        The gridsize-1 network on its own reference view is that view's network.
        """
        if self.control:
            return None
        if self.name == "pinn_gs1" and cell.view == study.gs1_reference_view:
            return cell.dataset("pinn_object")
        return cell.dataset(f"{self.name}_object")


FLAT_FLOOR = Method("flat_floor", "flat (floor)", "the flat object 1+0j every method starts from (floor)", "0.7",
                    None, control=True)
TRUTH_CEILING = Method("truth_ceiling", "truth (ceiling)",
                       "the truth on the support, the flat object elsewhere (ceiling)", "0.3", None, control=True)
PINN = Method("pinn", "network (this view)", "network trained on this (dose, view): gridsize 1 or 2 as the view says",
              "C0", "training")


def gs1_method(study: StudyDesign) -> Method:
    reference = study.gs1_reference_view
    return Method("pinn_gs1", f"network gs1 ({reference})",
                  f"gridsize-1 network of the {reference} view, run on this view's positions", "C2", "training")


def engine_method(engine: str, title: str, index: int) -> Method:
    return Method(engine, title, f"pty-chi {title} on this view's positions, from the flat object",
                  ENGINE_COLOURS[index % len(ENGINE_COLOURS)], f"reconstruction.options.{engine}", iterative=True)


def study_methods(study: StudyDesign, engines: list[str]) -> tuple[Method, ...]:
    """Every arm of the study's cells, in table order: floor, networks, iterative engines, ceiling."""
    iterative = [engine_method(name, ENGINES[name].title, index) for index, name in enumerate(engines)]
    return (FLAT_FLOOR, PINN, gs1_method(study), *iterative, TRUTH_CEILING)
