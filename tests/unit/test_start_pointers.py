"""What ``wats-supervisor start`` tells a new user: where files go, and commands that reach
this instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from wats.cli.supervisor_cmd import _print_pointers
from wats.config import InstancePaths, parse_config


@pytest.fixture(autouse=True)
def _xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


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
