"""When scheduled converters run, and what has run: pure time arithmetic plus a tiny state file.

A scheduled converter (``kind = "scheduled"``) collects results instead of having files dropped
on it: every ``schedule_interval_seconds``, or at the minutes of a 5-field ``cron`` expression
(local time; parser: ``wats.config.cron``, the same one config validation uses), and once at
start when ``run_on_startup``. The converter worker (wats.workers.converter) owns the timers and
the sandbox; this module only decides *which slot* is due, so it can be tested without clocks.

Why slots and a state file: a run is named by its **slot** (the time it was scheduled for, not
the time it happened to start), and report ids derive from that slot's ISO text plus the folder's
content hash. ``ScheduledRuns`` persists (atomically, in the converter's state folder) the slot it
is about to run and then the last slot it completed, so

- a crash during a run reruns the *same* slot at the next start: same ids, nothing duplicated;
- a restart does not rerun a slot that already completed;
- slots missed while the worker was down (or while a long run was still going) run once, as the
  latest missed slot, never once per missed slot;
- a slot whose run killed the worker ``max_worker_deaths`` times is given up (``gave_up``), so
  a poisonous export cannot crash-loop the worker. A begun slot that never finished can only
  mean the worker died during the run (a sandbox failure finishes the slot with an error file),
  which is no evidence against the exports, so the generous bound applies, not ``max_retries``.

Interval schedules sit on a grid anchored at the last completed run (or the time the schedule was
first seen), so the period does not drift by the runs' durations.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wats.config.cron import CronExpression
from wats.config.models import ConverterConfig
from wats.fsutil import atomic_write

__all__ = [
    "STATE_FILE",
    "ScheduledRuns",
    "SlotStart",
    "is_scheduled",
    "last_due",
    "next_run",
    "slot_stamp",
]

STATE_FILE = "schedule.json"


def is_scheduled(conv: ConverterConfig) -> bool:
    """Whether the worker runs ``conv`` on a schedule: ``kind = "scheduled"``, or no kind given
    (the converter class's own) but a schedule configured."""
    if conv.kind is not None:
        return conv.kind == "scheduled"
    return bool(conv.cron) or conv.schedule_interval_seconds is not None


def _local_now() -> datetime:
    return datetime.now().astimezone()


def next_run(
    conv: ConverterConfig, after: datetime, *, anchor: datetime | None = None
) -> datetime | None:
    """The first slot of ``conv``'s schedule strictly after ``after``, or None (no schedule, or
    a cron expression that never fires, e.g. ``0 0 30 2 *``).

    Interval: ``after + interval``, or with ``anchor`` the first ``anchor + k * interval`` after
    ``after``. Cron: the next matching minute in local time (naive in → naive out, aware in →
    aware local out).
    """
    if conv.cron:
        return CronExpression.parse(conv.cron).next_after(after)
    interval = conv.schedule_interval_seconds
    if interval is None:
        return None
    if anchor is None:
        return after + timedelta(seconds=interval)
    steps = max(0, math.floor((after - anchor).total_seconds() / interval)) + 1
    slot = anchor + timedelta(seconds=steps * interval)
    while slot <= after:  # float rounding at a grid point
        slot += timedelta(seconds=interval)
    return slot


def last_due(conv: ConverterConfig, since: datetime, now: datetime) -> datetime | None:
    """The latest slot in ``(since, now]``, or None if no slot fell in that span. For an
    interval, slots are ``since + k * interval``."""
    if conv.cron:
        slot = CronExpression.parse(conv.cron).last_at_or_before(now)
        return slot if slot is not None and slot > since else None
    interval = conv.schedule_interval_seconds
    if interval is None or now <= since:
        return None
    steps = math.floor((now - since).total_seconds() / interval)
    if steps < 1:
        return None
    return since + timedelta(seconds=steps * interval)


def slot_stamp(slot: datetime) -> str:
    """A slot as a file-name-safe stamp (``20240501T101500``), for error file names."""
    return slot.strftime("%Y%m%dT%H%M%S")


@dataclass(frozen=True)
class SlotStart:
    """What to do about a due slot: run it (``attempt`` counts runs of this slot, 1 = first), or
    give it up (``gave_up``: earlier runs of it killed the worker ``attempt - 1`` times)."""

    slot: datetime
    attempt: int
    gave_up: bool = False


class ScheduledRuns:
    """One scheduled converter's slots: which is due, when to look next, what completed.

    The state file (``<state>/schedule.json``) holds ``since`` (when the schedule was first
    seen), ``completed`` (the last slot that finished, successfully or not), and ``started`` +
    ``attempts`` (a slot begun but not finished). Every change is an atomic write, so a kill at
    any moment leaves one of the two states. Not thread-safe: one caller (the worker's loop and
    its one run at a time per converter).
    """

    def __init__(self, conv: ConverterConfig, state_dir: Path, now: datetime | None = None):
        self.conv = conv
        self.path = Path(state_dir) / STATE_FILE
        self._state = self._load()
        if self._state.get("since") is None:
            self._state["since"] = (now or _local_now()).replace(microsecond=0).isoformat()
            self._save()

    # -- reading --------------------------------------------------------------------------

    @property
    def completed(self) -> datetime | None:
        """The last completed slot, if any."""
        return _parse(self._state.get("completed"))

    @property
    def started(self) -> datetime | None:
        """A slot begun and not finished (the previous run was interrupted), if any."""
        return _parse(self._state.get("started"))

    @property
    def anchor(self) -> datetime:
        """Where missed slots are counted from: the last completed slot, else the first time
        the schedule was seen."""
        since = _parse(self._state.get("since"))
        assert since is not None
        return self.completed or since

    def due(self, now: datetime) -> datetime | None:
        """The slot to run now: an interrupted slot (rerun, same ids), else the latest slot
        since the last completed one, else None."""
        return self.started or last_due(self.conv, self.anchor, now)

    def startup(self, now: datetime) -> datetime | None:
        """The slot to run when the worker starts: a due one; else ``now`` (to the second) if
        ``run_on_startup``; else None."""
        slot = self.due(now)
        if slot is None and self.conv.run_on_startup:
            slot = now.replace(microsecond=0)
        return slot

    def next_time(self, now: datetime) -> datetime | None:
        """When the next slot after ``now`` comes (None: never)."""
        return next_run(self.conv, now, anchor=self.anchor if not self.conv.cron else None)

    # -- recording ------------------------------------------------------------------------

    def begin(self, slot: datetime) -> SlotStart:
        """Record (durably) that ``slot`` is starting, before anything else of the run happens.
        A slot begun ``max_worker_deaths`` times already without finishing is given up."""
        attempts = int(self._state.get("attempts") or 0) if self.started == slot else 0
        if attempts >= self.conv.max_worker_deaths:
            return SlotStart(slot, attempts + 1, gave_up=True)
        self._state.update(started=slot.isoformat(), attempts=attempts + 1)
        self._save()
        return SlotStart(slot, attempts + 1)

    def finish(self, slot: datetime) -> None:
        """Record (durably) that ``slot`` is done: it and every slot before it never run again."""
        self._state.update(completed=slot.isoformat(), started=None, attempts=0)
        self._save()

    def not_counted(self, slot: datetime) -> None:
        """Take back the attempt ``begin`` counted: the run failed while the worker lived (e.g.
        the done folder is unreachable), so the slot did not kill anything; it stays begun and
        is run again, with the same ids, until it finishes."""
        if self.started == slot and int(self._state.get("attempts") or 0) > 0:
            self._state["attempts"] = int(self._state["attempts"]) - 1
            self._save()

    # -- the file -------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # cannot be torn (atomic writes); unreadable = start afresh
        if not isinstance(data, dict):
            return {}
        for key in ("since", "completed", "started"):
            if data.get(key) is not None and _parse(data[key]) is None:
                data[key] = None
        return data

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self._state, indent=1).encode())


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.astimezone()
