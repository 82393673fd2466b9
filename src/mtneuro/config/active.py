"""Which configuration the pipelines are built from.

``register_pipelines`` takes no arguments, so the session's configuration reaches it through
:class:`ConfigurationHook`: Kedro calls ``after_context_created`` before it first reads the
pipelines, and the hook keeps the context's (public) config loader, which knows the
``--conf-source``, ``--env`` and ``--params`` of the run. Outside a session (``kedro registry
list``, plain imports) the configuration is ``conf/`` of the working directory with
``KEDRO_ENV`` or the default run environment.
"""

from __future__ import annotations

from kedro.config import AbstractConfigLoader
from kedro.framework.hooks import hook_impl

from mtneuro.config.base import ConfigurationError
from mtneuro.config.loading import (
    check_environment,
    config_loader,
    default_conf_source,
    default_environment,
    parameters_from_loader,
)
from mtneuro.config.project import ProjectParameters


class ConfigurationHook:
    """Hands the session's config loader to ``register_pipelines`` and checks it before any node runs."""

    def __init__(self) -> None:
        self.loader: AbstractConfigLoader | None = None

    @hook_impl(tryfirst=True)  # before any other hook reads context.params (which builds the pipelines)
    def after_context_created(self, context) -> None:
        loader = context.config_loader
        check_environment(loader.conf_source, loader.env)
        self.loader = loader


#: The instance registered in ``settings.HOOKS``.
CONFIGURATION_HOOK = ConfigurationHook()


def active_parameters() -> ProjectParameters:
    """The typed parameters of the running session, or of ``conf/`` outside one."""
    loader = CONFIGURATION_HOOK.loader
    if loader is None:
        loader = config_loader(default_conf_source(), default_environment())
    try:
        return parameters_from_loader(loader)
    except ConfigurationError as exc:
        env = getattr(loader, "env", None)
        raise ConfigurationError(
            f"{exc}\n(environment: {env or 'base'}, configuration: {loader.conf_source})"
        ) from None
