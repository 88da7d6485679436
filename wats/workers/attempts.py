"""The per-file attempt record and the rule that decides when a file is poison.

Why a record at all: a file that kills the process converting it would otherwise crash-loop the
converter worker forever, so before each attempt the worker notes on disk that the attempt is
running; a record still marked running at the next start is how a death is seen afterwards.

Why this rule (issue: "killing a worker is not evidence against a file"): a worker can die for
reasons that have nothing to do with the file in its hands (an operator, the OOM killer, a
supervisor restart, a chaos test SIGKILLing it every few hundred ms). Counting every death
against the file sent good files to the error folder as ``poison``. So the record keeps two
counts, with two bounds:

- ``sandbox_deaths``: the locked-down sandbox child died *while converting this file*, by a
  signal or a limit the file could have caused (SIGSEGV, abort, the CPU limit's SIGXCPU/SIGKILL,
  the wall-clock timeout). The fork server outlived it and said so, so this is evidence against
  the file: after a death the file waits ``retry_delay_seconds``, and at ``max_retries`` deaths
  it fails with the sandbox's own reason (``crash``, ``limit``, ``timeout``), marked poison.
- ``worker_deaths``: the converter worker died with the file in hand (found at the next start as
  a record still marked running), or the fork server died under a living worker. That is no
  evidence against the file: it is converted again at once, without a delay. Only a file that
  truly takes its worker down every time reaches ``max_worker_deaths`` (a generous bound,
  default 10) and is quarantined as ``poison``.

Answers the sandbox gives from a living child (an exception, ``rejected``, ``invalid``, a
``MemoryError`` or ``EMFILE`` reported as ``limit``, an exit without a result) are verdicts, not
deaths: the file fails at once, as before.

Everything here is pure (no clock, no processes) except :func:`read_record` and
:func:`write_record`, so the rule has fast unit tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from wats.fsutil import atomic_write
from wats.protocol.messages import PoisonCause

__all__ = [
    "ATTEMPTS_SUFFIX",
    "AttemptEnd",
    "AttemptRecord",
    "Bounds",
    "PoisonCause",
    "begin",
    "classify",
    "end",
    "read_record",
    "write_record",
]

ATTEMPTS_SUFFIX = ".attempts.json"


class AttemptEnd(StrEnum):
    """How one attempt ended, as far as counting is concerned."""

    VERDICT = "verdict"  # converted, or failed with the converter's own answer: settle the file
    SANDBOX_DIED = "sandbox_died"  # the sandbox child died on it: a signal, limit or timeout
    FORK_SERVER_DIED = "fork_server_died"  # the fork server died under a living worker
    NOT_COUNTED = "not_counted"  # we are alive and the file did not do it (e.g. no fork server)


@dataclass(frozen=True)
class Bounds:
    """``max_sandbox_deaths`` is the converter's ``max_retries``; ``max_worker_deaths`` its
    ``max_worker_deaths``."""

    max_sandbox_deaths: int
    max_worker_deaths: int


@dataclass(frozen=True)
class AttemptRecord:
    """What ``state/<digest>.attempts.json`` holds. ``running``: an attempt began and has not
    ended; seen at the start of the next attempt, it means the worker died with the file."""

    file: str = ""
    sandbox_deaths: int = 0
    worker_deaths: int = 0
    running: bool = False

    @property
    def attempts(self) -> int:
        """Attempts that ended in a death, of either kind (what error files report)."""
        return self.sandbox_deaths + self.worker_deaths

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "file": self.file,
                "sandbox_deaths": self.sandbox_deaths,
                "worker_deaths": self.worker_deaths,
                "running": self.running,
            }
        ).encode()

    @classmethod
    def from_data(cls, data: Any) -> AttemptRecord:
        """From a decoded record; anything unreadable counts as one death of the worker (the
        writes are atomic, so a torn record cannot exist: being generous costs one attempt)."""
        if not isinstance(data, dict):
            return cls(worker_deaths=1)
        if "attempts" in data and "running" not in data:
            # Written by an earlier version: every attempt begun and not settled, whoever died.
            # They become worker deaths, the count that is no evidence against the file.
            return cls(file=str(data.get("file", "")), worker_deaths=_count(data.get("attempts")))
        return cls(
            file=str(data.get("file", "")),
            sandbox_deaths=_count(data.get("sandbox_deaths")),
            worker_deaths=_count(data.get("worker_deaths")),
            running=data.get("running") is True,
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1


def begin(record: AttemptRecord, bounds: Bounds) -> tuple[AttemptRecord, PoisonCause | None]:
    """Before an attempt: the record to write (marked running), or why the file is poison.

    A record still marked running means the previous attempt never ended: the worker (and with
    it its sandbox) died with the file in hand. That counts as a worker death, and the file is
    tried again now, without a delay.
    """
    if record.running:
        record = replace(record, worker_deaths=record.worker_deaths + 1, running=False)
    if record.sandbox_deaths >= bounds.max_sandbox_deaths:
        return record, PoisonCause.SANDBOX
    if record.worker_deaths >= bounds.max_worker_deaths:
        return record, PoisonCause.WORKER
    return replace(record, running=True), None


def end(
    record: AttemptRecord, how: AttemptEnd, bounds: Bounds
) -> tuple[AttemptRecord, PoisonCause | None]:
    """After an attempt that did not settle the file: the record to keep, and the cause if the
    file is now poison (the caller then fails it). ``VERDICT`` settles the file: the caller
    removes the record, so this is never asked about it."""
    record = replace(record, running=False)
    if how is AttemptEnd.SANDBOX_DIED:
        record = replace(record, sandbox_deaths=record.sandbox_deaths + 1)
        if record.sandbox_deaths >= bounds.max_sandbox_deaths:
            return record, PoisonCause.SANDBOX
    elif how is AttemptEnd.FORK_SERVER_DIED:
        record = replace(record, worker_deaths=record.worker_deaths + 1)
        if record.worker_deaths >= bounds.max_worker_deaths:
            return record, PoisonCause.WORKER
    return record, None


def classify(failure: str | None, detail: dict[str, Any]) -> AttemptEnd:
    """How a sandbox outcome (``failure``, ``detail``) counts.

    ``fork_server_died`` first (the fork server reports nothing then); a wall-clock timeout or
    any death by a signal (which includes the CPU limit) is the sandbox child dying on the file;
    everything else is the converter's answer, a verdict.
    """
    if detail.get("fork_server_died"):
        return AttemptEnd.FORK_SERVER_DIED
    if failure == "timeout" or (failure in ("crash", "limit") and "signal" in detail):
        return AttemptEnd.SANDBOX_DIED
    return AttemptEnd.VERDICT


def read_record(path: Path) -> AttemptRecord:
    """The record at ``path``; an empty one when there is none."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return AttemptRecord()
    except (OSError, ValueError):
        return AttemptRecord(worker_deaths=1)
    return AttemptRecord.from_data(data)


def write_record(path: Path, record: AttemptRecord) -> None:
    """Write atomically, not fsynced: a power cut that loses it costs one extra attempt, never
    a file (a crash of the worker, the case the record exists for, keeps it either way)."""
    atomic_write(path, record.to_json(), sync=False)
