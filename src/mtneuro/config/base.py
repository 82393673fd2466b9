"""The base of every typed parameter block, and the error a bad configuration raises.

Every default lives in ``conf/base``: models here declare types and domains, not defaults, so a
key missing from the YAML is an error rather than a silent fallback to a value in code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from mtneuro.errors import MtneuroError


class StrictModel(BaseModel):
    """A parameter block: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, protected_namespaces=())


def unique_items(values: list) -> list:
    """A pydantic ``AfterValidator`` for lists whose entries must not repeat (methods, models, features)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {', '.join(repeated)}")
    return values


class ConfigurationError(MtneuroError, ValueError):
    """The configuration is invalid; the message names every bad key in full (``a.b.c``)."""


#: What a missing key's message says (no key has a default in code).
MISSING = "missing (every default lives in conf/base; add the key there or in your environment)"


def error_at(
    loc: tuple[str | int, ...], message: str, value: Any = None, *, kind: str = "value_error"
) -> InitErrorDetails:
    """One validation error at ``loc``, printed as ``message`` (a cross-key or registry check)."""
    return InitErrorDetails(type=PydanticCustomError(kind, "{message}", {"message": message}), loc=loc, input=value)


def allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a model accepts at ``loc``, a pydantic error location ending in the unknown key
    (for "unknown key" messages)."""
    current: Any = model
    for part in tuple(p for p in loc if _is_field(p))[:-1]:
        if current is None or not isinstance(current, type) or not issubclass(current, BaseModel):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _model_of(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


def _model_of(annotation: Any) -> Any:
    """The BaseModel inside an annotation (``X``, ``X | None``, ``dict[str, X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_field(part: Any) -> bool:
    """Pydantic adds union members (``constrained-int``, ``literal['auto']``) to error locations."""
    text = str(part)
    return isinstance(part, int) or not any(c in text for c in "-[]'(")


def _loc(prefix: Iterable[str], loc: tuple[Any, ...]) -> str:
    parts = [*prefix, *(str(p) for p in loc if _is_field(p))]
    return ".".join(p for p in parts if p)


def format_validation_error(
    error: ValidationError, prefix: Iterable[str] = (), model: type[BaseModel] | None = None
) -> str:
    """One line per problem: the full key, what is wrong, what is allowed."""
    problems: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    prefix = tuple(prefix)
    for item in error.errors(include_url=False):
        key = _loc(prefix, item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            allowed = allowed_keys(model, item["loc"])
            message = "unknown key" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        elif item["type"] == "missing":
            message = MISSING if message == "Field required" else message  # pydantic's, or a check's own
        elif "input" in item and item["type"] not in ("model_type", "dict_type", "unknown_key"):
            # an unknown key's value is never echoed: it may be a secret put in the wrong place
            got[key] = f" (got {item['input']!r})"
        if message not in problems.setdefault(key, []):
            problems[key].append(message)
    return "\n".join(f"  - {key}: {' | '.join(msgs)}{got.get(key, '')}" for key, msgs in problems.items())


def parse_block(model: type[StrictModel], raw: Any, key: str) -> Any:
    """Validate one parameter block, raising :class:`ConfigurationError` that names full keys."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(
            f"Invalid parameters{f' in {key!r}' if key else ''}:\n{format_validation_error(exc, (key,), model)}"
        ) from None
