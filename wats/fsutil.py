"""Durable file primitives: the one place that knows how to make a write or a move survive a crash.

Invariant 2 of the design: a kill -9 or a power loss at any instant leaves either the old state or
the new one, never a torn file. Every hand-off between workers is a file in a folder, so every
worker writes and moves files through these functions rather than its own copy of the recipe.

Temp files are always named ``.<name>.<random>.tmp`` in the destination folder: a leading dot
and a ``.tmp`` suffix, so folder scanners can skip them with one rule (:func:`is_temp_name`) and
:func:`remove_stale_temp_files` can clean the ones a killed process left behind.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import time
from pathlib import Path

__all__ = [
    "TEMP_SUFFIX",
    "atomic_write",
    "durable_move",
    "fsync_dir",
    "is_temp_name",
    "remove_stale_temp_files",
    "temp_name_for",
    "unique_destination",
]

TEMP_SUFFIX = ".tmp"


def is_temp_name(name: str) -> bool:
    """True for names this module uses for temp files (``.*.tmp``): scanners skip these."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def temp_name_for(name: str) -> str:
    """A fresh temp-file name for ``name``: ``.<name>.<random>.tmp``."""
    return f".{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (creations, renames, unlinks) to disk.

    Without this a rename can be lost on power failure even though the file's bytes were
    flushed. Platforms that cannot open a folder (Windows) skip it: NTFS journals metadata.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; nothing more we can do
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers and crashes see the old bytes or the new.

    Writes a temp file in the same folder (same file system, so the rename is atomic), fsyncs it,
    renames it over ``path`` and fsyncs the folder. The parent folder is created if missing. The
    file gets exactly ``mode`` (default 0600: reports and configs are nobody else's business).
    On any error the temp file is removed and the old file, if any, is untouched.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write needs bytes, not {type(data).__name__}")
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / temp_name_for(target.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # the umask must not widen or narrow what the caller asked
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def durable_move(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Move a file or folder to ``dst`` (a full path) so that it survives a crash; returns ``dst``.

    Same file system: one rename, then both folders are fsynced. Across file systems (``EXDEV``):
    copy into a temp entry in the destination folder, fsync it, rename it into place, fsync the
    folder, and only then delete the source and fsync its folder. A crash in between leaves the
    source in place (and maybe a finished copy too), never a half copy under the final name:
    the pipeline's idempotent report ids make a second pass harmless.

    An existing file at ``dst`` is replaced, as with :func:`os.replace`; callers that must not
    overwrite choose the name with :func:`unique_destination` first.
    """
    source = Path(src)
    target = Path(dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_move(source, target)
        return target
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)
    return target


def _copy_move(source: Path, target: Path) -> None:
    """The cross-file-system half of :func:`durable_move` (copy, fsync, rename, then delete)."""
    tmp = target.parent / temp_name_for(target.name)
    try:
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, tmp, symlinks=True)
            _fsync_tree(tmp)
        else:
            shutil.copy2(source, tmp, follow_symlinks=False)
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    if source.is_dir() and not source.is_symlink():
        shutil.rmtree(source)
    else:
        source.unlink()
    fsync_dir(source.parent)


def _fsync_file(path: Path) -> None:
    if path.is_symlink():
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _fsync_file(Path(folder) / name)
        fsync_dir(folder)


def unique_destination(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder/name``, or ``folder/stem (1).suffix``, ``(2)``... if that name is taken.

    Keeps a second file of the same name from replacing the first. Not a reservation: a
    concurrent writer could take the name between this check and the move, so one process
    should own each destination folder (as each worker owns its folders).
    """
    base = Path(folder)
    candidate = base / name
    if not _exists(candidate):
        return candidate
    stem, suffix = _split_suffix(name)
    counter = 1
    while True:
        candidate = base / f"{stem} ({counter}){suffix}"
        if not _exists(candidate):
            return candidate
        counter += 1


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()  # a dangling symlink still occupies the name


def _split_suffix(name: str) -> tuple[str, str]:
    suffix = Path(name).suffix
    if not suffix or suffix == name:  # ".hidden" has no suffix worth keeping apart
        return name, ""
    return name[: -len(suffix)], suffix


def remove_stale_temp_files(folder: str | os.PathLike[str], older_than_s: float) -> int:
    """Delete ``.*.tmp`` entries in ``folder`` (not recursive) older than ``older_than_s``.

    A process killed mid-write leaves its temp file behind; the final name was never touched, so
    the temp file holds nothing anyone needs. The age limit spares temp files of writers that
    are still running. Returns how many were removed; a missing folder counts as empty.
    """
    root = Path(folder)
    cutoff = time.time() - older_than_s
    removed = 0
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue  # someone else cleaned it or renamed it into place meanwhile
        removed += 1
    if removed:
        fsync_dir(root)
    return removed
