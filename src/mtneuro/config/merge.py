"""The one deep merge of layered parameter blocks, with where every value came from.

Some blocks are partial: ``segmentation.model_settings.<model>.train`` over ``segmentation.train``,
``segmentation.training`` and ``classification.hardware`` over ``training``, a Task 1 method's
blocks over the blocks it inherits, ``classification.method_overrides.<method>`` last. Such a block
is a plain mapping with no model of its own: it is merged over its base here, key by key, and
the result is validated with the one full model (``TrainSettings``, ``TrainingParameters``, a
method's ``Settings``). :class:`Origins` records, for every leaf, the YAML key path of the layer
that set it, so an error names the key where the bad value was written
(``segmentation.model_settings.vnet.train.epochs``, not the merged ``train.epochs``), and a
misspelt key in an override is an unknown key at its own path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

from mtneuro.config.base import MISSING, ConfigurationError, allowed_keys, error_at, format_validation_error

M = TypeVar("M", bound=BaseModel)
#: A key path inside a mapping, or in the YAML (relative to the block being checked).
KeyPath = tuple[str, ...]
#: Leaf key path of a merged mapping -> the YAML key path that set its value.
Origins = dict[KeyPath, KeyPath]
#: A partial block: any subset of the keys of the block it overrides (validated once merged).
Override = dict[str, Any]


@dataclass(frozen=True)
class Layer:
    """One mapping of a merge, and the YAML key path it was read from."""

    values: Mapping[str, Any]
    at: KeyPath


def deep_merge(
    base: Mapping[str, Any], override: Mapping[str, Any], *, origin: Origins | None = None, at: KeyPath = ()
) -> dict[str, Any]:
    """A new mapping: ``base`` with ``override``'s keys replaced, nested mappings merged key by
    key (a list or ``null`` replaces the whole value). Where ``origin`` is given, every leaf
    ``override`` sets is recorded there as set by ``at`` + its key path (and the leaves of a
    value it replaces are dropped)."""
    return _merge(base, override, origin, at, ())


def _merge(
    base: Mapping[str, Any], override: Mapping[str, Any], origin: Origins | None, at: KeyPath, path: KeyPath
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        here, source = (*path, str(key)), (*at, str(key))
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value, origin, source, here)
            continue
        merged[key] = value
        if origin is not None:
            for stale in [p for p in origin if p[: len(here)] == here]:
                del origin[stale]
            origin.update(_leaves(value, here, source))
    return merged


def _leaves(value: Any, path: KeyPath, at: KeyPath) -> Origins:
    """Every leaf of ``value`` (at ``path``), set by ``at`` + its key path."""
    if isinstance(value, Mapping) and value:
        found: Origins = {}
        for key, item in value.items():
            found.update(_leaves(item, (*path, str(key)), (*at, str(key))))
        return found
    return {path: at}


def merge_layers(layers: Iterable[Layer]) -> tuple[dict[str, Any], Origins]:
    """The layers merged in order (most general first), and the origin of every leaf."""
    merged: dict[str, Any] = {}
    origin: Origins = {}
    for layer in layers:
        merged = deep_merge(merged, layer.values, origin=origin, at=layer.at)
    return merged, origin


def origin_of(loc: Sequence[Any], origin: Origins, default: KeyPath) -> tuple[str | int, ...]:
    """The YAML location of a merged key: the layer that set it (or its nearest set parent);
    a key no layer set (a missing one) belongs at ``default``."""
    parts = tuple(str(p) for p in loc)
    for n in range(len(parts), 0, -1):
        if parts[:n] in origin:
            return (*origin[parts[:n]], *loc[n:])
    return (*default, *loc)


def merged_errors(
    model: type[BaseModel], layers: Sequence[Layer], *, default: KeyPath | None = None, note: str = ""
) -> list[InitErrorDetails]:
    """What is wrong with the merged ``layers`` as ``model``, each problem at the YAML key that
    set the bad value (a missing key at ``default``, the first layer's path unless given);
    ``note`` prefixes the messages of bad values (e.g. "with this model's overrides")."""
    return _validate(model, layers, default, note)[1]


def resolve(
    model: type[M], layers: Sequence[Layer], *, what: str, default: KeyPath | None = None, block: KeyPath = ()
) -> M:
    """The merged ``layers`` as ``model``; else a :class:`ConfigurationError` about ``what``
    naming each bad key where it was set (the layers' paths are inside ``block``)."""
    value, errors = _validate(model, layers, default, "")
    if value is None:
        error = ValidationError.from_exception_data(model.__name__, errors)
        raise ConfigurationError(f"Invalid {what}:\n{format_validation_error(error, block)}")
    return value


def _validate(
    model: type[M], layers: Sequence[Layer], default: KeyPath | None, note: str
) -> tuple[M | None, list[InitErrorDetails]]:
    data, origin = merge_layers(layers)
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        found = exc.errors(include_url=False)
    default = default if default is not None else (layers[0].at if layers else ())
    errors: list[InitErrorDetails] = []
    for item in found:
        loc = origin_of(item["loc"], origin, default)
        if item["type"] == "extra_forbidden":
            keys = allowed_keys(model, item["loc"])
            message = "unknown key" + (f"; allowed keys here: {', '.join(keys)}" if keys else "")
            errors.append(error_at(loc, message, kind="unknown_key"))
        elif item["type"] == "missing":
            errors.append(error_at(loc, MISSING, kind="missing"))
        else:
            errors.append(error_at(loc, f"{note}: {item['msg']}" if note else item["msg"], item.get("input")))
    return None, errors
