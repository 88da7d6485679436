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
import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Container
from pathlib import Path

__all__ = [
    "MAX_NAME_BYTES",
    "TEMP_SUFFIX",
    "UnsafeNameError",
    "atomic_write",
    "check_name",
    "durable_move",
    "fsync_dir",
    "is_temp_name",
    "remove_stale_temp_files",
    "safe_child",
    "safe_name",
    "shorten_name",
    "temp_name_for",
    "unique_destination",
]

TEMP_SUFFIX = ".tmp"


def is_temp_name(name: str) -> bool:
    """True for names this module uses for temp files (``.*.tmp``): scanners skip these."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def temp_name_for(name: str) -> str:
    """A fresh temp-file name for ``name``: ``.<name>.<random>.tmp``.

    A very long ``name`` is cut (the temp name only has to be unique and recognisable), so a
    file whose own name is near the file system's limit can still be written atomically.
    """
    random_part = f".{secrets.token_hex(6)}{TEMP_SUFFIX}"
    return "." + _cut_to_bytes(name, MAX_NAME_BYTES - 1 - len(random_part)) + random_part


# ---- names from outside: converters, report contents, watch folders ------------------------

MAX_NAME_BYTES = 255  # NAME_MAX of ext4/xfs/btrfs, and NTFS's 255 UTF-16 units, roughly

# Windows opens these as devices in any folder, with any extension ("NUL.txt" is the null device).
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "123456789¹²³"}
    | {f"LPT{i}" for i in "123456789¹²³"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNPORTABLE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


class UnsafeNameError(ValueError):
    """A name that cannot safely become a file name inside a folder; the message says why."""


def check_name(name: str) -> str:
    """``name`` if it is one safe, portable file name; else :class:`UnsafeNameError`.

    For names that come from converters or from file contents (attachment and report names):
    they must name exactly one entry inside a folder on Windows and POSIX alike. Refused: empty
    names, ``.`` and ``..``, path separators (``/`` and ``\\``), drive letters and ``:``
    (which is also NTFS's alternate-data-stream separator), NUL and other control characters,
    Windows device names (``CON``, ``NUL.txt``...), trailing dots or spaces (Windows drops them,
    so two names could meet in one file), and names over :data:`MAX_NAME_BYTES` bytes of UTF-8.
    """
    if not isinstance(name, str):
        raise UnsafeNameError(f"a file name must be text, not {type(name).__name__}")
    shown = _shown(name)
    if not name.strip():
        raise UnsafeNameError("an empty file name is not allowed")
    if name in (".", ".."):
        raise UnsafeNameError(f"{shown} names a folder, not a file")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"{shown} contains a path separator; give a plain file name")
    if _CONTROL.search(name):
        raise UnsafeNameError(f"{shown} contains NUL or another control character")
    if ":" in name:
        raise UnsafeNameError(f"{shown} contains ':' (a drive letter or an NTFS stream)")
    bad = _UNPORTABLE.search(name)
    if bad:
        raise UnsafeNameError(f"{shown} contains {bad.group()!r}, which Windows refuses")
    if name[-1] in ". ":
        raise UnsafeNameError(f"{shown} ends with a dot or a space")
    if _is_device(name):
        raise UnsafeNameError(f"{shown} is a Windows device name")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise UnsafeNameError(
            f"the file name is longer than {MAX_NAME_BYTES} bytes ({shown[:60]}...)"
        )
    return name


def safe_name(name: object, default: str = "unnamed") -> str:
    """``name`` made into a safe, portable file name (the rules of :func:`check_name`).

    For places that must keep the data rather than refuse it: only the last path component is
    kept (``../../etc/passwd`` gives ``passwd``, ``C:\\x\\y.txt`` gives ``y.txt``), unportable
    characters become ``_``, trailing dots and spaces go, a device name gets a ``_`` in front,
    and a long name is cut to fit (its suffix kept). ``default`` stands in for nothing left.
    """
    text = name if isinstance(name, str) else ("" if name is None else str(name))
    last = re.split(r"[/\\]", text)[-1]
    if len(last) >= 2 and last[1] == ":" and last[0].isascii() and last[0].isalpha():
        last = last[2:]  # "C:x.txt", a drive-relative name
    cleaned = _UNPORTABLE.sub("_", last).rstrip(". ").strip()
    if cleaned in ("", ".", ".."):
        cleaned = default
    if _is_device(cleaned):
        cleaned = "_" + cleaned
    return shorten_name(cleaned)


def shorten_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name`` if it fits in ``limit`` bytes of UTF-8; else its start, ``~``, eight hex digits
    of its hash, and its suffix, in ``limit`` bytes. Deterministic, so the same long name
    always gives the same short one, and two long names differing only at the end do not meet.
    """
    if len(name.encode("utf-8", "surrogateescape")) <= limit:
        return name
    stem, suffix = _split_suffix(name)
    if len(suffix.encode("utf-8", "surrogateescape")) > 32:
        stem, suffix = name, ""
    tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    room = limit - len(tag.encode()) - len(suffix.encode("utf-8", "surrogateescape"))
    return _cut_to_bytes(stem, room) + tag + suffix


def safe_child(folder: str | os.PathLike[str], name: str, *, normalise: bool = False) -> Path:
    """``folder/name``, proven to stay inside ``folder``; else :class:`UnsafeNameError`.

    ``name`` is checked with :func:`check_name` (or, with ``normalise=True``, cleaned with
    :func:`safe_name` instead of refused). Then the real path (symlinks resolved) of the result
    must lie directly in the real ``folder``: an existing symlink of that name pointing
    elsewhere is refused too, so nothing written or read through the result leaves the folder.
    """
    checked = safe_name(name) if normalise else check_name(name)
    base = Path(folder)
    candidate = base / checked
    real_base = Path(os.path.realpath(base))
    real = Path(os.path.realpath(candidate))
    if real.parent != real_base and real_base not in real.parents:
        raise UnsafeNameError(f"{_shown(checked)} leads outside {base}")
    return candidate


def _is_device(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES


def _cut_to_bytes(text: str, limit: int) -> str:
    """The longest start of ``text`` that fits in ``limit`` bytes of UTF-8 (never half a
    character)."""
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) <= limit:
        return text
    return encoded[: max(limit, 0)].decode("utf-8", "ignore")


def _shown(name: str) -> str:
    """``name`` fit for an error message: quoted, control characters escaped, not too long."""
    text = repr(name)
    return text if len(text) <= 120 else text[:117] + "..."


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


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, sync: bool = True
) -> None:
    """Replace ``path`` with ``data`` so that readers and crashes see the old bytes or the new.

    Writes a temp file in the same folder (same file system, so the rename is atomic), fsyncs it,
    renames it over ``path`` and fsyncs the folder. The parent folder is created if missing. The
    file gets exactly ``mode`` (default 0600: reports and configs are nobody else's business).
    On any error the temp file is removed and the old file, if any, is untouched.

    ``sync=False`` skips both fsyncs: still atomic (a killed process leaves the old bytes or the
    new), but a power cut may lose the write. For bookkeeping whose loss costs a repeat, never a
    result (the converter's attempt counters); each fsync costs milliseconds of disk time.
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
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(folder)


def durable_move(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, sync: bool = True
) -> Path:
    """Move a file or folder to ``dst`` (a full path) so that it survives a crash; returns ``dst``.

    ``sync=False`` skips the folder fsyncs after a same-file-system rename: the rename is still
    atomic (one name or the other, never both or neither), but a power cut may undo it. For
    moves whose undoing only repeats work that idempotent report ids make harmless. A move
    across file systems is always fully synced: its source is deleted only after the copy is
    safe.

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
    if not sync:
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


