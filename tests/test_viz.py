"""kedro viz serves the whole study graph: every registered pipeline and every layer."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from kedro_project import KEDRO, kedro_env

EXPECTED_PIPELINES = {"__default__", "simulation", "selection", "training", "reconstruction", "comparison", "export"}
EXPECTED_LAYERS = {"raw", "intermediate", "primary", "feature", "models", "model_output", "reporting", "export"}

VIZ_PORTS = range(30000, 49147)
"""Ports tried for the server: kedro-viz refuses a start port above 49151 and itself tries the next four."""
SERVED_AT = re.compile(r"http://127\.0\.0\.1:(\d+)/")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_start_ports(count: int) -> list[int]:
    """``count`` free ports inside kedro-viz's accepted range, spread out from a per-process start."""
    span = len(VIZ_PORTS)
    start = os.getpid() * 37 % span
    candidates = (VIZ_PORTS[(start + 97 * step) % span] for step in range(span))
    return [port for port in candidates if _port_is_free(port)][:count]


def _lines(stream) -> queue.Queue:
    """The stream's lines, read in a thread (the server keeps its stdout open)."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _served_port(lines: queue.Queue, deadline: float) -> tuple[int | None, str]:
    """The port kedro-viz says it serves on (it moves past a busy port by itself), and its output so far."""
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        match = SERVED_AT.search("".join(seen[-3:]))
        if match:
            return int(match.group(1)), "".join(seen)
    return None, "".join(seen)


def _get_json(url: str, deadline: float) -> dict:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(1)
    pytest.fail(f"kedro viz did not answer {url} in time")


def _stop_group(server: subprocess.Popen) -> None:
    """Stop ``kedro viz`` and every process of its group (the server it spawns would outlive it otherwise)."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)  # a child still in the group after its parent exited


def _viz_main(project: Path) -> dict:
    """``/api/main`` of a kedro-viz server on the test environment; retried on another port after a clash."""
    outputs = []
    for start_port in _free_start_ports(3):
        server = subprocess.Popen(
            [KEDRO, "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(start_port), "--env", "test"],
            cwd=project, env={**kedro_env(), "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group: the server process kedro-viz spawns is stopped with it
        )
        try:
            deadline = time.monotonic() + 240
            port, output = _served_port(_lines(server.stdout), deadline)
            if port is not None:
                return _get_json(f"http://127.0.0.1:{port}/api/main", deadline)
            outputs.append(output[-3000:])
        finally:
            _stop_group(server)
    pytest.fail("kedro viz did not start on any of three free ports:\n" + "\n---\n".join(outputs))


@pytest.mark.e2e
def test_viz_api_lists_every_pipeline_and_layer(project_copy: Path) -> None:
    main = _viz_main(project_copy)
    pipeline_ids = {pipeline["id"] for pipeline in main["pipelines"]}
    assert EXPECTED_PIPELINES <= pipeline_ids
    assert EXPECTED_LAYERS <= set(main["layers"])
    datasets = [node for node in main["nodes"] if node["type"] == "data"]
    assert datasets and all(node.get("layer") for node in datasets), [
        node["name"] for node in datasets if not node.get("layer")
    ]
    tags = {tag["id"] for tag in main["tags"]}
    assert {"simulation", "selection", "training", "reconstruction", "comparison", "export"} <= tags
