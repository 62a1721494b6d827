"""Project settings: hooks, config loader and the session store."""

from kedro.config import OmegaConfigLoader

from fly64_kedro.hooks import GridHooks, LineageHooks, ProvenanceHooks, RunLockHooks
from fly64_kedro.input_check import MissingInputsHook

HOOKS = (GridHooks(), RunLockHooks(), MissingInputsHook(), LineageHooks(), ProvenanceHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # environments (test, paper, local) override single nested values, not whole sections
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
