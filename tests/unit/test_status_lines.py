"""What ``status`` prints: the same memory unit as ``monitor``, and the current connection's
"since"."""

from __future__ import annotations

import time

import pytest

from wats.cli.monitor_view import bytes_text
from wats.cli.supervisor_cmd import _print_status


def _status(rss: int, since: float) -> dict:
    worker = {
        "name": "health",
        "state": "RUNNING",
        "pid": 101,
        "restarts": 0,
        "uptime": 30.0,
        "rss": rss,
        "cpu_percent": 0.5,
        "last_exit": None,
    }
    return {
        "supervisor": {"instance": "default", "pid": 100, "uptime": 60.0, "config": None},
        "connection": {"status": "ONLINE", "url": "http://127.0.0.1:8080", "since": since},
        "workers": [worker],
    }


def test_status_memory_is_in_the_monitors_unit(capsys: pytest.CaptureFixture) -> None:
    rss = 40 * 1024 * 1024
    _print_status(_status(rss, time.time()))
    out = capsys.readouterr().out
    assert bytes_text(rss) == "40.0 MB" and "40.0 MB" in out
    assert "41.9 MB" not in out  # the decimal megabytes status used to print


def test_status_shows_since_when_the_current_connection_is_online(
    capsys: pytest.CaptureFixture,
) -> None:
    since = time.time()
    _print_status(_status(1024, since))
    out = capsys.readouterr().out
    assert f"connection ONLINE since {time.strftime('%H:%M:%S', time.localtime(since))}" in out
