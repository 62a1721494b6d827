"""Kedro hooks of the project."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from fly64_kedro.pipelines.jobs import remember_config_loader


class GridHooks:
    """Hands the run's config loader (with its ``--env``) to the pipeline registry."""

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001
        remember_config_loader(context.config_loader)
