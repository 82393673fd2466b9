"""The registry of semantic features: every feature is defined once, here registered by name.

A :class:`SemanticFeature` carries everything the project needs about a feature: the name used
in parameters and tables (``probing.features``, ``probing_features``, ``task3_probing``), the
label the report prints (the paper's Table 3 column), a description with the unit, the dtype of
its column, and the function computing it from one label image.  Adding a feature is one
decorated function (:func:`semantic_feature`) plus its name in ``probing.features``.
"""

from __future__ import annotations

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
    return tuple(_REGISTRY)


def get_feature(name: str) -> SemanticFeature:
    """The registered feature ``name``; :class:`UnknownFeatureError` lists the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFeatureError(
            f"Unknown semantic feature {name!r}; registered features: {', '.join(_REGISTRY)}"
        ) from None


def registered_features() -> tuple[SemanticFeature, ...]:
    return tuple(_REGISTRY.values())