def unique_destination(
    folder: str | os.PathLike[str], name: str, taken: Container[Path] = ()
) -> Path:
    """``folder/name``, or ``folder/stem (1).suffix``, ``(2)``... if that name is taken.

    ``name`` must be a single file name (no separator, not ``..``): else
    :class:`UnsafeNameError`. A numbered variant of a name near the length limit is cut to fit.

    Keeps a second file of the same name from replacing the first. Not a reservation: a
    concurrent writer could take the name between this check and the move, so one process
    should own each destination folder (as each worker owns its folders). ``taken``: names that
    count as taken though nothing is there yet (the owner's own reservations).
    """
    base = Path(folder)
    _check_component(name)
    candidate = base / name
    if candidate not in taken and not _exists(candidate):
        return candidate
    stem, suffix = _split_suffix(name)
    counter = 1
    while True:
        marker = f" ({counter})"
        room = MAX_NAME_BYTES - len(marker) - len(suffix.encode("utf-8", "surrogateescape"))
        candidate = base / f"{_cut_to_bytes(stem, room)}{marker}{suffix}"
        if candidate not in taken and not _exists(candidate):
            return candidate
        counter += 1


def _check_component(name: str) -> None:
    """The local file system's minimum for a name joined to a folder: one component.

    Names given to :func:`unique_destination` come from listing a folder on this machine, so
    they are single components by construction; this catches the day one does not (a name
    from a message or a converter), without refusing names that are legal here but not on
    Windows (``12:30:00.csv`` on a Linux hub).
    """
    separators = {os.sep, os.altsep, "/"} - {None}
    if not name or name in (".", "..") or "\x00" in name or any(sep in name for sep in separators):
        raise UnsafeNameError(f"{_shown(name)} is not a single file name")


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
