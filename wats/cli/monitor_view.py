"""What ``wats-supervisor monitor`` shows: a state model fed by bus events, and its rendering.

The model starts from one ``status`` reply and then follows the bus (heartbeats, worker lifecycle
events, connection status, the report pipeline's file/report/queue events), so the view is live
without re-reading any file. Both parts are pure:
they take the current time as an argument and never touch a socket or a terminal, which keeps
every state transition and every column unit-testable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from wats.cli.event_format import EventLike, clock, counted, describe, describe_exit, seconds
from wats.cli.seq_gaps import SeqGaps

STARTING = "STARTING"
RUNNING = "RUNNING"
BACKOFF = "BACKOFF"
STOPPING = "STOPPING"
STOPPED = "STOPPED"
FAILED = "FAILED"

_STATE_STYLES = {
    RUNNING: "green",
    STARTING: "cyan",
    BACKOFF: "yellow",
    STOPPING: "yellow",
    STOPPED: "dim",
    FAILED: "bold red",
}

# Heartbeats arrive every second from every worker; listing them would push every other event
# out of the short "latest events" list, so they only update the table.
_QUIET_TYPES = frozenset({"worker.heartbeat", "supervisor.heartbeat"})


@dataclass
class WorkerView:
    """One row of the workers table, as last reported by the supervisor or the worker itself."""

    name: str
    state: str = "?"
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    rss: int | None = None
    cpu_percent: float | None = None
    last_heartbeat: float | None = None
    progress: int | None = None
    ready: bool = False
    last_exit: dict[str, Any] | None = None
    retry_at: float | None = None
    failure: str | None = None  # why it is FAILED ("port 8080 on 127.0.0.1 in use ...")

    def heartbeat_age(self, now: float) -> float | None:
        """Seconds since this worker's last heartbeat, or None before the first one."""
        if self.last_heartbeat is None:
            return None
        return max(0.0, now - self.last_heartbeat)

    def uptime(self, now: float) -> float | None:
        """Seconds since the current process started; None while no process runs."""
        if self.started_at is None or self.pid is None:
            return None
        return max(0.0, now - self.started_at)


#: The window over which the upload rate is measured, in seconds.
RATE_WINDOW = 60.0


@dataclass
class QueueView:
    """The report queue as last reported: folder counts from ``queue.stats`` or ``status``.

    ``in_flight``, ``uploaded_total`` and ``paused`` are only known from ``queue.stats`` (the
    uploader's own view); they stay None until the first one arrives.
    """

    pending: int = 0
    failed: int = 0
    completed: int = 0
    in_flight: int | None = None
    uploaded_total: int | None = None
    paused: bool | None = None


@dataclass
class PipelineCounts:
    """What the monitor itself saw on the bus since it started (not totals from disk)."""

    uploaded: int = 0
    upload_errors: int = 0
    converted: int = 0
    failed: int = 0
    alarms: int = 0
    duplicates: int = 0
    upload_times: deque[float] = field(default_factory=deque)

    def note_upload(self, ts: float) -> None:
        """Count one ``report.uploaded``; forget times too old to matter for the rate."""
        self.uploaded += 1
        self.upload_times.append(ts)
        while self.upload_times and self.upload_times[0] <= ts - RATE_WINDOW:
            self.upload_times.popleft()

    def uploads_per_minute(self, now: float) -> float:
        """Reports uploaded per minute over the last ``RATE_WINDOW`` seconds before ``now``."""
        recent = sum(1 for ts in self.upload_times if now - RATE_WINDOW < ts <= now)
        return recent * 60.0 / RATE_WINDOW


@dataclass
class LoggedEvent:
    """One line of the "latest events" list."""

    ts: float
    src: str
    type: str
    text: str


