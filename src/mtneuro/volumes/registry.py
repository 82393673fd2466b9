"""URI scheme -> volume source: :func:`register_scheme` and :func:`open_volume`.

Adding a source takes one module in this package: it defines a :class:`VolumeSource` and an
opener decorated with ``@register_scheme("<scheme>")``. :func:`open_volume` imports every public
module of the package (found with :mod:`pkgutil`) the first time it is called, so the decorator
runs and no list of sources has to be edited. Sources are imported lazily, on the first open,
so that ``from mtneuro.volumes import Window`` stays cheap (the phantom needs SciPy). Code
outside the package (tests, plugins) may register more schemes with the same decorator.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable

from mtneuro.volumes.base import SOURCE_PARAMETER, URIS_PARAMETER, VolumeSource, VolumeSourceError, check_dtype

#: Modules of the package that hold no source.
_NOT_SOURCES = frozenset({"base", "registry", "progress"})

#: scheme -> opener(uri, **options). Filled by ``@register_scheme`` in each source module.
_OPENERS: dict[str, Callable[..., VolumeSource]] = {}
_DISCOVERED = False
_LOCK = threading.Lock()


def register_scheme(scheme: str) -> Callable[[Callable[..., VolumeSource]], Callable[..., VolumeSource]]:
    """Decorator: ``opener(uri, **options)`` opens the URIs ``<scheme>://...``."""

    def decorator(opener: Callable[..., VolumeSource]) -> Callable[..., VolumeSource]:
        _OPENERS[scheme] = opener
        return opener

    return decorator


def source_modules() -> list[str]:
    """The modules of this package that define sources (every public module but the core)."""
    package = importlib.import_module(__package__)
    return sorted(
        f"{__package__}.{m.name}"
        for m in pkgutil.iter_modules(package.__path__)
        if not m.name.startswith("_") and m.name not in _NOT_SOURCES
    )


def discover_sources() -> None:
    """Import every source module once, so that its ``@register_scheme`` runs."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    with _LOCK:
        if not _DISCOVERED:
            for name in source_modules():
                importlib.import_module(name)
            _DISCOVERED = True


def schemes() -> list[str]:
    """Every scheme :func:`open_volume` knows."""
    discover_sources()
    return sorted(_OPENERS)


def open_volume(uri: str, **options: object) -> VolumeSource:
    """Open one channel by URI (see :mod:`mtneuro.volumes` for the schemes and options)."""
    discover_sources()
    expected_dtype = options.pop("expected_dtype", None)
    scheme, sep, _ = str(uri).partition("://")
    if not sep or scheme not in _OPENERS:
        raise VolumeSourceError(
            f"Unknown volume URI {uri!r}: expected one of "
            f"{', '.join(s + '://' for s in sorted(_OPENERS))}. Set the parameter "
            f"'{SOURCE_PARAMETER}' (or the channel URIs under '{URIS_PARAMETER}') in conf/base/parameters.yml."
        )
    source = _OPENERS[scheme](uri, **options)
    if expected_dtype is not None:
        check_dtype(source, expected_dtype)
    return source
