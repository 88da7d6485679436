"""What ``wats-supervisor start`` tells a new user: where files go, and commands that reach
this instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from wats.cli import invocation
from wats.cli.invocation import command_name
from wats.cli.supervisor_cmd import _print_pointers
from wats.config import InstancePaths, parse_config


@pytest.fixture(autouse=True)
def _xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    # as if started by an installed console script that PATH finds (see the tests below)
    monkeypatch.setattr(invocation, "command_name", lambda: "wats-supervisor")


def _pointers(cfg_data: dict, path: Path | None, capsys: pytest.CaptureFixture) -> str:
    cfg = parse_config(cfg_data)
    _print_pointers(cfg, InstancePaths.for_config(cfg), path, None, foreground=True)
    return capsys.readouterr().err


def test_pointers_name_the_config_and_each_converters_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "my station" / "config.toml"
    text = _pointers(
        {
            "instance": {"name": "line2"},
            "converters": [
                {"name": "json-results", "converter": "wsjf", "watch_folder": str(tmp_path / "in")},
                {
                    "name": "old",
                    "converter": "wsxf",
                    "watch_folder": str(tmp_path / "x"),
                    "post_action": "delete",
                },
            ],
        },
        config,
        capsys,
    )
    assert f"wats-supervisor stop --config '{config}'" in text
    assert f"wats-supervisor status --config '{config}'" in text
    data = tmp_path / "data" / "wats-supervisor" / "instances" / "line2" / "converters"
    assert f"converter 'json-results': watches {tmp_path / 'in'}" in text
    assert f"converted files moved to {data / 'json-results' / 'done'}" in text
    assert f"failed ones to {data / 'json-results' / 'error'}" in text
    assert "converted files deleted; failed ones to" in text


def test_the_default_config_needs_no_option(capsys: pytest.CaptureFixture) -> None:
    from wats.config.paths import default_config_path

    text = _pointers({}, default_config_path(), capsys)
    assert "wats-supervisor stop\n" in text or text.rstrip().endswith("wats-supervisor stop")
    assert "--config" not in text


def test_the_banner_spells_the_command_as_it_was_started(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invocation, "command_name", lambda: ".venv/bin/wats-supervisor")
    text = _pointers({}, None, capsys)
    for line in ("status", "monitor", "events", "stop"):
        assert f".venv/bin/wats-supervisor {line}" in text
    assert " wats-supervisor " not in text.replace(".venv/bin/wats-supervisor", "")


def test_command_name_is_the_bare_name_only_where_path_finds_the_same_script(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    script = project / ".venv" / "bin" / "wats-supervisor"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    argv0 = str(script)
    # only in the project's venv, started from the project folder (make run)
    assert (
        command_name(argv0, which=lambda _: None, cwd=str(project)) == ".venv/bin/wats-supervisor"
    )
    # typed relative to the folder the user is in
    assert (
        command_name(".venv/bin/wats-supervisor", which=lambda _: None, cwd=str(project))
        == ".venv/bin/wats-supervisor"
    )
    # from elsewhere: the full path
    assert command_name(argv0, which=lambda _: None, cwd=str(tmp_path / "x")) == argv0
    # PATH finds this very script (an activated venv, pipx): the bare name
    assert command_name(argv0, which=lambda _: argv0, cwd=str(tmp_path)) == "wats-supervisor"
    # PATH finds another installation: this one's path, so the hint reaches this version
    other = str(tmp_path / "other" / "wats-supervisor")
    assert command_name(argv0, which=lambda _: other, cwd=str(project)) == (
        ".venv/bin/wats-supervisor"
    )


def test_command_name_outside_the_console_script_runs_the_module(tmp_path: Path) -> None:
    spelled = command_name("/x/pytest", which=lambda _: None, cwd=str(tmp_path))
    assert spelled.endswith(" -m wats.cli.main")
    assert command_name("/x/pytest", which=lambda _: "/usr/bin/wats-supervisor") == (
        "wats-supervisor"
    )
