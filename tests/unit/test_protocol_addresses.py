"""Bus endpoints: ipc paths in the runtime dir, TCP fallback, and the endpoints.json record."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from wats.protocol.addresses import (
    ENDPOINTS_FILE,
    MAX_IPC_PATH_BYTES,
    TCP_PLACEHOLDER,
    BusAddresses,
    read_endpoints,
    write_endpoints,
)
from wats.protocol.codec import ProtocolError

BOUND = BusAddresses(
    events_in="tcp://127.0.0.1:40001",
    events_out="tcp://127.0.0.1:40002",
    control="tcp://127.0.0.1:40003",
)


def test_runtime_dir_gives_ipc_sockets_inside_it(tmp_path: Path) -> None:
    addresses = BusAddresses.for_runtime_dir(tmp_path, ipc=True)
    assert addresses == BusAddresses(
        events_in=f"ipc://{tmp_path}/events-in.sock",
        events_out=f"ipc://{tmp_path}/events-out.sock",
        control=f"ipc://{tmp_path}/control.sock",
    )
    assert addresses.is_concrete()


def test_without_ipc_the_addresses_are_loopback_tcp_placeholders(tmp_path: Path) -> None:
    addresses = BusAddresses.for_runtime_dir(tmp_path, ipc=False)
    assert addresses == BusAddresses(TCP_PLACEHOLDER, TCP_PLACEHOLDER, TCP_PLACEHOLDER)
    assert not addresses.is_concrete()


def test_runtime_dir_too_long_for_a_unix_socket_falls_back_to_tcp(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * MAX_IPC_PATH_BYTES)
    assert BusAddresses.for_runtime_dir(deep, ipc=True).events_in == TCP_PLACEHOLDER


def test_platform_decides_ipc_when_not_told(tmp_path: Path) -> None:
    from wats.platform import ipc_supported

    addresses = BusAddresses.for_runtime_dir(tmp_path)
    assert addresses.control.startswith("ipc://") == ipc_supported()


def test_relative_runtime_dir_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        BusAddresses.for_runtime_dir("run", ipc=True).control
        == f"ipc://{tmp_path}/run/control.sock"
    )


def test_written_endpoints_read_back_equal(tmp_path: Path) -> None:
    path = write_endpoints(tmp_path, BOUND)
    assert path == tmp_path / ENDPOINTS_FILE
    assert read_endpoints(tmp_path) == BOUND


def test_endpoints_file_is_private(tmp_path: Path) -> None:
    path = write_endpoints(tmp_path, BOUND)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_runtime_dir_is_created_private(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    write_endpoints(runtime, BOUND)
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700


def test_rewriting_endpoints_replaces_them_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_endpoints(tmp_path, BOUND)
    newer = BusAddresses("ipc:///r/a.sock", "ipc:///r/b.sock", "ipc:///r/c.sock")
    write_endpoints(tmp_path, newer)
    assert read_endpoints(tmp_path) == newer
    assert [p.name for p in tmp_path.iterdir()] == [ENDPOINTS_FILE]


def test_placeholders_are_never_recorded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        write_endpoints(tmp_path, BusAddresses.for_runtime_dir(tmp_path, ipc=False))
    assert not (tmp_path / ENDPOINTS_FILE).exists()


def test_reading_without_a_file_says_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_endpoints(tmp_path)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"events_in": "a", "events_out": "b"}), "control"),
        (json.dumps({"events_in": "a", "events_out": 5, "control": "c"}), "events_out"),
        (
            json.dumps({"events_in": TCP_PLACEHOLDER, "events_out": "b", "control": "c"}),
            "placeholder",
        ),
    ],
)
def test_broken_endpoints_file_is_refused_naming_file_and_field(
    tmp_path: Path, content: str, field: str
) -> None:
    (tmp_path / ENDPOINTS_FILE).write_text(content)
    with pytest.raises(ProtocolError) as err:
        read_endpoints(tmp_path)
    assert ENDPOINTS_FILE in str(err.value)
    assert field in str(err.value)
