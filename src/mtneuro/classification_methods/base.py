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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from mtneuro.plugins import Registry, UnknownPluginError

#: supervised: the network's own linear head classifies; ssl and decomposition: frozen
#: representations read out by a linear classifier (``classification.readout``).
MethodKind = Literal["supervised", "ssl", "decomposition"]
#: Kinds trained as ResNet-18 networks by :func:`mtneuro.ssl.fit_network` (settings include ``augmentation``).
NETWORK_KINDS: tuple[MethodKind, ...] = ("supervised", "ssl")
#: How an SSL method predicts mined views (MYOW): through a second, cascaded projector/predictor,
#: or through the first ones (shared).
MinedViews = Literal["cascaded", "shared"]


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
    #: What trains it: :func:`mtneuro.ssl.fit_network` for network kinds; for decompositions
    #: ``fit(flat_images (N, P) float64, settings, seed) -> (fitted estimator, loss curve)``.
    trainer: Callable[..., Any]
    #: Supervised networks: train on mixup of inputs and one-hot targets.
    mixup: bool = False
    #: SSL networks: also predict mined views (MYOW), and through which heads; None: BYOL.
    mined_views: MinedViews | None = None

    def __post_init__(self) -> None:
        if not self.inherits:
            raise ValueError(f"Task 1 method {self.name!r} inherits no parameter block")
        if self.mixup and self.kind != "supervised":
            raise ValueError(f"Task 1 method {self.name!r}: mixup is for supervised methods")
        if self.mined_views is not None and self.kind != "ssl":
            raise ValueError(f"Task 1 method {self.name!r}: mined views are for SSL methods")

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
    """:func:`mtneuro.ssl.fit_network`, imported when a network trains: the registry is read to
    check the parameters before a run starts, and importing Lightning takes seconds."""
    from mtneuro import ssl

    return ssl.fit_network(*args, **kwargs)


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
