"""Project runners: ``kedro run --runner fly64_kedro.runners.DaskRunner``."""

from fly64_kedro.runners.dask_runner import DaskRunner, InMemoryHandoffError

__all__ = ["DaskRunner", "InMemoryHandoffError"]
