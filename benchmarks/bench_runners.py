"""Runner overhead: one pipeline of the test environment under each runner, same machine, same run.

Each runner runs ``kedro run --env test --pipelines <pipeline>`` in its own temporary project
copy, ``--repeats`` times. Printed per runner: the median wall time of the whole command, the
median pipeline time from the run's provenance record (``wall_seconds``: before to after the
pipeline, so for the Dask runner it includes starting and closing its LocalCluster) and the
median sum of node seconds; ratios are against ``SequentialRunner``.

    OMP_NUM_THREADS=2 python benchmarks/bench_runners.py [--repeats 3] [--pipeline simulation]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kedro_project import TEST_DATA, latest_version, make_project_copy, run_kedro

RUNNERS = ("SequentialRunner", "ThreadRunner", "ParallelRunner", "fly64_kedro.runners.DaskRunner")


def measure(project: Path, runner: str, pipeline: str) -> tuple[float, float, float]:
    """(command seconds, pipeline seconds, sum of node seconds) of one run."""
    start = time.perf_counter()
    run_kedro(project, "run", "--env", "test", "--pipelines", pipeline, "--runner", runner)
    command = time.perf_counter() - start
    record = json.loads(latest_version(project / TEST_DATA / "08_reporting" / "run_provenance.json").read_text())
    return command, record["wall_seconds"], record["node_seconds_total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline", default="simulation")
    args = parser.parse_args()

    medians = {}
    with tempfile.TemporaryDirectory() as tmp:
        for runner in RUNNERS:
            project = make_project_copy(Path(tmp) / runner)
            runs = [measure(project, runner, args.pipeline) for _ in range(args.repeats)]
            medians[runner] = [statistics.median(column) for column in zip(*runs)]
    reference = medians["SequentialRunner"]
    print(f"pipeline '{args.pipeline}', --env test, {args.repeats} runs each; ratio = runner / SequentialRunner")
    print(f"{'runner':32s} {'command s':>10s} {'ratio':>6s} {'pipeline s':>11s} {'ratio':>6s} {'node s':>8s} {'ratio':>6s}")
    for runner, values in medians.items():
        cells = "".join(f" {value:10.2f} {value / ref:6.2f}" for value, ref in zip(values, reference))
        print(f"{runner:32s}{cells}")


if __name__ == "__main__":
    main()
