"""The watcher worker: takes finished files out of the watch folders, into the pending folders.

Why a separate step: a test station writes a result file whenever it likes, at any speed, and
may still be writing when the file first appears. The watcher's one job is to decide when a file
is *finished* and then hand it over durably — a rename into the converter's pending folder — so
that everything after it works on complete files only, and so that the hand-over is a fact on
disk (DESIGN invariant 1), not a message that could be lost.

Readiness. A file is ready when its writer closed it (inotify ``IN_CLOSE_WRITE``, seen as
watchdog's ``FileClosedEvent``; ``settle_after_close_ms`` later if set, default 0), when it was
renamed into the folder (a rename is atomic: the content is complete), or when its size and
mtime stayed the same for ``debounce_ms`` (arg, default 500) — the fallback where close events
do not exist (Windows, polling, network shares) and for files found by a scan. A file that
inotify showed being written, and not yet closed, is *open*: a writer that pauses longer than
the debounce is not done, so such a file waits for its close, or — a safety net for a writer
that hangs with the file open — for ``open_writer_timeout_seconds`` (default 60) of stability.
A folder-kind converter takes sub-folders instead: one is ready when its readiness marker
appears, or when it holds ``min_file_count`` files and has been stable for the debounce.

Hand-over. A ready file is moved with :func:`wats.fsutil.durable_move` into the converter's
pending folder (name kept; ``name (1).ext`` on a clash), then ``file.pending`` is published;
``file.detected`` is published when a matching file is first seen. ``post_action = "keep"``
copies instead and remembers the file in a ledger (``<state>/watcher-kept.jsonl``) so it is not
taken again until it changes.

Scans. Events are hints: at start and every ``rescan_seconds`` (arg, default 30) every watch
folder is scanned, so files that arrived while the worker was down, or whose events were lost,
are taken too. Temp files (``.*.tmp``) and the readiness marker are never taken.

Symlinks are never followed (docs/security.md, "Input hardening"): a symlink that points outside
its watch folder is refused — left in place, logged once, counted in ``refused`` — and one that
points inside is skipped (its target is taken under its own name). A folder-kind candidate that
holds a symlink anywhere inside is refused the same way, until it changes; recursive watches do
not descend into symlinked folders, and a file reached through one is ignored. Right before a
move the source is looked at once more (a file swapped for a link meanwhile is refused), and the
converter worker refuses any link that still reaches a pending folder.

Threads. watchdog calls back on its observer threads; those only put events on a thread-safe
queue. An "event pump" job of the worker base (:meth:`Worker.run_in_thread`) waits on that queue
and hands each batch to the loop, which does the bookkeeping and publishes. Moves (fsync-heavy)
run as background jobs in batches, so the loop, and with it the heartbeat, never waits on a disk.

Commands: ``watcher.status`` (counters, folders), ``watcher.rescan`` (scan now).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import json
import os
import queue
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from wats.config.builtins import BUILTIN_CONVERTERS
from wats.config.folders import converter_folders, site_converters_dir
from wats.config.models import ClientConfig
from wats.converters.base import matches_patterns
from wats.converters.loader import ConverterLoadError, load_converter_class
from wats.fsutil import (
    atomic_write,
    durable_move,
    fsync_dir,
    is_temp_name,
    temp_name_for,
    unique_destination,
)
from wats.protocol import topics
from wats.workers.base import Timer, Worker, handles

__all__ = [
    "DEFAULT_DEBOUNCE_MS",
    "DEFAULT_OPEN_WRITER_TIMEOUT_SECONDS",
    "DEFAULT_RESCAN_SECONDS",
    "DEFAULT_SETTLE_AFTER_CLOSE_MS",
    "KeepLedger",
    "Observation",
    "ReadinessTracker",
    "WatchTarget",
    "WatcherWorker",
    "durable_copy",
    "folder_signature",
    "matches",
    "reached_through_symlink",
    "scan_target",
    "symlink_inside",
    "targets_from_config",
]

DEFAULT_DEBOUNCE_MS = 500
DEFAULT_OPEN_WRITER_TIMEOUT_SECONDS = 60.0
DEFAULT_SETTLE_AFTER_CLOSE_MS = 0
DEFAULT_RESCAN_SECONDS = 30.0
DEFAULT_BATCH_SIZE = 200
LEDGER_FILE = "watcher-kept.jsonl"

# Why a candidate was refused (log event text; the first is what operators grep for).
SYMLINK_OUTSIDE = "symlink pointing outside the watch folder refused"
SYMLINK = "symlink refused"
THROUGH_SYMLINK = "file reached through a symlinked folder refused"
FOLDER_WITH_SYMLINK = "folder holding a symlink refused"

Kind = Literal["file", "folder"]


# ---- names and patterns -------------------------------------------------------------------


def matches(name: str, patterns: Sequence[str]) -> bool:
    """True when ``name`` matches one of the fnmatch ``patterns``, ignoring case (the SDK's rule,
    :func:`wats.converters.base.matches_patterns`); an empty list matches nothing."""
    return bool(patterns) and matches_patterns(name, patterns)


# ---- what to watch --------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchTarget:
    """One converter's view of its watch folder: what to take from it, and where to put it.

    ``excluded`` are folders under ``watch`` that must never be scanned (the converter's own
    pending/done/error/archive/state folders, when someone configured them inside it).
    """

    converter: str
    kind: Kind
    watch: Path
    pending: Path
    state: Path
    file_patterns: tuple[str, ...]
    folder_patterns: tuple[str, ...] = ("*",)
    recursive: bool = False
    readiness_marker: str = "COMPLETE.marker"
    min_file_count: int = 0
    keep: bool = False
    excluded: tuple[Path, ...] = ()
    create_watch: bool = False  # the converter's create_watch_folder

    def ignores(self, name: str) -> bool:
        """Names this converter never takes: temp files and the readiness marker."""
        return is_temp_name(name) or name.lower() == self.readiness_marker.lower()

    def takes_file(self, name: str) -> bool:
        """A file kind converter takes this file name."""
        return not self.ignores(name) and matches(name, self.file_patterns)

    def takes_folder(self, name: str) -> bool:
        """A folder kind converter takes this sub-folder name (hidden folders never)."""
        return not name.startswith(".") and matches(name, self.folder_patterns)

    def is_excluded(self, path: Path) -> bool:
        """``path`` lies in one of the excluded folders."""
        return any(path == ex or ex in path.parents for ex in self.excluded)


ConverterDescriber = Callable[[list[str]], dict[str, dict[str, Any] | str]]
"""Site converter specs -> what each says of itself (kind, file_patterns), or why it failed."""


def describe_in_sandbox(config: ClientConfig) -> ConverterDescriber:
    """Ask a converter sandbox's fork server, never this process, about a site's converters:
    importing the site's code here would run it beside the watcher's bus sockets."""

    def describe(specs: list[str]) -> dict[str, dict[str, Any] | str]:
        from wats.converters.sandbox import Sandbox

        with Sandbox(converters_dir=site_converters_dir(config)) as sandbox:
            return sandbox.describe(specs)

    return describe


def targets_from_config(
    config: ClientConfig,
    describe: ConverterDescriber | None = None,
    problems: dict[str, str] | None = None,
) -> list[WatchTarget]:
    """One :class:`WatchTarget` per enabled file or folder converter (scheduled ones have
    nothing to watch). Kind and patterns default to the converter class's own.

    A built-in class is imported here; a site's converter is described by ``describe`` (by
    default in a sandbox). A converter that cannot be loaded is left out, with the reason in
    ``problems``, so one broken site converter does not stop the others' folders from being
    watched (the converter worker fails its files with the same reason).
    """
    targets: list[WatchTarget] = []
    needs_class = [
        c for c in config.converters if c.enabled and (c.file_patterns is None or c.kind is None)
    ]
    site_specs = [c.converter for c in needs_class if c.converter.lower() not in BUILTIN_CONVERTERS]
    described: dict[str, dict[str, Any] | str] = {}
    if site_specs:
        described = (describe or describe_in_sandbox(config))(sorted(set(site_specs)))
    for conv in config.converters:
        if not conv.enabled:
            continue
        folders = converter_folders(config, conv)
        patterns = tuple(conv.file_patterns or ())
        kind = conv.kind
        if conv.file_patterns is None or kind is None:
            own = _own_description(conv.converter, described)
            if isinstance(own, str):
                if problems is not None:
                    problems[conv.name] = own
                continue
            patterns = patterns if conv.file_patterns is not None else own[1]
            kind = kind or own[0]
        if kind not in ("file", "folder"):
            continue
        watch = folders.watch.resolve()
        inside = (folders.pending, folders.done, folders.error, folders.archive, folders.state)
        resolved = [p.resolve() for p in inside if p is not None]
        targets.append(
            WatchTarget(
                converter=conv.name,
                kind=kind,
                watch=watch,
                pending=folders.pending,
                state=folders.state,
                file_patterns=patterns,
                folder_patterns=tuple(conv.folder_patterns or ("*",)),
                recursive=conv.recursive,
                readiness_marker=conv.readiness_marker,
                min_file_count=conv.min_file_count,
                keep=conv.post_action == "keep",
                excluded=tuple(p for p in resolved if p == watch or watch in p.parents),
                create_watch=conv.create_watch_folder,
            )
        )
    return targets


def _own_description(
    spec: str, described: dict[str, dict[str, Any] | str]
) -> tuple[str, tuple[str, ...]] | str:
    """(kind, file patterns) the converter ``spec`` declares, or why it cannot be loaded."""
    if spec.lower() in BUILTIN_CONVERTERS:
        try:
            cls = load_converter_class(spec)
        except ConverterLoadError as exc:  # pragma: no cover - a broken installation
            return str(exc)
        return str(cls.kind), tuple(cls.file_patterns)
    info = described.get(spec, "not described")
    if isinstance(info, str):
        return info
    return str(info.get("kind", "file")), tuple(str(p) for p in info.get("file_patterns", ()))


# ---- readiness ------------------------------------------------------------------------------


class Observation(enum.Enum):
    """What a fresh look at a candidate told the tracker."""

    NEW = "new"
    CHANGED = "changed"
    SAME = "same"


@dataclass
class _Candidate:
    signature: tuple[int, int]
    changed_at: float
    eligible: bool
    closed: bool = False
    closed_ready_at: float = 0.0  # a closed candidate is ready from then on (close + settle)
    writing: bool = False  # a writer in the folder has it open: no close seen since its writes
    taken: bool = False


class ReadinessTracker:
    """Decides when a file (or folder) is finished, from observations fed to it.

    Pure bookkeeping — no filesystem access — so the rules are unit-testable with made-up
    times. A candidate is never ready while it is not *eligible* (a folder may not be, yet) or
    handed out. Otherwise it is ready:

    - when it was *finished* (renamed in, a folder's marker appeared): at once;
    - when its writer *closed* it: ``settle`` seconds after the close (default 0: at once), so
      a writer that closes and reopens to append can be waited for;
    - while a writer in the folder is known to have it open (:meth:`mark_writing`: events
      showed it being written, no close yet): only after its signature stayed the same for
      ``open_writer_timeout`` — a safety net for a writer that hangs; a pause mid-write is not
      the end of the file;
    - otherwise (found by a scan, no close events on this platform) once its signature
      (size, mtime) has not changed for ``debounce`` seconds.

    A change — a new signature or a write — clears an earlier close: the writer came back, and
    the wait starts over. ``take`` hands a ready candidate out once; ``forget`` drops it (moved
    or gone), ``release`` puts it back (a move failed; try again after another debounce).
    """

    def __init__(
        self, debounce: float, *, open_writer_timeout: float = 60.0, settle: float = 0.0
    ) -> None:
        self.debounce = debounce
        self.open_writer_timeout = max(open_writer_timeout, debounce)
        self.settle = max(settle, 0.0)
        self._items: dict[Path, _Candidate] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def observe(
        self, key: Path, signature: tuple[int, int], now: float, *, eligible: bool = True
    ) -> Observation:
        """Record a look at ``key`` (its ``(size, mtime_ns)``-like ``signature``) at ``now``."""
        item = self._items.get(key)
        if item is None:
            self._items[key] = _Candidate(signature, now, eligible)
            return Observation.NEW
        item.eligible = eligible
        if item.signature != signature:
            item.signature = signature
            item.changed_at = now
            item.closed = False
            return Observation.CHANGED
        return Observation.SAME

    def mark_writing(self, key: Path) -> None:
        """A writer in the folder created or wrote ``key`` and may still hold it open: wait for
        its close (or the open-writer timeout), not for the short debounce."""
        item = self._items.get(key)
        if item is not None:
            item.writing = True
            item.closed = False

    def mark_closed(self, key: Path, now: float) -> None:
        """The writer closed ``key``: ready once ``settle`` has passed without a new write."""
        self._close(key, now + self.settle)

    def mark_finished(self, key: Path, now: float) -> None:
        """``key`` is complete by construction (renamed in, marker seen): ready at once."""
        self._close(key, now)

    def _close(self, key: Path, ready_at: float) -> None:
        item = self._items.get(key)
        if item is not None:
            item.closed = True
            item.writing = False
            item.closed_ready_at = ready_at

    def _ready_at(self, item: _Candidate) -> float | None:
        """When ``item`` becomes ready under the rules above (None: not while it is as it is)."""
        if item.taken or not item.eligible:
            return None
        if item.closed:
            return item.closed_ready_at
        if item.writing:
            return item.changed_at + self.open_writer_timeout
        return item.changed_at + self.debounce

    def due(self, now: float) -> list[Path]:
        """Candidates worth a final look now: ready by the rules."""
        return [key for key, item in self._items.items() if self._is_due(item, now)]

    def is_ready(self, key: Path, now: float) -> bool:
        """``key`` is tracked and ready by the rules at ``now``."""
        item = self._items.get(key)
        return item is not None and self._is_due(item, now)

    def _is_due(self, item: _Candidate, now: float) -> bool:
        ready_at = self._ready_at(item)
        return ready_at is not None and ready_at <= now

    def next_deadline(self, now: float) -> float | None:
        """When the earliest waiting candidate becomes ready, after ``now`` (None: nobody is
        waiting). Candidates due already are the caller's to take now, not a timer's."""
        times = [t for t in map(self._ready_at, self._items.values()) if t is not None and t > now]
        return min(times) if times else None

    def take(self, key: Path) -> None:
        """Hand ``key`` out (to a move); it is not due again until released."""
        self._items[key].taken = True

    def is_taken(self, key: Path) -> bool:
        """``key`` is being moved right now."""
        item = self._items.get(key)
        return item is not None and item.taken

    def release(self, key: Path, now: float) -> None:
        """A move of ``key`` did not happen: wait another debounce before the next try (the
        move was tried because the file looked finished, so no open writer is assumed)."""
        item = self._items.get(key)
        if item is not None:
            item.taken = False
            item.closed = False
            item.writing = False
            item.changed_at = now

    def forget(self, key: Path) -> None:
        """Drop ``key`` (moved, vanished, or no longer wanted)."""
        self._items.pop(key, None)

    def signature(self, key: Path) -> tuple[int, int]:
        """The last signature observed for ``key``."""
        return self._items[key].signature

    def candidates(self) -> list[Path]:
        """Every tracked candidate."""
        return list(self._items)


def folder_signature(folder: Path, target: WatchTarget) -> tuple[tuple[int, int], int, bool]:
    """``((count, hash), count, has_marker)`` of a folder-kind candidate.

    The signature changes whenever a file is added, removed, grows or is touched; ``count``
    is the number of files the converter would get (matching files, no temp files, no marker).
    """
    count = 0
    has_marker = False
    parts: list[tuple[str, int, int]] = []
    for root, dirs, files in os.walk(folder):  # never follows symlinked folders
        dirs[:] = [d for d in dirs if not is_temp_name(d)]
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        for name in [*files, *links]:
            if name.lower() == target.readiness_marker.lower():
                has_marker = True
                continue
            if is_temp_name(name):
                continue
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            parts.append((os.path.join(root, name), st.st_size, st.st_mtime_ns))
            if matches(name, target.file_patterns):
                count += 1
    parts.sort()
    return (len(parts), hash(tuple(parts))), count, has_marker


# ---- scanning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One candidate a scan found: a regular file or a folder, and its signature."""

    target: WatchTarget
    path: Path
    signature: tuple[int, int]
    size: int


def scan_target(target: WatchTarget, refuse: set[Path] | None = None) -> Iterator[Found]:
    """Every candidate now in ``target``'s watch folder (files, or sub-folders for folder kind).

    Files that vanish mid-scan are skipped; symlinks are never followed: one pointing outside
    the watch folder is added to ``refuse`` (the caller logs it once), one pointing inside is
    skipped because its target is taken under its own name.
    """
    stack = [target.watch]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    if refuse is not None and not _points_inside(path, target.watch):
                        refuse.add(path)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if target.is_excluded(path) or is_temp_name(entry.name):
                        continue
                    if target.kind == "folder" and folder == target.watch:
                        if target.takes_folder(entry.name):
                            yield _found_folder(target, path)
                    elif target.kind == "file" and target.recursive:
                        stack.append(path)
                    continue
                if target.kind == "file" and target.takes_file(entry.name):
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        yield Found(target, path, (st.st_size, st.st_mtime_ns), st.st_size)
            except FileNotFoundError:
                continue


def symlink_inside(folder: Path) -> str | None:
    """The first symlink (file or folder) anywhere inside ``folder``, relative to it, or None.

    Walked without following links, so a linked folder is reported, never entered.
    """
    for root, dirs, files in os.walk(folder):
        for name in sorted([*dirs, *files]):
            full = os.path.join(root, name)
            if os.path.islink(full):
                return os.path.relpath(full, folder)
    return None


def reached_through_symlink(path: Path) -> bool:
    """True when a folder between the (resolved) watch folder and ``path`` is a symlink.

    Some observers (polling) descend into symlinked folders and report files inside them under
    the link's path; such a file is not in the watch folder at all.
    """
    parent = os.fspath(path.parent)
    return os.path.normcase(os.path.realpath(parent)) != os.path.normcase(os.path.normpath(parent))


def _found_folder(target: WatchTarget, path: Path) -> Found:
    signature, count, _ = folder_signature(path, target)
    return Found(target, path, signature, count)


def _points_inside(link: Path, root: Path) -> bool:
    try:
        resolved = link.resolve(strict=False)
    except (OSError, RuntimeError):  # a loop of links
        return False
    return resolved == root or root in resolved.parents


# ---- keep mode ledger ---------------------------------------------------------------------


class KeepLedger:
    """The files a ``post_action = "keep"`` converter already copied, so each is taken once.

    An entry is (path relative to the watch folder, size, mtime_ns): a file rewritten in place
    is new content and is taken again. The ledger is an append-only JSON-lines file, fsynced per
    entry (the copy into pending is durable before the entry is written: a crash in between
    copies the file a second time, and the converter's content-derived report ids make that
    copy a no-op). A torn last line (kill -9 mid-append) is ignored; :meth:`compact` rewrites
    the file atomically without entries whose source is gone.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: set[tuple[str, int, int]] = set()
        self.load()

    def __len__(self) -> int:
        return len(self._entries)

    def load(self) -> None:
        """Read the ledger (a missing file is an empty ledger)."""
        self._entries.clear()
        try:
            text = self.path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            try:
                data = json.loads(line)
                self._entries.add((str(data["path"]), int(data["size"]), int(data["mtime_ns"])))
            except (ValueError, KeyError, TypeError):
                continue

    def contains(self, rel: str, size: int, mtime_ns: int) -> bool:
        """This exact version of the file was copied already."""
        return (rel, size, mtime_ns) in self._entries

    def add(self, rel: str, size: int, mtime_ns: int) -> None:
        """Remember a copied file, durably."""
        entry = (rel, size, mtime_ns)
        if entry in self._entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"path": rel, "size": size, "mtime_ns": mtime_ns}) + "\n"
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        self._entries.add(entry)

    def compact(self, still_there: Iterable[str]) -> int:
        """Keep only entries whose relative path is in ``still_there``; returns how many went."""
        keep = set(still_there)
        before = len(self._entries)
        self._entries = {e for e in self._entries if e[0] in keep}
        removed = before - len(self._entries)
        if removed:
            lines = "".join(
                json.dumps({"path": p, "size": s, "mtime_ns": m}) + "\n"
                for p, s, m in sorted(self._entries)
            )
            atomic_write(self.path, lines.encode("utf-8"))
        return removed


# ---- durable copy (keep mode) -----------------------------------------------------------------


def durable_copy(src: Path, dst: Path) -> None:
    """Copy a file (or a folder tree) to ``dst`` durably: into a ``.<name>.<random>.tmp`` sibling
    of ``dst``, fsync every file, rename into place, fsync the folder. A crash leaves only a temp
    name, which scanners skip and ``remove_stale_temp_files`` cleans."""
    tmp = dst.parent / temp_name_for(dst.name)
    try:
        if src.is_dir():
            shutil.copytree(src, tmp, symlinks=True)
            for root, _dirs, files in os.walk(tmp):
                for name in files:
                    _fsync_file(Path(root) / name)
                fsync_dir(Path(root))
        else:
            shutil.copy2(src, tmp, follow_symlinks=False)
            _fsync_file(tmp)
        os.replace(tmp, dst)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    fsync_dir(dst.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- moves (run in background jobs) -----------------------------------------------------------


@dataclass
class _Move:
    target: WatchTarget
    src: Path
    size: int
    signature: tuple[int, int]


@dataclass
class _Moved:
    move: _Move
    dest: Path | None = None
    vanished: bool = False
    error: str | None = None
    refused: str | None = None


def _refusal(move: _Move) -> str | None:
    """A last look at the source just before the move: why it must not be moved, or None."""
    try:
        st = os.lstat(move.src)
    except FileNotFoundError:
        return None  # the move will find it gone
    if stat.S_ISLNK(st.st_mode):
        return SYMLINK_OUTSIDE if not _points_inside(move.src, move.target.watch) else SYMLINK
    if reached_through_symlink(move.src):
        return THROUGH_SYMLINK
    if move.target.kind == "folder" and stat.S_ISDIR(st.st_mode):
        inner = symlink_inside(move.src)
        if inner is not None:
            return f"{FOLDER_WITH_SYMLINK} ({inner})"
    return None


def _hand_over(move: _Move) -> _Moved:
    """Move (or copy, keep mode) one ready candidate into its pending folder."""
    target = move.target
    refused = _refusal(move)
    if refused is not None:
        return _Moved(move, refused=refused)
    try:
        target.pending.mkdir(parents=True, exist_ok=True)
        dest = unique_destination(target.pending, move.src.name)
        if target.keep:
            durable_copy(move.src, dest)
        else:
            # Not fsynced: a power cut that undoes the rename leaves the file in the watch
            # folder, which the next scan hands over again (same content, same report ids).
            durable_move(move.src, dest, sync=False)
        return _Moved(move, dest=dest)
    except FileNotFoundError:
        if move.src.exists():
            raise
        return _Moved(move, vanished=True)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return _Moved(move, vanished=True)
        return _Moved(move, error=f"{type(exc).__name__}: {exc}")


def _exact_path(path: Path) -> dict[str, bytes]:
    """``path_bytes`` for a ``file.pending`` whose path is not UTF-8 (nothing otherwise).

    Such a path reaches the bus as readable ``\\xNN`` text, not as the file's name; its bytes
    let the converter find the file now rather than at its next scan.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return {"path_bytes": os.fsencode(text)}
    return {}


def _hand_over_all(moves: list[_Move]) -> list[_Moved]:
    results: list[_Moved] = []
    for move in moves:
        try:
            results.append(_hand_over(move))
        except Exception as exc:  # one bad file must not lose the outcomes of the batch
            results.append(_Moved(move, error=f"{type(exc).__name__}: {exc}"))
    return results


# ---- the worker -----------------------------------------------------------------------------


@dataclass
class _FsEvent:
    kind: str  # created | modified | attrib | closed | moved | moved_in | deleted
    path: Path
    dest: Path | None
    is_directory: bool


# What an event says about a file's writer (None: nothing, only look at the file again).
Signal = Literal["created", "written", "closed", "finished"]


_STOP_PUMP = object()


# How long watchdog's inotify backend holds a "moved from" event while it waits for the matching
# "moved to". Its 0.5 s default delays every event queued behind it, and each of our own moves
# out of a watch folder produces one, so a file dropped right after another was seen ~0.4 s late
# (benchmark: drop → accepted p50 503 ms before, 97 ms after). Both halves of a rename arrive in
# the same inotify read, so a short wait loses no pairing.
INOTIFY_MOVE_PAIRING_SECONDS = 0.02


def _shorten_inotify_move_pairing() -> None:
    try:
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # not Linux, or a watchdog without the grouper: nothing to tune
        return
    if getattr(InotifyMoveEventGrouper, "delay", 0) > INOTIFY_MOVE_PAIRING_SECONDS:
        InotifyMoveEventGrouper.delay = INOTIFY_MOVE_PAIRING_SECONDS


def _inotify_observer() -> BaseObserver | None:
    """watchdog's inotify observer, reporting renames in and out of the watched tree as moves
    (``generate_full_events``) rather than as "created"/"deleted"; None where there is none.

    Why full events: a file renamed in from outside (a station writing elsewhere and renaming
    in) must read as finished, not as a file some writer just created and may still fill.
    """
    if Observer.__name__ != "InotifyObserver":  # watchdog chose another: not Linux, no inotify
        return None
    # Imported only now: elsewhere the import itself can fail (watchdog checks the libc).
    from watchdog.observers.inotify import InotifyObserver

    observer: BaseObserver = InotifyObserver(generate_full_events=True)
    return observer


def _tells_writes_from_attributes() -> bool:
    """watchdog reports a metadata change (``IN_ATTRIB``: chmod, utime) as its own "attrib"
    event (watchdog 7+), so a "modified" event means data was written. Older versions report
    both as "modified"; taking a copy's closing ``utime`` for a write would then hold the file
    for the open-writer timeout, so open writers are not tracked there."""
    from watchdog import events

    return hasattr(events, "FileAttribEvent")


def _event_path(raw: bytes | str) -> Path | None:
    return Path(os.fsdecode(raw)) if raw else None


def _fs_events(event: FileSystemEvent) -> list[_FsEvent]:
    """The queue's form of a watchdog event (none: not one the watcher acts on).

    A move with no source came from outside the watched tree (``moved_in``); one with no
    destination left it, which for the watch folder is a deletion. A folder moved in brings its
    content along, which watchdog reports only without full events: each entry in it is moved
    in too (walked here, on the observer thread, as watchdog would).
    """
    kind = event.event_type
    if kind in ("opened", "closed_no_write"):
        return []
    src, dest = _event_path(event.src_path), _event_path(event.dest_path)
    if kind == "moved" and src is None:
        kind, src, dest = "moved_in", dest, None
    elif kind == "moved" and dest is None:
        kind = "deleted"
    if src is None:
        return []
    items = [_FsEvent(kind, src, dest, bool(event.is_directory))]
    if kind == "moved_in" and event.is_directory:
        items += [_FsEvent("moved_in", path, None, False) for path in _entries_below(src)]
    return items


def _entries_below(folder: Path) -> Iterator[Path]:
    """Every file and folder under ``folder`` (symlinked folders not entered)."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            yield Path(root) / name


class _Forwarder(FileSystemEventHandler):
    """watchdog's side: put each event on the queue (observer thread; nothing else)."""

    def __init__(self, events: queue.SimpleQueue[Any]) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        for item in _fs_events(event):
            self.events.put(item)


@dataclass
class _Stats:
    moved: int = 0
    detected: int = 0
    refused: int = 0
    move_errors: int = 0
    scans: int = 0
    last_scan_seconds: float = 0.0
    last_error: str | None = None
    per_converter: dict[str, int] = field(default_factory=dict)


class WatcherWorker(Worker):
    """Moves finished files from the watch folders into the pending folders (module docstring).

    Args: ``debounce_ms`` (500), ``open_writer_timeout_seconds`` (60: how long a file a writer
    holds open must be stable before it is taken without its close), ``settle_after_close_ms``
    (0: how long after a close a file waits for its writer to come back), ``rescan_seconds``
    (30), ``batch_size`` (moves per background job, 200), ``observer`` (``"auto"`` =
    watchdog's best for the platform, ``"polling"``).
    """

    targets: list[WatchTarget]

    def setup(self) -> None:
        """Resolve the targets, start the observers, then scan at once and every interval."""
        self.debounce = float(self.args.get("debounce_ms", DEFAULT_DEBOUNCE_MS)) / 1000.0
        self.open_writer_timeout = float(
            self.args.get("open_writer_timeout_seconds", DEFAULT_OPEN_WRITER_TIMEOUT_SECONDS)
        )
        self.settle = (
            float(self.args.get("settle_after_close_ms", DEFAULT_SETTLE_AFTER_CLOSE_MS)) / 1000.0
        )
        self.rescan_interval = float(self.args.get("rescan_seconds", DEFAULT_RESCAN_SECONDS))
        self.batch_size = max(1, int(self.args.get("batch_size", DEFAULT_BATCH_SIZE)))
        self.converter_problems: dict[str, str] = {}
        self.targets = targets_from_config(self.config, problems=self.converter_problems)
        for name, reason in self.converter_problems.items():
            self.log.error(
                "converter cannot be loaded; its folder is not watched",
                converter=name,
                error=reason,
                hint="wats-supervisor converters list",
            )
        self.tracker = ReadinessTracker(
            self.debounce, open_writer_timeout=self.open_writer_timeout, settle=self.settle
        )
        self._sees_writers = False  # set by _start_observer: close events and real writes
        self.stats = _Stats()
        self._owner: dict[Path, WatchTarget] = {}  # tracked candidate -> its converter
        # Refused candidates and what they looked like then: refused again silently while
        # unchanged; a folder whose link was removed is looked at afresh.
        self._refused: dict[Path, object] = {}
        self._failures: dict[Path, int] = {}  # failed moves per source, for the backoff
        self._ready: list[Path] = []  # ready, waiting for a move job
        self._moving = False
        self._check_timer: Timer | None = None
        self._check_at: float | None = None
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.ledgers: dict[str, KeepLedger] = {}
        for target in self.targets:
            if target.create_watch:
                target.watch.mkdir(parents=True, exist_ok=True)
            elif not target.watch.is_dir():
                # `start` refuses a missing watch folder; this one went missing since (a share
                # unmounted). Not created here: rescans pick its files up once it is back.
                self.log.error(
                    "watch folder does not exist; files are taken once it is back",
                    converter=target.converter,
                    folder=str(target.watch),
                    hint="mount or create it, or set create_watch_folder = true",
                )
            target.pending.mkdir(parents=True, exist_ok=True)
            if target.keep:
                self.ledgers[target.converter] = KeepLedger(target.state / LEDGER_FILE)
        self._observer = self._start_observer()
        self._pump()
        self.every(self.rescan_interval, self.rescan, first=0)
        self.ready = True
        self.log.info(
            "watching",
            folders=[str(t.watch) for t in self.targets],
            debounce_ms=round(self.debounce * 1000),
            open_writers_tracked=self._sees_writers,
        )

    def stop(self, reason: str = "requested") -> None:
        """Also release the event pump (safe from a signal handler: a SimpleQueue put)."""
        events = getattr(self, "_events", None)
        if events is not None:
            events.put(_STOP_PUMP)
        super().stop(reason)

    def teardown(self) -> None:
        """Stop the observer threads."""
        observer = getattr(self, "_observer", None)
        if observer is not None:
            observer.stop()
            observer.join(5)

    def heartbeat_detail(self) -> dict[str, Any]:
        """Files moved, folders watched, candidates waiting."""
        return {
            "moved": self.stats.moved,
            "watched": len({t.watch for t in self.targets}),
            "tracking": len(self.tracker),
            "refused": self.stats.refused,
        }

    # ---- observers and the event pump -----------------------------------------------------

    def _start_observer(self) -> BaseObserver:
        """Start the observer over every watch folder."""
        observer = self._make_observer()
        handler = _Forwarder(self._events)
        recursive: dict[Path, bool] = {}
        for target in self.targets:
            # Folder kind needs events inside its sub-folders (the marker appearing).
            deep = target.recursive or target.kind == "folder"
            recursive[target.watch] = recursive.get(target.watch, False) or deep
        for folder, deep in recursive.items():
            if folder.is_dir():  # a missing one is logged in setup and found by rescans
                observer.schedule(handler, str(folder), recursive=deep)
        observer.daemon = True
        observer.start()
        return observer

    def _make_observer(self) -> BaseObserver:
        """The observer asked for. Only inotify reports a writer's close, so only there is a
        file seen being written held for its close (``_sees_writers``); elsewhere the debounce
        alone decides, as a file being written looks the same as a finished one."""
        if self.args.get("observer") == "polling":
            from watchdog.observers.polling import PollingObserver

            return PollingObserver(timeout=max(self.debounce / 2, 0.1))
        _shorten_inotify_move_pairing()
        inotify = _inotify_observer()
        if inotify is None:
            return Observer()
        self._sees_writers = _tells_writes_from_attributes()
        return inotify

    def _pump(self) -> None:
        if not self.stopping:
            self.run_in_thread(self._next_events, self._on_events, name="fs-events")

    def _next_events(self) -> list[Any]:
        batch = [self._events.get()]
        with contextlib.suppress(queue.Empty):
            while len(batch) < 10_000:
                batch.append(self._events.get_nowait())
        return batch

    def _on_events(self, batch: list[Any] | None, error: BaseException | None) -> None:
        if error is not None:
            raise RuntimeError("the filesystem event pump failed") from error
        now = time.time()
        for item in batch or []:
            if item is _STOP_PUMP:
                return
            self._handle_event(item, now)
        self._after_changes(now)
        self._pump()

    def _handle_event(self, event: _FsEvent, now: float) -> None:
        if event.kind == "moved" and event.dest is not None:
            self._forget_path(event.path)
            self._look_at(event.dest, now, "finished")  # the rename is the finish line
        elif event.kind == "moved_in":
            self._look_at(event.path, now, "finished")
        elif event.kind == "deleted":
            self._forget_path(event.path)
        else:
            self._look_at(event.path, now, self._signal(event.kind))

    def _signal(self, kind: str) -> Signal | None:
        """What an event of this kind says about the file's writer."""
        if kind == "closed":
            return "closed"
        if kind == "modified" and self._sees_writers:
            return "written"  # data written through an open file: its close will follow
        if kind == "created" and self._sees_writers:
            return "created"
        return None

    def _forget_path(self, path: Path) -> None:
        if path in self._owner and not self.tracker.is_taken(path):
            self.tracker.forget(path)
            self._owner.pop(path, None)

    def _look_at(self, path: Path, now: float, signal: Signal | None = None) -> None:
        """An event touched ``path``: find the candidate it belongs to and observe it."""
        for target in self.targets:
            key = self._candidate_for(target, path)
            if key is None:
                continue
            owner = self._owner.get(key)
            if owner is not None and owner is not target:
                continue
            if target.kind == "folder":
                self._observe_folder(target, key, now)
            elif self._observe_file(target, key, now) and signal is not None:
                self._mark(key, signal, now)
            return

    def _mark(self, key: Path, signal: Signal, now: float) -> None:
        if signal == "closed":
            self.tracker.mark_closed(key, now)
        elif signal == "finished":
            self.tracker.mark_finished(key, now)
        elif signal == "written" or self.tracker.signature(key)[0] == 0:
            # A created file counts as open only while empty: watchdog also reports the files
            # in a folder just created as created, and their writers may have closed them
            # before the folder was watched. One still being written shows as written anyway.
            self.tracker.mark_writing(key)

    def _candidate_for(self, target: WatchTarget, path: Path) -> Path | None:
        root = target.watch
        if path == root or root not in path.parents or target.is_excluded(path):
            return None
        if target.kind == "file" and reached_through_symlink(path):
            return None  # under a symlinked folder: not in the watch folder at all
        rel = path.relative_to(root)
        if any(is_temp_name(part) for part in rel.parts):
            return None
        if target.kind == "folder":
            first = root / rel.parts[0]
            return first if target.takes_folder(rel.parts[0]) else None
        if len(rel.parts) > 1 and not target.recursive:
            return None
        return path if target.takes_file(path.name) else None

    # ---- observing candidates ---------------------------------------------------------------

    def _observe_file(self, target: WatchTarget, path: Path, now: float) -> bool:
        """Stat and observe a file candidate; False when it is not (or no longer) one."""
        if self.tracker.is_taken(path):
            return False
        try:
            st = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            self._forget_path(path)
            return False
        if stat.S_ISLNK(st.st_mode):
            if not _points_inside(path, target.watch):
                self._refuse(path, SYMLINK_OUTSIDE)
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        return self._observe(target, path, (st.st_size, st.st_mtime_ns), st.st_size, now)

    def _observe_folder(self, target: WatchTarget, path: Path, now: float) -> bool:
        if self.tracker.is_taken(path):
            return False
        if path.is_symlink():
            if not _points_inside(path, target.watch):
                self._refuse(path, SYMLINK_OUTSIDE)
            return False
        if not path.is_dir():
            self._forget_path(path)
            return False
        signature, count, has_marker = folder_signature(path, target)
        if self._refused.get(path) == signature:
            return False  # refused as it is now (it holds a symlink); wait for a change
        return self._observe(
            target,
            path,
            signature,
            count,
            now,
            eligible=has_marker or (0 < target.min_file_count <= count),
            marker=has_marker,
        )

    def _observe(
        self,
        target: WatchTarget,
        path: Path,
        signature: tuple[int, int],
        size: int,
        now: float,
        *,
        eligible: bool = True,
        marker: bool = False,
    ) -> bool:
        if target.keep and self._already_kept(target, path, signature):
            return False
        seen = self.tracker.observe(path, signature, now, eligible=eligible)
        self._owner[path] = target
        if marker:
            self.tracker.mark_finished(path, now)
        if seen is Observation.NEW:
            self.stats.detected += 1
            self.publish(
                topics.FILE_DETECTED,
                {"converter": target.converter, "path": str(path), "size": size},
            )
        return True

    def _already_kept(self, target: WatchTarget, path: Path, signature: tuple[int, int]) -> bool:
        ledger = self.ledgers.get(target.converter)
        rel = path.relative_to(target.watch).as_posix()
        return ledger is not None and ledger.contains(rel, *signature)

    def _refuse(self, path: Path, reason: str, signature: object = None) -> None:
        """Leave ``path`` where it is, never follow it; warn once per path and look."""
        if path in self._refused and self._refused[path] == signature:
            return
        first = path not in self._refused
        self._refused[path] = signature
        if first:
            self.stats.refused += 1
        self.log.warning(f"{reason}; left in place", path=str(path))

    def _prune_refused(self) -> None:
        """Forget refusals whose path is gone, so a new link of the same name is reported."""
        for path in list(self._refused):
            if not os.path.lexists(path):
                del self._refused[path]

    # ---- scans ------------------------------------------------------------------------------

    def rescan(self) -> int:
        """Scan every watch folder; returns how many candidates are tracked afterwards.

        Anything the events missed (worker down, events dropped, a network share without
        events) becomes a candidate here and follows the same readiness rules.
        """
        started = time.perf_counter()
        now = time.time()
        refused: set[Path] = set()
        seen: set[Path] = set()
        for target in self.targets:
            present: set[str] = set()
            for found in scan_target(target, refused):
                present.add(found.path.relative_to(target.watch).as_posix())
                owner = self._owner.get(found.path)
                if owner is not None and owner is not target:
                    continue
                if found.path in seen:
                    continue
                seen.add(found.path)
                if self.tracker.is_taken(found.path):
                    continue
                if target.kind == "folder":
                    self._observe_folder(target, found.path, now)
                else:
                    self._observe(target, found.path, found.signature, found.size, now)
            ledger = self.ledgers.get(target.converter)
            if ledger is not None:
                ledger.compact(present)
        for path in refused:
            self._refuse(path, SYMLINK_OUTSIDE)
        self._prune_refused()
        # Candidates a scan no longer finds are gone (deleted, or moved by someone else).
        for key in self.tracker.candidates():
            if key not in seen and not self.tracker.is_taken(key):
                self.tracker.forget(key)
                self._owner.pop(key, None)
        self.stats.scans += 1
        self.stats.last_scan_seconds = round(time.perf_counter() - started, 4)
        self._after_changes(now)
        return len(self.tracker)

    # ---- from ready to moved ------------------------------------------------------------------

    def _after_changes(self, now: float) -> None:
        """Collect what became ready, start a move job, and arm the next stability check."""
        for key in self.tracker.due(now):
            target = self._owner.get(key)
            if target is None:
                self.tracker.forget(key)
                continue
            if not self._still_ready(target, key, now):
                continue
            self.tracker.take(key)
            self._ready.append(key)
        self._start_moves()
        self._arm_check()

    def _still_ready(self, target: WatchTarget, key: Path, now: float) -> bool:
        """A last look before the move: a debounced candidate must not have changed, and a
        folder must not hold a symlink (refused until it changes)."""
        if target.kind == "folder":
            self._observe_folder(target, key, now)
        else:
            self._observe_file(target, key, now)
        if not self.tracker.is_ready(key, now):
            return False
        if target.kind == "folder":
            inner = symlink_inside(key)
            if inner is not None:
                self._refuse(key, f"{FOLDER_WITH_SYMLINK} ({inner})", self.tracker.signature(key))
                self.tracker.forget(key)
                self._owner.pop(key, None)
                return False
        return True

    def _arm_check(self) -> None:
        now = time.time()
        deadline = self.tracker.next_deadline(now)
        if deadline is None:
            return
        if self._check_at is not None and self._check_at <= deadline:
            return
        if self._check_timer is not None:
            self._check_timer.cancel()
        self._check_at = deadline
        self._check_timer = self.after(max(0.0, deadline - now) + 0.005, self._on_check)

    def _on_check(self) -> None:
        self._check_timer = None
        self._check_at = None
        self._after_changes(time.time())

    def _start_moves(self) -> None:
        if self._moving or not self._ready:
            return
        batch_keys, self._ready = self._ready[: self.batch_size], self._ready[self.batch_size :]
        moves = []
        for key in batch_keys:
            target = self._owner[key]
            signature = self.tracker.signature(key)
            moves.append(_Move(target, key, signature[0], signature))
        self._moving = True
        self.run_in_thread(lambda: _hand_over_all(moves), self._on_moved, name="move")

    def _on_moved(self, results: list[_Moved] | None, error: BaseException | None) -> None:
        self._moving = False
        if error is not None:
            raise RuntimeError("a move job failed") from error
        now = time.time()
        for result in results or []:
            move = result.move
            target = move.target
            if result.error is None:
                self._failures.pop(move.src, None)
            if result.dest is not None:
                if target.keep:
                    self._record_kept(target, move)
                self.tracker.forget(move.src)
                self._owner.pop(move.src, None)
                self.stats.moved += 1
                self.stats.per_converter[target.converter] = (
                    self.stats.per_converter.get(target.converter, 0) + 1
                )
                self.tick()
                self.publish(
                    topics.FILE_PENDING,
                    {
                        "converter": target.converter,
                        "path": str(result.dest),
                        "source": str(move.src),
                        **_exact_path(result.dest),
                    },
                )
            elif result.refused is not None:
                signature = move.signature if target.kind == "folder" else None
                self._refuse(move.src, result.refused, signature)
                self.tracker.forget(move.src)
                self._owner.pop(move.src, None)
            elif result.vanished:
                self.tracker.forget(move.src)
                self._owner.pop(move.src, None)
            else:
                self._move_failed(move.src, result.error or "unknown error", now)
        self._start_moves()
        self._arm_check()

    def _move_failed(self, src: Path, error: str, now: float) -> None:
        """Try again later, backing off (1 s doubling to 60 s) so a file that cannot be moved
        (permissions, a full disk) neither spins nor floods the log: warned once per file."""
        self.stats.move_errors += 1
        self.stats.last_error = error
        failures = self._failures.get(src, 0) + 1
        self._failures[src] = failures
        log = self.log.warning if failures == 1 else self.log.debug
        log("move failed; will retry", path=str(src), error=error, failures=failures)
        delay = min(2.0 ** (failures - 1), 60.0)
        self.tracker.release(src, now + delay - self.debounce)

    def _record_kept(self, target: WatchTarget, move: _Move) -> None:
        ledger = self.ledgers.get(target.converter)
        if ledger is not None:
            rel = move.src.relative_to(target.watch).as_posix()
            ledger.add(rel, *move.signature)

    # ---- commands ---------------------------------------------------------------------------

    @handles("watcher.status")
    def status_command(self, args: dict[str, Any]) -> dict[str, Any]:
        """Counters and the folders watched, per converter; ``not_watched``: converters that
        cannot be loaded, with the reason."""
        return {
            "moved": self.stats.moved,
            "detected": self.stats.detected,
            "refused": self.stats.refused,
            "move_errors": self.stats.move_errors,
            "scans": self.stats.scans,
            "last_scan_seconds": self.stats.last_scan_seconds,
            "last_error": self.stats.last_error,
            "tracking": len(self.tracker),
            "waiting_to_move": len(self._ready),
            "debounce_ms": round(self.debounce * 1000),
            "open_writer_timeout_seconds": self.open_writer_timeout,
            "open_writers_tracked": self._sees_writers,
            "settle_after_close_ms": round(self.settle * 1000),
            "rescan_seconds": self.rescan_interval,
            "converters": [
                {
                    "name": t.converter,
                    "kind": t.kind,
                    "watch": str(t.watch),
                    "pending": str(t.pending),
                    "patterns": list(t.file_patterns),
                    "recursive": t.recursive,
                    "keep": t.keep,
                    "moved": self.stats.per_converter.get(t.converter, 0),
                }
                for t in self.targets
            ],
            "not_watched": dict(self.converter_problems),
        }

    @handles("watcher.rescan")
    def rescan_command(self, args: dict[str, Any]) -> dict[str, Any]:
        """Scan every watch folder now; the reply says how many candidates are tracked."""
        return {"tracking": self.rescan()}
