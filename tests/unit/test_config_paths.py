"""InstancePaths: per-instance folders from platformdirs, overrides, private runtime dir."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wats.config import InstancePaths, default_config_path, instances_root, parse_config


@pytest.fixture(autouse=True)
def _xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


def test_default_config_path_is_the_per_user_config_folder(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("XDG layout")
    assert default_config_path() == tmp_path / "cfg" / "wats-supervisor" / "config.toml"


def test_instances_get_separate_data_and_runtime_folders(tmp_path: Path, _xdg: Path) -> None:
    a = InstancePaths.for_config(parse_config({"instance": {"name": "a"}}))
    b = InstancePaths.for_config(parse_config({"instance": {"name": "b"}}))
    assert a.data_dir == instances_root() / "a" == tmp_path / "data/wats-supervisor/instances/a"
    assert a.runtime_dir == _xdg / "wats-supervisor" / "a"
    assert a.lock_file != b.lock_file and a.runtime_dir != b.runtime_dir
    assert a.cache_dir == a.data_dir / "cache"
    assert a.log_file == a.data_dir / "logs" / "supervisor.jsonl"
    assert a.server_data_dir == a.data_dir / "server"
    assert a.runtime_config_file == a.runtime_dir / "config.json"
    assert a.state_file.parent == a.lock_file.parent == a.data_dir
    assert a.ipc_path_fits


def test_overrides_from_the_config_win(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "paths": {"data_dir": str(tmp_path / "d"), "runtime_dir": str(tmp_path / "r")},
            "logging": {"file": str(tmp_path / "l.jsonl")},
            "server": {"embedded": {"data_dir": str(tmp_path / "s")}},
        }
    )
    paths = InstancePaths.for_config(cfg)
    assert paths.data_dir == tmp_path / "d"
    assert paths.runtime_dir == tmp_path / "r"
    assert paths.log_file == tmp_path / "l.jsonl"
    assert paths.server_data_dir == tmp_path / "s"
    assert paths.lock_file == tmp_path / "d" / "supervisor.lock"


def test_computing_paths_creates_nothing_and_ensure_creates_private_folders(
    tmp_path: Path,
) -> None:
    cfg = parse_config(
        {"paths": {"data_dir": str(tmp_path / "d"), "runtime_dir": str(tmp_path / "r")}}
    )
    paths = InstancePaths.for_config(cfg)
    assert not paths.data_dir.exists() and not paths.runtime_dir.exists()
    assert paths.ensure() is paths
    for folder in (paths.data_dir, paths.cache_dir, paths.log_dir, paths.runtime_dir):
        assert folder.is_dir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_ensure_tightens_an_existing_runtime_dir(tmp_path: Path) -> None:
    runtime = tmp_path / "r"
    runtime.mkdir(mode=0o755)
    runtime.chmod(0o755)
    cfg = parse_config({"paths": {"data_dir": str(tmp_path / "d"), "runtime_dir": str(runtime)}})
    InstancePaths.for_config(cfg).ensure()
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700


def test_runtime_dir_falls_back_to_the_data_folder_when_the_runtime_base_is_not_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-runtime"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setattr("platformdirs.user_runtime_dir", lambda *a, **k: str(shared))
    paths = InstancePaths.for_config(parse_config({}))
    assert paths.runtime_dir == paths.data_dir / "run"


def test_a_very_long_runtime_dir_is_reported_as_too_long_for_ipc(tmp_path: Path) -> None:
    cfg = parse_config({"paths": {"runtime_dir": str(tmp_path / ("x" * 120))}})
    assert not InstancePaths.for_config(cfg).ipc_path_fits


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_a_runtime_base_created_on_first_start_stays_usable_for_later_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without $XDG_RUNTIME_DIR the base (``/tmp/runtime-<uid>``) may not exist yet: the
    supervisor creates it, and every later command must compute the same runtime dir."""
    base = tmp_path / "runtime-base"
    monkeypatch.setattr("platformdirs.user_runtime_dir", lambda *a, **k: str(base))
    old_umask = os.umask(0o022)
    try:
        first = InstancePaths.for_config(parse_config({})).ensure()
    finally:
        os.umask(old_umask)
    assert first.runtime_dir == base / "wats-supervisor" / "default"
    for folder in (base, base / "wats-supervisor", first.runtime_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    later = InstancePaths.for_config(parse_config({}))
    assert later.runtime_dir == first.runtime_dir
