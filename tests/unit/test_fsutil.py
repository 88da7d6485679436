"""wats.fsutil: atomic writes, durable moves, unique names, stale temp-file cleanup."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import pytest

from wats import fsutil
from wats.fsutil import (
    atomic_write,
    durable_move,
    fsync_dir,
    is_temp_name,
    remove_stale_temp_files,
    unique_destination,
)


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_atomic_write_fsyncs_file_and_folder_unless_told_the_write_is_bookkeeping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(fsutil.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    target = tmp_path / "counter.json"
    atomic_write(target, b"1")
    assert len(synced) == 2  # the temp file, then the folder after the rename
    synced.clear()
    atomic_write(target, b"2", sync=False)
    assert synced == [] and target.read_bytes() == b"2"
    assert [p.name for p in tmp_path.iterdir()] == ["counter.json"]


def test_durable_move_syncs_both_folders_unless_told_undoing_it_is_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(fsutil.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    (tmp_path / "a").mkdir()
    source = tmp_path / "a" / "result.xml"
    source.write_bytes(b"<r/>")
    moved = durable_move(source, tmp_path / "b" / "result.xml")
    assert len(synced) == 2  # destination folder, then source folder
    synced.clear()
    back = durable_move(moved, source, sync=False)
    assert synced == [] and back.read_bytes() == b"<r/>" and not moved.exists()


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_atomic_write_gives_the_file_exactly_the_requested_mode(tmp_path: Path) -> None:
    private = tmp_path / "private"
    shared = tmp_path / "shared"
    atomic_write(private, b"x")
    atomic_write(shared, b"x", mode=0o644)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_an_interrupted_rename_leaves_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.json"
    atomic_write(target, b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "disk went away")

    monkeypatch.setattr(fsutil.os, "replace", refuse)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_temp_names_start_with_a_dot_and_end_with_tmp() -> None:
    name = fsutil.temp_name_for("report.json")
    assert name.startswith(".report.json.") and name.endswith(".tmp")
    assert is_temp_name(name)
    assert not is_temp_name("report.json")
    assert not is_temp_name(".hidden")
    assert fsutil.temp_name_for("a") != fsutil.temp_name_for("a")


def test_fsync_dir_accepts_a_folder_and_ignores_a_missing_one(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    fsync_dir(tmp_path / "missing")


def test_durable_move_renames_a_file_into_another_folder(tmp_path: Path) -> None:
    src = tmp_path / "watch" / "a.json"
    src.parent.mkdir()
    src.write_bytes(b"data")
    dst = durable_move(src, tmp_path / "pending" / "a.json")
    assert dst.read_bytes() == b"data"
    assert not src.exists()


def test_durable_move_across_file_systems_copies_then_deletes_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "watch" / "a.json"
    src.parent.mkdir()
    src.write_bytes(b"data")
    real_replace = os.replace
    calls: list[tuple[Path, Path]] = []

    def cross_device_for_the_source(a: object, b: object) -> None:
        calls.append((Path(str(a)), Path(str(b))))
        if Path(str(a)) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(fsutil.os, "replace", cross_device_for_the_source)
    dst = durable_move(src, tmp_path / "pending" / "a.json")
    assert dst.read_bytes() == b"data"
    assert not src.exists()
    assert is_temp_name(calls[-1][0].name)  # the copy went in under a temp name first
    assert [p.name for p in dst.parent.iterdir()] == ["a.json"]


def test_durable_move_across_file_systems_moves_a_whole_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "watch" / "run-1"
    (src / "nested").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "nested" / "b.txt").write_text("b")
    real_replace = os.replace

    def cross_device_for_the_source(a: object, b: object) -> None:
        if Path(str(a)) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(fsutil.os, "replace", cross_device_for_the_source)
    dst = durable_move(src, tmp_path / "pending" / "run-1")
    assert (dst / "nested" / "b.txt").read_text() == "b"
    assert not src.exists()


def test_a_failed_cross_file_system_copy_keeps_the_source_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "watch" / "a.json"
    src.parent.mkdir()
    src.write_bytes(b"data")
    (tmp_path / "pending").mkdir()

    def always_fails(a: object, b: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full_disk(a: object, b: object, **kwargs: object) -> None:
        Path(str(b)).write_bytes(b"da")  # a torn copy under the temp name
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.os, "replace", always_fails)
    monkeypatch.setattr(fsutil.shutil, "copy2", full_disk)
    with pytest.raises(OSError):
        durable_move(src, tmp_path / "pending" / "a.json")
    assert src.read_bytes() == b"data"
    assert list((tmp_path / "pending").iterdir()) == []


def test_durable_move_between_real_file_systems_when_available(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system available here")
    other = shm / f"wats-fsutil-{os.getpid()}"
    other.mkdir()
    try:
        src = other / "a.json"
        src.write_bytes(b"data")
        dst = durable_move(src, tmp_path / "pending" / "a.json")
        assert dst.read_bytes() == b"data"
        assert not src.exists()
    finally:
        for p in other.iterdir():
            p.unlink()
        other.rmdir()


def test_unique_destination_keeps_a_free_name(tmp_path: Path) -> None:
    assert unique_destination(tmp_path, "a.json") == tmp_path / "a.json"


def test_unique_destination_numbers_a_taken_name_before_the_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("1")
    (tmp_path / "a (1).json").write_text("2")
    assert unique_destination(tmp_path, "a.json") == tmp_path / "a (2).json"
    (tmp_path / "README").write_text("x")
    assert unique_destination(tmp_path, "README") == tmp_path / "README (1)"
    (tmp_path / ".hidden").write_text("x")
    assert unique_destination(tmp_path, ".hidden") == tmp_path / ".hidden (1)"


def test_unique_destination_skips_names_reserved_but_not_yet_written(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("1")
    reserved = {tmp_path / "a (1).json"}
    assert unique_destination(tmp_path, "a.json", taken=reserved) == tmp_path / "a (2).json"
    assert unique_destination(tmp_path, "b.json", taken={tmp_path / "b.json"}) == (
        tmp_path / "b (1).json"
    )


def test_stale_temp_files_are_removed_and_fresh_ones_and_real_files_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".a.json.0123.tmp"
    stale_dir = tmp_path / ".run.4567.tmp"
    fresh = tmp_path / ".b.json.89ab.tmp"
    real = tmp_path / "c.json"
    for p in (stale, fresh, real):
        p.write_text("x")
    stale_dir.mkdir()
    (stale_dir / "inner").write_text("x")
    old = time.time() - 3600
    for p in (stale, stale_dir):
        os.utime(p, (old, old))
    assert remove_stale_temp_files(tmp_path, older_than_s=60) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, real.name]


def test_removing_stale_temp_files_of_a_missing_folder_removes_nothing(tmp_path: Path) -> None:
    assert remove_stale_temp_files(tmp_path / "missing", older_than_s=0) == 0
