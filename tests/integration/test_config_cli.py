"""``wats-supervisor config`` as a real process: exit codes and messages a shell script sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WATS_SUPERVISOR_CONFIG"}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", "from wats.cli.main import app; app()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=30,
    )


def test_bad_config_exits_2_with_file_and_field_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[health]\ninterval_seconds = -5\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "WATS_SUPERVISOR_CONFIG": str(bad)}
    result = _cli("config", "validate", env_extra=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {bad}: health.interval_seconds: Input should be greater than 0"
    )
    assert result.stdout == ""


def test_init_then_validate_then_show_on_a_fresh_machine(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    init = _cli("config", "init", env_extra=env, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    written = tmp_path / "xdg" / "wats-supervisor" / "config.toml"
    assert written.is_file()
    validate = _cli("config", "validate", env_extra=env, cwd=tmp_path)
    assert validate.returncode == 0, validate.stderr
    assert f"OK: {written}" in validate.stdout
    show = _cli("config", "show", env_extra=env, cwd=tmp_path)
    assert show.returncode == 0 and f"from: {written}" in show.stdout
