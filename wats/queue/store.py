"""The durable report queue: one JSON file per report in ``pending/``, ``failed/``, ``completed/``.

Why files and folders: the filesystem is the truth (invariant 1). A report is in exactly the
state named by the folder holding it, any process (converter worker, uploader, CLI) can act on the
queue without a server process in the middle, and ``counts()`` is a directory listing, not a guess.
Every write goes through :mod:`wats.fsutil` (temp file, fsync, rename, fsync folder), so a kill -9
leaves the old state or the new one (invariant 2).

State changes and what a crash in the middle leaves (repaired by :meth:`ReportQueue.recover` and,
for pending items, on the fly by :meth:`ReportQueue.due`):

- ``mark_uploaded``: set the file's modification time to now (the upload time), then one durable
  rename ``pending/`` → ``completed/``. No rewrite: the report is not read, parsed or copied.
  Crash before the rename → still pending (uploaded again; the server keeps one copy by id).
- ``mark_failed``: rewrite the pending file with ``failed_at`` set, then move it to ``failed/``.
  Crash between → a pending file with ``failed_at`` set, which is moved on.
- ``retry``: rewrite the failed file with ``failed_at`` cleared, then move it to ``pending/``.
  Crash between → a failed file without ``failed_at``, which is moved on.
- A report in both ``pending/`` and ``completed/`` (left by older versions, which wrote
  completed/ and then unlinked pending/) counts as uploaded: the pending copy is dropped.

Rewrites (``mark_retry``, ``mark_failed``, ``retry``) splice a new meta onto the stored report
bytes; the report itself is never re-encoded (see :mod:`wats.queue.item` for the layout).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from wats.fsutil import atomic_write, durable_move, fsync_dir, is_temp_name
from wats.fsutil import remove_stale_temp_files as _remove_stale_temp_files
from wats.queue.item import (
    STATES,
    ItemNotFound,
    QueueCounts,
    QueueItem,
    QueueMeta,
    QueueState,
    canonical_id,
    decode_item,
    encode_file,
    encode_report,
    read_meta,
)

if TYPE_CHECKING:
    from wats.config.models import ClientConfig
    from wats.config.paths import InstancePaths

__all__ = ["ItemNotFound", "ReportQueue"]

log = structlog.get_logger("wats.queue")

_SUFFIX = ".json"
_QUEUE_FILE_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json")
"""A report file named by its canonical id (what ``path_for`` writes)."""
# Temp files younger than this may belong to a writer that is still running.
_STALE_TEMP_SECONDS = 60.0


class ReportQueue:
    """The report queue rooted at ``root`` (folders ``pending/``, ``failed/``, ``completed/``).

    Safe to use from several processes at once (each state change is one atomic rename or
    unlink) and from several threads of one process. ``keep_completed=False`` deletes reports
    once uploaded; otherwise ``completed_max_count`` / ``completed_max_age_s`` (None = no limit)
    bound what :meth:`enforce_retention` keeps.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        keep_completed: bool = True,
        completed_max_count: int | None = None,
        completed_max_age_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.keep_completed = keep_completed
        self.completed_max_count = completed_max_count
        self.completed_max_age_s = completed_max_age_s
        self._clock = clock
        self._folders: dict[QueueState, Path] = {s: self.root / s for s in STATES}
        for folder in self._folders.values():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # pending meta by id, keyed on (inode, mtime, size): every rewrite is a new inode, so an
        # unchanged key means an unchanged file and due() need not re-read thousands of files.
        self._meta_cache: dict[str, tuple[tuple[int, int, int], QueueMeta | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, cfg: ClientConfig, paths: InstancePaths | None = None) -> ReportQueue:
        """The queue of ``cfg``'s instance, with the ``[queue]`` retention settings."""
        from wats.config.paths import InstancePaths

        paths = paths or InstancePaths.for_config(cfg)
        section = cfg.queue
        return cls(
            paths.queue_dir,
            keep_completed=section.keep_completed,
            completed_max_count=section.completed_max_count or None,
            completed_max_age_s=(section.completed_max_age_days * 86400.0) or None,
        )

    def __repr__(self) -> str:
        return f"ReportQueue({str(self.root)!r})"

    # ---------------------------------------------------------------- paths

    def folder(self, state: QueueState) -> Path:
        """The folder holding reports in ``state``."""
        return self._folders[state]

    def path_for(self, report_id: str, state: QueueState) -> Path:
        """Where the report with ``report_id`` lives when it is in ``state``."""
        return self._folders[state] / f"{canonical_id(report_id)}{_SUFFIX}"

    # ---------------------------------------------------------------- adding

    def enqueue(
        self,
        report: dict[str, Any],
        *,
        converter: str | None,
        source_file: str | os.PathLike[str] | None,
        station: str | None,
    ) -> bool:
        """Store ``report`` durably in ``pending/``; False (and nothing written) if its id is known.

        "Known" means pending, completed or failed: converting the same source again after a
        crash yields the same id (invariant 3), so the second copy is a no-op here. A failed
        report is not re-queued this way either; ``retry`` sends it again. When this returns,
        the report is on disk: the caller may delete or move its source.
        """
        if not isinstance(report, dict):
            raise TypeError(
                f"report must be a dict (WSJF JSON object), not {type(report).__name__}"
            )
        return self.enqueue_encoded(
            report.get("id"),
            encode_report(report),
            converter=converter,
            source_file=source_file,
            station=station,
        )

    def enqueue_encoded(
        self,
        report_id: object,
        body: bytes,
        *,
        converter: str | None,
        source_file: str | os.PathLike[str] | None,
        station: str | None,
        source_sha256: str | None = None,
    ) -> bool:
        """:meth:`enqueue` for a report already serialised (``encode_report``'s form) whose id
        is ``report_id``: the converter sandbox hands over final bodies, and encoding them a
        second time would only cost CPU. The caller vouches that ``body`` holds that id.
        ``source_sha256`` (the source's content hash) lets a later copy of the same source be
        told apart from other content under the same id (``wats.queue.intake``)."""
        report_id = canonical_id(report_id)
        # pending first: a concurrent mark_uploaded moves pending → completed, so checking in
        # this order cannot miss a report in flight between the two.
        for state in ("pending", "completed", "failed"):
            if self.path_for(report_id, state).exists():
                return False
        meta = QueueMeta(
            id=report_id,
            source_file=os.fspath(source_file) if source_file is not None else None,
            converter=converter,
            station=station,
            source_sha256=source_sha256,
            queued_at=self._clock(),
        )
        atomic_write(self.path_for(report_id, "pending"), encode_file(meta, bytes(body)))
        return True

    # ---------------------------------------------------------------- reading

    def get(self, report_id: str) -> QueueItem | None:
        """The report in whichever folder holds it (pending, failed, completed), or None.

        Reads the whole file once, so the item's ``report_bytes()`` needs no second read.
        """
        report_id = canonical_id(report_id)
        for state in STATES:
            item = self._read(report_id, state)
            if item is not None:
                return item
        return None

    def due(self, now: float | None = None, limit: int | None = None) -> builtins.list[QueueItem]:
        """Pending reports whose ``next_attempt`` has come, oldest (by ``queued_at``) first.

        Reads metas only (the first few kilobytes of a file, and only of files that changed
        since the last call); the items' bodies are read when asked for (``report_bytes()``).
        Also finishes state changes a crash interrupted (see the module docs), so a report whose
        upload was recorded is never handed out again.
        """
        now = self._clock() if now is None else now
        ready: builtins.list[QueueMeta] = []
        for meta in self._pending_metas():
            if meta.failed_at is not None:
                self._finish_failed(meta.id)
            elif meta.next_attempt <= now:
                ready.append(meta)
        ready.sort(key=lambda m: (m.queued_at, m.id))
        items: builtins.list[QueueItem] = []
        for meta in ready:
            if limit is not None and len(items) >= limit:
                break
            if self.path_for(meta.id, "completed").exists():
                self._drop_pending(meta.id)  # uploaded already (see the module docs)
                continue
            items.append(QueueItem("pending", meta, self.path_for(meta.id, "pending")))
        return items

    def next_due_time(self) -> float | None:
        """The earliest ``next_attempt`` among pending reports (None when nothing is pending)."""
        times = [m.next_attempt for m in self._pending_metas() if m.failed_at is None]
        return min(times) if times else None

    def list(self, state: QueueState) -> builtins.list[QueueItem]:
        """Every report in ``state``, oldest (by ``queued_at``) first; unreadable files skipped.

        Reads metas only; an item's report is read when asked for.
        """
        items = []
        for path in self._files(state):
            try:
                meta, info = read_meta(path)
            except FileNotFoundError:
                continue
            except ValueError as exc:
                log.warning("queue_file_unreadable", path=str(path), error=str(exc))
                continue
            items.append(QueueItem(state, self._with_upload_time(meta, state, info), path))
        items.sort(key=lambda i: (i.meta.queued_at, i.id))
        return items

    def counts(self) -> QueueCounts:
        """How many reports each folder holds, counted from the folders (never cached)."""
        return QueueCounts(**{state: sum(1 for _ in self._names(state)) for state in STATES})

    # ---------------------------------------------------------------- state changes

    def mark_uploaded(self, report_id: str) -> None:
        """The server has the report: move it to ``completed/`` (or delete it, per config).

        One rename (the file's modification time, set first, records the upload time;
        ``get``/``list`` report it as ``uploaded_at``), so recording an upload costs the same
        for a 1 KB report as for a 10 MB one. Not fsynced: a power cut that undoes it leaves
        the report pending, and sending it again is harmless (the server replaces a report
        whose id it has; invariant 3).
        """
        report_id = canonical_id(report_id)
        pending = self.path_for(report_id, "pending")
        try:
            if self.keep_completed:
                now = self._clock()
                os.utime(pending, (now, now))
                os.replace(pending, self.path_for(report_id, "completed"))
            else:
                pending.unlink()
        except (FileNotFoundError, NotADirectoryError):
            raise ItemNotFound(report_id, "pending") from None

    def mark_retry(self, report_id: str, error: str, next_attempt: float) -> QueueItem:
        """Count a failed attempt: ``attempts + 1``, remember ``error``, wait until
        ``next_attempt`` (epoch seconds). The report stays pending; returns its new state."""
        report_id = canonical_id(report_id)
        item = self._require(report_id, "pending")
        updated = item.with_meta(
            attempts=item.meta.attempts + 1, last_error=error, next_attempt=float(next_attempt)
        )
        self._rewrite(updated)
        return updated

    def mark_failed(self, report_id: str, error: str) -> QueueItem:
        """Give up on the report: count the attempt, keep ``error`` (the server's message), and
        move it to ``failed/`` where it waits for ``retry``. Returns its new state."""
        report_id = canonical_id(report_id)
        item = self._require(report_id, "pending")
        updated = item.with_meta(
            attempts=item.meta.attempts + 1, last_error=error, failed_at=self._clock()
        )
        self._rewrite(updated)
        self._finish_failed(report_id)
        return replace(updated, state="failed", path=self.path_for(report_id, "failed"))

    def retry(self, report_id: str) -> bool:
        """Send a failed report again: back to ``pending/``, due now, attempts reset.

        Returns False when the report is not in ``failed/``. The last error is kept for reference.
        """
        report_id = canonical_id(report_id)
        item = self._read(report_id, "failed")
        if item is None:
            return False
        self._rewrite(item.with_meta(attempts=0, next_attempt=0.0, failed_at=None))
        self._finish_retry(report_id)
        return True

    def retry_all_failed(self) -> int:
        """``retry`` every failed report; returns how many went back to pending."""
        return sum(1 for path in builtins.list(self._files("failed")) if self.retry(path.stem))

    def purge_completed(self, max_count: int | None = None, max_age_s: float | None = None) -> int:
        """Delete completed reports beyond ``max_count`` (newest kept) or older than
        ``max_age_s``; with neither given, delete them all. Returns how many were deleted.

        Age is the file's modification time, which is the upload time (``mark_uploaded`` sets
        it), so purging thousands of files reads none of them.
        """
        now = self._clock()
        entries: builtins.list[tuple[float, Path]] = []
        for path in self._files("completed"):
            with contextlib.suppress(FileNotFoundError):
                entries.append((path.stat().st_mtime, path))
        entries.sort(reverse=True)  # newest first
        keep = len(entries) if max_count is None else max(0, max_count)
        if max_count is None and max_age_s is None:
            keep = 0
        doomed = entries[keep:]
        if max_age_s is not None:
            doomed += [e for e in entries[:keep] if now - e[0] > max_age_s]
        removed = 0
        for _mtime, path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        if removed:
            fsync_dir(self._folders["completed"])
        return removed

    def enforce_retention(self) -> int:
        """Apply the configured completed-report limits; returns how many reports were deleted."""
        if self.completed_max_count is None and self.completed_max_age_s is None:
            return 0
        return self.purge_completed(self.completed_max_count, self.completed_max_age_s)

    def recover(self, stale_temp_s: float = _STALE_TEMP_SECONDS) -> int:
        """Finish state changes a crash interrupted and delete stale temp files.

        Call at start (the uploader does). Reads metas only (and only of files that changed
        since this queue object last looked), never a report body. Returns how many entries
        were repaired or removed.
        """
        fixed = 0
        for folder in self._folders.values():
            fixed += _remove_stale_temp_files(folder, stale_temp_s)
        completed = {path.name for path in self._files("completed")}
        for path in builtins.list(self._files("pending")):
            if path.name in completed:
                self._drop_pending(path.stem)
                fixed += 1
        for meta in self._pending_metas():
            if meta.failed_at is not None:
                self._finish_failed(meta.id)
                fixed += 1
        for path in builtins.list(self._files("failed")):
            try:
                meta, _ = read_meta(path)
            except (FileNotFoundError, ValueError):
                continue
            if meta.failed_at is None:
                self._finish_retry(path.stem)
                fixed += 1
        return fixed

    # ---------------------------------------------------------------- internals

    def _files(self, state: QueueState) -> Iterator[Path]:
        """Report files in a folder: ``<uuid>.json``, never temp files or strays."""
        folder = self._folders[state]
        for name in self._names(state):
            yield folder / name

    def _names(self, state: QueueState) -> Iterator[str]:
        """The names of the report files in a folder (see :meth:`_files`).

        Names only, because ``counts()`` runs every second while the uploader works and a busy
        queue holds thousands of files: building a ``Path`` and parsing a UUID for each cost the
        uploader more than a tenth of its CPU. A name in the queue's own form is recognised by
        one pattern match; any other is checked as before.
        """
        try:
            names = os.listdir(self._folders[state])
        except FileNotFoundError:
            return
        for name in names:
            if _QUEUE_FILE_NAME.fullmatch(name):
                yield name
                continue
            if not name.endswith(_SUFFIX) or is_temp_name(name) or name.startswith("."):
                continue
            try:
                canonical_id(name[: -len(_SUFFIX)])
            except ValueError:
                continue
            yield name

    def _pending_metas(self) -> builtins.list[QueueMeta]:
        """The meta of every pending report, re-read only for files that changed."""
        metas: builtins.list[QueueMeta] = []
        seen: set[str] = set()
        for path in self._files("pending"):
            report_id = path.stem
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            key = (info.st_ino, info.st_mtime_ns, info.st_size)
            with self._lock:
                cached = self._meta_cache.get(report_id)
            if cached is not None and cached[0] == key:
                meta = cached[1]
            else:
                try:
                    meta, info = read_meta(path)
                except FileNotFoundError:
                    continue
                except ValueError as exc:
                    log.warning("queue_file_unreadable", path=str(path), error=str(exc))
                    meta = None
                else:
                    key = (info.st_ino, info.st_mtime_ns, info.st_size)
                with self._lock:
                    self._meta_cache[report_id] = (key, meta)
            seen.add(report_id)
            if meta is not None:
                metas.append(meta)
        with self._lock:
            for gone in set(self._meta_cache) - seen:
                del self._meta_cache[gone]
        return metas

    def _with_upload_time(
        self, meta: QueueMeta, state: QueueState, info: os.stat_result
    ) -> QueueMeta:
        """A completed report's ``uploaded_at`` is its file's modification time (see
        ``mark_uploaded``) unless the meta itself says (files of older versions)."""
        if state == "completed" and meta.uploaded_at is None:
            return replace(meta, uploaded_at=info.st_mtime)
        return meta

    def _read(self, report_id: str, state: QueueState) -> QueueItem | None:
        return self._read_path(self.path_for(report_id, state), state)

    def _read_path(self, path: Path, state: QueueState) -> QueueItem | None:
        try:
            with open(path, "rb") as handle:
                info = os.fstat(handle.fileno())
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            item = decode_item(data, state=state, path=path)
        except ValueError as exc:
            log.warning("queue_file_unreadable", path=str(path), error=str(exc))
            return None
        if state == "completed":
            item = replace(item, meta=self._with_upload_time(item.meta, state, info))
        return item

    def _require(self, report_id: str, state: QueueState) -> QueueItem:
        item = self._read(report_id, state)
        if item is None:
            raise ItemNotFound(report_id, state)
        return item

    def _rewrite(self, item: QueueItem) -> None:
        """Write ``item``'s meta onto its stored report bytes, atomically (no re-encoding)."""
        atomic_write(item.path, encode_file(item.meta, item.report_bytes()))

    def _drop_pending(self, report_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(report_id, "pending").unlink()
        fsync_dir(self._folders["pending"])

    def _finish_failed(self, report_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            durable_move(self.path_for(report_id, "pending"), self.path_for(report_id, "failed"))

    def _finish_retry(self, report_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            durable_move(self.path_for(report_id, "failed"), self.path_for(report_id, "pending"))
