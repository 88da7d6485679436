"""One-line, human-readable descriptions of bus events, shared by ``events`` and ``monitor``.

Kept free of sockets and terminals so the wording of every event type is unit-tested, and so the
two commands can never describe the same event differently.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Protocol


class EventLike(Protocol):
    """What formatting needs from an event: the fields of ``wats.protocol.envelope.Envelope``."""

    type: str
    id: str
    ts: float
    src: str
    seq: int
    body: dict[str, Any]


def clock(ts: float) -> str:
    """Local wall-clock time of an event, to the millisecond (``14:03:07.125``)."""
    whole = time.localtime(ts)
    millis = int((ts % 1) * 1000)
    return f"{time.strftime('%H:%M:%S', whole)}.{millis:03d}"


def signal_name(number: int) -> str:
    """``9`` -> ``SIGKILL``; an unknown number stays visible as ``signal 42``."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def seconds(value: float | None) -> str:
    """A short duration: ``0.1s``, ``12s``, ``5m00s``, ``2h03m``; ``-`` when unknown."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}s"
    if value < 60:
        return f"{value:.0f}s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{(whole % 3600) // 60:02d}m"


def describe_exit(code: int | None, signal_number: int | None, reason: str | None = None) -> str:
    """How a worker ended: ``code 3``, ``SIGKILL``, plus why when it was not a plain exit."""
    if signal_number is not None:
        how = signal_name(signal_number)
    elif code is not None:
        how = f"code {code}"
    else:
        how = "unknown status"
    if reason and reason != "exit":
        how = f"{how} ({reason})"
    return how


def _heartbeat(body: Mapping[str, Any]) -> str:
    ready = "ready" if body.get("ready") else "not ready"
    return f"{body.get('worker')} pid={body.get('pid')} progress={body.get('progress')} {ready}"


def _supervisor_heartbeat(body: Mapping[str, Any]) -> str:
    return f"pid={body.get('pid')} instance={body.get('instance')}"


def _started(body: Mapping[str, Any]) -> str:
    return f"{body.get('worker')} started pid={body.get('pid')}"


def _exited(body: Mapping[str, Any]) -> str:
    how = describe_exit(body.get("exit_code"), body.get("signal"), body.get("reason"))
    failure = body.get("failure")
    if isinstance(failure, Mapping) and failure.get("message"):
        how = f"{how}: {failure['message']}"
    return f"{body.get('worker')} pid={body.get('pid')} exited: {how}"


def _restarting(body: Mapping[str, Any]) -> str:
    return (
        f"{body.get('worker')} restart attempt {body.get('attempt')} "
        f"in {seconds(body.get('delay'))}"
    )


def _failed(body: Mapping[str, Any]) -> str:
    if body.get("reason", "flapping") != "flapping":
        # The same start failure every time: its reason, not a restart count, is the news.
        return (
            f"{body.get('worker')} FAILED: {body.get('message') or body.get('reason')} "
            f"(at {body.get('restarts')} starts in a row); next try in "
            f"{seconds(body.get('retry_in'))}"
        )
    return (
        f"{body.get('worker')} FAILED: {body.get('restarts')} restarts within "
        f"{seconds(body.get('window'))}; next try in {seconds(body.get('retry_in'))}"
    )


def _stopped(body: Mapping[str, Any]) -> str:
    return f"{body.get('worker')} stopped"


def _connection(body: Mapping[str, Any]) -> str:
    text = f"{body.get('status')} {body.get('url') or '(no url)'}"
    latency = body.get("latency_ms")
    if latency is not None:
        text += f" {latency:.0f} ms"
    if body.get("error"):
        text += f": {body['error']}"
    return text


def _sync_completed(body: Mapping[str, Any]) -> str:
    return (
        f"{body.get('processes')} processes, {body.get('levels')} levels, "
        f"{body.get('product_groups')} product groups (from {body.get('source')})"
    )


def _sync_failed(body: Mapping[str, Any]) -> str:
    return str(body.get("error"))


def _control_request(body: Mapping[str, Any]) -> str:
    text = str(body.get("command"))
    if body.get("target"):
        text += f" -> {body['target']}"
    if body.get("args"):
        text += f" {_compact(body['args'])}"
    return text


def _control_reply(body: Mapping[str, Any]) -> str:
    if body.get("ok"):
        return f"ok (request {str(body.get('request_id'))[:8]})"
    error = body.get("error") or {}
    return f"error {error.get('code')}: {error.get('reason')}"


_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
"""A drive (``C:\\``, ``C:/``) or UNC (``\\\\server``) prefix: a path a Windows station wrote."""


def _file_name(path: object) -> str:
    """The last part of a path, by the rules of the OS that wrote it.

    On POSIX only ``/`` separates, and ``\\`` is an ordinary character of a name (also the one
    a non-UTF-8 name shows once escaped, ``bad\\xffname.json``), so splitting on it would cut
    the name. A path from a Windows station (a remote hub's events) is recognised by its
    drive or UNC prefix and split on both separators, as Windows does.
    """
    text = str(path)
    windows = _WINDOWS_PATH.match(text) is not None
    name = PureWindowsPath(text).name if windows else PurePosixPath(text).name
    return name or text


def _short_id(report_id: object) -> str:
    """Enough of a report id (a UUID) to tell reports apart on one line: ``3f2a1b2c…``."""
    text = str(report_id)
    return text if len(text) <= 9 else text[:8] + "…"


def counted(number: int, noun: str) -> str:
    """``1 attempt``, ``3 attempts``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _file_detected(body: Mapping[str, Any]) -> str:
    return (
        f"{_file_name(body['path'])} for {body.get('converter')}, "
        f"{counted(int(body['size']), 'byte')}"
    )


def _file_pending(body: Mapping[str, Any]) -> str:
    return f"{_file_name(body['path'])} → pending ({body.get('converter')})"


def _file_converted(body: Mapping[str, Any]) -> str:
    ids = list(body["report_ids"])
    duplicates = list(body.get("duplicates") or [])
    new = len(ids) - len(duplicates)
    if duplicates and not new:
        made = "no new report: already delivered as " + ", ".join(map(_short_id, duplicates))
    elif duplicates:
        made = f"{counted(new, 'new report')}, {len(duplicates)} already delivered"
    else:
        made = counted(len(ids), "report")
    text = (
        f"{_file_name(body['path'])} → {made} "
        f"({body.get('converter')}), confidence {float(body['confidence']):.2f}"
    )
    warnings = body.get("warnings") or []
    if warnings:
        text += f", {counted(len(warnings), 'warning')}"
    return text


def _file_alarm(body: Mapping[str, Any]) -> str:
    return (
        f"{_file_name(body['path'])} LOW CONFIDENCE {float(body['confidence']):.2f} "
        f"< {float(body['threshold']):.2f} ({body.get('converter')})"
    )


def _file_failed(body: Mapping[str, Any]) -> str:
    text = (
        f"{_file_name(body['path'])} → error ({body['reason']}): {_file_name(body['error_file'])}"
    )
    if body.get("poison"):
        cause = body.get("poison_cause")
        text += f" [poison: {cause} deaths]" if cause else " [poison]"
    return text


def _report_queued(body: Mapping[str, Any]) -> str:
    text = f"{_short_id(body['id'])} queued"
    if body.get("source"):
        text += f" from {_file_name(body['source'])}"
    if body.get("converter"):
        text += f" ({body['converter']})"
    if body.get("station"):
        text += f" station {body['station']}"
    return text


def _report_duplicate(body: Mapping[str, Any]) -> str:
    text = f"{_short_id(body['id'])} from {_file_name(body['source'])} is a duplicate: already "
    text += "delivered" if body.get("state") == "completed" else f"in the queue ({body['state']})"
    if body.get("earlier_source"):
        text += f" from {_file_name(body['earlier_source'])}"
    return text


def _report_id_conflict(body: Mapping[str, Any]) -> str:
    text = (
        f"{_short_id(body['own_id'])} from {_file_name(body['source'])} is taken by another "
        f"report ({body['earlier_state']}"
    )
    if body.get("earlier_source"):
        text += f", from {_file_name(body['earlier_source'])}"
    return text + f"); queued as {_short_id(body['id'])} instead"


def _report_uploaded(body: Mapping[str, Any]) -> str:
    return (
        f"{_short_id(body['id'])} after {counted(int(body['attempts']), 'attempt')}, "
        f"{float(body['latency_ms']):.0f} ms"
    )


def _report_failed(body: Mapping[str, Any]) -> str:
    attempts = counted(int(body["attempts"]), "attempt")
    if body.get("permanent"):
        return f"{_short_id(body['id'])} FAILED for good after {attempts}: {body['error']}"
    text = f"{_short_id(body['id'])} upload failed ({attempts}): {body['error']}"
    if body.get("next_attempt") is not None:
        text += f"; retry at {clock(float(body['next_attempt']))}"
    return text


def _queue_stats(body: Mapping[str, Any]) -> str:
    text = (
        f"{body['pending']} pending, {body['failed']} failed, {body['completed']} completed, "
        f"{body.get('in_flight', 0)} in flight, {body.get('uploaded_total', 0)} uploaded"
    )
    if body.get("paused"):
        text += "; PAUSED"
    return text


_DESCRIBERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "worker.heartbeat": _heartbeat,
    "supervisor.heartbeat": _supervisor_heartbeat,
    "supervisor.worker.started": _started,
    "supervisor.worker.exited": _exited,
    "supervisor.worker.restarting": _restarting,
    "supervisor.worker.failed": _failed,
    "supervisor.worker.stopped": _stopped,
    "connection.status": _connection,
    "sync.completed": _sync_completed,
    "sync.failed": _sync_failed,
    "control.request": _control_request,
    "control.reply": _control_reply,
    "file.detected": _file_detected,
    "file.pending": _file_pending,
    "file.converted": _file_converted,
    "file.alarm": _file_alarm,
    "file.failed": _file_failed,
    "report.queued": _report_queued,
    "report.uploaded": _report_uploaded,
    "report.failed": _report_failed,
    "report.duplicate": _report_duplicate,
    "report.id_conflict": _report_id_conflict,
    "queue.stats": _queue_stats,
}

