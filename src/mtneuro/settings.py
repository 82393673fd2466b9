"""Project settings (https://docs.kedro.org/en/stable/kedro_project_setup/settings.html)."""

from mtneuro.config.active import CONFIGURATION_HOOK
from mtneuro.config.loading import CONFIG_LOADER_ARGS as CONFIG_LOADER_ARGS  # Kedro reads it here
from mtneuro.config.loading import ProjectConfigLoader
from mtneuro.console import CONSOLE_HOOK
from mtneuro.device_check import DEVICE_CHECK_HOOK
from mtneuro.preflight import PREFLIGHT_HOOK
from mtneuro.stopping import STOP_ON_SIGTERM_HOOK
from mtneuro.timing import RUN_TIMES_HOOK
from mtneuro.tracking import MLFLOW_HOOK
from mtneuro.volumes.bossdb import BOSSDB_SESSION_HOOK

# Kedro calls the hooks of one event in the reverse of this order: the device check first, so that
# a run it stops opens no MLflow run and draws no progress bar; the time summary before the report path.
HOOKS = (
    CONFIGURATION_HOOK,
    PREFLIGHT_HOOK,
    CONSOLE_HOOK,
    MLFLOW_HOOK,
    STOP_ON_SIGTERM_HOOK,
    RUN_TIMES_HOOK,
    DEVICE_CHECK_HOOK,
    BOSSDB_SESSION_HOOK,
)

CONFIG_LOADER_CLASS = ProjectConfigLoader
