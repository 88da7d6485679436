"""``wats-supervisor server`` as a real subprocess: start, serve, credentials, SIGTERM."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from wats.server.auth import make_token
from wats.server.testing import ServerProcess

pytestmark = pytest.mark.timeout(60)


def test_cli_server_serves_version_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        answer = httpx.get(
            f"{server.url}/api/App/Version",
            headers={"Authorization": f"Basic {server.token}"},
            timeout=5,
        )
        assert answer.status_code == 200 and answer.json() == "24.1.0"
    finally:
        code = server.stop()
    assert code == 0
    assert any(str(tmp_path / "data") in line for line in server.output)
    assert not any(server.token in line for line in server.output)


def test_cli_server_creates_credentials_once_and_never_prints_the_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, token=None) as server:
        creds_file = data / "credentials.json"
        creds = json.loads(creds_file.read_text())
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        token = make_token(creds["username"], creds["password"])
        answer = httpx.get(
            f"{server.url}/api/App/Version", headers={"Authorization": f"Basic {token}"}, timeout=5
        )
        assert answer.status_code == 200
    output = "\n".join(server.output)
    assert str(creds_file) in output and "'wats'" in output
    assert creds["password"] not in output and token not in output
    with ServerProcess(data, token=None):
        assert json.loads(creds_file.read_text()) == creds  # reused, not recreated


def test_cli_server_applies_fault_flags_and_reference_file(tmp_path: Path) -> None:
    reference = tmp_path / "ref.toml"
    reference.write_text('[[processes]]\ncode = 3\nname = "Three"\nisTestOperation = true\n')
    args = ["--reference", str(reference), "--throttle-next", "1", "--retry-after", "7"]
    with ServerProcess(tmp_path / "data", extra_args=args) as server:
        headers = {"Authorization": f"Basic {server.token}"}
        throttled = httpx.get(f"{server.url}/api/App/Processes", headers=headers, timeout=5)
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7"
        processes = httpx.get(f"{server.url}/api/App/Processes", headers=headers, timeout=5)
        assert [p["name"] for p in processes.json()] == ["Three"]


def test_cli_server_refuses_a_bad_reference_file(tmp_path: Path) -> None:
    reference = tmp_path / "ref.json"
    reference.write_text('{"processes": [{"code": 1}]}')
    server = ServerProcess(tmp_path / "data", extra_args=["--reference", str(reference)])
    with pytest.raises(RuntimeError, match=r"processes\.0\.name"):
        server.start()