_MAX_COMPACT = 160


def _compact(body: Mapping[str, Any]) -> str:
    """``key=value`` pairs for types this module does not know (types are extensible)."""
    text = " ".join(
        f"{key}={json.dumps(value, default=str, separators=(',', ':'))}"
        for key, value in body.items()
    )
    return text if len(text) <= _MAX_COMPACT else text[: _MAX_COMPACT - 1] + "…"


def describe(event_type: str, body: Mapping[str, Any]) -> str:
    """The key fields of one event body, worded for its type; unknown types list their fields."""
    describer = _DESCRIBERS.get(event_type)
    if describer is None:
        return _compact(body)
    try:
        return describer(body)
    except (KeyError, TypeError, ValueError, AttributeError):
        # A body that does not match its type's model (e.g. a newer sender) is still shown.
        return _compact(body)


def format_event(event: EventLike) -> str:
    """One line per event: local time, sender, type and its key fields."""
    return f"{clock(event.ts)} {event.src:<12} {event.type:<30} {describe(event.type, event.body)}"


def event_to_json(event: EventLike) -> str:
    """The whole envelope as one compact JSON object (for ``events --json`` and scripts)."""
    record = {
        "v": getattr(event, "v", None),
        "type": event.type,
        "id": event.id,
        "ts": event.ts,
        "src": event.src,
        "seq": event.seq,
        "body": event.body,
    }
    return json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False)


def describe_gap(src: str, missed: int) -> str:
    """The note printed when a sender's sequence numbers jump: events were lost on the way."""
    plural = "event" if missed == 1 else "events"
    return f"-- {missed} {plural} from {src} missed (sequence gap) --"
