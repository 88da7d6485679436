"""``wats-supervisor login|logout|proxy|status`` through the real CLI against a real server.

The server is the embedded WATS server on 127.0.0.1 (real HTTP); the machine id comes from a
file the test owns, so "another machine" is one write away.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from wats.cli.main import app
from wats.config import ClientConfig, load_config
from wats.credentials import ConnectionConfig, CredentialError, credentials_dir, stored_token
from wats.credentials import store as store_module
from wats.credentials.crypto import MACHINE_ID_FILE_ENV
from wats.server.testing import EmbeddedServer
from wats.workers.connection import resolve_server

pytestmark = pytest.mark.timeout(60)

USER, PASSWORD = "test", "secret"


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The iteration count is tested in test_credentials_crypto; here it would only cost time."""
    monkeypatch.setattr(store_module, "KDF_ITERATIONS", 1_000)


@pytest.fixture
def server(wats_server: EmbeddedServer) -> EmbeddedServer:
    return wats_server


@pytest.fixture
def config_file(tmp_path: Path, server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setenv(MACHINE_ID_FILE_ENV, str(machine))
    monkeypatch.delenv("WATS_TOKEN", raising=False)
    monkeypatch.delenv("WATS_SUPERVISOR_CONFIG", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[instance]\nname = "login-test"\n\n[server]\nurl = "{server.url}"\n\n'
        f'[paths]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n'
        f'runtime_dir = "{(tmp_path / "run").as_posix()}"\n'
    )
    return path


def _cli(config_file: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config_file)], input=input)


def _record_text(config_file: Path) -> str:
    cfg, _ = load_config(config_file)
    return (credentials_dir(cfg) / "connection.json").read_text()


def _secrets(token: str) -> list[str]:
    """The token, its decoded form, the password: none may appear anywhere we write."""
    return [token, base64.b64decode(token).decode(), PASSWORD]


