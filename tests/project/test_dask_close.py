"""A local cluster that is slow to close after a finished run does not turn the run into a failure."""

from __future__ import annotations

import logging

import pytest

from mtneuro.runners import close_cluster


class _Closing:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.closed = False

    def close(self) -> None:
        self.closed = True
        if self.error is not None:
            raise self.error


def test_a_close_that_times_out_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    client, cluster = _Closing(), _Closing(TimeoutError("nanny did not answer in 30 s"))
    with caplog.at_level(logging.WARNING, logger="mtneuro.runners"):
        close_cluster(client, cluster)
    assert client.closed and cluster.closed
    assert "did not close in time" in caplog.text and "nanny did not answer" in caplog.text


def test_any_other_close_error_is_raised() -> None:
    with pytest.raises(OSError, match="broken pipe"):
        close_cluster(_Closing(), _Closing(OSError("broken pipe")))
