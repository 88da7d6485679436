"""Message type strings, which double as pub/sub topics.

Why constants: the type string is both the envelope's ``type`` and the first frame of an event, and
ZeroMQ subscribes by byte prefix. A typo in a literal would subscribe to nothing and fail silently;
a typo in a constant name fails at import. Types are dotted from general to specific so that a
prefix selects a family: ``"supervisor.worker."`` is every worker lifecycle event.
"""

from __future__ import annotations

__all__ = [
    "CONNECTION_STATUS",
    "CONTROL_REPLY",
    "CONTROL_REQUEST",
    "FILE",
    "FILE_ALARM",
    "FILE_CONVERTED",
    "FILE_DETECTED",
    "FILE_FAILED",
    "FILE_PENDING",
    "QUEUE_STATS",
    "REPORT",
    "REPORT_DUPLICATE",
    "REPORT_FAILED",
    "REPORT_ID_CONFLICT",
    "REPORT_QUEUED",
    "REPORT_UPLOADED",
    "SUPERVISOR_HEARTBEAT",
    "SUPERVISOR_WORKER",
    "SUPERVISOR_WORKER_EXITED",
    "SUPERVISOR_WORKER_FAILED",
    "SUPERVISOR_WORKER_RESTARTING",
    "SUPERVISOR_WORKER_STARTED",
    "SUPERVISOR_WORKER_STOPPED",
    "SYNC",
    "SYNC_COMPLETED",
    "SYNC_FAILED",
    "WORKER_HEARTBEAT",
]

# Liveness: workers prove their main loop turns; the supervisor proves it is alive to its workers.
WORKER_HEARTBEAT = "worker.heartbeat"
SUPERVISOR_HEARTBEAT = "supervisor.heartbeat"

# Worker lifecycle, published by the supervisor. SUPERVISOR_WORKER is the family prefix.
SUPERVISOR_WORKER = "supervisor.worker."
SUPERVISOR_WORKER_STARTED = "supervisor.worker.started"
SUPERVISOR_WORKER_EXITED = "supervisor.worker.exited"
SUPERVISOR_WORKER_RESTARTING = "supervisor.worker.restarting"
SUPERVISOR_WORKER_FAILED = "supervisor.worker.failed"
SUPERVISOR_WORKER_STOPPED = "supervisor.worker.stopped"

# Server reachability, published by the health worker on every change.
CONNECTION_STATUS = "connection.status"

# Reference data sync. SYNC is the family prefix.
SYNC = "sync."
SYNC_COMPLETED = "sync.completed"
SYNC_FAILED = "sync.failed"

# The report pipeline: a file's way from a watch folder to the server. FILE, REPORT are prefixes.
FILE = "file."
FILE_DETECTED = "file.detected"
FILE_PENDING = "file.pending"
FILE_CONVERTED = "file.converted"
FILE_ALARM = "file.alarm"
FILE_FAILED = "file.failed"
REPORT = "report."
REPORT_QUEUED = "report.queued"
REPORT_UPLOADED = "report.uploaded"
REPORT_FAILED = "report.failed"
REPORT_DUPLICATE = "report.duplicate"
REPORT_ID_CONFLICT = "report.id_conflict"
QUEUE_STATS = "queue.stats"

# Control request/reply (through the supervisor's ROUTER, never published on the event bus).
CONTROL_REQUEST = "control.request"
CONTROL_REPLY = "control.reply"
