"""``wats-supervisor keys generate|authorize|revoke|list`` through the real typer app."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wats.cli.main import app
from wats.config import CONFIG_ENV
from wats.protocol.security import load_public_key

pytestmark = pytest.mark.timeout(10)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return path


def test_generate_makes_a_private_pair_in_the_instance_key_dir_and_prints_the_public_key(
    config: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["keys", "generate", "--name", "server", "--config", config])
    assert result.exit_code == 0, result.output
    key_dir = tmp_path / "data" / "bus-keys"
    public = load_public_key(key_dir / "server.key").decode()
    assert f"public key:  {public}" in result.output
    assert "[bus] server_key" in result.output
    secret = (key_dir / "server.key_secret").read_text()
    secret_value = secret.split("secret-key = ")[1].strip().strip('"')
    assert secret_value not in result.output
    if os.name != "nt":
        assert stat.S_IMODE((key_dir / "server.key_secret").stat().st_mode) == 0o600
        assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700


def test_generate_refuses_to_replace_a_pair_without_force(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["keys", "generate", "--dir", str(tmp_path / "k")]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_authorize_then_list_shows_the_admitted_client(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "generate", "--name", "mon", "--dir", str(tmp_path / "m")])
    assert made.exit_code == 0, made.output
    result = runner.invoke(
        app, ["keys", "authorize", str(tmp_path / "m" / "mon.key"), "--config", config]
    )
    assert result.exit_code == 0, result.output
    authorized = tmp_path / "data" / "bus-keys" / "authorized" / "mon.key"
    assert authorized.exists()
    assert "next connection" in result.output
    listing = runner.invoke(app, ["keys", "list", "--config", config])
    assert listing.exit_code == 0, listing.output
    public = load_public_key(authorized).decode()
    assert "public mon" in listing.output and public in listing.output

    revoked = runner.invoke(app, ["keys", "revoke", "mon", "--config", config])
    assert revoked.exit_code == 0, revoked.output
    assert not authorized.exists()
    assert "public mon" not in runner.invoke(app, ["keys", "list", "--config", config]).output
    again = runner.invoke(app, ["keys", "revoke", "mon", "--config", config])
    assert again.exit_code == 1
    assert "no authorized key named 'mon'" in again.output


def test_authorize_names_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    junk = tmp_path / "junk.key"
    junk.write_text("hello\n")
    result = CliRunner().invoke(app, ["keys", "authorize", str(junk), "--dir", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "no valid CurveZMQ public key" in result.output
