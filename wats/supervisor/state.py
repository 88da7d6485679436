"""The instance's state file: who the supervisor is and which processes it started.

Written atomically (temp file, fsync, rename) whenever a worker tree changes. A supervisor that
was SIGKILLed cannot clean up; the next one reads this file and kills what is left of the old
trees, checking pid AND create time so a recycled pid is never touched.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from wats.fsutil import atomic_write
from wats.supervisor.process import ProcessRef, kill_refs

__all__ = ["SupervisorState", "kill_leftovers", "read_state", "write_state"]


@dataclass
class SupervisorState:
    """The content of the state file."""

    pid: int
    create_time: float
    instance: str
    config: str | None
    started: float
    workers: dict[str, list[ProcessRef]] = field(default_factory=dict)

    @classmethod
    def for_this_process(cls, instance: str, config: str | None) -> SupervisorState:
        """A fresh state naming the current process."""
        me = psutil.Process(os.getpid())
        return cls(me.pid, me.create_time(), instance, config, time.time())

    def is_running(self) -> bool:
        """True if the supervisor named here is still alive (same pid and create time)."""
        return ProcessRef(self.pid, self.create_time).process() is not None

    def to_json(self) -> dict[str, Any]:
        """The file form."""
        return {
            "pid": self.pid,
            "create_time": self.create_time,
            "instance": self.instance,
            "config": self.config,
            "started": self.started,
            "workers": {name: [r.to_json() for r in refs] for name, refs in self.workers.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SupervisorState:
        """Parse the file form (raises KeyError/TypeError/ValueError on a damaged file)."""
        workers = {
            str(name): [ProcessRef(int(r["pid"]), float(r["create_time"])) for r in refs]
            for name, refs in dict(data.get("workers", {})).items()
        }
        return cls(
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            instance=str(data["instance"]),
            config=data.get("config"),
            started=float(data["started"]),
            workers=workers,
        )


def write_state(path: Path, state: SupervisorState) -> None:
    """Atomically and durably replace the state file (0600)."""
    atomic_write(path, json.dumps(state.to_json()).encode("utf-8"), mode=0o600)


def read_state(path: Path) -> SupervisorState | None:
    """The state file's content, or None if it is missing or damaged."""
    try:
        return SupervisorState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kill_leftovers(state: SupervisorState | None, log: Callable[..., Any] | None = None) -> int:
    """Kill every recorded worker process of a previous run that is still alive; return count."""
    if state is None:
        return 0
    refs: Iterable[ProcessRef] = [r for refs in state.workers.values() for r in refs]
    return kill_refs(refs, log)
