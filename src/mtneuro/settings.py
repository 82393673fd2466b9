"""Project settings (https://docs.kedro.org/en/stable/kedro_project_setup/settings.html)."""

from kedro.config import OmegaConfigLoader

from mtneuro.config.active import CONFIGURATION_HOOK

HOOKS = (CONFIGURATION_HOOK,)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/paper and conf/tiny override single keys of conf/base, not whole blocks.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
