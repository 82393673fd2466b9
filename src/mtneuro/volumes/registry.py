"""URI scheme -> volume source: :func:`register_scheme` and :func:`open_volume`.

Adding a source takes one module in this package: it defines a :class:`VolumeSource` and an
opener decorated with ``@register_scheme("<scheme>")``. :func:`open_volume` imports every public
module of the package (found with :mod:`pkgutil`) the first time it is called, so the decorator
runs and no list of sources has to be edited. Sources are imported lazily, on the first open,
so that ``from mtneuro.volumes import Window`` stays cheap (the phantom needs SciPy). Code
outside the package (tests, plugins) may register more schemes with the same decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from mtneuro.plugins import Registry, UnknownPluginError
from mtneuro.volumes.base import SOURCE_PARAMETER, URIS_PARAMETER, VolumeSource, VolumeSourceError, check_dtype

ModelT = TypeVar("ModelT", bound=BaseModel)
#: Modules of the package that hold no source.
_NOT_SOURCES = frozenset({"base", "registry", "progress"})

Opener = Callable[..., VolumeSource]


@dataclass(frozen=True)
class Scheme:
    """How URIs ``<name>://...`` are opened, and what the cube store must know about them."""

    name: str
    open: Opener
    #: The key of the Kedro credentials whose values underlie the options (BossDB: host,
    #: protocol, token); None: the source takes no credentials.
    credentials: str | None = None
    #: The server a channel is read from, from its effective options (part of a cached cube's
    #: identity); None: the scheme alone identifies it (local sources).
    endpoint: Callable[[Mapping[str, Any]], str] | None = None


#: scheme -> :class:`Scheme`, discovered from the modules of this package.
SOURCES: Registry[Scheme] = Registry("volume source", __package__, plural="schemes", skip=_NOT_SOURCES)
#: ``volume.source`` name -> the model of its ``volume.options.<name>`` (a source's own options).
SOURCE_OPTIONS: Registry[type[BaseModel]] = Registry("volume source", __package__, plural="sources", skip=_NOT_SOURCES)


class UnknownSchemeError(UnknownPluginError, VolumeSourceError):
    """A URI whose scheme no registered volume source reads."""

    def __init__(self, uri: str, known: tuple[str, ...]) -> None:
        super().__init__("volume source", uri, known, "schemes")
        self.args = (
            f"Unknown volume URI {uri!r}: expected one of {', '.join(s + '://' for s in known)}. Set the parameter "
            f"'{SOURCE_PARAMETER}' (or the channel URIs under '{URIS_PARAMETER}') in conf/base/parameters.yml.",
        )


def register_scheme(
    scheme: str, *, credentials: str | None = None, endpoint: Callable[[Mapping[str, Any]], str] | None = None
) -> Callable[[Opener], Opener]:
    """Decorator: ``opener(uri, **options)`` opens the URIs ``<scheme>://...`` (see :class:`Scheme`)."""

    def decorator(opener: Opener) -> Opener:
        SOURCES.unregister(scheme)  # a test or plugin may replace a scheme
        SOURCES.register(scheme, Scheme(scheme, opener, credentials, endpoint))
        return opener

    return decorator


def source_options(name: str) -> Callable[[type[ModelT]], type[ModelT]]:
    """Class decorator: the model is the options of the source ``name`` (``volume.options.<name>``;
    a key set to null, or unset, is not handed to the opener)."""

    def decorator(model: type[ModelT]) -> type[ModelT]:
        SOURCE_OPTIONS.unregister(name)
        SOURCE_OPTIONS.register(name, model)
        return model

    return decorator


def effective_options(uri: str, options: Mapping[str, Any], credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The options a channel is opened with: its scheme's credentials (if it takes any),
    overridden by the run's source options."""
    scheme = SOURCES.get(uri.partition("://")[0]) if uri.partition("://")[0] in SOURCES else None
    opts: dict[str, Any] = {}
    if scheme is not None and scheme.credentials is not None:
        opts.update(credentials.get(scheme.credentials, credentials))
    opts.update(options)
    return opts


def source_endpoint(uri: str, options: Mapping[str, Any]) -> str:
    """The server a channel is read from (its scheme's :attr:`Scheme.endpoint`), else the scheme.

    ``options`` are the effective options (:func:`effective_options`).
    """
    name = uri.partition("://")[0]
    scheme = SOURCES.get(name) if name in SOURCES else None
    if scheme is None or scheme.endpoint is None:
        return name
    return scheme.endpoint(options)


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
    source = SOURCES.get(scheme).open(uri, **options)
    if expected_dtype is not None:
        check_dtype(source, expected_dtype)
    return source
