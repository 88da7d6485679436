"""What one queued report looks like on disk and in memory.

A queue file ``<id>.json`` holds ``{"meta": {...}, "report": {WSJF}}``: the report exactly as it
will be posted, and the bookkeeping the uploader and the CLI need to decide what to do with it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "STATES",
    "QueueCounts",
    "QueueItem",
    "QueueMeta",
    "QueueState",
    "canonical_id",
    "decode_item",
    "encode_item",
]

QueueState = Literal["pending", "failed", "completed"]
STATES: tuple[QueueState, ...] = ("pending", "failed", "completed")


def canonical_id(value: object) -> str:
    """The report id as the queue names its file: a lower-case hyphenated UUID.

    Refusing anything else keeps a report id from ever becoming a path (``../x``) and makes the
    same id always map to the same file name.
    """
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"report id must be a UUID, got {value!r}") from None


@dataclass(frozen=True)
class QueueMeta:
    """The bookkeeping kept next to a report: where it came from and how delivery is going."""

    id: str
    attempts: int = 0
    next_attempt: float = 0.0  # epoch seconds; due when <= now
    last_error: str | None = None
    source_file: str | None = None
    converter: str | None = None
    station: str | None = None
    queued_at: float = 0.0
    uploaded_at: float | None = None
    failed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The meta as the JSON object stored in the file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> QueueMeta:
        """Read a stored meta object; unknown keys are ignored (a newer writer may add some)."""
        if not isinstance(data, dict):
            raise ValueError("meta must be a JSON object")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["id"] = canonical_id(values.get("id"))
        values["attempts"] = int(values.get("attempts") or 0)
        values["next_attempt"] = float(values.get("next_attempt") or 0.0)
        values["queued_at"] = float(values.get("queued_at") or 0.0)
        for name in ("uploaded_at", "failed_at"):
            if values.get(name) is not None:
                values[name] = float(values[name])
        return cls(**values)


@dataclass(frozen=True)
class QueueItem:
    """One queued report: its state (the folder it is in), meta, the WSJF body and its file."""

    state: QueueState
    meta: QueueMeta
    report: dict[str, Any] = field(repr=False)
    path: Path

    @property
    def id(self) -> str:
        """The report id (also the file's stem)."""
        return self.meta.id

    @property
    def attempts(self) -> int:
        """Failed upload attempts so far."""
        return self.meta.attempts

    @property
    def next_attempt(self) -> float:
        """Epoch seconds from which the uploader may try again."""
        return self.meta.next_attempt

    @property
    def last_error(self) -> str | None:
        """The last upload error (the server's message for a failed report)."""
        return self.meta.last_error

    def with_meta(self, **changes: Any) -> QueueItem:
        """A copy with some meta fields changed."""
        return replace(self, meta=replace(self.meta, **changes))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description without the report body (for ``queue list --json``)."""
        return {"state": self.state, **self.meta.to_json(), "path": str(self.path)}


@dataclass(frozen=True)
class QueueCounts:
    """How many reports each folder holds, counted from the folders themselves."""

    pending: int = 0
    failed: int = 0
    completed: int = 0

    def to_json(self) -> dict[str, int]:
        """The counts as a JSON object (``status --json``, ``queue.stats``)."""
        return asdict(self)


def encode_item(meta: QueueMeta, report: dict[str, Any]) -> bytes:
    """The file content for a report and its meta (UTF-8 JSON, compact)."""
    return json.dumps(
        {"meta": meta.to_json(), "report": report}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def decode_item(data: bytes, *, state: QueueState, path: Path) -> QueueItem:
    """Parse a queue file; ``ValueError`` naming the file when it is not one."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("report"), dict):
            raise ValueError("expected {'meta': {...}, 'report': {...}}")
        meta = QueueMeta.from_json(raw.get("meta"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a queue file ({exc})") from None
    return QueueItem(state=state, meta=meta, report=raw["report"], path=path)
