"""Probes of outside services (BossDB, an MLflow server, a Dask scheduler): one bounded request each.

Shared by the pre-flight checks (:mod:`mtneuro.preflight`), the tracking store check
(:mod:`mtneuro.tracking`) and the Dask runner, so that none of them imports another.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import PositiveFloat

from mtneuro.config.base import StrictModel
from mtneuro.faults import FaultError

log = logging.getLogger(__name__)

SETTINGS_FILE = "conf/<env>/preflight.yml"


class ServiceUnreachableError(FaultError):
    """An outside service the run needs (BossDB, MLflow, a Dask scheduler) does not answer."""


class ProbeSettings(StrictModel):
    """Bounds of one probe of an outside service (seconds)."""

    connect_timeout_s: PositiveFloat
    read_timeout_s: PositiveFloat

    @property
    def total_s(self) -> float:
        return self.connect_timeout_s + self.read_timeout_s


def _probe_text(probe: ProbeSettings) -> str:
    return (
        f"gave up after at most {probe.total_s:g} s: connect timeout {probe.connect_timeout_s:g} s + read timeout "
        f"{probe.read_timeout_s:g} s, the settings probe.connect_timeout_s / probe.read_timeout_s in {SETTINGS_FILE}"
    )


def probe_http(
    url: str, probe: ProbeSettings, *, server_errors_fail: bool = False, headers: Mapping[str, str] | None = None
) -> str:
    """One GET of ``url`` without retries: ``""`` if the server answers, else why not.

    Any HTTP answer counts (401 and 404 too: the server is there), except 5xx when
    ``server_errors_fail``. Proxy settings of the environment apply, as for the real requests.
    """
    import requests

    start = time.monotonic()
    try:
        response = requests.get(
            url,
            timeout=(probe.connect_timeout_s, probe.read_timeout_s),
            stream=True,
            allow_redirects=False,
            headers=dict(headers or {}),
        )
        response.close()
    except requests.exceptions.ConnectTimeout:
        return f"no connection within {probe.connect_timeout_s:g} s"
    except requests.exceptions.ReadTimeout:
        return f"connected, but no answer within {probe.read_timeout_s:g} s"
    except requests.exceptions.RequestException as exc:
        reason = exc.args[0] if exc.args else exc
        text = str(getattr(reason, "reason", reason))
        return f"{type(exc).__name__}: {text[:200]}"
    finally:
        log.debug("Probed %s in %.2f s", url, time.monotonic() - start)
    if server_errors_fail and response.status_code >= 500:
        return f"it answered HTTP {response.status_code}"
    return ""


def probe_tcp(address: str, probe: ProbeSettings, *, greeting: bool = False) -> str:
    """A TCP connection to ``scheme://host:port``: ``""`` if it is accepted, else why not.

    ``greeting``: the server must also send its first bytes within the read timeout (a Dask
    scheduler sends its handshake as soon as it accepts a connection; a stalled proxy sends none).
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parts.hostname or not parts.port:
        return f"{address!r} is not an address of the form tcp://host:port"
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=probe.connect_timeout_s) as connection:
            if greeting:
                connection.settimeout(probe.read_timeout_s)
                try:
                    if not connection.recv(1):
                        return "it closed the connection without a word"
                except TimeoutError:
                    return f"connected, but no answer within {probe.read_timeout_s:g} s"
            return ""
    except TimeoutError:
        return f"no connection within {probe.connect_timeout_s:g} s"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


def unreachable(service: str, where: str, reason: str, setting: str, probe: ProbeSettings) -> ServiceUnreachableError:
    """The one error of a dead or silent outside service."""
    return ServiceUnreachableError(
        f"{service} at {where} is not reachable ({reason}; {_probe_text(probe)}). Nothing has run. "
        f"Start it or fix the address ({setting}), then run the same command again."
    )
