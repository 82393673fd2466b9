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
    return name.split("@", 1)[0]  # transcoded entries (``x@png``, ``x@matplotlib``) share one file


def producers(name: str, registry: Mapping[str, Pipeline]) -> str | None:
    """The smallest registered pipeline that writes ``name`` (a stage rather than ``__default__``)."""
    base = _base_name(name)
    writers = [(len(p.nodes), key) for key, p in registry.items() if base in {_base_name(o) for o in p.all_outputs()}]
    return min(writers)[1] if writers else None


def missing_inputs_message(missing: list[str], registry: Mapping[str, Pipeline], data_root: str) -> str:
    by_pipeline: dict[str, list[str]] = {}
    for name in missing:
        by_pipeline.setdefault(producers(name, registry) or "", []).append(name)
    lines = [f"This run reads {len(missing)} dataset(s) that are not on disk under {data_root}/:"]
    for pipeline_name, names in sorted(by_pipeline.items()):
        origin = f"written by `kedro run --pipelines={pipeline_name}`" if pipeline_name else "written by no pipeline"
        lines.append(f"  - {', '.join(names)} ({origin})")
    writers = sorted(p for p in by_pipeline if p)
    if writers:
        lines.append(
            f"Run `kedro run --pipelines={','.join(writers)}` first (or the whole project with `kedro run`), "
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
