"""Helpers for tests that run `kedro` in a subprocess on a temporary copy of the project, or read its conf.

Imported as `from kedro_project import …` (``tests/`` is on ``sys.path`` through its conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from kedro.pipeline import Pipeline

from fly64_kedro.pipeline_registry import create_pipelines
from fly64_kedro.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).parent / "kedro")
TEST_DATA = Path("data") / "test"
"""The test environment's data directory (``globals.data_root`` of conf/test), relative to a project."""


def make_project_copy(destination: Path) -> Path:
    """A runnable copy of the project under ``destination``: conf, pyproject, the empty data layers of a clone.

    The package itself is imported from the installed (editable) source, so only
    configuration and data live in the copy; runs there never touch the real ``data/``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf", ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir(exist_ok=True)
    (destination / "src").mkdir(exist_ok=True)  # kedro's startup requires the source dir to exist
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy2(PROJECT_ROOT / name, destination / name)
    for layer in sorted((PROJECT_ROOT / "data").glob("0*_*")):  # the layer folders a fresh clone has, empty
        (destination / "data" / layer.name).mkdir(parents=True, exist_ok=True)
    return destination


def kedro_env() -> dict[str, str]:
    """Environment for subprocess kedro runs: offline, headless, few threads."""
    env = dict(os.environ)
    env.update({"KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
                "PYTHONWARNINGS": "ignore::DeprecationWarning"})
    return env


def run_kedro(project: Path, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``kedro <args>`` in ``project``; on failure, fail the test with the log tail."""
    result = subprocess.run([KEDRO, *args], cwd=project, env=kedro_env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"kedro {' '.join(args)} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def latest_version(path: Path) -> Path:
    """The newest versioned file under a Kedro versioned dataset folder ``path``."""
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    if not versions:
        raise FileNotFoundError(f"no versions under {path}")
    return versions[-1] / path.name


def config_loader(env: str | None = None, project: Path = PROJECT_ROOT) -> OmegaConfigLoader:
    """The project's configuration in ``env`` as Kedro loads it (None: conf/base with conf/local)."""
    return OmegaConfigLoader(conf_source=str(project / "conf"), env=env, **CONFIG_LOADER_ARGS)


def project_parameters(env: str | None = None, project: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Raw parameters of ``env`` (None: conf/base with conf/local)."""
    return config_loader(env, project)["parameters"]


def project_pipelines(env: str | None = None, project: Path = PROJECT_ROOT) -> dict[str, Pipeline]:
    """The registered pipelines as ``kedro run --env <env>`` builds them."""
    return create_pipelines(project_parameters(env, project))


def readme_recipes() -> dict[str, str]:
    """The README's code blocks marked ``<!-- recipe: NAME -->``, by name."""
    text = (PROJECT_ROOT / "README.md").read_text()
    recipes = {}
    for part in text.split("<!-- recipe: ")[1:]:
        name, rest = part.split(" -->", 1)
        body = rest.split("```", 2)[1]
        recipes[name.strip()] = body.split("\n", 1)[1]
    return recipes