def test_login_with_the_servers_credentials_stores_an_encrypted_token(
    config_file: Path, server: EmbeddedServer
) -> None:
    result = _cli(config_file, "login", "--username", USER, input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert f"logged in to {server.url} as {USER}" in result.stdout
    text = _record_text(config_file)
    for secret in _secrets(server.token):
        assert secret not in text
        assert secret not in result.output
    cfg, _ = load_config(config_file)
    stored = stored_token(cfg)
    assert stored is not None and stored.reveal() == server.token


def test_login_prompts_for_the_user_name_when_not_given(
    config_file: Path, server: EmbeddedServer
) -> None:
    result = _cli(config_file, "login", input=f"{USER}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert f"as {USER}" in result.stdout


def test_a_wrong_password_is_refused_with_a_clear_message_and_nothing_is_stored(
    config_file: Path, server: EmbeddedServer
) -> None:
    result = _cli(config_file, "login", "--username", USER, input="wrong\n")
    assert result.exit_code == 1
    assert "the server refused these credentials" in result.stderr
    assert "nothing was stored" in result.stderr
    cfg, _ = load_config(config_file)
    assert not (credentials_dir(cfg) / "connection.json").exists()


def test_a_failed_login_keeps_the_earlier_one(config_file: Path, server: EmbeddedServer) -> None:
    assert _cli(config_file, "login", "-u", USER, input=f"{PASSWORD}\n").exit_code == 0
    assert _cli(config_file, "login", "-u", USER, input="typo\n").exit_code == 1
    cfg, _ = load_config(config_file)
    assert stored_token(cfg) is not None


def test_an_unreachable_server_is_a_clear_error_and_nothing_is_stored(
    config_file: Path, server: EmbeddedServer
) -> None:
    server.refuse_connections()
    result = _cli(config_file, "login", "-u", USER, "--timeout", "2", input=f"{PASSWORD}\n")
    assert result.exit_code == 1
    assert "cannot reach" in result.stderr and "nothing was stored" in result.stderr
    cfg, _ = load_config(config_file)
    assert not (credentials_dir(cfg) / "connection.json").exists()


def test_token_stdin_logs_in_with_an_existing_api_token(
    config_file: Path, server: EmbeddedServer
) -> None:
    result = _cli(config_file, "login", "--token-stdin", input=server.token + "\n")
    assert result.exit_code == 0, result.output
    assert f"logged in to {server.url} as {USER}" in result.stdout
    assert server.token not in result.output and server.token not in _record_text(config_file)


def test_logout_removes_the_token_and_says_so_twice_harmlessly(
    config_file: Path, server: EmbeddedServer
) -> None:
    assert _cli(config_file, "login", "--token-stdin", input=server.token).exit_code == 0
    first = _cli(config_file, "logout")
    assert first.exit_code == 0 and f"logged out {USER}" in first.stdout
    assert "ciphertext" not in _record_text(config_file)
    second = _cli(config_file, "logout")
    assert second.exit_code == 0 and "not logged in" in second.stdout
    cfg, _ = load_config(config_file)
    assert stored_token(cfg) is None


def test_status_shows_user_and_url_but_never_the_token(
    config_file: Path, server: EmbeddedServer
) -> None:
    assert _cli(config_file, "login", "--token-stdin", input=server.token).exit_code == 0
    text = _cli(config_file, "status")
    assert "not running" in text.stderr  # no supervisor here: the login is still shown
    assert USER in text.stdout and server.url in text.stdout
    as_json = _cli(config_file, "status", "--json")
    login = json.loads(as_json.stdout)["login"]
    assert (login["username"], login["server_url"], login["logged_in"]) == (
        USER,
        server.url,
        True,
    )
    encrypted = json.loads(_record_text(config_file))["token"]["ciphertext"]
    for output in (text.output, as_json.output):
        for secret in [*_secrets(server.token), encrypted]:
            assert secret not in output


def test_resolve_server_uses_the_stored_token_when_the_env_var_is_unset(
    config_file: Path, server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli(config_file, "login", "-u", USER, input=f"{PASSWORD}\n").exit_code == 0
    cfg, _ = load_config(config_file)
    target = resolve_server(cfg)
    assert (target.url, target.token) == (server.url, server.token)
    monkeypatch.setenv("WATS_TOKEN", "b3RoZXI6dG9rZW4=")
    assert resolve_server(cfg).token == "b3RoZXI6dG9rZW4="


def test_credentials_moved_to_another_machine_ask_for_a_new_login(
    config_file: Path, server: EmbeddedServer, tmp_path: Path
) -> None:
    assert _cli(config_file, "login", "-u", USER, input=f"{PASSWORD}\n").exit_code == 0
    (tmp_path / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    cfg, _ = load_config(config_file)
    with pytest.raises(CredentialError, match="another machine") as caught:
        resolve_server(cfg)
    assert "wats-supervisor login" in str(caught.value)
    assert server.token not in str(caught.value)


def test_proxy_set_show_clear_keeps_the_password_out_of_every_output(
    config_file: Path,
) -> None:
    result = _cli(
        config_file,
        "proxy",
        "set",
        "--mode",
        "manual",
        "--host",
        "proxy.example.com",
        "--port",
        "3128",
        "--username",
        "px",
        "--password-stdin",
        input="hunter22\n",
    )
    assert result.exit_code == 0, result.output
    assert "hunter22" not in _record_text(config_file)
    shown = _cli(config_file, "proxy", "show")
    assert "proxy.example.com:3128 as px" in shown.stdout and "hunter22" not in shown.output
    assert _cli(config_file, "proxy", "clear").exit_code == 0
    assert "no proxy stored" in _cli(config_file, "proxy", "show").stdout


def test_proxy_set_manual_without_a_port_is_a_usage_error(config_file: Path) -> None:
    result = _cli(config_file, "proxy", "set", "--mode", "manual", "--host", "p.example.com")
    assert result.exit_code == 2 and "host and port" in result.stderr


def test_the_health_worker_uses_the_stored_token_and_counts_into_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.bus_harness import BusHarness, WorkerProcess, make_config, short_tempdir
    from wats.api.auth import Secret
    from wats.credentials import login
    from wats.protocol import topics

    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setenv(MACHINE_ID_FILE_ENV, str(machine))  # inherited by the worker process
    monkeypatch.delenv("WATS_TOKEN", raising=False)
    with short_tempdir() as tmp, EmbeddedServer(tmp / "server") as server:
        cfg = make_config(
            tmp / "data",
            tmp / "run",
            server={"url": server.url},
            health={"interval_seconds": 0.3, "timeout_seconds": 2.0},
        )
        login(cfg, server.url, USER, Secret(server.token))
        with BusHarness(tmp / "run") as bus:
            bus.write_config(cfg)
            with WorkerProcess(bus, "health", "wats.workers.health:HealthWorker"):
                online = bus.wait_for(
                    topics.CONNECTION_STATUS, lambda e: e.body["status"] == "ONLINE", src="health"
                )
                assert online.body["url"] == server.url  # the stored token was accepted
                mark = bus.mark()
                server.set_faults(offline=True)
                bus.wait_for(
                    topics.CONNECTION_STATUS,
                    lambda e: e.body["status"] == "OFFLINE",
                    src="health",
                    since=mark,
                )
                record = _poll_record(cfg, lambda r: r.stats.disconnections == 1)
    assert record.stats.connections == 1 and record.stats.failed_checks >= 1
    assert record.state.value == "OFFLINE" and record.last_connected is not None
    assert record.last_disconnected is not None and record.last_error
    assert server.token not in (record.last_error or "")
    assert record.health.interval_seconds == 0.3 and record.username == USER


def _poll_record(
    cfg: ClientConfig, condition: Callable[[ConnectionConfig], bool]
) -> ConnectionConfig:
    """The record once ``condition(record)`` holds (the worker writes it after each check)."""
    from tests.support.bus_harness import wait_until
    from wats.credentials import load_connection

    def ready() -> ConnectionConfig | None:
        record = load_connection(cfg)
        return record if record is not None and condition(record) else None

    result: ConnectionConfig = wait_until(ready, timeout=10.0, what="the record update")
    return result
