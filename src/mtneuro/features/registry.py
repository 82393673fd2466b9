"""The registry of semantic features: every feature is defined once, here registered by name.

A :class:`SemanticFeature` carries everything the project needs about a feature: the name used
in parameters and tables (``probing.features``, ``probing_features``, ``task3_probing``), the
label the report prints (the paper's Table 3 column), a description with the unit, the dtype of
its column, and the function computing it from one label image.

Adding a feature is one new module of the :mod:`mtneuro.features` package holding a decorated
function (:func:`semantic_feature`), plus its name in ``probing.features``: on first access the
registry (:data:`FEATURES`) imports every module of the package, so no import has to be added
anywhere. The paper's five features (``definitions``) are imported first and keep their order;
the other modules follow in alphabetical order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mtneuro.plugins import Registry, UnknownPluginError

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


#: The package whose modules define features, and the module imported first (table order).
PACKAGE = "mtneuro.features"
FIRST_MODULE = "definitions"
#: Every semantic feature, discovered from the modules of :data:`PACKAGE`, in registration order.
FEATURES: Registry[SemanticFeature] = Registry("semantic feature", PACKAGE, plural="features", first=(FIRST_MODULE,))
#: The error of an unknown feature name (the one registry error, under its former name).
UnknownFeatureError = UnknownPluginError


def discover() -> None:
    """Import every module of :data:`PACKAGE` (once), which registers the features they define.

    Called by every read access of the registry, so a feature module only has to exist in the
    package.
    """
    FEATURES.discover()


def register(feature: SemanticFeature) -> SemanticFeature:
    """Add a feature to the registry; a name can be registered once."""
    return FEATURES.register(feature.name, feature)


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
    return FEATURES.names()


def get_feature(name: str) -> SemanticFeature:
    """The registered feature ``name``; :class:`UnknownPluginError` lists the registered ones."""
    return FEATURES.get(name)


def registered_features() -> tuple[SemanticFeature, ...]:
    """Every registered feature, in registration order."""
    return FEATURES.values()
