"""One pydantic model per message type: the schema of each envelope's ``body``.

Why a registry keyed by type string: the envelope stays generic, and both ends of the bus check a
body against the same model — the publisher before sending (a bad body is a bug in the sender, so
it fails there, loudly) and the subscriber after receiving (a bad body from another process is
dropped, never acted on). Types are extensible: a type with no model here passes through as a
plain dict, so a newer process can publish types an older subscriber does not know yet. Later
issues add their types with :func:`register_message`.

Bodies keep fields they do not know (``extra="allow"``) for the same reason: a newer sender may add
a field without an older receiver rejecting the message, and a forwarder does not lose it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wats.protocol import topics

__all__ = [
    "ERROR_CODES",
    "MESSAGE_MODELS",
    "Body",
    "ConnectionStatus",
    "ControlReply",
    "ControlRequest",
    "ErrorCode",
    "FileAlarm",
    "FileConverted",
    "FileDetected",
    "FileFailed",
    "FilePending",
    "PoisonCause",
    "QueueStats",
    "ReplyError",
    "ReportDuplicate",
    "ReportFailed",
    "ReportIdConflict",
    "ReportQueued",
    "ReportUploaded",
    "SupervisorHeartbeat",
    "SyncCompleted",
    "SyncFailed",
    "WorkerExited",
    "WorkerFailed",
    "WorkerFailure",
    "WorkerHeartbeat",
    "WorkerRestarting",
    "WorkerStarted",
    "WorkerStopped",
    "register_message",
    "validate_body",
]


class Body(BaseModel):
    """Base of every message body: strict types (frames come from other processes), extras kept."""

    model_config = ConfigDict(strict=True, extra="allow")


class WorkerHeartbeat(Body):
    """A worker's main loop is turning. ``progress`` grows with work done, so a loop that beats
    but does nothing is visible; ``ready`` says the worker can serve (e.g. the server accepts)."""

    worker: str
    pid: int
    progress: int = Field(ge=0)
    ready: bool
    detail: dict[str, Any] = Field(default_factory=dict)


class SupervisorHeartbeat(Body):
    """The supervisor is alive; a worker that stops hearing this exits rather than run orphaned."""

    pid: int
    instance: str


class WorkerStarted(Body):
    """A worker process was spawned."""

    worker: str
    pid: int


class WorkerExited(Body):
    """A worker process ended, and why: it exited by itself, was killed by a signal it did not
    ask for, was killed because it stopped heartbeating, was stopped on purpose, or could not
    start (``start_failed``: its ``failure`` says why, as in ``status``)."""

    worker: str
    pid: int
    exit_code: int | None
    signal: int | None
    reason: Literal["exit", "killed", "hung", "stopped", "start_failed"]


class WorkerRestarting(Body):
    """A worker will be started again after ``delay`` seconds (its ``attempt``-th restart)."""

    worker: str
    attempt: int = Field(ge=1)
    delay: float = Field(ge=0)


class WorkerFailure(StrEnum):
    """Why a worker slot is FAILED (``reason`` of ``supervisor.worker.failed`` and of a
    worker's ``failure`` in ``status``)."""

    FLAPPING = "flapping"  # too many restarts within the window; retried after the cooldown
    PORT_IN_USE = "port_in_use"  # the embedded server's port is held by another process
    START_FAILED = "start_failed"  # the same error at every start (see ``message``)


class WorkerFailed(Body):
    """A worker was marked FAILED. ``reason`` (a :class:`WorkerFailure` value) says why:
    flapping (``restarts`` restarts within ``window`` seconds; retried in ``retry_in``), or the
    same start failure ``restarts`` times in a row, with the worker's own ``message`` (not
    retried, ``retry_in`` 0, until ``wats-supervisor restart WORKER``)."""

    worker: str
    restarts: int = Field(ge=0)
    window: float = Field(ge=0)
    retry_in: float = Field(ge=0)
    reason: str = WorkerFailure.FLAPPING.value
    message: str = ""


class WorkerStopped(Body):
    """A worker was stopped on request and will not be restarted until started again."""

    worker: str


class ConnectionStatus(Body):
    """Whether the WATS server answers, since when, and (when offline) why not."""

    status: Literal["ONLINE", "OFFLINE"]
    url: str
    since: float
    latency_ms: float | None = None
    error: str | None = None


class SyncCompleted(Body):
    """Reference data was refreshed: counts of each kind, and whether they came from the server or,
    while it is unreachable, from the local cache."""

    processes: int = Field(ge=0)
    levels: int = Field(ge=0)
    product_groups: int = Field(ge=0)
    source: Literal["server", "cache"]


class SyncFailed(Body):
    """A reference data refresh failed; the last good cache stays in use."""

    error: str


class ControlRequest(Body):
    """A command for the supervisor, or — when ``target`` names a worker — for that worker, which
    the supervisor routes it to."""

    command: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None


class ErrorCode(StrEnum):
    """Why a control request failed. Callers branch on the code; the reason is for people."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_WORKER = "unknown_worker"
    WORKER_UNAVAILABLE = "worker_unavailable"
    TIMEOUT = "timeout"
    FORBIDDEN = "forbidden"
    INTERNAL = "internal"


ERROR_CODES: frozenset[str] = frozenset(code.value for code in ErrorCode)


class ReplyError(Body):
    """The error half of a reply: a machine-readable ``code`` (see :class:`ErrorCode`; other codes
    are allowed so handlers can be specific) and a ``reason`` a person can act on."""

    code: str = Field(min_length=1)
    reason: str


class ControlReply(Body):
    """The answer to the control request whose envelope id is ``request_id``: ``ok`` with a
    ``result``, or not ok with an ``error``."""

    request_id: str = Field(min_length=1)
    ok: bool
    result: Any = None
    error: ReplyError | None = None

    @model_validator(mode="after")
    def _error_explains_failure(self) -> ControlReply:
        # Every failure carries a code and reason; a success carries none, so callers never guess.
        if self.ok and self.error is not None:
            raise ValueError("a reply that is ok carries no error")
        if not self.ok and self.error is None:
            raise ValueError("a reply that is not ok needs an error (code, reason)")
        return self


class FileDetected(Body):
    """The watcher saw a file matching a converter's patterns (not yet ready, maybe)."""

    converter: str
    path: str
    size: int = Field(ge=0)


class FilePending(Body):
    """A ready file was moved into the converter's pending folder: the converter's to take.

    ``path`` and ``source`` are for reading: a file name that is not UTF-8 travels with its
    undecodable bytes as ``\\xNN`` text (see the codec), which names no file. For such a name
    ``path_bytes`` carries the path's exact bytes (``os.fsencode``), so the converter finds the
    file at once instead of at its next scan.
    """

    converter: str
    path: str
    source: str
    path_bytes: bytes | None = None


class FileConverted(Body):
    """A pending file became reports, all durably queued; its post action has run."""

    converter: str
    path: str
    report_ids: list[str]
    duplicates: list[str] = Field(default_factory=list)  # of report_ids: nothing new queued
    confidence: float
    warnings: list[str] = Field(default_factory=list)


class FileAlarm(Body):
    """Converted, but with a confidence below the converter's alarm threshold: worth a look."""

    converter: str
    path: str
    confidence: float
    threshold: float


class PoisonCause(StrEnum):
    """Why a file was quarantined as poison (``file.failed`` ``poison_cause``, error files).

    ``sandbox``: the sandbox child died converting it (a signal, a limit or the timeout)
    ``max_retries`` times. ``worker``: the converter worker, or its fork server, died with the
    file in hand ``max_worker_deaths`` times (see wats.workers.attempts).
    """

    SANDBOX = "sandbox"
    WORKER = "worker"


class FileFailed(Body):
    """A file went to the error folder; ``error_file`` is the reason file beside it."""

    converter: str
    path: str
    reason: str
    error_file: str
    poison: bool = False
    poison_cause: PoisonCause | None = Field(default=None, strict=False)  # a str on the wire


class ReportQueued(Body):
    """A report was written durably into the queue's pending folder."""

    id: str
    converter: str | None = None
    source: str | None = None
    station: str | None = None


class ReportDuplicate(Body):
    """A converted report the queue already holds with the same content (the same file dropped
    again, or converted again after a crash): nothing new was queued. ``state`` is where the
    earlier copy is (pending, completed, failed)."""

    id: str
    converter: str
    source: str
    state: str
    earlier_source: str | None = None


class ReportIdConflict(Body):
    """A report's own id (``own_id``) was already queued or delivered with other content, so
    it was queued under its derived ``id`` instead (``on_id_conflict = "new-id"``)."""

    id: str
    own_id: str
    converter: str
    source: str
    earlier_state: str
    earlier_source: str | None = None


class ReportUploaded(Body):
    """The server accepted a report; it left the pending folder."""

    id: str
    attempts: int = Field(ge=1)
    latency_ms: float


class ReportFailed(Body):
    """An upload attempt failed. ``permanent``: the report moved to failed/ and waits for a human;
    otherwise it stays pending and is tried again at ``next_attempt`` (epoch seconds)."""

    id: str
    error: str
    permanent: bool
    attempts: int = Field(ge=1)
    next_attempt: float | None = None


class QueueStats(Body):
    """Counts read from the queue folders, plus the uploader's own view of work in flight."""

    pending: int = Field(ge=0)
    failed: int = Field(ge=0)
    completed: int = Field(ge=0)
    in_flight: int = Field(default=0, ge=0)
    uploaded_total: int = Field(default=0, ge=0)
    paused: bool = False


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    topics.WORKER_HEARTBEAT: WorkerHeartbeat,
    topics.SUPERVISOR_HEARTBEAT: SupervisorHeartbeat,
    topics.SUPERVISOR_WORKER_STARTED: WorkerStarted,
    topics.SUPERVISOR_WORKER_EXITED: WorkerExited,
    topics.SUPERVISOR_WORKER_RESTARTING: WorkerRestarting,
    topics.SUPERVISOR_WORKER_FAILED: WorkerFailed,
    topics.SUPERVISOR_WORKER_STOPPED: WorkerStopped,
    topics.CONNECTION_STATUS: ConnectionStatus,
    topics.SYNC_COMPLETED: SyncCompleted,
    topics.SYNC_FAILED: SyncFailed,
    topics.CONTROL_REQUEST: ControlRequest,
    topics.CONTROL_REPLY: ControlReply,
    topics.FILE_DETECTED: FileDetected,
    topics.FILE_PENDING: FilePending,
    topics.FILE_CONVERTED: FileConverted,
    topics.FILE_ALARM: FileAlarm,
    topics.FILE_FAILED: FileFailed,
    topics.REPORT_QUEUED: ReportQueued,
    topics.REPORT_UPLOADED: ReportUploaded,
    topics.REPORT_FAILED: ReportFailed,
    topics.REPORT_DUPLICATE: ReportDuplicate,
    topics.REPORT_ID_CONFLICT: ReportIdConflict,
    topics.QUEUE_STATS: QueueStats,
}


def register_message(type: str, model: type[BaseModel]) -> None:
    """Add the body model of a new message type (later issues add theirs at import time).

    Registering a different model for a type that already has one is refused, so two modules can
    never silently disagree on a schema.
    """
    existing = MESSAGE_MODELS.get(type)
    if existing is not None and existing is not model:
        raise ValueError(f"message type {type!r} already has model {existing.__name__}")
    MESSAGE_MODELS[type] = model


def validate_body(type: str, body: dict[str, Any]) -> BaseModel | dict[str, Any]:
    """The body as its type's model, or the raw dict when the type has no model (not an error).

    Raises ``pydantic.ValidationError`` (a ``ValueError``) when a known type's body does not fit.
    """
    model = MESSAGE_MODELS.get(type)
    if model is None:
        return body
    return model.model_validate(body)
