"""The registry of semantic features: every feature is defined once, here registered by name.

A :class:`SemanticFeature` carries everything the project needs about a feature: the name used
in parameters and tables (``probing.features``, ``probing_features``, ``task3_probing``), the
label the report prints (the paper's Table 3 column), a description with the unit, the dtype of
its column, and the function computing it from one label image.

Adding a feature is one new module of the :mod:`mtneuro.features` package holding a decorated
function (:func:`semantic_feature`), plus its name in ``probing.features``: on first access the
registry imports every module of the package (:func:`discover`), so no import has to be added
anywhere. The paper's five features (``definitions``) are imported first and keep their order;
the other modules follow in alphabetical order.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mtneuro.features.image import LabelImage

FeatureFunction = Callable[["LabelImage"], float]


@dataclass(frozen=True)
class SemanticFeature:
    """One semantic feature of a label image."""

    name: str
    #: Column label in reports (the paper's Table 3 header).
    label: str
    #: What it measures and in which unit; when it is undefined (NaN).
    description: str
    #: Column dtype in ``probing_features``: ``int64`` for counts, ``float64`` otherwise.
    dtype: Literal["int64", "float64"]
    compute: FeatureFunction

    def __call__(self, image: LabelImage) -> float:
        return self.compute(image)


_REGISTRY: dict[str, SemanticFeature] = {}
#: The package whose modules define features, and the module imported first (table order).
PACKAGE = "mtneuro.features"
FIRST_MODULE = "definitions"
_discovered = False


def discover() -> tuple[str, ...]:
    """Import every module of :data:`PACKAGE` (once), which registers the features they define.

    Returns the modules imported, in order. Called by every read access of the registry, so a
    feature module only has to exist in the package.
    """
    global _discovered
    if _discovered:
        return ()
    _discovered = True  # first: a feature module reading the registry while imported must not recurse
    package = importlib.import_module(PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))
    names.sort(key=lambda name: name != FIRST_MODULE)
    for name in names:
        importlib.import_module(f"{PACKAGE}.{name}")
    return tuple(names)


class UnknownFeatureError(KeyError):
    """A name that no registered feature has."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


def register(feature: SemanticFeature) -> SemanticFeature:
    """Add a feature to the registry; a name can be registered once."""
    if feature.name in _REGISTRY:
        raise ValueError(f"Semantic feature {feature.name!r} is already registered")
    _REGISTRY[feature.name] = feature
    return feature


def semantic_feature(
    name: str, *, label: str, description: str, dtype: Literal["int64", "float64"]
) -> Callable[[FeatureFunction], FeatureFunction]:
    """Decorator registering ``function(image: LabelImage) -> value`` as the feature ``name``."""

    def decorator(function: FeatureFunction) -> FeatureFunction:
        register(SemanticFeature(name, label, description, dtype, function))
        return function

    return decorator


def feature_names() -> tuple[str, ...]:
    """Registered feature names, in registration order (the order of every table)."""
    discover()
    return tuple(_REGISTRY)


def get_feature(name: str) -> SemanticFeature:
    """The registered feature ``name``; :class:`UnknownFeatureError` lists the registered ones."""
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFeatureError(
            f"Unknown semantic feature {name!r}; registered features: {', '.join(_REGISTRY)}"
        ) from None


def registered_features() -> tuple[SemanticFeature, ...]:
    """Every registered feature, in registration order."""
    discover()
    return tuple(_REGISTRY.values())
