"""The connection record on disk: encrypted, private, locked, and honest about failures."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from wats.api.auth import Secret
from wats.api.proxy import ProxySettings
from wats.config.models import ClientConfig
from wats.credentials import (
    ConnectionConfig,
    ConnectionState,
    ConnectionStore,
    CredentialError,
    clear_proxy,
    credentials_dir,
    load_connection,
    login,
    logout,
    record_health,
    same_server,
    save_connection,
    set_proxy,
    stored_proxy,
    stored_token,
    token_username,
)
from wats.credentials import store as store_module
from wats.credentials.crypto import MACHINE_ID_FILE_ENV
from wats.workers.connection import resolve_server

pytestmark = pytest.mark.timeout(30)

TOKEN = "dGVzdDpzZWNyZXQ="  # base64("test:secret")
URL = "https://wats.example.com"


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the record, not the iteration count (test_credentials_crypto)."""
    monkeypatch.setattr(store_module, "KDF_ITERATIONS", 1_000)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine-id file this test controls (write another id into it to 'move' the files)."""
    source = tmp_path / "machine-id"
    source.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setenv(MACHINE_ID_FILE_ENV, str(source))
    return source


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClientConfig:
    monkeypatch.delenv("WATS_TOKEN", raising=False)
    return ClientConfig.model_validate(
        {"server": {"url": URL}, "paths": {"data_dir": str(tmp_path / "data")}}
    )


def test_a_stored_token_round_trips_and_is_not_in_the_file_in_clear(
    config: ClientConfig, machine: Path
) -> None:
    login(config, URL, "test", Secret(TOKEN))
    assert stored_token(config) == Secret(TOKEN)
    text = (credentials_dir(config) / "connection.json").read_text()
    assert TOKEN not in text and "secret" not in text
    record = load_connection(config)
    assert record is not None and record.username == "test" and record.server_url == URL


def test_credential_file_is_0600_and_its_folder_0700(config: ClientConfig, machine: Path) -> None:
    login(config, URL, "test", Secret(TOKEN))
    folder = credentials_dir(config)
    if os.name != "nt":
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for name in ("connection.json", "salt"):
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600


def test_files_copied_to_another_machine_fail_with_a_message_naming_login(
    config: ClientConfig, machine: Path
) -> None:
    login(config, URL, "test", Secret(TOKEN))
    machine.write_text("fedcba9876543210fedcba9876543210\n")  # the same files, another machine
    with pytest.raises(CredentialError) as caught:
        stored_token(config)
    assert "another machine" in str(caught.value)
    assert "wats-supervisor login" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_tampered_record_fails_with_a_message_naming_login(
    config: ClientConfig, machine: Path
) -> None:
    login(config, URL, "test", Secret(TOKEN))
    path = credentials_dir(config) / "connection.json"
    data = json.loads(path.read_text())
    ciphertext = data["token"]["ciphertext"]
    data["token"]["ciphertext"] = ciphertext[:-8] + ("A" * 8 if ciphertext[-1] != "A" else "B" * 8)
    path.write_text(json.dumps(data))
    with pytest.raises(CredentialError, match=r"tampered.*wats-supervisor login"):
        stored_token(config)


def test_a_record_that_is_not_json_is_a_clear_error(config: ClientConfig, machine: Path) -> None:
    folder = credentials_dir(config)
    folder.mkdir(parents=True)
    (folder / "connection.json").write_text("{not json")
    with pytest.raises(CredentialError, match=r"damaged.*wats-supervisor login"):
        load_connection(config)


def test_a_missing_salt_file_is_a_clear_error(config: ClientConfig, machine: Path) -> None:
    login(config, URL, "test", Secret(TOKEN))
    (credentials_dir(config) / "salt").unlink()
    with pytest.raises(CredentialError, match=r"salt.*missing.*wats-supervisor login"):
        stored_token(config)


def test_each_install_gets_its_own_salt(tmp_path: Path, machine: Path) -> None:
    first = ConnectionStore(tmp_path / "one")
    second = ConnectionStore(tmp_path / "two")
    a = first.encrypt(Secret(TOKEN))
    b = second.encrypt(Secret(TOKEN))
    assert first.salt_path.read_bytes() != second.salt_path.read_bytes()
    assert a.key_check != b.key_check and a.ciphertext != b.ciphertext


def test_reprs_and_dumps_hide_the_token(config: ClientConfig, machine: Path) -> None:
    record = login(config, URL, "test", Secret(TOKEN))
    store = ConnectionStore(credentials_dir(config))
    assert record.token is not None
    for text in (repr(record), str(record), repr(store), repr(stored_token(config))):
        assert TOKEN not in text and record.token.ciphertext not in text
    summary = json.dumps(record.summary())
    assert TOKEN not in summary and record.token.ciphertext not in summary
    assert "test" in summary and URL in summary


def test_logout_removes_the_token_and_is_idempotent(config: ClientConfig, machine: Path) -> None:
    login(config, URL, "test", Secret(TOKEN))
    assert logout(config) == "test"
    assert stored_token(config) is None
    assert logout(config) is None
    record = load_connection(config)
    assert record is not None and record.token is None and record.server_url == URL
    assert "ciphertext" not in (credentials_dir(config) / "connection.json").read_text()


def test_a_token_stored_for_another_server_is_not_handed_out_for_this_one(
    config: ClientConfig, machine: Path
) -> None:
    login(config, "https://other.example.com", "test", Secret(TOKEN))
    assert stored_token(config, URL) is None
    assert stored_token(config, "HTTPS://OTHER.example.com/api/") == Secret(TOKEN)
    assert resolve_server(config).token == ""


def test_resolve_server_uses_the_stored_token_when_the_env_var_is_unset(
    config: ClientConfig, machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(config, URL + "/", "test", Secret(TOKEN))
    assert resolve_server(config).token == TOKEN
    monkeypatch.setenv("WATS_TOKEN", "ZW52OnRva2Vu")
    assert resolve_server(config).token == "ZW52OnRva2Vu"


def test_proxy_settings_round_trip_with_the_password_encrypted(
    config: ClientConfig, machine: Path
) -> None:
    settings = ProxySettings(
        mode="manual", host="proxy.example.com", port=3128, username="px", password="hunter22"
    )
    set_proxy(config, settings)
    text = (credentials_dir(config) / "connection.json").read_text()
    assert "hunter22" not in text and "proxy.example.com" in text
    restored = stored_proxy(config)
    assert restored is not None and restored.password == Secret("hunter22")
    assert (restored.mode, restored.host, restored.port, restored.username) == (
        "manual",
        "proxy.example.com",
        3128,
        "px",
    )
    login(config, URL, "test", Secret(TOKEN))  # a login keeps the proxy
    assert stored_proxy(config) is not None
    assert clear_proxy(config) is True and stored_proxy(config) is None
    assert clear_proxy(config) is False


def test_health_checks_count_connections_disconnections_and_failures(
    config: ClientConfig, machine: Path
) -> None:
    login(config, URL, "test", Secret(TOKEN))
    record_health(config, "ONLINE", url=URL, at=1_000.0)
    record_health(config, "ONLINE", url=URL, at=1_030.0)
    record_health(config, "OFFLINE", url=URL, at=1_060.0, failed=True, error="ConnectError")
    record_health(config, "OFFLINE", url=URL, at=1_061.0, failed=True, error="ConnectError")
    record = record_health(config, "ONLINE", url=URL, at=1_090.0)
    assert record is not None
    assert record.stats.model_dump() == {
        "connections": 2,
        "disconnections": 1,
        "health_checks": 5,
        "failed_checks": 2,
    }
    assert record.state is ConnectionState.ONLINE
    assert record.last_connected is not None and record.last_connected.timestamp() == 1_090.0
    assert record.last_disconnected is not None and record.last_disconnected.timestamp() == 1_060.0
    assert stored_token(config) == Secret(TOKEN)  # health writes never touch the token


def test_a_new_run_starts_its_own_online_since_instead_of_the_first_one_ever(
    config: ClientConfig, machine: Path
) -> None:
    # a supervisor stopped while ONLINE leaves ONLINE in the record; the next run's first check
    # must not read as "still ONLINE since" the old run's connection
    record_health(config, "ONLINE", url=URL, at=1_000.0, first_of_run=True)
    record_health(config, "ONLINE", url=URL, at=1_030.0)
    record = record_health(config, "ONLINE", url=URL, at=90_000.0, first_of_run=True)
    assert record is not None and record.state_since is not None
    assert record.state_since.timestamp() == 90_000.0
    assert record.stats.connections == 2 and record.stats.disconnections == 0
    later = record_health(config, "ONLINE", url=URL, at=90_030.0)
    assert later is not None and later.state_since == record.state_since
    # an OFFLINE first check after an ONLINE run is not a disconnection seen by this run
    gone = record_health(config, "OFFLINE", url=URL, at=99_000.0, failed=True, first_of_run=True)
    assert gone is not None and gone.stats.disconnections == 0
    assert gone.state_since is not None and gone.state_since.timestamp() == 99_000.0


def test_health_of_another_server_leaves_the_record_alone(
    config: ClientConfig, machine: Path
) -> None:
    login(config, URL, "test", Secret(TOKEN))
    record_health(config, "ONLINE", url="http://127.0.0.1:8080")
    record = load_connection(config)
    assert record is not None and record.stats.health_checks == 0


def test_save_connection_writes_a_record_load_connection_reads(
    config: ClientConfig, machine: Path
) -> None:
    save_connection(config, ConnectionConfig(server_url=URL, state=ConnectionState.OFFLINE))
    record = load_connection(config)
    assert record is not None and record.state is ConnectionState.OFFLINE
    assert record.token is None and stored_token(config) is None


def test_nothing_is_created_by_reading_an_instance_without_a_record(
    config: ClientConfig,
) -> None:
    assert load_connection(config) is None and stored_token(config) is None
    assert not credentials_dir(config).exists()


def test_token_username_reads_the_user_of_a_wats_token_only() -> None:
    assert token_username(TOKEN) == "test"
    assert token_username("not base64!") is None
    assert token_username("bm9jb2xvbg==") is None  # base64("nocolon")


def test_same_server_ignores_case_trailing_slash_and_api_suffix() -> None:
    assert same_server("https://WATS.example.com/api/", URL)
    assert not same_server("http://wats.example.com", URL)
    assert not same_server("https://wats.example.com:8443", URL)
