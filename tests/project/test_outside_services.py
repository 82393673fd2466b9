"""Outside services fail fast: a dead or silent BossDB host, MLflow store or Dask scheduler is known
within the probe's bounds, before any work, with one error naming it and the setting to change.

Real sockets on loopback: a closed port (refused), a socket that accepts connections and never
answers (a stalled proxy), and the BossDB look-alike of ``tests/bossdb_server.py``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bossdb_server import BossDBTestServer
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from mtneuro import tracking
from mtneuro.preflight import ProbeSettings, ServiceUnreachableError, check_bossdb, probe_http
from mtneuro.runners import connect_scheduler
from mtneuro.volumes import open_volume

PROBE = ProbeSettings(connect_timeout_s=0.5, read_timeout_s=1.0)
#: The probe's bound plus slack for a loaded machine.
BOUND_S = PROBE.total_s + 2.0


@pytest.fixture
def silent_address() -> Iterator[str]:
    """``127.0.0.1:<port>`` of a server that accepts every connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def closed_address() -> str:
    """``127.0.0.1:<port>`` where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def _timed(func, *args, **kwargs):
    start = time.monotonic()
    try:
        return func(*args, **kwargs), time.monotonic() - start
    except Exception as exc:
        return exc, time.monotonic() - start


def test_a_silent_http_server_is_found_within_the_probe_bounds(silent_address: str, closed_address: str) -> None:
    reason, seconds = _timed(probe_http, f"http://{silent_address}/health", PROBE)
    assert reason == "connected, but no answer within 1 s"
    assert PROBE.read_timeout_s - 0.1 <= seconds < BOUND_S
    reason, seconds = _timed(probe_http, f"http://{closed_address}/health", PROBE)
    assert "ConnectionError" in reason and seconds < BOUND_S


def _settings(**update) -> tracking.TrackingSettings:
    base = {
        "enabled": True,
        "required": True,
        "tracking_uri": None,
        "experiment_name": "t",
        "tasks": ["classification"],
        "metric_datasets": ["metrics"],
        "history_datasets": [],
        "artifact_datasets": [],
        "summary_datasets": [],
        "report_datasets": [],
    }
    return tracking.TrackingSettings(**{**base, **update})


def test_an_unreachable_tracking_server_is_one_error_or_with_required_false_a_warning(
    silent_address: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://{silent_address}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    error, seconds = _timed(tracking.check_store, _settings(), tmp_path, PROBE)
    assert isinstance(error, ServiceUnreachableError) and seconds < BOUND_S
    message = str(error)
    assert f"The MLflow tracking store at {uri} is not reachable" in message
    assert "gave up after at most 1.5 s" in message and "mlflow.yml" in message and "required: false" in message

    # required: false -> one warning, and the tracking hook of the run opens nothing
    assert tracking.check_store(_settings(required=False), tmp_path, PROBE) is False
    assert "MLflow tracking is off for this run" in caplog.text
    hook = tracking.MlflowTrackingHook(_settings(required=False))
    hook.project_path = tmp_path
    hook.before_pipeline_run(run_params={"run_id": "r"}, pipeline=None)
    assert tracking.ENV_PARENT not in __import__("os").environ


def test_a_local_store_in_a_read_only_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'sub' / 'mlflow.db'}")
    try:
        if __import__("os").access(folder, __import__("os").W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ServiceUnreachableError, match="is not writable"):
            tracking.check_store(_settings(), tmp_path, PROBE)
    finally:
        folder.chmod(0o700)


def test_a_dead_or_silent_bossdb_host_is_known_before_any_download(silent_address: str, closed_address: str) -> None:
    volume = {
        "source": "bossdb",
        "uris": {"bossdb": {"image": "bossdb://prasad/prasad2020/image"}},
        "options": {"bossdb": {}},
    }
    for address, reason in [(silent_address, "connected, but no answer within"), (closed_address, "ConnectionError")]:
        credentials = {"bossdb": {"host": address, "protocol": "http", "token": "public"}}
        error, seconds = _timed(check_bossdb, volume, credentials, PROBE)
        assert isinstance(error, ServiceUnreachableError), error
        assert seconds < BOUND_S
        message = str(error)
        assert f"BossDB at http://{address} is not reachable ({reason}" in message
        assert "credentials.yml" in message and "volume.source to phantom" in message
        assert "gave up after at most 1.5 s" in message
    # a live server answers the probe (the phantom source is never probed)
    image = np.zeros((4, 8, 8), np.uint8)
    with BossDBTestServer({"prasad/prasad2020/image": image}) as server:
        check_bossdb(volume, {"bossdb": server.options}, PROBE)
        assert [r.kind for r in server.requests] == ["channel"]
    check_bossdb({**volume, "source": "phantom"}, {"bossdb": {"host": closed_address}}, PROBE)


def test_a_stalled_bossdb_read_says_when_it_gives_up(silent_address: str) -> None:
    start = time.monotonic()
    with pytest.raises(Exception) as caught:
        open_volume(
            "bossdb://prasad/prasad2020/image",
            host=silent_address,
            protocol="http",
            retries=1,
            backoff=0.01,
            timeout=[0.5, 0.5],
            progress="off",
        )
    assert time.monotonic() - start < 15  # (imports intern on first use), not the minutes of an unbounded read
    message = str(caught.value)
    assert "each request gives up after at most 2 s (2 attempts, timeout connect 0.5 s + read 0.5 s" in message
    assert "volume.options.bossdb.retries / timeout" in message


def test_a_dead_or_silent_dask_scheduler_is_known_within_seconds(silent_address: str, closed_address: str) -> None:
    import distributed

    for address, reason in [(closed_address, "ConnectionRefusedError"), (silent_address, "connected, but no answer")]:
        error, seconds = _timed(connect_scheduler, f"tcp://{address}", PROBE)
        assert isinstance(error, ServiceUnreachableError), error
        assert seconds < BOUND_S
        message = str(error)
        assert f"The Dask scheduler at tcp://{address} is not reachable ({reason}" in message
        assert "dask.address" in message and "--runner-params" in message
    # a live scheduler passes the probe and connects
    with distributed.LocalCluster(
        n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        client = connect_scheduler(cluster.scheduler_address, PROBE)
        assert client.scheduler_info()["address"] == cluster.scheduler_address
        client.close()


@pytest.mark.slow
def test_a_run_with_an_unreachable_tracking_server_stops_before_any_node(
    project_path: Path, tmp_path: Path, closed_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real session: tracking on (a copy of conf/ whose tiny profile tracks), the server is gone."""
    conf = tmp_path / "conf"
    shutil.copytree(project_path / "conf", conf)
    (conf / "tiny" / "mlflow.yml").write_text("enabled: true\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://{closed_address}")
    data_root = tmp_path / "data"
    bootstrap_project(project_path)
    start = time.monotonic()
    with (
        KedroSession.create(
            project_path=project_path, env="tiny", conf_source=str(conf), runtime_params={"data_root": str(data_root)}
        ) as session,
        pytest.raises(ServiceUnreachableError, match=f"MLflow tracking store at http://{closed_address}"),
    ):
        session.run(pipeline_names=["ingestion"])
    assert not (data_root / "02_intermediate").exists()  # no node ran
    assert not (data_root / ".mtneuro.lock").exists()
    print(f"stopped {time.monotonic() - start:.1f} s after the session started")
