"""Parameters of the Dask runner (``params:runner``); read by the runner, not by nodes."""

from __future__ import annotations

from pydantic import Field

from fly64_kedro.parameters.study import _Strict


class LocalClusterParams(_Strict):
    """The ``distributed.LocalCluster`` started when no scheduler address is given."""

    n_workers: int | None = Field(default=None, ge=1)
    """Worker processes (or threads, see ``processes``); None lets Dask pick from the CPU count."""
    threads_per_worker: int = Field(default=1, ge=1)
    """Threads per worker, i.e. nodes one worker runs at once."""
    processes: bool = True
    """True: each worker is a separate process (nodes and catalog are pickled, as on a cluster)."""
    dashboard_address: str | None = None
    """Address of the Dask dashboard (e.g. ':8787', needs bokeh); None starts none."""


class DaskRunnerParams(_Strict):
    """Where ``fly64_kedro.runners.DaskRunner`` sends its tasks (``params:runner.dask``)."""

    scheduler_address: str | None = None
    """Address of a running Dask scheduler (e.g. 'tcp://10.0.0.5:8786'); None → a LocalCluster.
    The runner argument ``scheduler_address`` and the environment variable
    ``FLY64_DASK_SCHEDULER`` take precedence, in that order."""
    local_cluster: LocalClusterParams = LocalClusterParams()
    """The local cluster used when no scheduler address is given."""


class RunnerParams(_Strict):
    """Runner settings (``params:runner``)."""

    dask: DaskRunnerParams = DaskRunnerParams()
    """Settings of the Dask runner."""
