"""URI scheme -> volume source: :func:`register_scheme` and :func:`open_volume`.

Adding a source takes one module in this package: it defines a :class:`VolumeSource` and an
opener decorated with ``@register_scheme("<scheme>")``. :func:`open_volume` imports every public
module of the package (found with :mod:`pkgutil`) the first time it is called, so the decorator
runs and no list of sources has to be edited. Sources are imported lazily, on the first open,
so that ``from mtneuro.volumes import Window`` stays cheap (the phantom needs SciPy). Code
outside the package (tests, plugins) may register more schemes with the same decorator.
"""

from __future__ import annotations

from collections.abc import Callable

from mtneuro.plugins import Registry, UnknownPluginError
from mtneuro.volumes.base import SOURCE_PARAMETER, URIS_PARAMETER, VolumeSource, VolumeSourceError, check_dtype

#: Modules of the package that hold no source.
_NOT_SOURCES = frozenset({"base", "registry", "progress"})

Opener = Callable[..., VolumeSource]
#: scheme -> opener(uri, **options), discovered from the modules of this package.
SOURCES: Registry[Opener] = Registry("volume source", __package__, plural="schemes", skip=_NOT_SOURCES)


class UnknownSchemeError(UnknownPluginError, VolumeSourceError):
    """A URI whose scheme no registered volume source reads."""

    def __init__(self, uri: str, known: tuple[str, ...]) -> None:
        super().__init__("volume source", uri, known, "schemes")
        self.args = (
            f"Unknown volume URI {uri!r}: expected one of {', '.join(s + '://' for s in known)}. Set the parameter "
            f"'{SOURCE_PARAMETER}' (or the channel URIs under '{URIS_PARAMETER}') in conf/base/parameters.yml.",
        )


def register_scheme(scheme: str) -> Callable[[Opener], Opener]:
    """Decorator: ``opener(uri, **options)`` opens the URIs ``<scheme>://...``."""

    def decorator(opener: Opener) -> Opener:
        SOURCES.unregister(scheme)  # a test or plugin may replace a scheme
        return SOURCES.register(scheme, opener)

    return decorator


def source_modules() -> list[str]:
    """The modules of this package that define sources (every public module but the core)."""
    return list(SOURCES.modules())


def discover_sources() -> None:
    """Import every source module once, so that its ``@register_scheme`` runs."""
    SOURCES.discover()


def schemes() -> list[str]:
    """Every scheme :func:`open_volume` knows."""
    return sorted(SOURCES.names())


def open_volume(uri: str, **options: object) -> VolumeSource:
    """Open one channel by URI (see :mod:`mtneuro.volumes` for the schemes and options)."""
    expected_dtype = options.pop("expected_dtype", None)
    scheme, sep, _ = str(uri).partition("://")
    if not sep or scheme not in SOURCES:
        raise UnknownSchemeError(str(uri), tuple(schemes()))
    source = SOURCES.get(scheme)(uri, **options)
    if expected_dtype is not None:
        check_dtype(source, expected_dtype)
    return source
