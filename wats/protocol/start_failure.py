"""How a worker that cannot start tells its supervisor why: an exit code and a small file.

Why a file and not a bus message: the worker is about to exit, and a PUB socket drops what it
has not sent yet; the file is in the instance's runtime folder (owner-only) before the exit, so
the supervisor, woken by the exit, always finds it (invariant 1: the filesystem is the truth).
The worker writes ``<runtime>/<worker>.start-failure.json`` and exits with
:data:`EXIT_START_FAILED`; the supervisor reads and removes the file on that exit. After the same
failure a few times in a row it marks the worker FAILED with that reason instead of restarting
it forever (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from wats.fsutil import atomic_write
from wats.protocol.messages import WorkerFailure

__all__ = ["EXIT_START_FAILED", "StartFailureRecord", "take_start_failure", "write_start_failure"]

EXIT_START_FAILED = 3
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class StartFailureRecord:
    """Why a worker could not start: a :class:`WorkerFailure` and a one-line message."""

    reason: WorkerFailure
    message: str

    def to_json(self) -> dict[str, str]:
        """The form of the file, of ``status`` and of the event."""
        return {"reason": self.reason.value, "message": self.message}


def _path(runtime_dir: Path, worker: str) -> Path:
    return runtime_dir / f"{worker}.start-failure.json"


def write_start_failure(
    runtime_dir: Path, worker: str, reason: WorkerFailure, message: str
) -> None:
    """Record why ``worker`` cannot start (called just before it exits)."""
    line = " ".join(message.split())[:_MAX_MESSAGE]
    body = json.dumps({"reason": reason.value, "message": line}).encode()
    atomic_write(_path(runtime_dir, worker), body, mode=0o600, sync=False)


def take_start_failure(runtime_dir: Path, worker: str) -> StartFailureRecord | None:
    """Read and remove ``worker``'s record; None when there is none (or it is unreadable)."""
    path = _path(runtime_dir, worker)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    try:
        reason = WorkerFailure(str(data.get("reason")))
    except (ValueError, AttributeError):
        reason = WorkerFailure.START_FAILED
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    return StartFailureRecord(reason, message[:_MAX_MESSAGE])
