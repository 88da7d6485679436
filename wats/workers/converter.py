"""The converter worker: pending files → reports in the durable queue, through the sandbox.

Why it is shaped this way (DESIGN invariants 1-4):

- The pending folders are the truth (invariant 1). The worker scans every converter's pending
  folder at start, on each ``file.pending`` hint and every ``rescan_seconds``; a lost event only
  delays a file.
- Converter code never runs here: each file is converted in a forked, rlimited grandchild of a
  fork server (``wats.converters.sandbox``). An exception, crash signal, timeout or limit fails
  that file only: it goes to the error folder beside a ``<file>.error.json`` reason file.
- Report ids come from (converter name, content hash, index) (invariant 3), and every report is
  written durably into the queue BEFORE the source's post action runs. A kill between the two
  leaves the source in pending; converting it again gives the same ids, the queue ignores them
  as known, and the post action completes. Nothing lost, nothing duplicated.
- Poison: before each attempt a per-file attempt record in the converter's state folder is
  marked running, and removed once the file is settled (``wats.workers.attempts``). A death of
  the sandbox child on the file (signal, limit, timeout) counts towards ``max_retries`` and
  waits ``retry_delay_seconds``; the worker dying with the file in hand (a record still running
  at the next start) or its fork server dying counts only towards the generous
  ``max_worker_deaths`` and the file is converted again at once: a worker killed from outside
  is no evidence against its file. Either bound reached: quarantined (reason ``poison``).

Scheduled converters (``kind = "scheduled"``) have no files dropped on them: at each slot of
their schedule (``wats.converters.schedule``) the converter is run in the sandbox on its watch
folder, and its reports take the same path as a file's (ids, station stamp, validation, durable
queue, events); see "Scheduled runs" below and docs/pipeline.md.

Blocking work (hashing, the sandbox, fsyncs) runs in background jobs; events are published from
the loop when a job is done. Parallelism: ``max_parallel`` files at once per converter (each in
its own sandbox), at most ``max_sandboxes`` in total.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from wats.api.station import Station
from wats.config.folders import ConverterFolders, converter_folders, site_converters_dir
from wats.config.models import ConverterConfig, IdConflictPolicy
from wats.config.paths import InstancePaths
from wats.converters.base import ConverterSource, matches_patterns
from wats.converters.identity import content_hash, report_id
from wats.converters.provenance import IdOrigin, ReportIdentity, check_identity
from wats.converters.sandbox import Sandbox, SandboxLimits, SandboxOutcome
from wats.converters.schedule import ScheduledRuns, is_scheduled, slot_stamp
from wats.converters.stamp import carries_stamp, restamped_id
from wats.fsutil import (
    MAX_NAME_BYTES,
    atomic_write,
    durable_move,
    fsync_dir,
    is_temp_name,
    shorten_name,
    unique_destination,
)
from wats.protocol import topics
from wats.protocol.envelope import Envelope
from wats.queue import ReportQueue
from wats.queue.intake import (
    Admission,
    CandidateReport,
    IdConflictRefused,
    PlannedReport,
    plan_admission,
)
from wats.workers import attempts as attempts_rule
from wats.workers.attempts import (
    ATTEMPTS_SUFFIX,
    AttemptEnd,
    AttemptRecord,
    Bounds,
    PoisonCause,
    read_record,
    write_record,
)
from wats.workers.base import Timer, Worker, handles

__all__ = ["ConverterWorker", "FileOutcome", "error_file_for", "symlink_refusal"]

ERROR_SUFFIX = ".error.json"
_MAX_CAPTURE_IN_ERROR = 16 * 1024
# A scheduled converter's timer never sleeps longer than this before looking at the clock again,
# so a wall-clock change (NTP step, daylight saving, a suspended VM) delays a slot by at most it.
_SCHEDULE_RECHECK_SECONDS = 60.0


def error_file_for(moved: Path) -> Path:
    """The reason file beside a file moved into the error folder: ``<file>.error.json``.

    A name near the file system's limit is shortened first (deterministically, see
    :func:`wats.fsutil.shorten_name`): a reason file that cannot be created would leave the
    file in pending, failing again forever.
    """
    room = MAX_NAME_BYTES - len(ERROR_SUFFIX)
    return moved.with_name(shorten_name(moved.name, room) + ERROR_SUFFIX)


def symlink_refusal(path: Path) -> str | None:
    """Why ``path`` (a pending file or folder) must not be converted, or None.

    The watcher never hands over a symlink, but a file can be swapped for one between its
    last look and the move, and anyone with write access to a pending folder can drop one.
    Reading through it would convert (and upload) whatever file it points at, with this
    worker's rights; so a symlink, or a folder holding one, is refused, never followed.
    """
    if path.is_symlink():
        return "symlink refused: a pending entry must be a regular file or folder, not a link"
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                if os.path.islink(os.path.join(root, name)):
                    inner = os.path.relpath(os.path.join(root, name), path)
                    return f"symlink refused: the folder holds a link ({inner})"
    return None


def _pending_path(body: Any) -> Path:
    """The file a ``file.pending`` names: its exact bytes when the watcher sent them (a name
    that is not UTF-8 arrives in ``path`` only as readable ``\\xNN`` text), else ``path``."""
    raw = getattr(body, "path_bytes", None)
    if isinstance(raw, bytes) and raw:
        return Path(os.fsdecode(raw))
    return Path(body.path)


@dataclass
class _Line:
    """One configured converter and the worker's bookkeeping for it."""

    config: ConverterConfig
    folders: ConverterFolders
    station: Station
    override_file_station: bool = False
    waiting: OrderedDict[str, None] = field(default_factory=OrderedDict)
    active: set[str] = field(default_factory=set)
    not_before: dict[str, float] = field(default_factory=dict)
    converted: int = 0
    failed: int = 0
    duplicates: int = 0

    @cached_property
    def station_fields(self) -> dict[str, Any]:
        """The station as the sandbox stamps it and the worker checks it: dumped once per line,
        not twice per file."""
        return self.station.model_dump()


