"""A BossDB-compatible HTTP server on the loopback interface, for tests.

It serves numpy arrays (or any :class:`~mtneuro.volumes.VolumeSource`, e.g. a phantom channel,
read lazily) through the endpoints the real ``intern`` client uses, so tests exercise
``intern`` and :class:`mtneuro.volumes.BossDBVolume` over real HTTP:

* ``GET /v1/collection/{c}/experiment/{e}/channel/{ch}`` -- channel metadata (datatype, type,
  downsample status);
* ``GET /v1/collection/{c}/experiment/{e}`` -- experiment metadata (coordinate frame name,
  ``num_hierarchy_levels``, ``hierarchy_method``);
* ``GET /v1/coord/{name}`` -- coordinate frame (extents from the arrays, voxel size);
* ``GET /v1/cutout/{c}/{e}/{ch}/{res}/{x0}:{x1}/{y0}:{y1}/{z0}:{z1}/`` -- a blosc-compressed
  C-order ``[z, y, x]`` cutout (``Content-Type: application/blosc``);
* collection and list routes (``/v1/collection/``, ``.../experiment/``, ``.../channel/``).

Resolution level ``r`` is made on the fly by striding: level-``r`` voxel ``(z, y, x)`` is the
full-resolution voxel ``(z * fz, y * 2**r, x * 2**r)`` with ``fz = 2**r`` for
``hierarchy_method="isotropic"`` and 1 for ``"anisotropic"``; its extents are
``ceil(size / 2**r)`` like BossDB's.

Usage::

    from bossdb_server import BossDBTestServer

    with BossDBTestServer({"coll/exp/image": image_uint8, "coll/exp/labels": labels_uint64}) as srv:
        vol = open_volume(srv.uri("coll/exp/image"), **srv.options, retries=2, backoff=0.01)
        ...
        assert srv.request_count == 4           # cutout requests received (failed ones included)
        srv.fail_next(2, status=503)           # the next 2 cutout requests answer 503
        srv.drop_next(1)                       # the next cutout request: connection closed, no answer
        srv.delay_next(1, 30, skip=12)         # the 13th cutout request from now hangs for 30 s
        srv.fail_always(403, channel="coll/exp/labels")   # permanent error until clear_faults()

``srv.options`` is ``{"host": "127.0.0.1:<port>", "protocol": "http", "token": ...}``, the keys
of the ``bossdb`` credentials. The server checks the ``Authorization: Token ...`` header when
constructed with ``token=``. Every request is recorded in ``srv.requests``
(:class:`RequestRecord`), cutouts also in ``srv.cutouts``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import blosc
import numpy as np

from mtneuro.volumes import VolumeSource, Window

DROP = "drop"
_DTYPES = ("uint8", "uint16", "uint64")


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received."""

    method: str
    path: str
    kind: str  # cutout | channel | experiment | coord | collection | list | unknown
    status: int  # HTTP status sent; 0 when the connection was dropped on purpose
    channel: str | None = None  # "collection/experiment/channel" for channel and cutout requests
    resolution: int | None = None
    zyx: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None  # cutout box, level coords


@dataclass
class _Fault:
    status: int | str  # HTTP status or DROP
    remaining: int | None  # None: until clear_faults()
    kind: str  # cutout | metadata | any
    channel: str | None
    delay: float = 0.0
    skip: int = 0  # matching requests let through before the fault applies


@dataclass
class _Channel:
    key: str
    data: np.ndarray | VolumeSource
    shape: tuple[int, int, int]
    dtype: np.dtype


_CUTOUT = re.compile(
    r"^/v1/cutout/(?P<c>[^/]+)/(?P<e>[^/]+)/(?P<ch>[^/]+)/(?P<res>\d+)/(?P<x0>\d+):(?P<x1>\d+)/"
    r"(?P<y0>\d+):(?P<y1>\d+)/(?P<z0>\d+):(?P<z1>\d+)(?:/\d+:\d+)?/?$"
)
_CHANNEL = re.compile(r"^/v1/collection/(?P<c>[^/]+)/experiment/(?P<e>[^/]+)/channel/(?P<ch>[^/]+)/?$")
_CHANNELS = re.compile(r"^/v1/collection/(?P<c>[^/]+)/experiment/(?P<e>[^/]+)/channel/?$")
_EXPERIMENT = re.compile(r"^/v1/collection/(?P<c>[^/]+)/experiment/(?P<e>[^/]+)/?$")
_EXPERIMENTS = re.compile(r"^/v1/collection/(?P<c>[^/]+)/experiment/?$")
_COLLECTION = re.compile(r"^/v1/collection/(?P<c>[^/]+)/?$")
_COLLECTIONS = re.compile(r"^/v1/collection/?$")
_COORD = re.compile(r"^/v1/coord/(?P<name>[^/]+)/?$")


