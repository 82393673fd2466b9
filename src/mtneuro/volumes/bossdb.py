"""BossDB channels ``bossdb://collection/experiment/channel``, read with the ``intern`` client.

Transient HTTP failures are retried by urllib3's :class:`~urllib3.util.retry.Retry`, mounted on
the ``requests`` sessions of ``intern``: refused or dropped connections, timeouts before the
answer, and the statuses of :data:`TRANSIENT_STATUS` (every 5xx, 408, 425, 429) are retried up
to ``retries`` times with urllib3's exponential backoff (the first retry at once, then
``backoff * 2**(n - 1)`` seconds plus up to 25 % jitter, at most ``backoff_max``; a
``Retry-After`` header is honoured up to ``backoff_max``). Other HTTP errors (401, 403, 404, ...)
and TLS errors fail at once. Every failure ends in a :class:`~mtneuro.volumes.VolumeSourceError`
that names the URI, the HTTP status, the number of attempts and the parameter to fix.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Annotated, Any, Literal

import numpy as np
from kedro.framework.hooks import hook_impl
from pydantic import Field, NonNegativeInt, PositiveInt
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
from urllib3.util.retry import Retry

from mtneuro.volumes.base import (
    PHANTOM_SOURCE,
    SOURCE_PARAMETER,
    UNIT_TO_UM,
    URIS_PARAMETER,
    ChannelNotFoundError,
    NonNegativeNumber,
    PositiveNumber,
    SourceOptions,
    SourceUnreachableError,
    VolumeSource,
    VolumeSourceError,
    Window,
    sections_shape,
    short_error,
)
from mtneuro.volumes.progress import Progress
from mtneuro.volumes.registry import register_scheme, source_options

log = logging.getLogger(__name__)

_BOSS_DEFAULTS = {"host": "api.bossdb.io", "protocol": "https", "token": "public"}
#: HTTP statuses worth retrying: every server error, request timeouts and rate limits.
TRANSIENT_STATUS = frozenset(range(500, 600)) | {408, 425, 429}
_BOSS_INTERN_DTYPES = ("uint8", "uint16", "uint32", "uint64")
#: The options :func:`open_bossdb` passes on to :class:`BossDBVolume` (others are ignored).
OPTIONS = (
    "host",
    "protocol",
    "token",
    "chunk_size",
    "retries",
    "backoff",
    "backoff_max",
    "timeout",
    "workers",
    "progress",
    "log_interval",
)


class LoggedRetry(Retry):
    """urllib3's retry policy that logs every retry with the channel it serves.

    When the retries are used up it records the number of attempts on the
    :class:`~urllib3.exceptions.MaxRetryError` (``attempts``) for the final error message.
    """

    def __init__(self, *args: Any, source: str = "", stopped: Callable[[], bool] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        #: True once another request of the same download has failed for good: retry no more.
        self.stopped = stopped

    def new(self, **kw: Any) -> LoggedRetry:
        retry = super().new(**kw)
        retry.source = self.source
        retry.stopped = self.stopped
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> LoggedRetry:
        if self.stopped is not None and self.stopped():
            exc = MaxRetryError(_pool, url, error or Exception("another request of this download failed"))
            exc.attempts = len(self.history) + 1  # type: ignore[attr-defined]
            raise exc
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            exc.attempts = len(self.history) + 1  # type: ignore[attr-defined]
            raise
        cause = (
            f"HTTP {response.status}" if response is not None and response.status else short_error(error or Exception())
        )
        attempt = len(retry.history)
        limit = attempt + retry.total if isinstance(retry.total, int) else attempt
        # (no delay in the message: urllib3 draws its jitter when it sleeps)
        log.warning("%s: GET %s failed (%s); retry %d/%d", self.source, url, cause, attempt, limit)
        return retry


class _BadPayload(Exception):
    """Internal: the server answered 200 with a cutout of the wrong size or type."""


class _Stopped(Exception):
    """Internal: a queued cutout of a download that has already failed; never sent."""


def endpoint(host: str | None = None, protocol: str | None = None) -> str:
    """``protocol://host`` as :class:`BossDBVolume` resolves it (defaults, ``host: https://...``).

    The server a cube came from is part of its identity: a cube cached from one server is never
    reused for another (see :mod:`mtneuro.datasets.cube_store`).
    """
    host_text = str(host or _BOSS_DEFAULTS["host"]).strip().rstrip("/")
    protocol_text = str(protocol or _BOSS_DEFAULTS["protocol"]).strip().rstrip(":/")
    if "://" in host_text:  # tolerate host: https://api.bossdb.io
        protocol_text, _, host_text = host_text.partition("://")
    return f"{protocol_text.lower()}://{host_text.lower()}"


class BossDBSessionHook:
    """Keeps the Kedro environment of the running session, which error messages name (the
    source reads no configuration itself: credentials and options are handed to it)."""

    def __init__(self) -> None:
        self.active = False
        self.env: str | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self.active = True
        self.env = getattr(context, "env", None) or getattr(context.config_loader, "env", None)


#: The instance registered in ``settings.HOOKS``.
BOSSDB_SESSION_HOOK = BossDBSessionHook()


def credentials_hint() -> str:
    """Where the BossDB host and token are set, naming the active Kedro environment."""
    session = BOSSDB_SESSION_HOOK
    where = f"the active environment is '{session.env or 'local'}'" if session.active else "no Kedro session is active"
    return (
        "conf/local/credentials.yml (key 'bossdb': host, protocol, token; it applies in every "
        f"environment, --env=tiny and --env=paper included; {where})"
    )


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _failure(exc: BaseException) -> tuple[str, int]:
    """``(kind, attempts)`` of a request that failed after urllib3's retries.

    ``kind`` is ``unreachable`` (no connection), ``transient`` (the server kept failing, the
    connection dropped, the answer was cut off or corrupt) or ``permanent``.
    """
    import requests

    status = _http_status(exc)
    if status is not None:  # intern raises HTTPError on any status but 200; the response keeps urllib3's history
        retries = getattr(getattr(exc.response, "raw", None), "retries", None)  # type: ignore[attr-defined]
        attempts = len(getattr(retries, "history", None) or ()) + 1
        return ("transient" if status in TRANSIENT_STATUS else "permanent"), attempts
    cause = exc.args[0] if exc.args else None
    attempts = int(getattr(cause, "attempts", 1)) if isinstance(cause, MaxRetryError) else 1
    if isinstance(exc, requests.exceptions.SSLError):
        return "permanent", attempts
    if isinstance(exc, requests.exceptions.ConnectTimeout) or isinstance(
        getattr(cause, "reason", None), ConnectTimeoutError
    ):
        return "unreachable", attempts  # also refused connections and unknown hosts (NewConnectionError)
    if isinstance(exc, (requests.exceptions.RequestException, _BadPayload)) or "blosc" in type(exc).__module__:
        return "transient", attempts
    return "permanent", attempts


class BossDBVolume(VolumeSource):
    """A BossDB channel ``bossdb://collection/experiment/channel`` read with ``intern``.

    Metadata (dtype from the channel, shape and voxel size from the experiment's coordinate
    frame, resolution levels from the experiment) is fetched when the volume is opened. Window
    coordinates are relative to the coordinate frame's start (0 for prasad2020, so they equal
    BossDB's own coordinates). Reads are split into cutouts of at most ``chunk_size`` voxels,
    fetched by ``workers`` threads; each request is retried by urllib3 on transient failures
    (see the module docstring). See :mod:`mtneuro.volumes` for the options.
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
        self.protocol, _, self.host = endpoint(host, protocol).partition("://")
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
        self._failed: threading.Event | None = None  # set by a download that has failed for good

        remote = self._remote()
        chan = self._call(
            "channel metadata", lambda: remote.get_channel(self.channel, self.collection, self.experiment)
        )
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
        factor = UNIT_TO_UM.get(unit, 1.0)
        vz, vy, vx = (float(v) * factor for v in (frame.z_voxel_size, frame.y_voxel_size, frame.x_voxel_size))
        self._voxel_size = (vz, vy, vx)
        self.num_hierarchy_levels = max(1, int(exp.num_hierarchy_levels or 1))
        self.hierarchy_method = str(exp.hierarchy_method or "anisotropic").lower()
        self.downsample_status = str(getattr(chan, "downsample_status", "") or "").upper()
        log.debug(
            "Opened %r: shape %s, dtype %s, %d levels (%s, %s)",
            self,
            self._shape,
            self._dtype,
            self.num_hierarchy_levels,
            self.hierarchy_method,
            self.downsample_status,
        )

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
    def retry_policy(self) -> LoggedRetry:
        """The urllib3 retry policy of every request (see the module docstring)."""
        return LoggedRetry(
            total=self.retries,
            other=0,  # TLS errors and the like: not retried
            status_forcelist=TRANSIENT_STATUS,
            backoff_factor=self.backoff,
            backoff_max=self.backoff_max,
            backoff_jitter=0.25 * self.backoff,
            retry_after_max=math.ceil(self.backoff_max),
            raise_on_status=False,  # intern turns the last answer into an HTTPError with its status
            source=self.uri,
            stopped=self._stop_requested,
        )

    def give_up_seconds(self) -> float:
        """The longest one request can take before it fails for good: every attempt waiting its full
        connect + read timeout, plus urllib3's backoff sleeps (with their 25 % jitter)."""
        if self.timeout is None:
            return math.inf
        per_attempt = sum(self.timeout) if isinstance(self.timeout, tuple) else 2 * self.timeout
        sleeps = sum(
            min(self.backoff_max, self.backoff * 2 ** (k - 1)) + 0.25 * self.backoff for k in range(2, self.retries + 1)
        )
        return (self.retries + 1) * per_attempt + sleeps

    def budget_text(self) -> str:
        """How long a request is tried, and the options that bound it (for error messages)."""
        if isinstance(self.timeout, tuple):
            timeout = f"connect {self.timeout[0]:g} s + read {self.timeout[1]:g} s"
        else:
            timeout = "none" if self.timeout is None else f"{self.timeout:g} s"
        total = self.give_up_seconds()
        gives_up = "never gives up" if math.isinf(total) else f"gives up after at most {total:.0f} s"
        return (
            f"each request {gives_up} ({self.retries + 1} attempts, timeout {timeout}; the options "
            f"volume.options.bossdb.retries / timeout)"
        )

    def _stop_requested(self) -> bool:
        """True in a worker thread whose download has already failed elsewhere (no more retries)."""
        failed = getattr(self._local, "failed", None)
        return failed is not None and failed.is_set()

    def _remote(self) -> Any:
        """One ``intern`` BossRemote (with its own HTTP sessions) per thread."""
        remote = getattr(self._local, "remote", None)
        if remote is None:
            from intern.remote.boss import BossRemote
            from requests.adapters import HTTPAdapter

            remote = BossRemote({"protocol": self.protocol, "host": self.host, "token": self.token})
            for service in (remote.project_service, remote.volume_service, remote.metadata_service):
                adapter = HTTPAdapter(max_retries=self.retry_policy())
                service.session.mount("http://", adapter)
                service.session.mount("https://", adapter)
                # Proxy settings for this very host (intern computes them without a URL, which
                # ignores no_proxy), plus a timeout (intern sets none).
                opts = service.session.merge_environment_settings(self.url_prefix, {}, None, None, None)
                opts["timeout"] = self.timeout
                service.session_send_opts = opts
            self._local.remote = remote
        return remote

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one request (urllib3 retries it); a failure becomes a :class:`VolumeSourceError`."""
        try:
            return fn()
        except Exception as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: BaseException) -> VolumeSourceError:
        kind, attempts = _failure(exc)
        status = _http_status(exc)
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if kind == "unreachable":
            return SourceUnreachableError(
                f"Cannot reach BossDB at {self.url_prefix} to read {self.uri} ({what}: {short_error(exc)}; "
                f"{tries}; {self.budget_text()}). Without network access, set the parameter '{SOURCE_PARAMETER}' to "
                f"'{PHANTOM_SOURCE}' to run on the built-in synthetic volume, or set the BossDB host in "
                f"{credentials_hint()}."
            )
        if status == 404:
            return ChannelNotFoundError(
                f"{self.uri} does not exist on BossDB at {self.url_prefix} ({what}: HTTP 404 "
                f"{_response_text(exc)}). Check the channel URIs under the parameter '{URIS_PARAMETER}'."
            )
        if status in (401, 403):
            return VolumeSourceError(
                f"BossDB at {self.url_prefix} refused to serve {self.uri} ({what}: HTTP {status} "
                f"{_response_text(exc)}). Check the token in {credentials_hint()}; the public prasad2020 "
                f"data needs token: public. Check also the channel URIs under '{URIS_PARAMETER}'."
            )
        if status is not None:
            hint = (
                "the server kept failing; try again later or raise the option 'retries'"
                if kind == "transient"
                else "the request was rejected"
            )
            return VolumeSourceError(
                f"BossDB at {self.url_prefix} answered HTTP {status} for {self.uri} ({what}, {tries}: "
                f"{_response_text(exc)}); {hint}."
            )
        if kind == "transient":
            return VolumeSourceError(
                f"Reading {self.uri} from BossDB at {self.url_prefix} failed {tries} ({what}: {short_error(exc)}; "
                f"{self.budget_text()}). Try again later, or raise the options 'retries' / 'timeout'."
            )
        return VolumeSourceError(
            f"Reading {self.uri} from BossDB at {self.url_prefix} failed ({what}: {short_error(exc)})."
        )

    def _cutout(self, resolution: int, box: tuple[tuple[int, int], ...]) -> np.ndarray:
        """One cutout at ``resolution``; box = ((z0, z1), (y0, y1), (x0, x1)) in frame coordinates."""
        (z0, z1), (y0, y1), (x0, x1) = box
        shape = (z1 - z0, y1 - y0, x1 - x0)

        def fetch() -> np.ndarray:
            data = self._remote().get_cutout(self._resource, resolution, [x0, x1], [y0, y1], [z0, z1], parallel=False)
            data = np.asarray(data)
            if data.shape != shape or data.dtype != self._dtype:
                raise _BadPayload(f"cutout returned {data.dtype}{data.shape}, expected {self._dtype}{shape}")
            return data

        return self._call(f"cutout res={resolution} z={z0}:{z1} y={y0}:{y1} x={x0}:{x1}", fetch)

    def _fetch(
        self,
        resolution: int,
        boxes: list[tuple[tuple[int, int], ...]],
        sink: Callable[[tuple[tuple[int, int], ...], np.ndarray], None],
        label: str,
    ) -> None:
        """Fetch every box (in parallel when ``workers`` > 1) and hand it to ``sink`` in this thread.

        The first request that fails for good ends the download: queued cutouts are never sent
        and requests in flight stop retrying, so the error comes within one retry budget.
        """
        itemsize = self._dtype.itemsize
        nbytes = sum(int(np.prod([b - a for a, b in box])) * itemsize for box in boxes)
        failed = threading.Event()
        lock = threading.Lock()
        errors: list[BaseException] = []  # the first failure, the one to report

        def cutout(box: tuple[tuple[int, int], ...]) -> np.ndarray:
            if failed.is_set():
                raise _Stopped()
            self._local.failed = failed
            try:
                return self._cutout(resolution, box)
            except BaseException as exc:
                with lock:
                    if not failed.is_set():
                        errors.append(exc)
                        failed.set()
                raise
            finally:
                self._local.failed = None

        with Progress(label, len(boxes), nbytes, self.progress, self.log_interval) as progress:
            if self.workers == 1 or len(boxes) == 1:
                for box in boxes:
                    sink(box, cutout(box))
                    progress.advance(_box_text(box))
                return
            pool = ThreadPoolExecutor(max_workers=min(self.workers, len(boxes)), thread_name_prefix="bossdb")
            stop = False
            try:
                todo = iter(boxes)
                running: dict[Future, tuple] = {}
                # Keep a bounded number of cutouts in flight (bounded memory).
                for box in todo:
                    running[pool.submit(cutout, box)] = box
                    if len(running) >= 2 * self.workers:
                        break
                while running and not stop:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        box = running.pop(fut)
                        if fut.exception() is not None:
                            stop = True
                            break
                        sink(box, fut.result())
                        progress.advance(_box_text(box))
                        nxt = next(todo, None) if not failed.is_set() else None
                        if nxt is not None:
                            running[pool.submit(cutout, nxt)] = nxt
            finally:
                failed.set()  # also on KeyboardInterrupt or a failing sink
                pool.shutdown(wait=True, cancel_futures=True)
            if errors:
                raise errors[0]

    # -- reads ----------------------------------------------------------------------------------
    def _read(self, window: Window) -> np.ndarray:
        out = np.empty(window.shape, dtype=self._dtype)
        oz, oy, ox = self.origin
        lo = (window.z0, window.y0, window.x0)
        boxes = _chunk_boxes(
            ((window.z0 + oz, window.z1 + oz), (window.y0 + oy, window.y1 + oy), (window.x0 + ox, window.x1 + ox)),
            self.chunk_size,
        )

        def sink(box: tuple[tuple[int, int], ...], data: np.ndarray) -> None:
            sl = tuple(slice(a - o - w, b - o - w) for (a, b), o, w in zip(box, self.origin, lo))
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
                "level %d and keeping every %d-th voxel in y and x",
                self.uri,
                level,
                self.num_hierarchy_levels,
                self.downsample_status or "unknown",
                res,
                2 ** (level - res),
            )
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
                    out[i, ty : ty + part.shape[1], tx : tx + part.shape[2]] = part[k]

        self._fetch(res, boxes, sink, f"{self.uri} {len(zs)} sections at level {level}")
        return out


def _response_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    text = ""
    if response is not None:
        try:
            text = response.text or ""
        except Exception:
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
        edges = [*range(lo, hi, c), hi]
        axes.append(list(itertools.pairwise(edges)))
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


@source_options("bossdb")
class BossDBOptions(SourceOptions):
    """``volume.options.bossdb``: overrides for BossDB reads; an unset (or null) key keeps the
    credentials' or the reader's value.

    Host and protocol normally come from the ``bossdb`` credentials; the reader's defaults are
    documented in :mod:`mtneuro.volumes`. The token is a secret and only ever comes from the
    credentials (``conf/local/credentials.yml``): parameters are logged, recorded with every
    cube and tracked, so there is no ``token`` key here.
    """

    host: Annotated[str, Field(min_length=1)] | None = None
    protocol: Literal["http", "https"] | None = None
    #: (z, y, x) voxels per cutout request.
    chunk_size: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)] | None = None
    retries: NonNegativeInt | None = None
    backoff: NonNegativeNumber | None = None
    backoff_max: NonNegativeNumber | None = None
    #: Seconds, or [connect, read].
    timeout: PositiveNumber | Annotated[list[PositiveNumber], Field(min_length=2, max_length=2)] | None = None
    workers: PositiveInt | None = None
    #: ``off`` unquoted in YAML reads as false (true means auto).
    progress: Literal["auto", "bar", "log", "off", True, False] | None = None
    log_interval: NonNegativeNumber | None = None


def _endpoint_of(options: Any) -> str:
    return endpoint(options.get("host"), options.get("protocol"))


@register_scheme("bossdb", credentials="bossdb", endpoint=_endpoint_of)
def open_bossdb(uri: str, **options: Any) -> BossDBVolume:
    """Open ``bossdb://collection/experiment/channel`` (options: see :mod:`mtneuro.volumes`)."""
    ignored = sorted(set(options) - set(OPTIONS))
    if ignored:
        log.debug("%s: options %s do not apply to BossDB and are ignored", uri, ", ".join(ignored))
    return BossDBVolume(uri, **{k: v for k, v in options.items() if k in OPTIONS})
