"""The registry of Task 1 methods: every method is defined once, by its module in this package.

A :class:`MethodSpec` carries what the project needs to know about a method: the name used in
parameters, namespaces and tables (``classification.methods``, ``classification.<method>....``),
the label reports print (the paper's Table 1 row), its kind (which training node the pipeline
wires and whether a linear read-out is fitted on its frozen representation), the parameter
blocks its settings inherit, the model of its resolved settings, and the function that trains
it. Adding a method is one module here (discovered by :data:`METHODS`) plus its name in
``classification.methods`` (and its settings block, if it has settings of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

from mtneuro.config.base import MISSING, ConfigurationError, error_at, format_validation_error
from mtneuro.config.classification import ClassificationParameters
from mtneuro.config.merge import Layer, merged_errors, resolve
from mtneuro.plugins import Registry, UnknownPluginError, unknown_name_error

#: supervised: the network's own linear head classifies; ssl and decomposition: frozen
#: representations read out by a linear classifier (``classification.readout``).
MethodKind = Literal["supervised", "ssl", "decomposition"]
#: Kinds trained as ResNet-18 networks by :func:`fit_network` (settings include ``augmentation``).
NETWORK_KINDS: tuple[MethodKind, ...] = ("supervised", "ssl")


@dataclass(frozen=True)
class MethodSpec:
    """One Task 1 method."""

    name: str
    #: Row label in reports (the paper's Table 1).
    label: str
    kind: MethodKind
    #: Position in tables (the paper's order).
    order: int
    #: Parameter blocks of ``classification`` its settings merge, most general first; the last
    #: one is the method's own block (``method_overrides.<name>`` is applied after them).
    inherits: tuple[str, ...]
    #: The model of the resolved settings (:meth:`ClassificationParameters.method_settings`).
    settings: type[BaseModel]
    #: What trains it: :func:`fit_network` for network kinds; for decompositions
    #: ``fit(flat_images (N, P) float64, settings, seed) -> (fitted estimator, loss curve)``.
    trainer: Callable[..., Any]
    #: Network kinds trained by :func:`fit_network`: the method's Lightning module (a subclass of
    #: :class:`mtneuro.classification_methods._network.NetworkLearner` with its loss and heads),
    #: as ``"package.module:Class"``, imported when it trains (checking the parameters imports
    #: no torch).
    network: str | None = None

    def __post_init__(self) -> None:
        if not self.inherits:
            raise ValueError(f"Task 1 method {self.name!r} inherits no parameter block")
        if self.network is not None and (not self.is_network or ":" not in self.network):
            raise ValueError(
                f"Task 1 method {self.name!r}: a network method names its module as 'package.module:Class'"
                f" (got {self.network!r}, kind {self.kind!r})"
            )

    @property
    def block(self) -> str:
        """The method's own parameter block (``classification.<block>``)."""
        return self.inherits[-1]

    @property
    def is_network(self) -> bool:
        return self.kind in NETWORK_KINDS

    @property
    def needs_readout(self) -> bool:
        """Whether a linear classifier is fitted on the frozen representation."""
        return self.kind != "supervised"


def fit_network(*args: Any, **kwargs: Any) -> Any:
    """:func:`mtneuro.classification_methods._network.fit_network`, imported when a network
    trains: the registry is read to check the parameters before a run starts, and importing
    Lightning takes seconds."""
    from mtneuro.classification_methods import _network

    return _network.fit_network(*args, **kwargs)


