"""Task 1 methods: one module per method, registered in :mod:`mtneuro.classification_methods.base`.

Every module of this package (except ``base`` and private ``_*`` modules) is imported once, here,
and registers its method with :func:`register_method`; so adding a method is one new module (plus
its name in ``classification.methods``). Others read methods through :func:`get_method` (label
for reports, kind, settings) and :func:`method_names` (the table order).
"""

from __future__ import annotations

import importlib
import pkgutil

from mtneuro.classification_methods.base import (
    NETWORK_KINDS,
    MethodKind,
    MethodSpec,
    MinedViews,
    UnknownMethodError,
    get_method,
    method_names,
    register_method,
    registered_methods,
    unregister_method,
)


def _discover() -> None:
    """Import every method module of this package (each registers itself)."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_discover()

__all__ = [
    "NETWORK_KINDS",
    "MethodKind",
    "MethodSpec",
    "MinedViews",
    "UnknownMethodError",
    "get_method",
    "method_names",
    "register_method",
    "registered_methods",
    "unregister_method",
]
