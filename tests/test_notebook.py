"""The results notebook runs headless against a `--env test` study and raises no error."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from kedro_project import PROJECT_ROOT, kedro_env
from nbclient import NotebookClient


@pytest.mark.e2e
def test_results_notebook_executes(study_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "study_results.ipynb", as_version=4)
    (study_run / "notebooks").mkdir(exist_ok=True)
    for key, value in {**kedro_env(), "KEDRO_ENV": "test"}.items():
        monkeypatch.setenv(key, value)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(study_run / "notebooks")}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 4, "the notebook should show the figures and one reconstruction"
    markdown = "".join(output.get("data", {}).get("text/markdown", "") for output in outputs)
    assert "## test split" in markdown and "pinn − lsqml phase ms_ssim" in markdown
