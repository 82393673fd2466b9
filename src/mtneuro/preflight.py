"""Checks before a run starts: every dataset the selected pipeline reads but does not write must be
on disk already, else the run stops at once and says which pipeline writes it.

Without this, ``kedro run --pipelines=reporting`` on a fresh data root gets Kedro's ``DatasetError``
from the first node that loads a task table, minutes into the run, naming a file but not how to
make it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline


class MissingInputsError(RuntimeError):
    """The selected pipeline reads datasets that no earlier run has written."""


def missing_inputs(pipeline: Pipeline, catalog: Any) -> list[str]:
    """Free inputs of ``pipeline`` (parameters aside) whose catalog dataset does not exist."""
    missing = []
    for name in sorted(pipeline.inputs()):
        if name == "parameters" or name.startswith("params:"):
            continue
        try:
            present = bool(catalog.exists(name))
        except Exception:  # cannot tell (e.g. a remote store): leave it to Kedro's error at load time
            present = True
        if not present:
            missing.append(name)
    return missing


def _base_name(name: str) -> str:
    return name.split("@", 1)[0]


def missing_inputs_message(missing: list[str], registry: Mapping[str, Pipeline], data_root: str) -> str:
    """Each missing dataset with the smallest registered pipeline that writes it (a stage rather
    than ``__default__``; transcoded entries such as ``x@png`` and ``x@matplotlib`` share a file)."""
    writes = {key: {_base_name(o) for o in p.all_outputs()} for key, p in registry.items()}
    sizes = {key: len(p.nodes) for key, p in registry.items()}
    by_pipeline: dict[str, list[str]] = {}
    for name in missing:
        writers = [key for key, outputs in writes.items() if _base_name(name) in outputs]
        by_pipeline.setdefault(min(writers, key=lambda k: (sizes[k], k)) if writers else "", []).append(name)
    lines = [f"This run reads {len(missing)} dataset(s) that are not on disk under {data_root}/:"]
    for pipeline_name, names in sorted(by_pipeline.items()):
        origin = (
            f"written by `kedro run --pipelines={pipeline_name}`"
            if pipeline_name
            else "no registered pipeline writes it"
        )
        lines.append(f"  - {', '.join(names)} ({origin})")
    to_run = sorted(p for p in by_pipeline if p)
    if to_run:
        lines.append(
            f"Run `kedro run --pipelines={','.join(to_run)}` first (or the whole project with `kedro run`), "
            "or point `--params data_root=...` at the folder an earlier run wrote."
        )
    return "\n".join(lines)


class PreflightHook:
    """Stops a run whose inputs are missing before any node runs (see the module docstring)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        missing = missing_inputs(pipeline, catalog)
        if not missing:
            return
        from kedro.framework.project import pipelines as registry

        params = run_params.get("runtime_params") or {}
        data_root = str(params.get("data_root") or "data")  # the catalog's default root
        raise MissingInputsError(missing_inputs_message(missing, dict(registry), data_root))


PREFLIGHT_HOOK = PreflightHook()