#: Every Task 1 method, discovered from the modules of this package.
METHODS: Registry[MethodSpec] = Registry(
    "Task 1 method",
    "mtneuro.classification_methods",
    plural="methods",
    skip=frozenset({"base"}),
    order=lambda name, spec: (spec.order, name),
)
#: The error of an unknown method name (the one registry error, under its former name).
UnknownMethodError = UnknownPluginError


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry; a name can be registered once."""
    return METHODS.register(spec.name, spec)


def unregister_method(name: str) -> None:
    """Remove a method (for tests that register a temporary one)."""
    METHODS.unregister(name)


def registered_methods() -> tuple[MethodSpec, ...]:
    """Every registered method, in table order."""
    return METHODS.values()


def method_names() -> tuple[str, ...]:
    """Registered method names, in table order (the paper's)."""
    return METHODS.names()


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``; :class:`UnknownPluginError` lists the registered ones."""
    return METHODS.get(name)


# --------------------------------------------------------------------------------------------
# Settings: a method's blocks of ``classification`` merged, checked against its model
# --------------------------------------------------------------------------------------------


def method_settings(classification: ClassificationParameters, method: str) -> BaseModel:
    """The typed settings of ``method``: its blocks merged (most general first), then
    ``method_overrides.<method>``; the model is the method's :attr:`MethodSpec.settings`."""
    spec = get_method(method)
    what = f"settings of Task 1 method {method!r}"
    return resolve(
        spec.settings, _layers(classification, spec), what=what, default=(spec.block,), block=("classification",)
    )


def _layers(classification: ClassificationParameters, spec: MethodSpec) -> list[Layer]:
    """The blocks a method's settings merge, most general first, each at its YAML path."""
    layers = [Layer({"augmentation": classification.augmentation.model_dump()}, ())] if spec.is_network else []
    layers += [Layer(classification.method_block(block), (block,)) for block in spec.inherits]
    layers.append(Layer(classification.method_overrides.get(spec.name, {}), ("method_overrides", spec.name)))
    return layers


def classification_errors(classification: ClassificationParameters) -> list[InitErrorDetails]:
    """What is wrong in ``classification`` against the registry (locations inside the block):
    unknown method names, keys that are no method's block, method settings that do not validate
    (reported at the block that set the value)."""
    errors: list[InitErrorDetails] = []
    places: list[tuple[tuple[str | int, ...], str]] = [
        (("methods", i), name) for i, name in enumerate(classification.methods)
    ]
    places += [(("method_overrides", name), name) for name in classification.method_overrides]
    errors += [unknown_name_error(loc, name, METHODS) for loc, name in places if name not in METHODS]
    specs = registered_methods()
    fields = set(type(classification).model_fields)
    method_blocks = sorted({b for s in specs for b in s.inherits} - fields)
    extra = classification.model_extra or {}
    for key, value in extra.items():
        if key not in method_blocks:
            allowed = ", ".join(sorted(fields | set(method_blocks)))
            errors.append(error_at((key,), f"unknown key; allowed keys here: {allowed}", kind="unknown_key"))
        elif not isinstance(value, Mapping):
            errors.append(error_at((key,), "Input should be a mapping of settings", value, kind="dict_type"))
    for spec in specs:
        missing = [b for b in spec.inherits if b not in fields and b not in extra]
        if missing:
            if spec.name in classification.methods:
                errors += [error_at((block,), MISSING, kind="missing") for block in missing]
            continue
        if any(not isinstance(extra[b], Mapping) for b in spec.inherits if b in extra):
            continue
        errors += merged_errors(spec.settings, _layers(classification, spec), default=(spec.block,))
    return _unique(errors)


def _unique(errors: list[InitErrorDetails]) -> list[InitErrorDetails]:
    """One error per location (methods that inherit a block meet its bad values each)."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for error in errors:
        key = tuple(str(p) for p in error["loc"])
        if key not in seen:
            seen.add(key)
            kept.append(error)
    return kept


def check_classification(classification: ClassificationParameters) -> ClassificationParameters:
    """``classification``, once :func:`classification_errors` finds nothing; else a
    :class:`ConfigurationError` naming each bad key (``classification.byol.epochs``)."""
    errors = classification_errors(classification)
    if errors:
        error = ValidationError.from_exception_data(ClassificationParameters.__name__, errors)
        raise ConfigurationError(
            "Invalid parameters in 'classification':\n"
            + format_validation_error(error, ("classification",), ClassificationParameters)
        )
    return classification
