"""Volume sources: the one place that knows how to read a channel of a 3D volume.

A channel is opened by URI with :func:`open_volume` and read by half-open windows
``[z0:z1, y0:y1, x0:x1]`` (:meth:`VolumeSource.read`) or as downsampled whole sections
(:meth:`VolumeSource.sample_sections`). Schemes:

* ``phantom://prasad2020/{image,roi_labels,pixel_labels}`` -- the built-in synthetic volume
  (:mod:`mtneuro.phantom`), the default, needs no network;
* ``bossdb://collection/experiment/channel`` -- the real data, read through the ``intern``
  client (:class:`BossDBVolume`);
* ``zarr:///abs/path/volume.zarr`` -- a Zarr array, or an OME-Zarr multiscale group (its first
  dataset is the full resolution; lower levels serve :meth:`~VolumeSource.sample_sections`).
  A named array or sub-group inside a group: ``zarr:///abs/path/store.zarr?array=name``
  (:class:`ZarrVolume`);
* ``tiff:///abs/path/folder`` -- a folder of 2D TIFF slices, one per z, in natural order of
  their file names (:class:`TiffFolderVolume`).

Every reader returns numpy arrays in ``[z, y, x]`` order and raises :class:`VolumeSourceError`
with a message that names the parameter (or file) to fix.

Options (keyword arguments of :func:`open_volume`)
--------------------------------------------------
All schemes: ``expected_dtype`` -- raise :class:`DTypeMismatchError` when the channel has
another dtype. Options a scheme does not know are ignored, so one options mapping can be passed
to every channel.

``bossdb``: ``host`` (default ``api.bossdb.io``), ``protocol`` (``https``), ``token``
(``public``, the public read-only token), ``chunk_size`` (z, y, x voxels per cutout request,
default ``(32, 512, 512)``), ``retries`` (5), ``backoff`` (0.5 s, doubled each retry, capped by
``backoff_max`` = 30 s), ``timeout`` (seconds, or ``[connect, read]``; default ``[10, 120]``),
``workers`` (parallel requests, 4), ``progress`` (``auto``: a rich progress bar on a terminal,
log lines otherwise; ``bar``, ``log`` or ``off``) and ``log_interval`` (seconds between progress
log lines, 5; 0 logs every chunk). Host, protocol and token normally come from the Kedro
credentials, e.g. ``conf/local/credentials.yml``::

    bossdb:
      protocol: https        # http for a local test server
      host: api.bossdb.io    # host[:port]
      token: public          # your BossDB API token for private data

``zarr`` / ``tiff``: ``voxel_size`` -- (z, y, x) micrometres, overriding what the store says
(TIFF folders and plain Zarr arrays carry none and default to 1.0).
"""

from __future__ import annotations

import abc
import logging
import math
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np

log = logging.getLogger(__name__)

#: Parameter that picks the source of a run; named in every error so users know what to change.
SOURCE_PARAMETER = "volume.source"
#: Parameter that holds the channel URIs of each source.
URIS_PARAMETER = "volume.uris"
#: Value of :data:`SOURCE_PARAMETER` that selects the built-in phantom (works offline).
PHANTOM_SOURCE = "phantom"


class VolumeSourceError(RuntimeError):
    """A volume cannot be opened or read; the message says which parameter or file to fix."""


class SourceUnreachableError(VolumeSourceError):
    """The server of a remote volume cannot be reached (connection refused, DNS, timeouts)."""


class ChannelNotFoundError(VolumeSourceError):
    """The URI names a channel, file or folder that does not exist."""


class DTypeMismatchError(VolumeSourceError):
    """The channel's dtype is not the one the caller expects."""


@dataclass(frozen=True)
class Window:
    """Half-open window ``[z0:z1, y0:y1, x0:x1]``."""

    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z1 - self.z0, self.y1 - self.y0, self.x1 - self.x0)

    def as_slices(self) -> tuple[slice, slice, slice]:
        return (slice(self.z0, self.z1), slice(self.y0, self.y1), slice(self.x0, self.x1))

    def to_list(self) -> list[int]:
        return [self.z0, self.z1, self.y0, self.y1, self.x0, self.x1]

    @classmethod
    def from_list(cls, values: list[int] | tuple[int, ...]) -> "Window":
        return cls(*(int(v) for v in values))


