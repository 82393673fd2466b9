"""The one plugin registry: Task 1 methods, segmentation models, volume sources, semantic features.

A :class:`Registry` holds the plugins of one kind by name. Each plugin is defined once, by a
module of the registry's package that registers it when imported; :meth:`Registry.discover`
imports every public module of the package once (found with :mod:`pkgutil`), on the first read,
so adding a plugin is one new module and no list has to be edited. Code outside the package
(tests, users' plugins) registers more with :meth:`Registry.register`.

An unknown name is one error, :class:`UnknownPluginError` (a ``KeyError``), whose message lists
the registered names. Nothing here imports the plugins' packages: they are named by string and
imported on first use (importing Lightning or SciPy takes seconds).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pydantic_core import InitErrorDetails, PydanticCustomError

from mtneuro.errors import MtneuroError

T = TypeVar("T")


class UnknownPluginError(MtneuroError, KeyError):
    """A name that no registered plugin of a kind has; the message lists the registered ones."""

    def __init__(self, kind: str, name: str, known: tuple[str, ...], plural: str | None = None) -> None:
        self.kind, self.name, self.known = kind, name, known
        listed = ", ".join(known) if known else "none"
        super().__init__(f"Unknown {kind} {name!r}; registered {plural or kind + 's'}: {listed}")

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


class Registry(Generic[T]):
    """The plugins of one kind, by name, discovered from the modules of ``package``.

    ``first``: modules imported before the others (their plugins keep the first places of
    :meth:`names`); ``skip``: modules of the package that define no plugin; ``order``: the sort
    key of :meth:`names` (default: registration order).
    """

    def __init__(
        self,
        kind: str,
        package: str | None,
        *,
        plural: str | None = None,
        first: tuple[str, ...] = (),
        skip: frozenset[str] = frozenset(),
        order: Callable[[str, T], Any] | None = None,
    ) -> None:
        self.kind, self.package, self.plural = kind, package, plural
        self.first, self.skip, self.order = first, skip, order
        self._plugins: dict[str, T] = {}
        self._discovered = package is None
        self._lock = threading.RLock()

    # -- writing ---------------------------------------------------------------------------
    def register(self, name: str, plugin: T) -> T:
        """Add ``plugin`` as ``name``; a name can be registered once."""
        with self._lock:
            if name in self._plugins:
                raise ValueError(f"{self.kind.capitalize()} {name!r} is already registered")
            self._plugins[name] = plugin
        return plugin

    def unregister(self, name: str) -> None:
        """Remove a plugin (for tests that register a temporary one)."""
        with self._lock:
            self._plugins.pop(name, None)

    # -- discovery -------------------------------------------------------------------------
    def modules(self) -> tuple[str, ...]:
        """The package's plugin modules, in import order (``first``, then alphabetical)."""
        if self.package is None:
            return ()
        package = importlib.import_module(self.package)
        names = sorted(
            m.name
            for m in pkgutil.iter_modules(package.__path__)
            if not m.name.startswith("_") and m.name not in self.skip
        )
        names.sort(key=lambda n: self.first.index(n) if n in self.first else len(self.first))
        return tuple(f"{self.package}.{n}" for n in names)

    def discover(self) -> None:
        """Import every plugin module of the package once, so that each registers its plugins."""
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True  # first: a module reading the registry while imported must not recurse
            try:
                for module in self.modules():
                    importlib.import_module(module)
            except BaseException:
                self._discovered = False
                raise

    # -- reading ---------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """Every registered name, in the registry's order."""
        self.discover()
        if self.order is None:
            return tuple(self._plugins)
        order = self.order
        return tuple(sorted(self._plugins, key=lambda n: order(n, self._plugins[n])))

    def get(self, name: str) -> T:
        """The plugin ``name``; :class:`UnknownPluginError` lists the registered ones."""
        self.discover()
        try:
            return self._plugins[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, self.names(), self.plural) from None

    def values(self) -> tuple[T, ...]:
        """Every plugin, in the order of :meth:`names`."""
        return tuple(self._plugins[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_name_error(loc: tuple[str | int, ...], name: str, registry: Registry[Any]) -> InitErrorDetails:
    """A parameter error at ``loc`` for a name ``registry`` does not have (as the configuration
    report prints it: ``classification.methods.1: unknown Task 1 method 'x'; registered ...``)."""
    listed = ", ".join(registry.names())
    message = f"unknown {registry.kind} {name!r}; registered {registry.plural or registry.kind + 's'}: {listed}"
    return InitErrorDetails(
        type=PydanticCustomError("value_error", message.replace("{", "(").replace("}", ")")), loc=loc, input=name
    )