@dataclass
class MonitorState:
    """Everything the monitor knows, updated by ``apply_status`` and ``apply``.

    ``heartbeat_interval`` and ``heartbeat_misses`` come from the instance's config so that the
    view flags a silent worker at the same point the supervisor's watchdog would.
    """

    instance: str = "default"
    heartbeat_interval: float = 1.0
    heartbeat_misses: int = 3
    max_events: int = 12
    supervisor_pid: int | None = None
    supervisor_started: float | None = None
    supervisor_heartbeat: float | None = None
    config_path: str | None = None
    connection: dict[str, Any] | None = None
    sync: LoggedEvent | None = None
    queue: QueueView | None = None
    pipeline: PipelineCounts = field(default_factory=PipelineCounts)
    workers: dict[str, WorkerView] = field(default_factory=dict)
    events: deque[LoggedEvent] = field(default_factory=deque)
    gaps: SeqGaps = field(default_factory=SeqGaps)
    events_seen: int = 0
    dropped: int = 0  # invalid frames the subscriber threw away
    notice: str | None = None

    def __post_init__(self) -> None:
        self.events = deque(self.events, maxlen=self.max_events)

    # -- inputs -----------------------------------------------------------------------------

    def apply_status(self, result: Mapping[str, Any], now: float) -> None:
        """Take the supervisor's ``status`` reply as the starting picture (ages become times)."""
        supervisor = result.get("supervisor") or {}
        self.supervisor_pid = supervisor.get("pid", self.supervisor_pid)
        self.instance = supervisor.get("instance") or self.instance
        self.config_path = supervisor.get("config") or self.config_path
        if supervisor.get("started") is not None:
            self.supervisor_started = float(supervisor["started"])
        elif supervisor.get("uptime") is not None:
            self.supervisor_started = now - float(supervisor["uptime"])
        if self.supervisor_heartbeat is None:
            self.supervisor_heartbeat = now  # it just answered, so it is alive now
        if result.get("connection"):
            self.connection = dict(result["connection"])
        for item in result.get("workers") or []:
            row = self._worker(str(item["name"]))
            row.state = item.get("state") or row.state
            row.pid = item.get("pid")
            row.restarts = int(item.get("restarts") or 0)
            uptime = item.get("uptime")
            row.started_at = now - float(uptime) if uptime is not None else None
            row.rss = item.get("rss")
            row.cpu_percent = item.get("cpu_percent")
            age = item.get("heartbeat_age")
            row.last_heartbeat = now - float(age) if age is not None else None
            row.progress = item.get("progress")
            row.ready = bool(item.get("ready"))
            row.last_exit = item.get("last_exit")
            failure = item.get("failure")
            row.failure = (
                str(failure.get("message") or failure.get("reason"))
                if isinstance(failure, Mapping)
                else None
            )
        if isinstance(result.get("queue"), Mapping):
            self._update_queue(result["queue"])
        self.notice = None

    def apply(self, event: EventLike) -> None:
        """Update the picture from one bus event; unknown types are only listed."""
        self.events_seen += 1
        missed = self.gaps.observe(event.src, event.type, event.seq)
        if missed:
            self._log(event.ts, event.src, "(gap)", f"{missed} event(s) from {event.src} missed")
        body = event.body
        handler = getattr(self, "_on_" + event.type.replace(".", "_"), None)
        if handler is not None:
            # A body of an unexpected shape must not take the view down.
            with suppress(KeyError, TypeError, ValueError):
                handler(event.ts, body)
        if event.type not in _QUIET_TYPES:
            self._log(event.ts, event.src, event.type, describe(event.type, body))

    # -- event handlers (named after the topic) ---------------------------------------------

    def _on_worker_heartbeat(self, ts: float, body: Mapping[str, Any]) -> None:
        row = self._worker(str(body["worker"]))
        pid = body.get("pid")
        if row.pid is not None and pid != row.pid and row.state != STARTING:
            return  # a late heartbeat from a process the supervisor already replaced
        if row.pid != pid:
            row.pid = pid
            row.started_at = row.started_at if row.started_at is not None else ts
        row.last_heartbeat = ts
        row.progress = body.get("progress")
        row.ready = bool(body.get("ready"))
        if row.state in (STARTING, "?"):
            row.state = RUNNING
        detail = body.get("detail") or {}
        if detail.get("rss") is not None:
            row.rss = int(detail["rss"])
        if detail.get("cpu_percent") is not None:
            row.cpu_percent = float(detail["cpu_percent"])

    def _on_supervisor_heartbeat(self, ts: float, body: Mapping[str, Any]) -> None:
        self.supervisor_heartbeat = ts
        self.supervisor_pid = body.get("pid", self.supervisor_pid)
        self.instance = body.get("instance") or self.instance

    def _on_supervisor_worker_started(self, ts: float, body: Mapping[str, Any]) -> None:
        row = self._worker(str(body["worker"]))
        row.state = STARTING
        row.pid = body.get("pid")
        row.started_at = ts
        row.last_heartbeat = None
        row.progress = None
        row.ready = False
        row.rss = None
        row.cpu_percent = None
        row.retry_at = None

    def _on_supervisor_worker_exited(self, ts: float, body: Mapping[str, Any]) -> None:
        row = self._worker(str(body["worker"]))
        reason = body.get("reason")
        row.last_exit = {"code": body.get("exit_code"), "signal": body.get("signal"),
                         "reason": reason}
        row.pid = None
        row.started_at = None
        row.ready = False
        row.rss = None
        row.cpu_percent = None
        # The supervisor follows an unplanned exit with "restarting" or "failed"; until then
        # the worker is waiting for its restart.
        row.state = STOPPED if reason == "stopped" else BACKOFF

    def _on_supervisor_worker_restarting(self, ts: float, body: Mapping[str, Any]) -> None:
        row = self._worker(str(body["worker"]))
        row.state = BACKOFF
        row.restarts += 1
        row.retry_at = ts + float(body.get("delay") or 0.0)

    def _on_supervisor_worker_failed(self, ts: float, body: Mapping[str, Any]) -> None:
        row = self._worker(str(body["worker"]))
        row.state = FAILED
        row.retry_at = ts + float(body.get("retry_in") or 0.0)
        row.failure = (
            str(body.get("message") or body.get("reason"))
            if body.get("reason", "flapping") != "flapping"
            else f"{body.get('restarts')} restarts within {seconds(body.get('window'))}"
        )

    def _on_supervisor_worker_stopped(self, ts: float, body: Mapping[str, Any]) -> None:
        row = self._worker(str(body["worker"]))
        row.state = STOPPED
        row.pid = None
        row.started_at = None
        row.ready = False
        row.retry_at = None

    def _on_connection_status(self, ts: float, body: Mapping[str, Any]) -> None:
        self.connection = dict(body)

    def _on_sync_completed(self, ts: float, body: Mapping[str, Any]) -> None:
        self.sync = LoggedEvent(ts, "sync", "sync.completed", describe("sync.completed", body))

    def _on_sync_failed(self, ts: float, body: Mapping[str, Any]) -> None:
        self.sync = LoggedEvent(ts, "sync", "sync.failed", describe("sync.failed", body))

    def _on_queue_stats(self, ts: float, body: Mapping[str, Any]) -> None:
        self._update_queue(body)

    def _on_report_uploaded(self, ts: float, body: Mapping[str, Any]) -> None:
        self.pipeline.note_upload(ts)

    def _on_report_failed(self, ts: float, body: Mapping[str, Any]) -> None:
        self.pipeline.upload_errors += 1

    def _on_file_converted(self, ts: float, body: Mapping[str, Any]) -> None:
        self.pipeline.converted += 1

    def _on_report_duplicate(self, ts: float, body: Mapping[str, Any]) -> None:
        self.pipeline.duplicates += 1

    def _on_file_failed(self, ts: float, body: Mapping[str, Any]) -> None:
        self.pipeline.failed += 1

    def _on_file_alarm(self, ts: float, body: Mapping[str, Any]) -> None:
        self.pipeline.alarms += 1

    # -- helpers ----------------------------------------------------------------------------

    def _update_queue(self, counts: Mapping[str, Any]) -> None:
        """Take the counts present in ``counts``; a key that is missing keeps its last value."""
        queue = self.queue or QueueView()
        queue.pending = int(counts.get("pending", queue.pending))
        queue.failed = int(counts.get("failed", queue.failed))
        queue.completed = int(counts.get("completed", queue.completed))
        if counts.get("in_flight") is not None:
            queue.in_flight = int(counts["in_flight"])
        if counts.get("uploaded_total") is not None:
            queue.uploaded_total = int(counts["uploaded_total"])
        if counts.get("paused") is not None:
            queue.paused = bool(counts["paused"])
        self.queue = queue

    def _worker(self, name: str) -> WorkerView:
        row = self.workers.get(name)
        if row is None:
            row = self.workers[name] = WorkerView(name)
        return row

    def _log(self, ts: float, src: str, event_type: str, text: str) -> None:
        self.events.append(LoggedEvent(ts, src, event_type, text))

    def supervisor_silent_for(self, now: float) -> float | None:
        """Seconds without a supervisor heartbeat beyond what the watchdog tolerates, else None."""
        if self.supervisor_heartbeat is None:
            return None
        age = now - self.supervisor_heartbeat
        return age if age > self.heartbeat_interval * self.heartbeat_misses else None


