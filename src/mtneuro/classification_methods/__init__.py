"""Task 1 methods: one module per method, registered in :mod:`mtneuro.classification_methods.base`.

Every module of this package (except ``base`` and private ``_*`` modules) is imported once, on the
registry's first read (:data:`METHODS`, a :class:`mtneuro.plugins.Registry`), and registers its
method with :func:`register_method`; so adding a method is one new module (plus its name in
``classification.methods``). Others read methods through :func:`get_method` (label
for reports, kind, settings) and :func:`method_names` (the table order).
"""

from __future__ import annotations

from mtneuro.classification_methods.base import (
    METHODS,
    NETWORK_KINDS,
    MethodKind,
    MethodSpec,
    UnknownMethodError,
    check_classification,
    classification_errors,
    get_method,
    method_names,
    method_settings,
    register_method,
    registered_methods,
    unregister_method,
)

__all__ = [
    "METHODS",
    "NETWORK_KINDS",
    "MethodKind",
    "MethodSpec",
    "UnknownMethodError",
    "check_classification",
    "classification_errors",
    "get_method",
    "method_names",
    "method_settings",
    "register_method",
    "registered_methods",
    "unregister_method",
]
