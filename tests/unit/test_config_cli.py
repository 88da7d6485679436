"""``wats-supervisor config show|init|validate`` through the real typer app."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wats.cli.config_cmd import load_config_or_exit
from wats.cli.main import app
from wats.config import CONFIG_ENV, ClientConfig, parse_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATION = PROJECT_ROOT / "configs" / "station.toml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("[supervisor]\nheartbeat_interval_seconds = 0\nflap_windw_seconds = 9\n")
    return path


def test_validate_accepts_the_example_station_config(runner: CliRunner) -> None:
    # its watch folders are a station's (/srv/...): checked for that machine, not this one
    result = runner.invoke(app, ["config", "validate", "--elsewhere", "--config", str(STATION)])
    assert result.exit_code == 0, result.output
    assert "OK: " in result.stdout and "ict-01" in result.stdout


def test_validate_refuses_a_watch_folder_missing_on_this_machine(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "validate", "--config", str(STATION)])
    assert result.exit_code == 2
    assert "error: [[converters]] " in result.stderr and "watch_folder" in result.stderr
    assert "--elsewhere" in result.stderr


def test_validate_rejects_a_bad_config_with_exit_2_naming_file_and_fields(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = _bad_config(tmp_path)
    result = runner.invoke(app, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        f"error: {path}: supervisor.heartbeat_interval_seconds: Input should be greater than 0",
        f"error: {path}: supervisor.flap_windw_seconds: unknown setting; did you mean "
        "'flap_window_seconds'? (see docs/configuration.md for the valid keys)",
    ]


def test_every_config_command_refuses_a_bad_config_the_same_way(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = _bad_config(tmp_path)
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = runner.invoke(app, [*args, "--config", str(path)])
        assert result.exit_code == 2
        assert "heartbeat_interval_seconds" in result.stderr


def test_validate_reads_the_file_named_by_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(_bad_config(tmp_path)))
    assert runner.invoke(app, ["config", "validate"]).exit_code == 2


def test_show_prints_toml_that_loads_back_to_the_effective_config(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "show", "--config", str(STATION)])
    assert result.exit_code == 0, result.output
    assert f"from: {STATION}" in result.stdout
    assert "Station name on reports: ICT-01" in result.stdout
    shown = parse_config(tomllib.loads(result.stdout))
    assert shown.station.location == "Plant 1 / Line 4"
    assert shown.instance.name == "ict-01"


def test_show_json_gives_source_config_paths_and_station_name(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["config", "show", "--json", "--instance", "other"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["source"] is None
    assert document["config"]["instance"]["name"] == "other"
    assert parse_config(document["config"]) == parse_config({"instance": {"name": "other"}})
    assert document["paths"]["data_dir"].endswith("instances/other")
    assert document["station_name"]


def test_init_writes_the_template_to_the_default_path_and_refuses_to_overwrite(
    runner: CliRunner, tmp_path: Path
) -> None:
    default = tmp_path / "xdg-config" / "wats-supervisor" / "config.toml"
    first = runner.invoke(app, ["config", "init"])
    assert first.exit_code == 0, first.output
    assert default.is_file() and str(default) in first.stdout
    assert parse_config(tomllib.loads(default.read_text())) == ClientConfig()
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert stat.S_IMODE(default.parent.stat().st_mode) == 0o700
    default.write_text("# mine\n")
    second = runner.invoke(app, ["config", "init"])
    assert second.exit_code == 1
    assert "already exists" in second.stderr and "--force" in second.stderr
    assert default.read_text() == "# mine\n"
    forced = runner.invoke(app, ["config", "init", "--force"])
    assert forced.exit_code == 0
    assert "[supervisor]" in default.read_text()


def test_init_writes_to_an_explicit_path_that_validate_then_accepts(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "station.toml"
    assert runner.invoke(app, ["config", "init", str(target)]).exit_code == 0
    result = runner.invoke(app, ["config", "validate", "-c", str(target)])
    assert result.exit_code == 0, result.output
    assert "health, sync, server" in result.stdout


def test_load_config_or_exit_returns_the_config_or_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, source = load_config_or_exit(STATION, None)
    assert source == STATION and cfg.instance.name == "ict-01"
    assert load_config_or_exit(STATION, "x")[0].instance.name == "x"
    with pytest.raises(typer.Exit) as info:
        load_config_or_exit(_bad_config(tmp_path), None)
    assert info.value.exit_code == 2
    assert "supervisor.heartbeat_interval_seconds" in capsys.readouterr().err


def test_an_invalid_instance_name_on_the_command_line_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "validate", "--instance", "../x"])
    assert result.exit_code == 2
    assert "instance.name" in result.stderr