# -- rendering ------------------------------------------------------------------------------


def bytes_text(value: int | None) -> str:
    """RSS in a readable unit (``48.2 MB``); ``-`` when unknown."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - loop always returns


def _heartbeat_cell(row: WorkerView, state: MonitorState, now: float) -> Text:
    age = row.heartbeat_age(now)
    if age is None or row.pid is None:
        return Text("-", style="dim")
    style = ""
    if age > state.heartbeat_interval * state.heartbeat_misses:
        style = "bold red"
    elif age > state.heartbeat_interval * 1.5:
        style = "yellow"
    return Text(seconds(age), style=style)


def _exit_cell(row: WorkerView) -> str:
    if row.state == FAILED and row.failure:
        return row.failure
    if not row.last_exit:
        return "-"
    return describe_exit(
        row.last_exit.get("code"), row.last_exit.get("signal"), row.last_exit.get("reason")
    )


def _state_cell(row: WorkerView, now: float) -> Text:
    text = Text(row.state, style=_STATE_STYLES.get(row.state, ""))
    if row.state in (BACKOFF, FAILED) and row.retry_at is not None:
        text.append(f" ({seconds(max(0.0, row.retry_at - now))})", style="dim")
    elif row.state == RUNNING and not row.ready:
        text.append(" not ready", style="dim")
    return text


#: Below this many columns the workers table leaves out "progress" and "last exit".
WIDE_SCREEN = 110


def workers_table(state: MonitorState, now: float, *, compact: bool = False) -> Table:
    """The workers table: state, pid, restarts, uptime, CPU, RSS, heartbeat age, progress, exit.

    ``compact`` keeps the columns the issue asks for (through heartbeat age) so an 80-column
    terminal shows them whole rather than every column cut short.
    """
    table = Table(title="Workers", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("worker", no_wrap=True)
    table.add_column("state", no_wrap=True)
    numeric = ["pid", "restarts", "uptime", "cpu", "rss", "heartbeat"]
    for header in numeric if compact else [*numeric, "progress"]:
        table.add_column(header, justify="right", no_wrap=True)
    if not compact:
        table.add_column("last exit", overflow="fold")
    if not state.workers:
        table.add_row(Text("no workers reported yet", style="dim"))
    for row in state.workers.values():
        running = row.pid is not None
        cpu = f"{row.cpu_percent:.1f}%" if running and row.cpu_percent is not None else "-"
        cells: list[RenderableType] = [
            row.name,
            _state_cell(row, now),
            str(row.pid) if running else "-",
            str(row.restarts),
            seconds(row.uptime(now)),
            cpu,
            bytes_text(row.rss) if running else "-",
            _heartbeat_cell(row, state, now),
        ]
        if not compact:
            cells += ["-" if row.progress is None else str(row.progress), _exit_cell(row)]
        table.add_row(*cells)
    return table


def header_text(state: MonitorState, now: float) -> Text:
    """First lines: instance, supervisor pid and liveness, server connection, last sync."""
    text = Text()
    text.append("wats-supervisor monitor", style="bold")
    text.append(f"  instance {state.instance}")
    if state.supervisor_pid is not None:
        text.append(f"  supervisor pid {state.supervisor_pid}")
    if state.supervisor_started is not None:
        text.append(f"  up {seconds(now - state.supervisor_started)}")
    silent = state.supervisor_silent_for(now)
    if silent is not None:
        text.append(f"  supervisor silent for {seconds(silent)}", style="bold red")
    text.append("\nserver: ")
    connection = state.connection
    if not connection:
        text.append("unknown (no connection status yet)", style="dim")
    else:
        status = str(connection.get("status"))
        text.append(status, style="bold green" if status == "ONLINE" else "bold red")
        text.append(f"  {connection.get('url') or ''}")
        if connection.get("latency_ms") is not None:
            text.append(f"  {float(connection['latency_ms']):.0f} ms")
        if connection.get("since") is not None:
            text.append(f"  since {clock(float(connection['since']))}")
        if connection.get("error"):
            text.append(f"  {connection['error']}", style="red")
    if state.sync is not None:
        style = "red" if state.sync.type == "sync.failed" else ""
        text.append(f"\nreference data: {clock(state.sync.ts)} ")
        text.append(state.sync.text, style=style)
    if state.notice:
        text.append(f"\n{state.notice}", style="yellow")
    return text


def queue_text(state: MonitorState, now: float) -> Text:
    """The queue line (pending, failed, completed, in flight, paused) and the pipeline's rates."""
    text = Text("queue: ")
    queue = state.queue
    if queue is None:
        text.append("unknown (no queue stats yet)", style="dim")
    else:
        text.append(f"{queue.pending} pending", style="yellow" if queue.paused else "")
        text.append(", ")
        text.append(f"{queue.failed} failed", style="bold red" if queue.failed else "")
        text.append(f", {queue.completed} completed")
        text.append(f", {'-' if queue.in_flight is None else queue.in_flight} in flight")
        if queue.paused:
            text.append("  PAUSED", style="bold yellow")
    counts = state.pipeline
    rate = counts.uploads_per_minute(now)
    text.append(f"\nuploads: {rate:.0f}/min (last {RATE_WINDOW:.0f} s)")
    text.append(f", {counts.uploaded} since monitor start")
    if counts.upload_errors:
        text.append(f", {counts.upload_errors} upload errors", style="red")
    text.append(f"\nfiles: {counts.converted} converted, ")
    text.append(f"{counts.failed} failed", style="red" if counts.failed else "")
    if counts.alarms:
        text.append(f", {counts.alarms} low confidence", style="yellow")
    if counts.duplicates:
        text.append(f", {counted(counts.duplicates, 'duplicate report')} (already delivered)")
    return text


