"""Project settings (https://docs.kedro.org/en/stable/kedro_project_setup/settings.html)."""

import warnings

from kedro.config import OmegaConfigLoader

from mtneuro.hooks import RunGridHook

# Kedro 1.x still calls omegaconf's deprecated register_new_resolver; the warning is not ours
# to act on and would greet every run.
warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)

HOOKS = (RunGridHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/paper and conf/tiny override single keys of conf/base, not whole blocks.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
