"""Reading the active configuration (``--env``, ``--params``, ``--conf-source``) into typed models.

``register_pipelines`` builds the run grids from :func:`active_parameters`; Kedro's own
parameter validation then hands every node its typed block (nodes annotate ``params:`` inputs
with the models of :mod:`mtneuro.config`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import AbstractConfigLoader, MissingConfigException, OmegaConfigLoader
from omegaconf import DictConfig, ListConfig, OmegaConf

from mtneuro.config.base import ConfigurationError, parse_block
from mtneuro.config.project import ProjectParameters


class ProjectConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader, except that ``conf/local/credentials*`` applies in every environment.

    Kedro reads ``conf/local`` only for the default run environment, so ``--env=paper`` would
    silently drop a user's BossDB host and token; credentials are the user's, not the profile's.
    """

    LOCAL_ENV = "local"
    #: Environments layered on another environment instead of straight on ``conf/base``:
    #: base, then the parent, then the environment itself (soft merges), then ``--params``.
    ENVIRONMENT_PARENTS = {"paper_dry": "paper"}  # the paper's dry run: a few keys over conf/paper

    def _read_raw_config(self, key: str) -> Any:
        base, env, base_path, env_path, processed = super()._read_raw_config(key)
        parent = self.ENVIRONMENT_PARENTS.get(self.env or "")
        if parent is None:
            return base, env, base_path, env_path, processed
        parent_path = self._get_conf_env_path(parent)
        patterns = [*self.config_patterns[key]]
        parent_configs = self._read_dir_configs(parent_path, patterns, key, processed, key == "credentials")
        layered = self._merge_configs(
            self._merge_and_resolve(key, base), self._merge_and_resolve(key, parent_configs), key, parent_path
        )
        return {Path(parent_path): OmegaConf.create(layered)}, env, base_path, env_path, processed

    def __getitem__(self, key: str) -> dict[str, Any]:
        value = super().__getitem__(key)
        if key != "credentials" or self.env in (None, self.LOCAL_ENV):
            return value
        local = Path(str(self.conf_source)) / self.LOCAL_ENV
        files = (
            sorted(f for f in local.glob("credentials*") if f.suffix in (".yml", ".yaml", ".json"))
            if local.is_dir()
            else []
        )
        merged: DictConfig | ListConfig = OmegaConf.create(dict(value))
        for path in files:
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        return dict(OmegaConf.to_container(merged, resolve=True))  # type: ignore[arg-type]


#: The arguments of the project's config loader (``CONFIG_LOADER_ARGS`` of ``mtneuro/settings.py``).
CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments (conf/paper, conf/tiny, conf/local) override single keys of conf/base, not whole blocks.
    # conf/<env>/dask.yml: the cluster of mtneuro.runners.DaskRunner; mlflow.yml: experiment tracking.
    "config_patterns": {"dask": ["dask*", "dask*/**"], "mlflow": ["mlflow*", "mlflow*/**"]},
    "merge_strategy": {"parameters": "soft", "catalog": "soft", "credentials": "soft"},
}


def available_environments(conf_source: str | Path) -> list[str]:
    root = Path(conf_source)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def check_environment(conf_source: str | Path, env: str | None) -> None:
    """A clear error for ``--env=<typo>`` instead of a missing-file error from deep inside Kedro."""
    root = Path(conf_source)
    if not root.is_dir():
        if root.exists():  # an archive (.tar.gz / .zip): Kedro reads it itself
            return
        raise ConfigurationError(f"Configuration folder {str(root)!r} does not exist (check --conf-source)")
    if env and not (root / env).is_dir():
        envs = ", ".join(e for e in available_environments(root) if e != "base")
        raise ConfigurationError(f"Environment {env!r} does not exist in {str(root)!r}; available environments: {envs}")


def config_loader(
    conf_source: str | Path, env: str | None = None, runtime_params: Mapping[str, Any] | None = None
) -> AbstractConfigLoader:
    """The project's config loader (the class and arguments ``mtneuro/settings.py`` hands Kedro),
    the same whether or not Kedro has configured the project in this process."""
    check_environment(conf_source, env)
    return ProjectConfigLoader(
        conf_source=str(conf_source), env=env, runtime_params=dict(runtime_params or {}), **CONFIG_LOADER_ARGS
    )


def parse_parameters(raw: Mapping[str, Any]) -> ProjectParameters:
    """Validate merged raw parameters; :class:`ConfigurationError` names every bad key in full."""
    return parse_block(ProjectParameters, dict(raw), "")


def parameters_from_loader(loader: AbstractConfigLoader) -> ProjectParameters:
    try:
        raw = loader["parameters"]
    except MissingConfigException as exc:
        raise ConfigurationError(f"No parameters found in {loader.conf_source!r}: {exc}") from None
    return parse_parameters(raw)


def load_parameters(
    conf_source: str | Path, env: str | None = None, runtime_params: Mapping[str, Any] | None = None
) -> ProjectParameters:
    """The typed parameters of ``conf_source`` in environment ``env`` with ``runtime_params`` applied."""
    return parameters_from_loader(config_loader(conf_source, env, runtime_params))


def default_conf_source() -> Path:
    """``settings.CONF_SOURCE`` of the project in the working directory (how the Kedro CLI runs)."""
    from kedro.framework.project import settings

    return Path.cwd() / settings.CONF_SOURCE


def default_environment() -> str | None:
    return os.environ.get("KEDRO_ENV") or str(CONFIG_LOADER_ARGS["default_run_env"])