@dataclass
class _Scheduled:
    """A scheduled converter: its line (config, folders, station), its slots, its timer."""

    line: _Line
    runs: ScheduledRuns
    running: bool = False
    timer: Timer | None = None
    next_at: datetime | None = None


@dataclass
class FileOutcome:
    """What converting one pending file led to: the events to publish (from the loop), and
    ``retry_at`` (epoch seconds) when the file stays in pending to be tried again."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    retry_at: float | None = None
    converted: bool = False
    failed: bool = False


class ConverterWorker(Worker):
    """Converts pending files in the sandbox and queues their reports (module docstring).

    Worker args: ``rescan_seconds`` (30), ``max_parallel`` (2, per converter),
    ``max_sandboxes`` (4, in total), ``validate_first`` (false: also run the converter's
    ``validate()``), and the sandbox limits ``address_space_mb`` (1024), ``cpu_seconds`` (60),
    ``open_files`` (256), ``wall_seconds`` (120), ``max_output_bytes`` (65536),
    ``conversions_per_child`` (100; 1 = a fresh process per file).
    Commands: ``converter.status``, ``converter.scan``.
    """

    def setup(self) -> None:
        """Resolve every converter's folders, open the queue, start scanning."""
        args = self.args
        self.rescan_seconds = float(args.get("rescan_seconds", 30.0))
        self.max_parallel = max(1, int(args.get("max_parallel", 2)))
        self.max_sandboxes = max(1, int(args.get("max_sandboxes", 4)))
        self._destinations: set[Path] = set()  # done/archive names chosen, not yet moved to
        self._destinations_lock = threading.Lock()
        self.validate_first = bool(args.get("validate_first", False))
        defaults = SandboxLimits()
        self.limits = SandboxLimits(
            address_space_mb=int(args.get("address_space_mb", defaults.address_space_mb)),
            cpu_seconds=int(args.get("cpu_seconds", defaults.cpu_seconds)),
            open_files=int(args.get("open_files", defaults.open_files)),
            wall_seconds=float(args.get("wall_seconds", defaults.wall_seconds)),
            max_output_bytes=int(args.get("max_output_bytes", defaults.max_output_bytes)),
            conversions_per_child=int(
                args.get("conversions_per_child", defaults.conversions_per_child)
            ),
        )
        paths = InstancePaths.for_config(self.config)
        self.reference_file = paths.cache_dir / "reference.json"
        self.converters_dir = site_converters_dir(self.config)
        self.queue = ReportQueue.for_config(self.config, paths)
        self.lines: dict[str, _Line] = {}
        for conv in self.config.converters:
            if not conv.enabled or is_scheduled(conv):
                continue
            folders = converter_folders(self.config, conv)
            try:
                folders.ensure()
            except OSError as exc:  # e.g. a done folder on an absent share: files wait
                self.log.error(
                    "converter folders cannot be created; its files wait in pending",
                    converter=conv.name,
                    error=str(exc),
                )
                folders.pending.mkdir(parents=True, exist_ok=True)
                folders.state.mkdir(parents=True, exist_ok=True)
            self.lines[conv.name] = self._line(conv, folders)
        self._remove_temp_files_of_a_killed_worker()
        self._pool_lock = threading.Lock()
        self._intake_lock = threading.Lock()
        self._free: list[Sandbox] = []
        self._sandboxes: list[Sandbox] = []
        self._running = 0
        self.subscribe(topics.FILE_PENDING, self._on_pending)
        self.every(self.rescan_seconds, self.scan, first=0)
        self.schedules = self._setup_schedules()
        if self.lines or self.schedules:
            specs = sorted({line.config.converter for line in self._all_lines()})
            self.run_in_thread(lambda: self._warm(specs), self._warmed, name="sandbox-warm")
        self.ready = True

    def _line(self, conv: ConverterConfig, folders: ConverterFolders) -> _Line:
        """The worker's line for ``conv``: its folders, configured station and whether that
        station overrides the one its files record."""
        return _Line(
            conv,
            folders,
            self.config.station_for(conv),
            override_file_station=self.config.overrides_file_station(conv),
        )

    def _remove_temp_files_of_a_killed_worker(self) -> None:
        """Delete the temp files a kill -9 of this worker left in the middle of a durable write.

        At start no job of ours runs, so ours are garbage whatever their age: attempt counters
        in ``state/``, reason files in ``error/``, reports being queued in the queue's
        ``pending/``. (There the uploader also rewrites files; if one of its writes loses its
        temp file, that update fails, the report stays pending and is simply sent again.)
        """
        folders: list[tuple[Path, str]] = [(self.queue.folder("pending"), "")]
        for line in self.lines.values():
            folders += [(line.folders.state, ATTEMPTS_SUFFIX + "."), (line.folders.error, "")]
        removed = 0
        for folder, marker in folders:
            try:
                names = [n for n in os.listdir(folder) if is_temp_name(n) and marker in n]
            except OSError:
                continue
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)
                    removed += 1
        if removed:
            self.log.info("removed temp files of an interrupted write", count=removed)
        self._remove_records_of_files_gone_from_pending()

    def _remove_records_of_files_gone_from_pending(self) -> None:
        """An attempt record matters only while its file waits in pending; a kill between a
        file's last move (to done or error) and the removal of its record leaves one behind.
        A record that names no file is kept (an earlier version's: its file may be pending)."""
        stale = 0
        for line in self.lines.values():
            for record_path in line.folders.state.glob(f"*{ATTEMPTS_SUFFIX}"):
                name = read_record(record_path).file
                if name and not (line.folders.pending / name).exists():
                    record_path.unlink(missing_ok=True)
                    stale += 1
        if stale:
            self.log.info("removed attempt records of files no longer pending", count=stale)

    def teardown(self) -> None:
        """Stop every fork server."""
        for sandbox in getattr(self, "_sandboxes", []):
            sandbox.close()

    def heartbeat_detail(self) -> dict[str, Any]:
        """Files converted/failed, duplicate reports, files waiting and in progress."""
        return {
            "converted": sum(line.converted for line in self._all_lines()),
            "failed": sum(line.failed for line in self._all_lines()),
            "duplicates": sum(line.duplicates for line in self._all_lines()),
            "waiting": sum(len(line.waiting) for line in self.lines.values()),
            "active": self._running,
        }

    # ---- commands -------------------------------------------------------------------------

    @handles("converter.status")
    def status(self, args: dict[str, Any]) -> dict[str, Any]:
        """Per converter: folders, waiting/active/converted/failed; the fork servers' pids."""
        return {
            "converters": {
                name: {
                    "converter": line.config.converter,
                    "pending_folder": str(line.folders.pending),
                    "waiting": len(line.waiting),
                    "active": sorted(line.active),
                    "converted": line.converted,
                    "failed": line.failed,
                    "duplicates": line.duplicates,
                }
                for name, line in self.lines.items()
            },
            "scheduled": {
                name: {
                    "converter": sched.line.config.converter,
                    "watch_folder": str(sched.line.folders.watch),
                    "running": sched.running,
                    "next_run": sched.next_at.isoformat() if sched.next_at else None,
                    "last_completed": (
                        sched.runs.completed.isoformat() if sched.runs.completed else None
                    ),
                    "converted": sched.line.converted,
                    "failed": sched.line.failed,
                }
                for name, sched in self.schedules.items()
            },
            "sandbox_pids": [p for p in (s.pid for s in self._sandboxes) if p is not None],
            "limits": self.limits.__dict__,
        }

    @handles("converter.scan")
    def scan_now(self, args: dict[str, Any]) -> dict[str, Any]:
        """Rescan the pending folders now; replies with how many files wait."""
        self.scan()
        return {"waiting": sum(len(line.waiting) for line in self.lines.values())}

    # ---- scanning and dispatch (loop thread) ----------------------------------------------

    def scan(self) -> None:
        """Take every entry of every pending folder into its converter's waiting list."""
        for line in self.lines.values():
            try:
                entries = sorted(p.name for p in line.folders.pending.iterdir())
            except FileNotFoundError:
                line.folders.pending.mkdir(parents=True, exist_ok=True)
                continue
            present = set(entries)
            for name in list(line.waiting):
                if name not in present:
                    del line.waiting[name]
            for name in entries:
                if self._takes(name) and name not in line.active:
                    line.waiting.setdefault(name, None)
        self._dispatch()

    def _on_pending(self, env: Envelope, body: Any) -> None:
        line = self.lines.get(getattr(body, "converter", ""))
        if line is None:
            return
        path = _pending_path(body)
        if path.parent == line.folders.pending and self._takes(path.name):
            if path.name not in line.active:
                line.waiting.setdefault(path.name, None)
            self._dispatch()
        else:  # not where we expected it: the folder tells the truth
            self.scan()

    @staticmethod
    def _takes(name: str) -> bool:
        return not is_temp_name(name) and not name.startswith(".")

    def _dispatch(self) -> None:
        if self.stopping:
            return
        now = time.time()
        for line in self.lines.values():
            if self._running >= self.max_sandboxes:
                return
            if len(line.active) >= self.max_parallel or not line.waiting:
                continue  # full or idle: no copy of a backlog that may hold thousands of names
            for name in list(line.waiting):
                if self._running >= self.max_sandboxes:
                    return
                if len(line.active) >= self.max_parallel:
                    break
                due = line.not_before.get(name, 0.0)
                if due > now:
                    continue
                del line.waiting[name]
                line.not_before.pop(name, None)
                line.active.add(name)
                self._running += 1
                path = line.folders.pending / name
                self.run_in_thread(
                    lambda line=line, path=path: self.convert_file(line, path),
                    lambda result, error, line=line, name=name: self._finished(
                        line, name, result, error
                    ),
                    name=f"convert-{line.config.name}",
                )

    def _finished(
        self, line: _Line, name: str, result: FileOutcome | None, error: BaseException | None
    ) -> None:
        self._running -= 1
        line.active.discard(name)
        self.tick()
        if error is not None:
            self.log.error(
                "converting a file failed; it stays in pending and is tried again",
                converter=line.config.name,
                file=name,
                error=f"{type(error).__name__}: {error}",
                retry_in=line.config.retry_delay_seconds,
            )
            result = FileOutcome(retry_at=time.time() + line.config.retry_delay_seconds)
        assert result is not None
        for type_, body in result.events:
            self.publish(type_, body)
        line.converted += int(result.converted)
        line.failed += int(result.failed)
        if result.retry_at is not None and (line.folders.pending / name).exists():
            line.not_before[name] = result.retry_at
            line.waiting.setdefault(name, None)
            self.after(max(0.0, result.retry_at - time.time()), self._dispatch)
        self._dispatch()

    # ---- scheduled runs (timers in the loop thread, the run in a background job) ----------

    def _all_lines(self) -> list[_Line]:
        return [*self.lines.values(), *(s.line for s in self.schedules.values())]

    def _setup_schedules(self) -> dict[str, _Scheduled]:
        """One ``_Scheduled`` per enabled scheduled converter; runs the startup slot (an
        interrupted or missed slot, or ``run_on_startup``) or arms the timer for the next."""
        schedules: dict[str, _Scheduled] = {}
        now = _now()
        for conv in self.config.converters:
            if not (conv.enabled and is_scheduled(conv)):
                continue
            folders = converter_folders(self.config, conv)
            try:
                folders.ensure()
            except OSError as exc:  # e.g. an absent share: each run fails with an error file
                self.log.error(
                    "scheduled converter's folders cannot be created",
                    converter=conv.name,
                    error=str(exc),
                )
                folders.state.mkdir(parents=True, exist_ok=True)
                folders.error.mkdir(parents=True, exist_ok=True)
            runs = ScheduledRuns(conv, folders.state, now)
            sched = _Scheduled(self._line(conv, folders), runs)
            schedules[conv.name] = sched
            slot = runs.startup(now)
            if slot is not None:
                self._start_scheduled_run(sched, slot)
            else:
                self._arm_schedule(sched)
        return schedules

    def _arm_schedule(self, sched: _Scheduled) -> None:
        if sched.timer is not None:
            sched.timer.cancel()
        now = _now()
        sched.next_at = sched.runs.next_time(now)
        if sched.next_at is None:
            self.log.warning(
                "scheduled converter's schedule never fires", converter=sched.line.config.name
            )
            return
        wait = min(max((sched.next_at - now).total_seconds(), 0.0), _SCHEDULE_RECHECK_SECONDS)
        sched.timer = self.after(wait, lambda: self._check_schedule(sched))

    def _check_schedule(self, sched: _Scheduled) -> None:
        """Start the due slot, if there is one; otherwise (woke early) sleep on."""
        if sched.running or self.stopping:
            return
        slot = sched.runs.due(_now())
        if slot is None:
            self._arm_schedule(sched)
        else:
            self._start_scheduled_run(sched, slot)

    def _start_scheduled_run(self, sched: _Scheduled, slot: datetime) -> None:
        sched.running = True
        sched.next_at = None
        self.run_in_thread(
            lambda: self.run_scheduled(sched.line, sched.runs, slot),
            lambda result, error: self._scheduled_run_done(sched, slot, result, error),
            name=f"scheduled-{sched.line.config.name}",
        )

    def _scheduled_run_done(
        self,
        sched: _Scheduled,
        slot: datetime,
        result: FileOutcome | None,
        error: BaseException | None,
    ) -> None:
        sched.running = False
        self.tick()
        conv = sched.line.config
        if error is not None:  # the slot stays begun and is run again, with the same ids
            try:
                sched.runs.not_counted(slot)  # we are alive: the run did not kill us
            except OSError as exc:
                self.log.warning("schedule state not updated", error=str(exc))
            self.log.error(
                "scheduled run failed; it is run again",
                converter=conv.name,
                slot=slot.isoformat(),
                error=f"{type(error).__name__}: {error}",
                retry_in=conv.retry_delay_seconds,
            )
            sched.timer = self.after(conv.retry_delay_seconds, lambda: self._check_schedule(sched))
            return
        assert result is not None
        for type_, body in result.events:
            self.publish(type_, body)
        sched.line.converted += int(result.converted)
        sched.line.failed += int(result.failed)
        self._check_schedule(sched)

    def run_scheduled(self, line: _Line, runs: ScheduledRuns, slot: datetime) -> FileOutcome:
        """One scheduled run (background thread): the converter reads its watch folder in the
        sandbox; reports get ids from (name, hash of slot + folder content, index), are queued
        durably, then the post action settles the files that were collected; the slot is
        recorded as completed last, so a kill anywhere before reruns this same slot."""
        watch = line.folders.watch
        start = runs.begin(slot)
        if start.gave_up:
            result = self._fail_scheduled(
                line,
                slot,
                "poison",
                f"the worker died {start.attempt - 1} times during this scheduled run; "
                "skipped (its exports stay for the next run; max_worker_deaths)",
                attempts=start.attempt - 1,
                poison=PoisonCause.WORKER,
            )
            runs.finish(slot)
            return result
        try:
            collected = self._collectable_files(line)
            folder_digest = content_hash(watch)
        except OSError as exc:
            result = self._fail_scheduled(
                line,
                slot,
                "exception",
                f"cannot read the watch folder {watch}: {exc}",
                attempts=start.attempt,
                detail={"exception": type(exc).__name__},
            )
            runs.finish(slot)
            return result
        run_digest = hashlib.sha256(f"{slot.isoformat()}\n{folder_digest}".encode()).hexdigest()
        outcome = self._run_sandbox(line, watch, run_digest)
        result = self._scheduled_outcome(line, slot, start.attempt, run_digest, outcome)
        if result.converted:
            self._settle_collected(line, slot, collected)
        runs.finish(slot)
        return result

    def _scheduled_outcome(
        self, line: _Line, slot: datetime, attempt: int, digest: str, outcome: SandboxOutcome
    ) -> FileOutcome:
        """Fail the run (error file) or queue its reports and announce them."""
        conv = line.config
        if outcome.failure is not None:
            return self._fail_scheduled(
                line, slot, outcome.failure, outcome.message, attempts=attempt, outcome=outcome
            )
        if outcome.confidence < conv.reject_threshold:
            why = f": {outcome.message}" if outcome.message else ""
            return self._fail_scheduled(
                line,
                slot,
                "rejected",
                f"confidence {outcome.confidence:.2f} is below the reject threshold "
                f"{conv.reject_threshold:.2f}{why}",
                attempts=attempt,
                outcome=outcome,
            )
        try:
            reports = self._prepare_reports(line, digest, outcome)
        except ValueError as exc:
            return self._fail_scheduled(
                line, slot, "invalid", str(exc), attempts=attempt, outcome=outcome
            )
        result = FileOutcome(converted=True)
        with self._intake(reports):
            try:
                planned = self._plan(line, digest, reports)
            except IdConflictRefused as exc:
                return self._fail_scheduled(
                    line, slot, "id_conflict", str(exc), attempts=attempt, outcome=outcome
                )
            self._enqueue_reports(line, line.folders.watch, planned, digest, result)
        warnings = list(outcome.warnings)
        self._announce_converted(line, line.folders.watch, planned, outcome, warnings, result)
        return result

    def _collectable_files(self, line: _Line) -> dict[Path, tuple[int, int]]:
        """The watch folder's files a scheduled run's post action may settle (size, mtime_ns
        before the run): every file the converter can see, limited to the config's
        ``file_patterns`` when set, never inside the converter's own folders."""
        folders = line.folders
        own = [f for f in (folders.pending, folders.done, folders.error, folders.archive) if f]
        own.append(folders.state)
        patterns = line.config.file_patterns
        found: dict[Path, tuple[int, int]] = {}
        for path in ConverterSource(folders.watch).files():
            if any(path.is_relative_to(folder) for folder in own):
                continue
            if patterns and not matches_patterns(path.name, patterns):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:  # taken away while listing
                continue
            found[path] = (info.st_size, info.st_mtime_ns)
        return found

    def _settle_collected(
        self, line: _Line, slot: datetime, collected: dict[Path, tuple[int, int]]
    ) -> None:
        """Post action of a scheduled run, on the files present before it and unchanged since
        (one rewritten meanwhile is left for the next slot): ``delete``; ``move``/``archive``
        into ``<done|archive>/<name>-<slot>/`` keeping relative paths; ``keep`` leaves them."""
        conv = line.config
        if conv.post_action == "keep" or not collected:
            return
        watch = line.folders.watch
        target = line.folders.archive if conv.post_action == "archive" else line.folders.done
        assert target is not None
        run_folder = target / f"{conv.name}-{slot_stamp(slot)}"
        touched: set[Path] = set()
        for path, before in collected.items():
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if (info.st_size, info.st_mtime_ns) != before:
                continue
            if conv.post_action == "delete":
                path.unlink(missing_ok=True)
                touched.add(path.parent)
            else:
                destination = run_folder / path.relative_to(watch)
                destination.parent.mkdir(parents=True, exist_ok=True)
                durable_move(path, unique_destination(destination.parent, destination.name))
        for folder in touched:
            fsync_dir(folder)

    def _fail_scheduled(
        self,
        line: _Line,
        slot: datetime,
        reason: str,
        message: str,
        *,
        attempts: int,
        poison: PoisonCause | None = None,
        outcome: SandboxOutcome | None = None,
        detail: dict[str, Any] | None = None,
    ) -> FileOutcome:
        """A failed scheduled run: ``<name>-<slot>.error.json`` in the error folder (the watch
        folder itself stays where it is) and ``file.failed`` with the folder as path."""
        conv = line.config
        reason_file = line.folders.error / f"{conv.name}-{slot_stamp(slot)}{ERROR_SUFFIX}"
        facts: dict[str, Any] = {
            "converter": conv.name,
            "converter_spec": conv.converter,
            "file": str(line.folders.watch),
            "slot": slot.isoformat(),
            "reason": reason,
            "message": message,
            "attempts": attempts,
            **_failure_time(),
        }
        if poison is not None:
            facts["poison_cause"] = poison.value
        _add_failure_facts(facts, outcome, detail)
        line.folders.error.mkdir(parents=True, exist_ok=True)
        atomic_write(reason_file, json.dumps(facts, indent=1, default=str).encode())
        self.log.warning(
            "scheduled run failed",
            converter=conv.name,
            slot=slot.isoformat(),
            reason=reason,
            message=message,
        )
        return FileOutcome(
            failed=True,
            events=[
                (
                    topics.FILE_FAILED,
                    {
                        "converter": conv.name,
                        "path": str(line.folders.watch),
                        "reason": reason,
                        "error_file": str(reason_file),
                        "poison": poison is not None,
                        "poison_cause": poison.value if poison is not None else None,
                    },
                )
            ],
        )

    # ---- the sandbox pool (any thread) ----------------------------------------------------

    def _acquire(self) -> Sandbox:
        with self._pool_lock:
            if self._free:
                return self._free.pop()
            sandbox = Sandbox(self.limits, converters_dir=self.converters_dir)
            self._sandboxes.append(sandbox)
            return sandbox

    def _release(self, sandbox: Sandbox) -> None:
        with self._pool_lock:
            self._free.append(sandbox)

    def _warm(self, specs: list[str]) -> dict[str, str]:
        sandbox = self._acquire()
        try:
            return sandbox.start().preload(specs)
        finally:
            self._release(sandbox)

    def _warmed(self, errors: dict[str, str] | None, error: BaseException | None) -> None:
        if error is not None:
            self.log.error("converter sandbox did not start", error=str(error))
        for spec, problem in (errors or {}).items():
            self.log.error("converter cannot be loaded", converter=spec, error=problem)

    # ---- one file (background thread) -----------------------------------------------------

    def convert_file(self, line: _Line, path: Path) -> FileOutcome:
        """Convert one pending file end to end: counter, sandbox, ids, queue, post action."""
        conv = line.config
        if not (path.exists() or path.is_symlink()):
            return FileOutcome()  # taken away meanwhile (or already handled)
        refusal = symlink_refusal(path)
        if refusal is not None:
            return self._fail(line, path, "refused", refusal, attempts=0)
        try:
            digest = content_hash(path)
        except FileNotFoundError:
            return FileOutcome()
        except OSError as exc:
            return self._fail(
                line,
                path,
                "exception",
                f"cannot read {path.name}: {exc}",
                attempts=0,
                detail={"exception": type(exc).__name__},
            )
        counter = line.folders.state / f"{digest}{ATTEMPTS_SUFFIX}"
        bounds = Bounds(conv.max_retries, conv.max_worker_deaths)
        record, poisoned = attempts_rule.begin(read_record(counter), bounds)
        if poisoned is not None:
            return self._poison(line, path, record, poisoned, counter)
        record = replace(record, file=path.name)
        try:
            outcome = self._run_sandbox(
                line, path, digest, before=lambda: self._mark(counter, record)
            )
        except BaseException:
            # We are alive (no fork server could be started, say): not an attempt against it.
            if record.attempts:
                write_record(counter, replace(record, running=False))
            else:
                counter.unlink(missing_ok=True)
            raise
        attempts = record.attempts + 1
        how = attempts_rule.classify(outcome.failure, outcome.detail)
        if how is not AttemptEnd.VERDICT:
            record, poisoned = attempts_rule.end(record, how, bounds)
            if poisoned is not None:
                return self._poison(line, path, record, poisoned, counter, outcome)
            write_record(counter, record)
            return self._try_again(line, path, record, how, outcome)
        if outcome.failure is not None:
            return self._fail(
                line,
                path,
                outcome.failure,
                outcome.message,
                attempts=attempts,
                counter=counter,
                outcome=outcome,
            )
        if outcome.confidence < conv.reject_threshold:
            why = f": {outcome.message}" if outcome.message else ""
            return self._fail(
                line,
                path,
                "rejected",
                f"confidence {outcome.confidence:.2f} is below the reject threshold "
                f"{conv.reject_threshold:.2f}{why}",
                attempts=attempts,
                counter=counter,
                outcome=outcome,
            )
        try:
            reports = self._prepare_reports(line, digest, outcome)
        except ValueError as exc:
            return self._fail(
                line,
                path,
                "invalid",
                str(exc),
                attempts=attempts,
                counter=counter,
                outcome=outcome,
            )
        if outcome.stdout or outcome.stderr:
            self.log.info(
                "converter wrote output",
                converter=conv.name,
                file=path.name,
                stdout=outcome.stdout[-2000:],
                stderr=outcome.stderr[-2000:],
            )
        try:
            return self._deliver(line, path, reports, digest, outcome, counter)
        except IdConflictRefused as exc:
            return self._fail(
                line,
                path,
                "id_conflict",
                str(exc),
                attempts=attempts,
                counter=counter,
                outcome=outcome,
            )
        except OSError:
            # We are alive, so the file did not kill us: not an attempt against it.
            counter.unlink(missing_ok=True)
            raise

    @staticmethod
    def _mark(counter: Path, record: AttemptRecord) -> None:
        """Note on disk that the attempt is running (the record :func:`begin` returned)."""
        write_record(counter, record)

    def _try_again(
        self, line: _Line, path: Path, record: AttemptRecord, how: AttemptEnd, outcome: Any
    ) -> FileOutcome:
        """The file stays in pending: after ``retry_delay_seconds`` when its sandbox died on it
        (evidence against it), at once when the fork server died (none)."""
        conv = line.config
        if how is AttemptEnd.SANDBOX_DIED:
            self.log.warning(
                "the sandbox died converting this file; it is tried again",
                converter=conv.name,
                file=path.name,
                sandbox_deaths=record.sandbox_deaths,
                max_retries=conv.max_retries,
                retry_in=conv.retry_delay_seconds,
                error=outcome.message,
            )
            return FileOutcome(retry_at=time.time() + conv.retry_delay_seconds)
        self.log.warning(
            "the fork server died during a conversion; the file is tried again at once",
            converter=conv.name,
            file=path.name,
            worker_deaths=record.worker_deaths,
            max_worker_deaths=conv.max_worker_deaths,
            error=outcome.message,
        )
        return FileOutcome(retry_at=time.time())

    def _poison(
        self,
        line: _Line,
        path: Path,
        record: AttemptRecord,
        cause: PoisonCause,
        counter: Path,
        outcome: SandboxOutcome | None = None,
    ) -> FileOutcome:
        """Quarantine the file (reason ``poison``), naming which bound it reached."""
        last = f" (last: {outcome.message})" if outcome is not None and outcome.message else ""
        if cause is PoisonCause.SANDBOX:
            message = (
                f"the sandbox died {record.sandbox_deaths} times converting this file{last}; "
                "quarantined"
            )
        else:
            message = (
                f"the converter worker or its fork server died {record.worker_deaths} times "
                f"with this file in hand{last}; quarantined (max_worker_deaths)"
            )
        return self._fail(
            line,
            path,
            "poison",
            message,
            attempts=record.attempts,
            poison=cause,
            counter=counter,
            outcome=outcome,
            detail={
                "sandbox_deaths": record.sandbox_deaths,
                "worker_deaths": record.worker_deaths,
                **({"last_failure": outcome.failure} if outcome is not None else {}),
            },
        )

    def _run_sandbox(
        self,
        line: _Line,
        path: Path,
        digest: str,
        before: Callable[[], None] | None = None,
    ) -> SandboxOutcome:
        """Convert in a sandbox of the pool; ``before`` runs once the fork server is up, just
        before the file is handed to it (the attempt record is marked running there, so a
        worker killed while its fork server was still starting is not counted)."""
        conv = line.config
        context = {
            "station": line.station_fields,
            "reference_file": str(self.reference_file) if self.reference_file.exists() else None,
            "converter_name": conv.name,
            "reject_threshold": conv.reject_threshold,
            "validate": self.validate_first,
            # the sandbox stamps ids and station and hands back final queue bodies
            "stamp": {
                "name": conv.name,
                "digest": digest,
                "override_file_station": line.override_file_station,
            },
        }
        sandbox = self._acquire()
        try:
            if before is not None:
                sandbox.start()
                before()
            return sandbox.convert(conv.converter, conv.arguments, path, context)
        finally:
            self._release(sandbox)

    def _prepare_reports(
        self, line: _Line, digest: str, outcome: SandboxOutcome
    ) -> list[CandidateReport]:
        """The queue bodies the sandbox stamped, checked, one candidate per report.

        The sandbox decided each report's id and station (``wats.converters.provenance``) and
        stamped them, so each report is serialised once. The converter's code ran in that
        process too, so the decision is checked against the rule here, and each body must start
        with exactly that id and station (``wats.converters.stamp``; a prefix comparison,
        because decoding every 100 KB body again cost more than anything else this worker does).
        """
        conv = line.config
        if len(outcome.identities) != len(outcome.report_json):
            raise ValueError("the sandbox did not say which id and station each report carries")
        prepared = []
        for index, (body, wire) in enumerate(
            zip(outcome.report_json, outcome.identities, strict=True)
        ):
            identity = ReportIdentity.from_wire(wire)
            derived_id = report_id(conv.name, digest, index)
            problem = check_identity(
                identity,
                index,
                derived_id=derived_id,
                configured=line.station_fields,
                override_file_station=line.override_file_station,
            )
            if problem is None and not carries_stamp(body, identity.id, identity.station):
                problem = f"report {index} does not carry the id and station the pipeline decided"
            if problem is not None:
                raise ValueError(problem)
            prepared.append(
                CandidateReport(
                    id=identity.id,
                    derived_id=derived_id,
                    kept_source_id=identity.id_origin is IdOrigin.SOURCE,
                    body=bytes(body),
                    station=identity.station,
                    renamed=functools.partial(
                        restamped_id, bytes(body), identity.id, station=identity.station
                    ),
                )
            )
        return prepared

    def _intake(self, reports: list[CandidateReport]) -> contextlib.AbstractContextManager[Any]:
        """Held while a source's reports are planned and queued. A source that kept ids of its
        own takes the worker's intake lock: two files converted at once may carry the same id,
        and the second must see the first's report. Derived ids are unique to their source,
        so other sources go through without it."""
        if any(report.kept_source_id for report in reports):
            return self._intake_lock
        return contextlib.nullcontext()

    def _plan(
        self, line: _Line, digest: str, reports: list[CandidateReport]
    ) -> list[PlannedReport]:
        """Which of a source's reports are new, duplicates, or renamed after an id conflict
        (``wats.queue.intake``); ``IdConflictRefused`` when the converter refuses conflicts."""
        new_id = line.config.on_id_conflict is IdConflictPolicy.NEW_ID
        return plan_admission(self.queue, reports, digest=digest, new_id_on_conflict=new_id)

    def _deliver(
        self,
        line: _Line,
        path: Path,
        reports: list[CandidateReport],
        digest: str,
        outcome: SandboxOutcome,
        counter: Path,
    ) -> FileOutcome:
        """Plan and queue the reports, then run the post action and announce; raises
        ``IdConflictRefused`` (nothing queued, the source untouched) for a refused conflict."""
        result = FileOutcome(converted=True)
        # Where the source will be, so the queue records a path that exists once the reports
        # are delivered (not pending/, which the post action empties).
        destination = self._destination(line, path)
        try:
            # durably queued BEFORE the source is touched (invariant 3)
            with self._intake(reports):
                planned = self._plan(line, digest, reports)
                self._enqueue_reports(line, destination, planned, digest, result)
            # The conversion is over once its reports are queued: the attempt record goes
            # before the post action, so a kill between the two cannot leave a record of a
            # file that is no longer in pending (a kill before it converts the file again,
            # which the queue takes as a duplicate).
            counter.unlink(missing_ok=True)
            final = self._post_action(line, path, destination)
        finally:
            self._release_destination(destination)
        warnings = list(outcome.warnings)
        if not planned:
            warnings.append("the converter returned no reports")
        self._announce_converted(line, final, planned, outcome, warnings, result)
        return result

    def _enqueue_reports(
        self,
        line: _Line,
        source: Path,
        planned: list[PlannedReport],
        digest: str,
        result: FileOutcome,
    ) -> None:
        """Queue every new report durably, with a ``report.queued`` event each; say what
        happened to the others: ``report.duplicate`` (already queued or delivered) and
        ``report.id_conflict`` (its own id was taken by other content)."""
        conv = line.config
        for report in planned:
            if report.admission is Admission.DUPLICATE:
                line.duplicates += 1
                self._say_duplicate(line, source, report, result)
                continue
            added = self.queue.enqueue_encoded(
                report.id,
                report.body,
                converter=conv.name,
                source_file=str(source),
                station=report.candidate.station["name"],
                source_sha256=digest,
            )
            if not added:
                # Queued meanwhile by another conversion of the same source (a derived id,
                # planned without the intake lock): the same report, not a new one.
                line.duplicates += 1
                self._say_duplicate(line, source, report, result)
                continue
            if report.admission is Admission.NEW_ID:
                self._say_id_conflict(line, source, report, result)
            result.events.append(
                (
                    topics.REPORT_QUEUED,
                    {
                        "id": report.id,
                        "converter": conv.name,
                        "source": source.name,
                        "station": report.candidate.station["name"],
                    },
                )
            )

    def _say_duplicate(
        self, line: _Line, source: Path, report: PlannedReport, result: FileOutcome
    ) -> None:
        """A report the queue already holds with the same content: nothing new is queued."""
        self.log.info(
            "duplicate: the report is already queued or delivered; nothing new to send",
            converter=line.config.name,
            source=source.name,
            report_id=report.id,
            state=report.earlier_state,
        )
        result.events.append(
            (
                topics.REPORT_DUPLICATE,
                {
                    "id": report.id,
                    "converter": line.config.name,
                    "source": source.name,
                    "state": report.earlier_state or "pending",
                    "earlier_source": report.earlier_source,
                },
            )
        )

    def _say_id_conflict(
        self, line: _Line, source: Path, report: PlannedReport, result: FileOutcome
    ) -> None:
        """A report whose own id was taken by other content went out under its derived id."""
        self.log.warning(
            "id conflict: the report's own id is taken by other content; "
            "it is delivered under its derived id",
            converter=line.config.name,
            source=source.name,
            own_id=report.conflicting_id,
            report_id=report.id,
            earlier_state=report.earlier_state,
            earlier_source=report.earlier_source,
        )
        result.events.append(
            (
                topics.REPORT_ID_CONFLICT,
                {
                    "id": report.id,
                    "own_id": report.conflicting_id or "",
                    "converter": line.config.name,
                    "source": source.name,
                    "earlier_state": report.earlier_state or "",
                    "earlier_source": report.earlier_source,
                },
            )
        )

    def _announce_converted(
        self,
        line: _Line,
        final: Path,
        planned: list[PlannedReport],
        outcome: SandboxOutcome,
        warnings: list[str],
        result: FileOutcome,
    ) -> None:
        """``file.converted`` (every report id, and which of them were already queued or
        delivered), and ``file.alarm`` when the confidence is below the alarm line."""
        conv = line.config
        result.events.append(
            (
                topics.FILE_CONVERTED,
                {
                    "converter": conv.name,
                    "path": str(final),
                    "report_ids": [report.id for report in planned],
                    "duplicates": [
                        report.id for report in planned if report.admission is Admission.DUPLICATE
                    ],
                    "confidence": float(outcome.confidence),
                    "warnings": warnings,
                },
            )
        )
        if outcome.confidence < conv.alarm_threshold:
            result.events.append(
                (
                    topics.FILE_ALARM,
                    {
                        "converter": conv.name,
                        "path": str(final),
                        "confidence": float(outcome.confidence),
                        "threshold": float(conv.alarm_threshold),
                    },
                )
            )

    def _destination(self, line: _Line, path: Path) -> Path:
        """Where the post action will leave the source: a free name in done/ or the archive,
        reserved until :meth:`_release_destination` (two same-named sources converted at once
        must not be given one name); for ``keep`` and ``delete`` the watch folder, where the
        station wrote it (``keep``: the original is still there)."""
        action = line.config.post_action
        if action not in ("move", "archive"):
            return line.folders.watch / path.name
        folder = line.folders.archive if action == "archive" else line.folders.done
        assert folder is not None
        with self._destinations_lock:
            chosen = unique_destination(folder, path.name, taken=self._destinations)
            self._destinations.add(chosen)
        return chosen

    def _release_destination(self, destination: Path) -> None:
        with self._destinations_lock:
            self._destinations.discard(destination)

    def _post_action(self, line: _Line, path: Path, destination: Path) -> Path:
        """Move to ``destination`` (done/archive), or delete (``delete``; and ``keep``, whose
        original stayed in the watch folder: this is the watcher's copy). Returns where the
        source is now.

        Not fsynced: the reports are already durably queued, so a power cut that undoes this
        only brings the source back to pending, where converting it again yields the same
        report ids and the queue ignores them.
        """
        action = line.config.post_action
        if action in ("move", "archive"):
            return durable_move(path, destination, sync=False)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return path

    def _fail(
        self,
        line: _Line,
        path: Path,
        reason: str,
        message: str,
        *,
        attempts: int,
        poison: PoisonCause | None = None,
        counter: Path | None = None,
        outcome: SandboxOutcome | None = None,
        detail: dict[str, Any] | None = None,
    ) -> FileOutcome:
        """Move the file to the error folder with its reason file (written first, so a kill
        in between leaves the file in pending to be handled again, never a file without one).
        ``poison``: the file was quarantined, and which bound it reached."""
        conv = line.config
        if not (path.exists() or path.is_symlink()):
            self.log.warning(
                "file vanished from pending during its conversion; nothing to move",
                converter=conv.name,
                file=path.name,
                reason=reason,
                message=message,
            )
            if counter is not None:
                counter.unlink(missing_ok=True)
            return FileOutcome()
        destination = unique_destination(line.folders.error, path.name)
        reason_file = error_file_for(destination)
        facts: dict[str, Any] = {
            "converter": conv.name,
            "converter_spec": conv.converter,
            "file": path.name,
            "reason": reason,
            "message": message,
            "attempts": attempts,
            **_failure_time(),
        }
        if poison is not None:
            facts["poison_cause"] = poison.value
        _add_failure_facts(facts, outcome, detail)
        atomic_write(reason_file, json.dumps(facts, indent=1, default=str).encode())
        durable_move(path, destination)
        if counter is not None:
            counter.unlink(missing_ok=True)
        self.log.warning(
            "file failed", converter=conv.name, file=path.name, reason=reason, message=message
        )
        return FileOutcome(
            failed=True,
            events=[
                (
                    topics.FILE_FAILED,
                    {
                        "converter": conv.name,
                        "path": str(destination),
                        "reason": reason,
                        "error_file": str(reason_file),
                        "poison": poison is not None,
                        "poison_cause": poison.value if poison is not None else None,
                    },
                )
            ],
        )


def _now() -> datetime:
    """Local wall-clock time, zone-aware: cron schedules are in local time."""
    return datetime.now().astimezone()


def _failure_time() -> dict[str, Any]:
    """When a file failed: epoch seconds (``at``, for programs) and ISO 8601 UTC (``at_iso``,
    for the person reading the error file)."""
    at = time.time()
    return {"at": at, "at_iso": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")}


def _add_failure_facts(
    facts: dict[str, Any], outcome: SandboxOutcome | None, detail: dict[str, Any] | None
) -> None:
    """Add what the sandbox said (captured output, exception or signal, detail) to an error
    file's facts."""
    details = dict(detail or {})
    if outcome is not None:
        details.update(outcome.detail)
        facts["stdout"] = outcome.stdout[-_MAX_CAPTURE_IN_ERROR:]
        facts["stderr"] = outcome.stderr[-_MAX_CAPTURE_IN_ERROR:]
        facts["duration"] = round(outcome.duration, 4)
        if outcome.confidence:
            facts["confidence"] = outcome.confidence
    for key in ("exception", "traceback", "signal", "signal_name", "exit_code", "limit"):
        if key in details:
            facts[key] = details[key]
    facts["detail"] = {k: v for k, v in details.items() if k != "traceback"}