def sections_shape(shape: tuple[int, int, int], level: int) -> tuple[int, int]:
    """``(ceil(Y / 2**level), ceil(X / 2**level))``: the size of a section at ``level``."""
    step = 2 ** int(level)
    return (-(-shape[1] // step), -(-shape[2] // step))


class VolumeSource(abc.ABC):
    """One channel of a volume: shape ``(z, y, x)``, dtype, voxel size and windowed reads."""

    uri: str
    # Set by each source when it opens the channel (sources may override the properties instead).
    _shape: tuple[int, int, int]
    _dtype: np.dtype
    _voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel size in micrometres, ``(z, y, x)``."""
        return self._voxel_size

    @abc.abstractmethod
    def _read(self, window: Window) -> np.ndarray:
        """Read a window already checked to lie inside the volume."""

    def read(self, window: Window | tuple[int, ...] | list[int]) -> np.ndarray:
        """Read ``[z0:z1, y0:y1, x0:x1]``; raises :class:`VolumeSourceError` outside the volume."""
        if not isinstance(window, Window):
            window = Window.from_list(window)
        self.check_window(window)
        data = np.asarray(self._read(window))
        if data.shape != window.shape:
            raise VolumeSourceError(
                f"{self.uri}: read returned shape {data.shape}, expected {window.shape}"
            )
        return data

    def check_window(self, window: Window) -> None:
        bounds = zip(("z", "y", "x"), window.to_list()[0::2], window.to_list()[1::2], self.shape)
        for axis, lo, hi, size in bounds:
            if not (0 <= lo < hi <= size):
                raise VolumeSourceError(
                    f"{self.uri}: window {axis}=[{lo}, {hi}) is outside the volume "
                    f"(shape {self.shape}, {axis} must lie in [0, {size})). Check the cube "
                    "coordinates in the ingestion parameters."
                )

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 3 and all(isinstance(k, slice) for k in key)):
            raise VolumeSourceError(f"{self.uri}: index with three slices [z0:z1, y0:y1, x0:x1]")
        bounds = []
        for k, size in zip(key, self.shape):
            lo, hi, step = k.indices(size)
            if step != 1:
                raise VolumeSourceError(f"{self.uri}: strided reads are not supported")
            bounds += [lo, hi]
        return self.read(Window.from_list(bounds))

    # -- downsampled sections -------------------------------------------------------------
    def check_sections(self, z_indices: Iterable[int], level: int) -> np.ndarray:
        """Validate the arguments of :meth:`sample_sections`; returns the z indices as int64."""
        nz = self.shape[0]
        try:
            zs = np.asarray([int(z) for z in z_indices], dtype=np.int64)
            level = int(level)
        except (TypeError, ValueError) as exc:
            raise VolumeSourceError(f"{self.uri}: z indices must be integers ({exc})") from None
        if level < 0 or level > 30:
            raise VolumeSourceError(f"{self.uri}: level must lie in [0, 30], got {level}")
        bad = zs[(zs < 0) | (zs >= nz)]
        if bad.size:
            raise VolumeSourceError(
                f"{self.uri}: sections z={bad.tolist()} are outside the volume (z must lie in "
                f"[0, {nz})). Check the section indices in the ingestion parameters."
            )
        return zs

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Whole sections at ``z_indices``, downsampled ``2**level`` times in y and x.

        Returns ``(len(z_indices), ceil(Y / 2**level), ceil(X / 2**level))`` in this channel's
        dtype. This default keeps every ``2**level``-th voxel (``section[::2**level,
        ::2**level]``, i.e. nearest-neighbour, safe for label channels), reading each section in
        row tiles through :meth:`_read`: fine for local sources. Sources with a resolution
        pyramid (BossDB, OME-Zarr) override it to read a stored lower level instead.
        """
        zs = self.check_sections(z_indices, level)
        step = 2 ** int(level)
        nz, ny, nx = self.shape
        out = np.empty((len(zs), *sections_shape(self.shape, level)), dtype=self.dtype)
        # Row tiles of at most ~16 M voxels, aligned to the step.
        rows = max(step, (16_000_000 // max(nx, 1)) // step * step)
        for i, z in enumerate(zs):
            for y0 in range(0, ny, rows):
                y1 = min(ny, y0 + rows)
                block = np.asarray(self._read(Window(int(z), int(z) + 1, y0, y1, 0, nx)))[0]
                out[i, y0 // step:y0 // step + -(-(y1 - y0) // step)] = block[::step, ::step]
        return out


#: scheme -> factory(uri, **options). Filled by the modules that implement each scheme.
_OPENERS: dict[str, Callable[..., VolumeSource]] = {}


def register_scheme(scheme: str) -> Callable[[Callable[..., VolumeSource]], Callable[..., VolumeSource]]:
    def decorator(factory: Callable[..., VolumeSource]) -> Callable[..., VolumeSource]:
        _OPENERS[scheme] = factory
        return factory

    return decorator


def check_dtype(source: VolumeSource, expected_dtype: Any) -> None:
    """Raise :class:`DTypeMismatchError` unless ``source.dtype`` is ``expected_dtype``."""
    try:
        expected = np.dtype(expected_dtype)
    except TypeError as exc:
        raise VolumeSourceError(f"{source.uri}: expected_dtype {expected_dtype!r} is not a dtype ({exc})") from None
    if np.dtype(source.dtype) != expected:
        raise DTypeMismatchError(
            f"{source.uri}: the channel holds {np.dtype(source.dtype)} voxels, expected {expected}. "
            f"Check that the channel URIs under '{URIS_PARAMETER}' point to the right channels "
            "(image: uint8; roi_labels, pixel_labels: integer labels)."
        )


def open_volume(uri: str, **options: object) -> VolumeSource:
    """Open one channel by URI (see the module docstring for the schemes and options)."""
    # Import for their registration side effect; kept here so importing this module stays cheap.
    from mtneuro import phantom  # noqa: F401

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


# ================================================================================================
# Progress
# ================================================================================================


class _Progress:
    """Progress of a multi-chunk download: a rich bar on a terminal, throttled log lines otherwise."""

    def __init__(self, label: str, total: int, nbytes: int, mode: object = "auto", log_interval: float = 5.0):
        self.label = label
        self.total = total
        self.nbytes = nbytes
        self.done = 0
        self.log_interval = float(log_interval)
        self._t0 = time.monotonic()
        self._last_log = -math.inf
        self._bar = None
        self._task = None
        mode = {True: "auto", False: "off", None: "off"}.get(mode, mode)  # type: ignore[call-overload]
        mode = str(mode).lower()
        if mode not in ("auto", "bar", "log", "off"):
            raise VolumeSourceError(f"progress must be one of auto, bar, log, off; got {mode!r}")
        if mode == "auto":
            mode = "bar" if total > 1 and _is_terminal() else "log"
        self.mode = mode
        if mode == "bar":
            try:
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)

                self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
                self._bar.start()
                self._task = self._bar.add_task(label, total=total)
            except Exception:  # noqa: BLE001 - no usable terminal: fall back to log lines
                self._bar = None
                self.mode = "log"

    def __enter__(self) -> "_Progress":
        if self.total > 1 and self.mode != "off":
            log.info("%s: %d chunks, %.1f MB", self.label, self.total, self.nbytes / 1e6)
        return self

    def advance(self, detail: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1)
            return
        now = time.monotonic()
        log.debug("%s: chunk %d/%d %s", self.label, self.done, self.total, detail)
        if self.mode == "log" and self.total > 1 and (
            self.done == self.total or now - self._last_log >= self.log_interval
        ):
            self._last_log = now
            log.info("%s: chunk %d/%d done (%s, %.1f s)", self.label, self.done, self.total, detail,
                     now - self._t0)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            try:
                self._bar.stop()
            except Exception:  # noqa: BLE001
                pass


def _is_terminal() -> bool:
    """True when rich's console (shared with Kedro's rich logging) can draw a live bar."""
    try:
        from rich import get_console

        console = get_console()
        return bool(console.is_terminal and not console.is_dumb_terminal)
    except Exception:  # noqa: BLE001
        try:
            return bool(sys.stderr is not None and sys.stderr.isatty())
        except (AttributeError, ValueError):
            return False


# ================================================================================================
# BossDB
# ================================================================================================

_BOSS_DEFAULTS = {"host": "api.bossdb.io", "protocol": "https", "token": "public"}
_UNIT_TO_UM = {
    "nanometers": 1e-3, "nanometer": 1e-3, "nm": 1e-3,
    "micrometers": 1.0, "micrometer": 1.0, "microns": 1.0, "micron": 1.0, "um": 1.0, "µm": 1.0,
    "millimeters": 1e3, "millimeter": 1e3, "mm": 1e3,
    "centimeters": 1e4, "centimeter": 1e4, "cm": 1e4,
    "meters": 1e6, "meter": 1e6, "m": 1e6,
}
_TRANSIENT_STATUS = {408, 425, 429}
_BOSS_INTERN_DTYPES = ("uint8", "uint16", "uint32", "uint64")


class _Transient(Exception):
    """Internal: a failure worth retrying (wraps the original exception)."""


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _classify(exc: BaseException) -> str:
    """``transient`` (retry), ``unreachable`` (retry, then the offline message) or ``permanent``."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return "permanent"
    if isinstance(exc, requests.exceptions.HTTPError):
        status = _http_status(exc)
        if status is None or status >= 500 or status in _TRANSIENT_STATUS:
            return "transient"
        return "permanent"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "unreachable"
    if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        return "transient"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        # A dropped or reset connection after a successful connect is transient; refused
        # connections and name resolution failures mean the server cannot be reached.
        if any(s in text for s in ("RemoteDisconnected", "Connection aborted", "ConnectionResetError",
                                   "IncompleteRead", "BrokenPipe")):
            return "transient"
        return "unreachable"
    if isinstance(exc, _Transient) or "blosc" in type(exc).__module__:
        return "transient"
    return "permanent"


class BossDBVolume(VolumeSource):
    """A BossDB channel ``bossdb://collection/experiment/channel`` read with ``intern``.

    Metadata (dtype from the channel, shape and voxel size from the experiment's coordinate
    frame, resolution levels from the experiment) is fetched when the volume is opened. Window
    coordinates are relative to the coordinate frame's start (0 for prasad2020, so they equal
    BossDB's own coordinates). Reads are split into cutouts of at most ``chunk_size`` voxels,
    fetched by ``workers`` threads, each retried with exponential backoff on transient failures
    (HTTP 5xx/408/429, dropped connections, timeouts, corrupt payloads); other HTTP errors fail
    at once. See the module docstring for the options.
    """

    def __init__(
        self,
        uri: str,
        *,
        host: str | None = None,
        protocol: str | None = None,
        token: str | None = None,
        chunk_size: Sequence[int] = (32, 512, 512),
        retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float | Sequence[float] | None = (10.0, 120.0),
        workers: int = 4,
        progress: object = "auto",
        log_interval: float = 5.0,
    ) -> None:
        self.uri = uri
        rest = uri.partition("://")[2]
        parts = rest.strip("/").split("/")
        if len(parts) != 3 or not all(parts):
            raise VolumeSourceError(
                f"Invalid BossDB URI {uri!r}: expected bossdb://collection/experiment/channel. "
                f"Check the channel URIs under '{URIS_PARAMETER}'."
            )
        self.collection, self.experiment, self.channel = parts
        self.host = str(host or _BOSS_DEFAULTS["host"]).strip().rstrip("/")
        self.protocol = str(protocol or _BOSS_DEFAULTS["protocol"]).strip().rstrip(":/")
        if "://" in self.host:  # tolerate host: https://api.bossdb.io
            self.protocol, _, self.host = self.host.partition("://")
        self.token = str(token or _BOSS_DEFAULTS["token"])
        self.chunk_size = tuple(int(c) for c in chunk_size)
        if len(self.chunk_size) != 3 or min(self.chunk_size) < 1:
            raise VolumeSourceError(f"{uri}: chunk_size must be three positive integers (z, y, x), got {chunk_size!r}")
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.backoff_max = max(0.0, float(backoff_max))
        if timeout is None:
            self.timeout: float | tuple[float, float] | None = None
        elif isinstance(timeout, (int, float)):
            self.timeout = float(timeout)
        else:
            connect, read = (float(t) for t in timeout)
            self.timeout = (connect, read)
        self.workers = max(1, int(workers))
        self.progress = progress
        self.log_interval = float(log_interval)
        self._local = threading.local()

        remote = self._remote()
        chan = self._call("channel metadata", lambda: remote.get_channel(self.channel, self.collection, self.experiment))
        exp = self._call("experiment metadata", lambda: remote.get_experiment(self.collection, self.experiment))
        frame = self._call("coordinate frame", lambda: remote.get_coordinate_frame(exp.coord_frame))
        self._resource = chan
        datatype = str(chan.datatype)
        if datatype not in _BOSS_INTERN_DTYPES:
            raise VolumeSourceError(f"{uri}: unsupported BossDB datatype {datatype!r}")
        self._dtype = np.dtype(datatype)
        self.origin = (int(frame.z_start), int(frame.y_start), int(frame.x_start))
        self._shape = (
            int(frame.z_stop) - int(frame.z_start),
            int(frame.y_stop) - int(frame.y_start),
            int(frame.x_stop) - int(frame.x_start),
        )
        unit = str(getattr(frame, "voxel_unit", "micrometers") or "micrometers").lower()
        factor = _UNIT_TO_UM.get(unit, 1.0)
        self._voxel_size = tuple(float(v) * factor for v in (frame.z_voxel_size, frame.y_voxel_size, frame.x_voxel_size))
        self.num_hierarchy_levels = max(1, int(exp.num_hierarchy_levels or 1))
        self.hierarchy_method = str(exp.hierarchy_method or "anisotropic").lower()
        self.downsample_status = str(getattr(chan, "downsample_status", "") or "").upper()
        log.debug("Opened %r: shape %s, dtype %s, %d levels (%s, %s)", self, self._shape, self._dtype,
                  self.num_hierarchy_levels, self.hierarchy_method, self.downsample_status)

    def __repr__(self) -> str:
        return f"BossDBVolume({self.uri!r}, host={self.url_prefix!r})"

    def __getstate__(self) -> dict[str, Any]:  # picklable: the per-thread clients are rebuilt
        state = dict(self.__dict__)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @property
    def url_prefix(self) -> str:
        return f"{self.protocol}://{self.host}"

    # -- HTTP ---------------------------------------------------------------------------------
    def _remote(self) -> Any:
        """One ``intern`` BossRemote (with its own HTTP sessions) per thread."""
        remote = getattr(self._local, "remote", None)
        if remote is None:
            from intern.remote.boss import BossRemote

            remote = BossRemote({"protocol": self.protocol, "host": self.host, "token": self.token})
            for service in (remote.project_service, remote.volume_service, remote.metadata_service):
                # Proxy settings for this very host (intern computes them without a URL, which
                # ignores no_proxy), plus a timeout (intern sets none).
                opts = service.session.merge_environment_settings(self.url_prefix, {}, None, None, None)
                opts["timeout"] = self.timeout
                service.session_send_opts = opts
            self._local.remote = remote
        return remote

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one request, retrying transient failures with exponential backoff."""
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below
                kind = _classify(exc)
                if kind == "permanent" or attempt >= self.retries:
                    raise self._error(what, exc, kind, attempt + 1) from exc
                delay = min(self.backoff_max, self.backoff * 2**attempt) * (1.0 + 0.25 * random.random())
                attempt += 1
                log.warning("%s: %s failed (%s); retry %d/%d in %.2f s", self.uri, what, _short(exc),
                            attempt, self.retries, delay)
                time.sleep(delay)

    def _error(self, what: str, exc: BaseException, kind: str, attempts: int) -> VolumeSourceError:
        status = _http_status(exc)
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if kind == "unreachable":
            return SourceUnreachableError(
                f"Cannot reach BossDB at {self.url_prefix} to read {self.uri} ({what}: {_short(exc)}; "
                f"{tries}). Without network access, set the parameter '{SOURCE_PARAMETER}' to "
                f"'{PHANTOM_SOURCE}' to run on the built-in synthetic volume, or set the BossDB host "
                "under 'bossdb' in conf/local/credentials.yml."
            )
        if status == 404:
            return ChannelNotFoundError(
                f"{self.uri} does not exist on BossDB at {self.url_prefix} ({what}: HTTP 404 "
                f"{_response_text(exc)}). Check the channel URIs under the parameter '{URIS_PARAMETER}'."
            )
        if status in (401, 403):
            return VolumeSourceError(
                f"BossDB at {self.url_prefix} refused to serve {self.uri} ({what}: HTTP {status} "
                f"{_response_text(exc)}). Check the token under 'bossdb' in conf/local/credentials.yml "
                "(the public prasad2020 data needs token: public) and the channel URIs under "
                f"'{URIS_PARAMETER}'."
            )
        if status is not None:
            hint = ("the server kept failing; try again later or raise the option 'retries'"
                    if kind == "transient" else "the request was rejected")
            return VolumeSourceError(
                f"BossDB at {self.url_prefix} answered HTTP {status} for {self.uri} ({what}, {tries}: "
                f"{_response_text(exc)}); {hint}."
            )
        if kind == "transient":
            return VolumeSourceError(
                f"Reading {self.uri} from BossDB at {self.url_prefix} failed {tries} ({what}: {_short(exc)}). "
                "Try again later, or raise the options 'retries' / 'timeout'."
            )
        return VolumeSourceError(f"Reading {self.uri} from BossDB at {self.url_prefix} failed ({what}: {_short(exc)}).")

    def _cutout(self, resolution: int, box: tuple[tuple[int, int], ...]) -> np.ndarray:
        """One cutout at ``resolution``; box = ((z0, z1), (y0, y1), (x0, x1)) in frame coordinates."""
        (z0, z1), (y0, y1), (x0, x1) = box
        shape = (z1 - z0, y1 - y0, x1 - x0)

        def fetch() -> np.ndarray:
            data = self._remote().get_cutout(self._resource, resolution, [x0, x1], [y0, y1], [z0, z1], parallel=False)
            data = np.asarray(data)
            if data.shape != shape or data.dtype != self._dtype:
                raise _Transient(f"cutout returned {data.dtype}{data.shape}, expected {self._dtype}{shape}")
            return data

        return self._call(f"cutout res={resolution} z={z0}:{z1} y={y0}:{y1} x={x0}:{x1}", fetch)

    def _fetch(self, resolution: int, boxes: list[tuple[tuple[int, int], ...]],
               sink: Callable[[tuple[tuple[int, int], ...], np.ndarray], None], label: str) -> None:
        """Fetch every box (in parallel when ``workers`` > 1) and hand it to ``sink`` in this thread."""
        itemsize = self._dtype.itemsize
        nbytes = sum(int(np.prod([b - a for a, b in box])) * itemsize for box in boxes)
        with _Progress(label, len(boxes), nbytes, self.progress, self.log_interval) as progress:
            if self.workers == 1 or len(boxes) == 1:
                for box in boxes:
                    sink(box, self._cutout(resolution, box))
                    progress.advance(_box_text(box))
                return
            pool = ThreadPoolExecutor(max_workers=min(self.workers, len(boxes)), thread_name_prefix="bossdb")
            try:
                todo = iter(boxes)
                running: dict[Future, tuple] = {}
                # Keep a bounded number of cutouts in flight (bounded memory).
                for box in todo:
                    running[pool.submit(self._cutout, resolution, box)] = box
                    if len(running) >= 2 * self.workers:
                        break
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        box = running.pop(fut)
                        sink(box, fut.result())
                        progress.advance(_box_text(box))
                        nxt = next(todo, None)
                        if nxt is not None:
                            running[pool.submit(self._cutout, resolution, nxt)] = nxt
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    # -- reads ----------------------------------------------------------------------------------
    def _read(self, window: Window) -> np.ndarray:
        out = np.empty(window.shape, dtype=self._dtype)
        oz, oy, ox = self.origin
        lo = (window.z0, window.y0, window.x0)
        boxes = _chunk_boxes(((window.z0 + oz, window.z1 + oz), (window.y0 + oy, window.y1 + oy),
                              (window.x0 + ox, window.x1 + ox)), self.chunk_size)

        def sink(box: tuple[tuple[int, int], ...], data: np.ndarray) -> None:
            sl = tuple(slice(a - o - l, b - o - l) for (a, b), o, l in zip(box, self.origin, lo))
            out[sl] = data

        self._fetch(0, boxes, sink, f"{self.uri} {_window_text(window)}")
        return out

    def level_shape(self, resolution: int) -> tuple[int, int, int]:
        """Extent of the stored resolution level (BossDB rounds up; z shrinks only if isotropic)."""
        s = 2 ** int(resolution)
        nz, ny, nx = self._shape
        return (-(-nz // s) if self.hierarchy_method == "isotropic" else nz, -(-ny // s), -(-nx // s))

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Sections at ``z_indices`` from BossDB's resolution level ``level`` (never full resolution).

        BossDB's own downsampling is used (averaging for image channels; label channels are
        downsampled by BossDB's annotation rule). With ``hierarchy_method: isotropic`` BossDB
        also halves z at every level, so section ``z`` comes from the level's slab
        ``z // 2**level``. If the channel is not downsampled (or ``level`` is beyond the stored
        levels), the deepest available level is read and strided in y and x (with a warning).
        """
        zs = self.check_sections(z_indices, level)
        level = int(level)
        available = self.num_hierarchy_levels if self.downsample_status == "DOWNSAMPLED" else 1
        res = min(level, available - 1)
        if res < level:
            log.warning(
                "%s: BossDB has no resolution level %d (%d level(s), downsample status %s); reading "
                "level %d and keeping every %d-th voxel in y and x", self.uri, level,
                self.num_hierarchy_levels, self.downsample_status or "unknown", res, 2 ** (level - res))
        rem = 2 ** (level - res)
        zfac = 2**res if self.hierarchy_method == "isotropic" else 1
        lz, ly, lx = self.level_shape(res)
        oz, oy, ox = (self.origin[0] // zfac, self.origin[1] // 2**res, self.origin[2] // 2**res)
        out = np.empty((len(zs), *sections_shape(self._shape, level)), dtype=self._dtype)
        targets: dict[int, list[int]] = {}
        for i, z in enumerate(zs):
            targets.setdefault(min(int(z) // zfac, lz - 1), []).append(i)
        boxes: list[tuple[tuple[int, int], ...]] = []
        for z0, z1 in _runs(sorted(targets), self.chunk_size[0]):
            boxes += _chunk_boxes(((z0 + oz, z1 + oz), (oy, ly + oy), (ox, lx + ox)), self.chunk_size)

        def sink(box: tuple[tuple[int, int], ...], data: np.ndarray) -> None:
            (bz0, _), (by0, _), (bx0, _) = box
            y0, x0 = by0 - oy, bx0 - ox
            sy, sx = slice((-y0) % rem, None, rem), slice((-x0) % rem, None, rem)
            ty, tx = -(-y0 // rem), -(-x0 // rem)
            part = data[:, sy, sx]
            for k in range(data.shape[0]):
                for i in targets.get(bz0 - oz + k, ()):
                    out[i, ty:ty + part.shape[1], tx:tx + part.shape[2]] = part[k]

        self._fetch(res, boxes, sink, f"{self.uri} {len(zs)} sections at level {level}")
        return out


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _response_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    text = ""
    if response is not None:
        try:
            text = response.text or ""
        except Exception:  # noqa: BLE001
            text = ""
    text = " ".join(text.split())
    return text[:200]


def _box_text(box: tuple[tuple[int, int], ...]) -> str:
    return " ".join(f"{a}={lo}:{hi}" for a, (lo, hi) in zip("zyx", box))


def _window_text(window: Window) -> str:
    return f"[{window.z0}:{window.z1}, {window.y0}:{window.y1}, {window.x0}:{window.x1}]"


def _chunk_boxes(box: tuple[tuple[int, int], ...], chunk: Sequence[int]) -> list[tuple[tuple[int, int], ...]]:
    """Split ``((z0, z1), (y0, y1), (x0, x1))`` into boxes of at most ``chunk`` (z, y, x) voxels.

    Boxes start at the window's corner (not at multiples of the chunk size): a window no larger
    than a chunk is one request, whatever its position.
    """
    axes = []
    for (lo, hi), c in zip(box, chunk):
        edges = list(range(lo, hi, c)) + [hi]
        axes.append(list(zip(edges[:-1], edges[1:])))
    return [(z, y, x) for z in axes[0] for y in axes[1] for x in axes[2]]


def _runs(values: list[int], max_len: int) -> list[tuple[int, int]]:
    """Consecutive runs of sorted integers as half-open ranges of at most ``max_len``."""
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v and runs[-1][1] - runs[-1][0] < max_len:
            runs[-1] = (runs[-1][0], v + 1)
        else:
            runs.append((v, v + 1))
    return runs


@register_scheme("bossdb")
def open_bossdb(uri: str, **options: Any) -> BossDBVolume:
    """Open ``bossdb://collection/experiment/channel`` (options: see the module docstring)."""
    known = {"host", "protocol", "token", "chunk_size", "retries", "backoff", "backoff_max", "timeout",
             "workers", "progress", "log_interval"}
    ignored = sorted(set(options) - known)
    if ignored:
        log.debug("%s: options %s do not apply to BossDB and are ignored", uri, ", ".join(ignored))
    return BossDBVolume(uri, **{k: v for k, v in options.items() if k in known})


# ================================================================================================
# Local volumes: Zarr and TIFF folders
# ================================================================================================


def _local_path(uri: str, what: str) -> tuple[Path, dict[str, list[str]]]:
    rest = uri.partition("://")[2]
    path_text, _, query = rest.partition("?")
    if not path_text:
        raise VolumeSourceError(f"{uri!r}: no path given; expected {what}. Check '{URIS_PARAMETER}'.")
    path = Path(path_text).expanduser()
    if not path.exists():
        raise ChannelNotFoundError(
            f"{uri}: {path} does not exist. Point the channel URIs under the parameter "
            f"'{URIS_PARAMETER}' to an existing {what} (absolute path: {what.split()[0]}:///abs/path)."
        )
    return path, parse_qs(query, keep_blank_values=True)


def _voxel_option(uri: str, voxel_size: Any) -> tuple[float, float, float] | None:
    if voxel_size is None:
        return None
    try:
        values = tuple(float(v) for v in (voxel_size if isinstance(voxel_size, (list, tuple)) else [voxel_size] * 3))
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise VolumeSourceError(f"{uri}: voxel_size must be three positive numbers (z, y, x), got {voxel_size!r}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class _Level:
    array: Any  # zarr.Array
    factors: tuple[float, float, float]  # (z, y, x) voxel size relative to the full resolution


class ZarrVolume(VolumeSource):
    """A Zarr array, or an OME-Zarr multiscale group, as a ``(z, y, x)`` volume.

    For a multiscale group the first dataset of ``multiscales[0]`` (OME-Zarr 0.4 attributes, or
    0.5's ``ome.multiscales``) is the full resolution, its axes named ``z``, ``y``, ``x`` give the
    order (other axes, e.g. ``t`` or ``c``, must have size 1), and its ``scale`` the voxel size.
    :meth:`sample_sections` reads the coarsest stored level that is not coarser than asked.
    """

    def __init__(self, uri: str, path: Path, array: str | None = None,
                 voxel_size: tuple[float, float, float] | None = None) -> None:
        import zarr

        self.uri = uri
        self.path = path
        try:
            node = zarr.open(str(path), mode="r")
        except Exception as exc:  # noqa: BLE001
            raise VolumeSourceError(
                f"{uri}: {path} is not a readable Zarr store ({_short(exc)}). Check '{URIS_PARAMETER}'."
            ) from exc
        if array:
            if not isinstance(node, zarr.Group):
                raise VolumeSourceError(f"{uri}: ?array={array} needs a Zarr group, but {path} is an array.")
            try:
                node = node[array]
            except KeyError:
                raise ChannelNotFoundError(
                    f"{uri}: the Zarr group {path} has no array {array!r} (it holds: "
                    f"{', '.join(sorted(node.keys())) or 'nothing'}). Check '{URIS_PARAMETER}'."
                ) from None
        self._axes_units: list[str | None] = []
        if isinstance(node, zarr.Group):
            self._levels, axes, vs = self._open_multiscale(node)
        else:
            self._levels, axes, vs = [_Level(node, (1.0, 1.0, 1.0))], None, None
        base = self._levels[0].array
        self._ndim = base.ndim
        self._zyx = self._axis_positions(axes, base.shape)
        self._shape = tuple(int(base.shape[i]) for i in self._zyx)
        self._dtype = np.dtype(base.dtype)
        self._voxel_size = voxel_size or vs or (1.0, 1.0, 1.0)

    def __repr__(self) -> str:
        return f"ZarrVolume({self.uri!r})"

    def _open_multiscale(self, group: Any) -> tuple[list[_Level], list[str] | None, tuple[float, float, float] | None]:
        attrs = dict(group.attrs)
        multiscales = attrs.get("multiscales") or dict(attrs.get("ome") or {}).get("multiscales")
        if not multiscales:
            names = sorted(group.array_keys()) if hasattr(group, "array_keys") else sorted(group.keys())
            raise VolumeSourceError(
                f"{self.uri}: {self.path} is a Zarr group without OME-Zarr 'multiscales' metadata; name "
                f"the array with zarr://{self.path}?array=<name> (arrays: {', '.join(names) or 'none'}). "
                f"Check '{URIS_PARAMETER}'."
            )
        ms = multiscales[0]
        datasets = ms.get("datasets") or []
        if not datasets:
            raise VolumeSourceError(f"{self.uri}: OME-Zarr multiscales metadata lists no datasets")
        axes_meta = ms.get("axes")
        axes = None
        units: list[str | None] = []
        if axes_meta:
            axes = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
            units = [a.get("unit") if isinstance(a, dict) else None for a in axes_meta]
        global_scale = _scale_of(ms.get("coordinateTransformations"))
        arrays, scales = [], []
        for d in datasets:
            try:
                arrays.append(group[d["path"]])
            except KeyError:
                raise VolumeSourceError(
                    f"{self.uri}: OME-Zarr dataset {d['path']!r} listed in multiscales is missing from {self.path}"
                ) from None
            scales.append(_scale_of(d.get("coordinateTransformations")))
        ndim = arrays[0].ndim
        pos = self._axis_positions(axes, arrays[0].shape)
        levels = []
        for arr, scale in zip(arrays, scales):
            if scale is not None and scales[0] is not None and len(scale) == ndim:
                factors = tuple(float(scale[i]) / float(scales[0][i]) for i in pos)
            else:  # no scale: infer from the shapes
                factors = tuple(_pyramid_factor(arrays[0].shape[i], arr.shape[i]) for i in pos)
            levels.append(_Level(arr, factors))  # type: ignore[arg-type]
        vs = None
        if scales[0] is not None and len(scales[0]) == ndim:
            gs = global_scale if global_scale is not None and len(global_scale) == ndim else [1.0] * ndim
            vs = tuple(float(scales[0][i]) * float(gs[i]) * _UNIT_TO_UM.get(str(units[i]).lower() if units else "", 1.0)
                       for i in pos)
        return levels, axes, vs  # type: ignore[return-value]

    def _axis_positions(self, axes: list[str] | None, shape: tuple[int, ...]) -> tuple[int, int, int]:
        ndim = len(shape)
        if ndim < 3:
            raise VolumeSourceError(f"{self.uri}: the Zarr array has {ndim} dimension(s), a volume needs 3 (z, y, x)")
        if axes and len(axes) == ndim and all(a in axes for a in ("z", "y", "x")):
            pos = (axes.index("z"), axes.index("y"), axes.index("x"))
        else:
            pos = (ndim - 3, ndim - 2, ndim - 1)
        extra = [i for i in range(ndim) if i not in pos and shape[i] != 1]
        if extra:
            raise VolumeSourceError(
                f"{self.uri}: the Zarr array has shape {tuple(shape)}; dimensions other than z, y, x "
                "must have size 1 (one channel, one time point)"
            )
        return pos  # type: ignore[return-value]

    def _select(self, array: Any, zsel: Any, ysel: slice, xsel: slice) -> np.ndarray:
        index: list[Any] = [0] * array.ndim
        for p, s in zip(self._zyx, (zsel, ysel, xsel)):
            index[p] = s
        data = np.asarray(array[tuple(index)])
        kept = [p for p in sorted(self._zyx) if not isinstance(index[p], int)]
        wanted = [p for p in self._zyx if not isinstance(index[p], int)]
        if kept != wanted:
            data = np.transpose(data, [kept.index(p) for p in wanted])
        return data

    def _read(self, window: Window) -> np.ndarray:
        z, y, x = window.as_slices()
        return self._select(self._levels[0].array, z, y, x)

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Sections downsampled ``2**level`` in y and x, from the best stored pyramid level.

        Uses the stored level ``j <= level`` with y and x ``2**j`` times coarser (and a matching
        shape) closest to ``level``, then keeps every ``2**(level - j)``-th voxel. If that level
        is also coarser in z (factor ``f``), section ``z`` comes from its slab ``z // f``. A plain
        array (no pyramid) is strided.
        """
        zs = self.check_sections(z_indices, level)
        level = int(level)
        nz, ny, nx = self._shape
        best: tuple[int, float, _Level] | None = None
        for lev in self._levels:
            fz, fy, fx = lev.factors
            j = round(math.log2(fy)) if fy > 0 else -1
            if not (0 <= j <= level and abs(fy - 2**j) < 1e-6 and abs(fx - 2**j) < 1e-6):
                continue
            if fz < 1 - 1e-6 or abs(fz - round(fz)) > 1e-6:
                continue
            shape = tuple(lev.array.shape[i] for i in self._zyx)
            if shape != (-(-nz // round(fz)), -(-ny // 2**j), -(-nx // 2**j)):
                continue
            if best is None or j > best[0] or (j == best[0] and fz < best[1]):
                best = (j, fz, lev)
        assert best is not None  # the full-resolution level always qualifies
        j, fz, lev = best
        rem = 2 ** (level - j)
        out = np.empty((len(zs), *sections_shape(self._shape, level)), dtype=self._dtype)
        for i, z in enumerate(zs):
            out[i] = self._select(lev.array, int(z) // round(fz), slice(None, None, rem), slice(None, None, rem))
        return out


def _pyramid_factor(full: int, size: int) -> float:
    """``2**j`` when ``size == ceil(full / 2**j)``, else the plain ratio."""
    for j in range(31):
        if -(-int(full) // 2**j) == int(size):
            return float(2**j)
    return full / max(1, size)


def _scale_of(transforms: Any) -> list[float] | None:
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale" and "scale" in t:
            return [float(v) for v in t["scale"]]
    return None


@register_scheme("zarr")
def open_zarr(uri: str, voxel_size: Any = None, **options: Any) -> ZarrVolume:
    """Open ``zarr:///abs/path.zarr`` or ``zarr:///abs/path.zarr?array=name``; other options are ignored."""
    path, query = _local_path(uri, "zarr store")
    unknown = sorted(set(query) - {"array"})
    if unknown:
        raise VolumeSourceError(f"{uri}: unknown query parameter(s) {', '.join(unknown)}; only ?array=<name> is supported")
    array = (query.get("array") or [None])[-1] or None
    return ZarrVolume(uri, path, array=array, voxel_size=_voxel_option(uri, voxel_size))


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


class TiffFolderVolume(VolumeSource):
    """A folder of 2D TIFF files, one section per file, z in natural order of the file names.

    Only the file headers are read when the volume is opened (to check that every file holds a
    single 2D image of the same shape and dtype); pixels are read on demand, memory-mapped when
    the file is uncompressed.
    """

    SUFFIXES = (".tif", ".tiff")

    def __init__(self, uri: str, folder: Path, voxel_size: tuple[float, float, float] | None = None) -> None:
        import tifffile

        self.uri = uri
        self.folder = folder
        if not folder.is_dir():
            raise VolumeSourceError(
                f"{uri}: {folder} is not a folder; a tiff:// URI names a folder of 2D TIFF slices. "
                f"Check '{URIS_PARAMETER}'."
            )
        self.files = sorted(
            (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in self.SUFFIXES and not p.name.startswith(".")),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise ChannelNotFoundError(
                f"{uri}: the folder {folder} holds no .tif/.tiff files. Check '{URIS_PARAMETER}'."
            )
        shape: tuple[int, ...] | None = None
        dtype: np.dtype | None = None
        for p in self.files:
            try:
                with tifffile.TiffFile(p) as tf:
                    series = tf.series[0]
                    s_shape, s_dtype, n_series = tuple(series.shape), np.dtype(series.dtype), len(tf.series)
            except Exception as exc:  # noqa: BLE001
                raise VolumeSourceError(f"{uri}: cannot read the TIFF file {p} ({_short(exc)})") from exc
            s_shape = tuple(s_shape[1:]) if len(s_shape) == 3 and s_shape[0] == 1 else s_shape
            if len(s_shape) != 2 or n_series != 1:
                raise VolumeSourceError(
                    f"{uri}: the TIFF file {p} holds shape {s_shape} in {n_series} series; every file of "
                    "the folder must be one 2D single-channel section"
                )
            if shape is None:
                shape, dtype = s_shape, s_dtype
            elif s_shape != shape or s_dtype != dtype:
                raise VolumeSourceError(
                    f"{uri}: the TIFF file {p} has shape {s_shape} and dtype {s_dtype}, but {self.files[0].name} "
                    f"(the first section) has shape {shape} and dtype {dtype}; all sections must agree"
                )
        assert shape is not None and dtype is not None
        self._shape = (len(self.files), int(shape[0]), int(shape[1]))
        self._dtype = dtype
        self._voxel_size = voxel_size or (1.0, 1.0, 1.0)

    def __repr__(self) -> str:
        return f"TiffFolderVolume({self.uri!r}, {len(self.files)} files)"

    def _section(self, z: int, ysel: slice = slice(None), xsel: slice = slice(None)) -> np.ndarray:
        import tifffile

        path = self.files[z]
        try:
            try:
                data = tifffile.memmap(path, mode="r")
            except ValueError:  # compressed or not contiguous: decode it
                data = tifffile.imread(path)
        except Exception as exc:  # noqa: BLE001
            raise VolumeSourceError(f"{self.uri}: cannot read the TIFF file {path} ({_short(exc)})") from exc
        data = data.reshape(data.shape[-2:]) if data.ndim == 3 and data.shape[0] == 1 else data
        if data.shape != self._shape[1:] or data.dtype != self._dtype:
            raise VolumeSourceError(
                f"{self.uri}: the TIFF file {path} now holds {data.dtype}{data.shape}, expected "
                f"{self._dtype}{self._shape[1:]} (was it changed after the volume was opened?)"
            )
        out = np.array(data[ysel, xsel])
        del data
        return out

    def _read(self, window: Window) -> np.ndarray:
        out = np.empty(window.shape, dtype=self._dtype)
        _, ysel, xsel = window.as_slices()
        for i, z in enumerate(range(window.z0, window.z1)):
            out[i] = self._section(z, ysel, xsel)
        return out

    def sample_sections(self, z_indices: Sequence[int], level: int) -> np.ndarray:
        """Every ``2**level``-th voxel in y and x of the sections (one file read per section)."""
        zs = self.check_sections(z_indices, level)
        step = 2 ** int(level)
        out = np.empty((len(zs), *sections_shape(self._shape, level)), dtype=self._dtype)
        for i, z in enumerate(zs):
            out[i] = self._section(int(z), slice(None, None, step), slice(None, None, step))
        return out


@register_scheme("tiff")
def open_tiff(uri: str, voxel_size: Any = None, **options: Any) -> TiffFolderVolume:
    """Open ``tiff:///abs/folder`` (2D TIFF slices in natural file-name order); other options are ignored."""
    path, query = _local_path(uri, "tiff folder")
    if query:
        raise VolumeSourceError(f"{uri}: tiff:// URIs take no query parameters")
    return TiffFolderVolume(uri, path, voxel_size=_voxel_option(uri, voxel_size))
