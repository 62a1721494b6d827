"""Shared fixtures: a temporary copy of the project, and one test-environment study per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro_project import make_project_copy, run_kedro


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh project copy for one test."""
    return make_project_copy(tmp_path / "project")


@pytest.fixture(scope="session")
def study_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole study in the ``test`` environment, run once per test session.

    Tests that only read outputs share it; tests that run a pipeline again do so in it.
    """
    project = make_project_copy(tmp_path_factory.mktemp("study") / "project")
    run_kedro(project, "run", "--env", "test")
    return project