class _Reply(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class BossDBTestServer:
    """Loopback BossDB look-alike serving ``{"collection/experiment/channel": array_or_source}``.

    Args:
        channels: channel key -> ``(z, y, x)`` numpy array (uint8, uint16 or uint64) or
            VolumeSource. The channels of one experiment must share a shape (its coordinate frame).
        voxel_size: (z, y, x) in ``voxel_unit`` for every coordinate frame.
        num_hierarchy_levels, hierarchy_method, downsample_status: the experiment's resolution
            levels, as BossDB reports them.
        token: if set, requests must carry ``Authorization: Token <token>`` (else 401).
        max_cutout_bytes: larger cutouts are refused with 413 (keeps the server bounded).
        port: 0 picks a free port.
    """

    def __init__(
        self,
        channels: Mapping[str, np.ndarray | VolumeSource],
        *,
        voxel_size: tuple[float, float, float] = (1.17, 1.17, 1.17),
        voxel_unit: str = "micrometers",
        num_hierarchy_levels: int = 4,
        hierarchy_method: str = "anisotropic",
        downsample_status: str = "DOWNSAMPLED",
        token: str | None = None,
        max_cutout_bytes: int = 256 * 2**20,
        port: int = 0,
    ) -> None:
        if hierarchy_method not in ("anisotropic", "isotropic"):
            raise ValueError(f"hierarchy_method must be anisotropic or isotropic, got {hierarchy_method!r}")
        self.voxel_size = tuple(float(v) for v in voxel_size)
        self.voxel_unit = voxel_unit
        self.num_hierarchy_levels = int(num_hierarchy_levels)
        self.hierarchy_method = hierarchy_method
        self.downsample_status = downsample_status
        self.token = token
        self.max_cutout_bytes = int(max_cutout_bytes)
        self._port = int(port)
        self._channels: dict[str, _Channel] = {}
        self._frames: dict[tuple[str, str], tuple[int, int, int]] = {}
        for key, data in channels.items():
            self.add_channel(key, data)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.requests: list[RequestRecord] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- content ----------------------------------------------------------------------------
    def add_channel(self, key: str, data: np.ndarray | VolumeSource) -> None:
        """Serve one more channel (also while running)."""
        parts = key.strip("/").split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"channel key must be 'collection/experiment/channel', got {key!r}")
        if isinstance(data, VolumeSource):
            shape, dtype = tuple(int(s) for s in data.shape), np.dtype(data.dtype)
        else:
            data = np.ascontiguousarray(data)
            if data.ndim != 3:
                raise ValueError(f"{key}: arrays must be 3D (z, y, x), got shape {data.shape}")
            shape, dtype = tuple(int(s) for s in data.shape), data.dtype
        if dtype.name not in _DTYPES:
            raise ValueError(f"{key}: intern supports uint8, uint16 and uint64 channels, not {dtype}")
        frame = self._frames.setdefault((parts[0], parts[1]), shape)  # type: ignore[arg-type]
        if frame != shape:
            raise ValueError(f"{key}: shape {shape} differs from its experiment's frame {frame}")
        self._channels["/".join(parts)] = _Channel("/".join(parts), data, shape, dtype)  # type: ignore[arg-type]

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> BossDBTestServer:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"app": self})
        server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="bossdb-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BossDBTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the ``host`` credential."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def options(self) -> dict[str, str]:
        """The ``bossdb`` credentials for this server: ``host``, ``protocol``, ``token``."""
        return {"host": self.host, "protocol": "http", "token": self.token or "public"}

    @staticmethod
    def uri(key: str) -> str:
        return "bossdb://" + key.strip("/")

    # -- counters -----------------------------------------------------------------------------
    @property
    def cutouts(self) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.kind == "cutout"]

    @property
    def request_count(self) -> int:
        """Cutout requests received, failed and dropped ones included."""
        return len(self.cutouts)

    @property
    def metadata_request_count(self) -> int:
        with self._lock:
            return sum(r.kind != "cutout" for r in self.requests)

    def count(self, kind: str | None = None, status: int | None = None) -> int:
        """Requests of a kind (``cutout``, ``channel``, ...; None: all) with a status (None: any)."""
        with self._lock:
            return sum(
                (kind is None or r.kind == kind) and (status is None or r.status == status) for r in self.requests
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- faults -------------------------------------------------------------------------------
    def fail_next(
        self, n: int = 1, status: int = 503, *, kind: str = "cutout", channel: str | None = None, skip: int = 0
    ) -> None:
        """Answer the next ``n`` matching requests with ``status``, after letting ``skip`` of them through."""
        self._add_fault(_Fault(int(status), int(n), kind, channel, skip=int(skip)))

    def drop_next(self, n: int = 1, *, kind: str = "cutout", channel: str | None = None, skip: int = 0) -> None:
        """Close the connection of the next ``n`` matching requests without answering."""
        self._add_fault(_Fault(DROP, int(n), kind, channel, skip=int(skip)))

    def delay_next(
        self, n: int, seconds: float, *, kind: str = "cutout", channel: str | None = None, skip: int = 0
    ) -> None:
        """Answer the next ``n`` matching requests normally, but only after ``seconds`` (max 30)."""
        self._add_fault(_Fault(200, int(n), kind, channel, delay=min(30.0, float(seconds)), skip=int(skip)))

    def fail_always(self, status: int, *, kind: str = "any", channel: str | None = None) -> None:
        """Answer every matching request with ``status`` until :meth:`clear_faults` (permanent)."""
        self._add_fault(_Fault(int(status), None, kind, channel))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.kind not in ("cutout", "metadata", "any"):
            raise ValueError("kind must be cutout, metadata or any")
        if fault.channel is not None:
            fault.channel = fault.channel.strip("/")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kind: str, channel: str | None) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind != "any" and (fault.kind == "cutout") != (kind == "cutout"):
                    continue
                if fault.channel is not None and fault.channel != channel:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    # -- responses ------------------------------------------------------------------------------
    def _level_shape(self, shape: tuple[int, int, int], res: int) -> tuple[int, int, int]:
        s = 2**res
        nz = -(-shape[0] // s) if self.hierarchy_method == "isotropic" else shape[0]
        return (nz, -(-shape[1] // s), -(-shape[2] // s))

    def cutout(self, key: str, res: int, z: tuple[int, int], y: tuple[int, int], x: tuple[int, int]) -> np.ndarray:
        """The array a cutout request returns (level ``res`` coordinates)."""
        ch = self._channels[key]
        s = 2**res
        fz = s if self.hierarchy_method == "isotropic" else 1
        box = (z[0] * fz, (z[1] - 1) * fz + 1, y[0] * s, (y[1] - 1) * s + 1, x[0] * s, (x[1] - 1) * s + 1)
        if isinstance(ch.data, VolumeSource):
            full = ch.data.read(Window(*box))
        else:
            full = ch.data[box[0] : box[1], box[2] : box[3], box[4] : box[5]]
        return np.ascontiguousarray(full[::fz, ::s, ::s])

    def _frame_name(self, c: str, e: str) -> str:
        return f"{c}_{e}_frame"

    def _route(self, path: str) -> tuple[str, dict[str, str]]:
        for kind, rx in (
            ("cutout", _CUTOUT),
            ("channel", _CHANNEL),
            ("list", _CHANNELS),
            ("experiment", _EXPERIMENT),
            ("list", _EXPERIMENTS),
            ("collection", _COLLECTION),
            ("list", _COLLECTIONS),
            ("coord", _COORD),
        ):
            m = rx.match(path)
            if m:
                return kind, m.groupdict()
        return "unknown", {}

    def _metadata(self, kind: str, g: dict[str, str]) -> Any:
        if kind == "channel":
            key = f"{g['c']}/{g['e']}/{g['ch']}"
            ch = self._channels.get(key)
            if ch is None:
                raise _Reply(404, f"Channel {g['ch']} not found")
            return {
                "name": g["ch"],
                "description": "test channel",
                "experiment": g["e"],
                "creator": "test",
                "default_time_sample": 0,
                "base_resolution": 0,
                "datatype": ch.dtype.name,
                "type": "image" if ch.dtype.name in ("uint8", "uint16") else "annotation",
                "sources": [],
                "related": [],
                "downsample_status": self.downsample_status,
            }
        if kind == "experiment":
            if (g["c"], g["e"]) not in self._frames:
                raise _Reply(404, f"Experiment {g['e']} not found")
            return {
                "name": g["e"],
                "description": "test experiment",
                "collection": g["c"],
                "creator": "test",
                "coord_frame": self._frame_name(g["c"], g["e"]),
                "num_hierarchy_levels": self.num_hierarchy_levels,
                "hierarchy_method": self.hierarchy_method,
                "num_time_samples": 1,
                "time_step": None,
                "time_step_unit": "",
                "channels": sorted(k.split("/")[2] for k in self._channels if k.startswith(f"{g['c']}/{g['e']}/")),
            }
        if kind == "coord":
            for (c, e), (nz, ny, nx) in self._frames.items():
                if self._frame_name(c, e) == g["name"]:
                    vz, vy, vx = self.voxel_size
                    return {
                        "name": g["name"],
                        "description": "test frame",
                        "x_start": 0,
                        "x_stop": nx,
                        "y_start": 0,
                        "y_stop": ny,
                        "z_start": 0,
                        "z_stop": nz,
                        "x_voxel_size": vx,
                        "y_voxel_size": vy,
                        "z_voxel_size": vz,
                        "voxel_unit": self.voxel_unit,
                    }
            raise _Reply(404, f"Coordinate frame {g['name']} not found")
        if kind == "collection":
            if not any(c == g["c"] for c, _ in self._frames):
                raise _Reply(404, f"Collection {g['c']} not found")
            return {
                "name": g["c"],
                "description": "test collection",
                "creator": "test",
                "experiments": sorted(e for c, e in self._frames if c == g["c"]),
            }
        raise _Reply(404, "Not found")

    def _listing(self, path: str) -> Any:
        if _COLLECTIONS.match(path):
            return {"collections": sorted({c for c, _ in self._frames})}
        m = _EXPERIMENTS.match(path)
        if m:
            return {"experiments": sorted(e for c, e in self._frames if c == m["c"])}
        m = _CHANNELS.match(path)
        if m:
            return {"channels": sorted(k.split("/")[2] for k in self._channels if k.startswith(f"{m['c']}/{m['e']}/"))}
        raise _Reply(404, "Not found")

    def _cutout_reply(self, g: dict[str, str]) -> tuple[bytes, tuple]:
        key = f"{g['c']}/{g['e']}/{g['ch']}"
        ch = self._channels.get(key)
        if ch is None:
            raise _Reply(404, f"Channel {g['ch']} not found")
        res = int(g["res"])
        if res >= self.num_hierarchy_levels:
            raise _Reply(400, f"Invalid resolution {res}: the experiment has {self.num_hierarchy_levels} levels")
        if res > 0 and self.downsample_status != "DOWNSAMPLED":
            raise _Reply(400, f"Channel {g['ch']} is not downsampled; resolution {res} is unavailable")
        ext = self._level_shape(ch.shape, res)
        box = tuple((int(g[a + "0"]), int(g[a + "1"])) for a in "zyx")
        for axis, (lo, hi), size in zip("zyx", box, ext):
            if not (0 <= lo < hi <= size):
                raise _Reply(400, f"Invalid {axis} range {lo}:{hi} at resolution {res} (extent {size})")
        nbytes = int(np.prod([hi - lo for lo, hi in box])) * ch.dtype.itemsize
        if nbytes > self.max_cutout_bytes:
            raise _Reply(413, f"Cutout of {nbytes} bytes is over the limit of {self.max_cutout_bytes}")
        data = self.cutout(key, res, *box)  # type: ignore[arg-type]
        return blosc.compress(data.tobytes(), typesize=data.dtype.itemsize), box


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end after this many seconds
    app: BossDBTestServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.app._lock:
            self.app._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.app._lock:
                self.app._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self) -> None:
        app = self.app
        path = urlsplit(self.path).path
        kind, g = app._route(path)
        channel = f"{g['c']}/{g['e']}/{g['ch']}" if "ch" in g else None
        resolution = int(g["res"]) if "res" in g else None
        zyx = tuple((int(g[a + "0"]), int(g[a + "1"])) for a in "zyx") if kind == "cutout" else None

        def record(status: int) -> None:
            app._record(RequestRecord("GET", self.path, kind, status, channel, resolution, zyx))  # type: ignore[arg-type]

        fault = app._take_fault(kind, channel)
        if fault is not None and fault.status == DROP:
            record(0)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        elif fault is not None:
            record(int(fault.status))
            self._send_json(int(fault.status), {"status": fault.status, "code": 0, "message": "injected failure"})
            return
        try:
            if app.token is not None and self.headers.get("Authorization", "") != f"Token {app.token}":
                raise _Reply(401, "Invalid token.")
            if kind == "cutout":
                body, _ = app._cutout_reply(g)
                record(200)
                self._send(200, body, "application/blosc")
                return
            payload = app._listing(path) if kind == "list" else app._metadata(kind, g)
        except _Reply as reply:
            record(reply.status)
            self._send_json(reply.status, {"status": reply.status, "code": 0, "message": reply.message})
            return
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:
            record(500)
            self._send_json(500, {"status": 500, "code": 0, "message": f"{type(exc).__name__}: {exc}"})
            return
        record(200)
        try:
            self._send_json(200, payload)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._send_json(405, {"status": 405, "code": 0, "message": "read-only test server"})

    do_POST = do_PUT = do_DELETE = _not_allowed
