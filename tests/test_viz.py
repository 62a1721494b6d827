"""kedro viz serves the whole study graph: every registered pipeline and every layer."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from kedro_project import KEDRO, kedro_env

EXPECTED_PIPELINES = {"__default__", "simulation", "selection", "training", "reconstruction", "comparison"}
EXPECTED_LAYERS = {"raw", "intermediate", "primary", "feature", "models", "model_output", "reporting"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str, deadline: float, server: subprocess.Popen) -> dict:
    """Poll ``url`` until it answers (or the server dies, or the deadline passes)."""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"kedro viz exited early with {server.returncode}:\n{server.stdout.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(1)
    pytest.fail(f"kedro viz did not answer {url} in time")


@pytest.mark.e2e
def test_viz_api_lists_every_pipeline_and_layer(project_copy: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [KEDRO, "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port), "--env", "test"],
        cwd=project_copy, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        main = _get_json(f"http://127.0.0.1:{port}/api/main", time.monotonic() + 180, server)
    finally:
        server.terminate()
        server.wait(timeout=30)
    pipeline_ids = {pipeline["id"] for pipeline in main["pipelines"]}
    assert EXPECTED_PIPELINES <= pipeline_ids
    assert EXPECTED_LAYERS <= set(main["layers"])
    datasets = [node for node in main["nodes"] if node["type"] in {"data", "parameters"} and node["type"] == "data"]
    assert datasets and all(node.get("layer") for node in datasets), [
        node["name"] for node in datasets if not node.get("layer")
    ]
    tags = {tag["id"] for tag in main["tags"]}
    assert {"simulation", "selection", "training", "reconstruction", "comparison"} <= tags