def events_table(state: MonitorState) -> Table:
    """The latest non-heartbeat events, oldest first, with any sequence gaps."""
    table = Table(title="Latest events", title_justify="left", show_header=False, box=None,
                  pad_edge=False)
    table.add_column("time", no_wrap=True, style="dim")
    table.add_column("src", no_wrap=True)
    table.add_column("type", no_wrap=True, style="cyan")
    table.add_column("what")
    if not state.events:
        table.add_row("", "", Text("none yet", style="dim"), "")
    for event in state.events:
        style = "yellow" if event.type == "(gap)" else ""
        table.add_row(clock(event.ts), event.src, event.type, Text(event.text, style=style))
    return table


def footer_text(state: MonitorState, *, live: bool = True) -> Text:
    """Event counters, and which senders' events were lost (the view may then be behind)."""
    text = Text(f"{state.events_seen} events received", style="dim")
    if state.gaps.total:
        detail = ", ".join(f"{src} {n}" for src, n in sorted(state.gaps.missed.items()))
        text.append(f"  missed {state.gaps.total} ({detail})", style="yellow")
    if state.dropped:
        text.append(f"  {state.dropped} invalid frames dropped", style="yellow")
    if live:
        text.append("  Ctrl+C to quit", style="dim")
    return text


def render_monitor(
    state: MonitorState, now: float, width: int = WIDE_SCREEN, *, live: bool = True
) -> RenderableType:
    """The whole monitor screen for ``state`` at time ``now`` on a terminal ``width`` wide;
    ``live=False`` for a one-off snapshot (no "Ctrl+C to quit")."""
    return Group(
        header_text(state, now),
        Text(""),
        workers_table(state, now, compact=width < WIDE_SCREEN),
        queue_text(state, now),
        Text(""),
        events_table(state),
        footer_text(state, live=live),
    )
