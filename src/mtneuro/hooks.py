"""Project hooks."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from mtneuro import run_grid

log = logging.getLogger(__name__)


class RunGridHook:
    """Builds the run grids from the parameters of the active environment (``--env``, ``--params``)."""

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001 - Kedro's signature
        if run_grid.set_active_parameters(context.params):
            from kedro.framework.project import pipelines

            log.debug("Parameters changed since the pipelines were built; rebuilding the run grids")
            requested = pipelines._requested_pipelines  # noqa: SLF001 - keep Kedro's selective loading
            pipelines.configure(pipelines._pipelines_module)  # noqa: SLF001
            pipelines.set_requested(requested)
