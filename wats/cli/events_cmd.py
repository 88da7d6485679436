"""``wats-supervisor events`` and ``monitor``: watch a running instance through its bus.

Both attach to the supervisor's event proxy as ordinary subscribers, so watching never slows or
changes the system. The wording and the screen live in ``event_format`` and ``monitor_view``; this
module only connects sockets, loops and prints.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption
from wats.protocol import topics

# How long one blocking receive may last: the upper bound on reacting to Ctrl+C, SIGTERM or the
# end of --duration. Events themselves are handled the moment they arrive.
_POLL_SECONDS = 0.2


@dataclass
class _Attachment:
    """What both commands need to reach one instance's bus."""

    instance: str
    runtime_dir: Path
    addresses: Any  # wats.protocol.addresses.BusAddresses
    heartbeat_interval: float
    heartbeat_misses: int
    request_timeout: float
    curve: Any = None  # wats.protocol.security.CurveClientKeys when attached to a remote hub


def _attach_hub(cfg: Any, paths: Any) -> tuple[Any, Any]:
    """The hub's network endpoints and this machine's CurveZMQ keys (``[bus] hub`` is set)."""
    from wats.protocol.addresses import BusAddresses
    from wats.protocol.security import BusSecurityError, KeyPaths, load_client_keys

    bus = cfg.bus
    client_key = KeyPaths.resolve(paths.data_dir, bus.key_dir, client_key=bus.client_key)
    try:
        keys = load_client_keys(Path(bus.hub_public_key), client_key.client_key)
    except BusSecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        typer.echo(
            "hint: make this machine's pair with `wats-supervisor keys generate` and have the "
            "hub authorize its .key file",
            err=True,
        )
        raise typer.Exit(1) from None
    host = f"[{bus.hub}]" if ":" in bus.hub else bus.hub
    addresses = BusAddresses(
        events_in="",  # a remote watcher never publishes; the hub does not offer its input
        events_out=f"tcp://{host}:{bus.events_port}",
        control=f"tcp://{host}:{bus.control_port}",
    )
    return addresses, keys


def _attach(config: Path | None, instance: str | None) -> _Attachment:
    """Load the config and find the running supervisor's endpoints, or exit saying what to do."""
    from wats.cli.config_cmd import load_config_or_exit
    from wats.config.paths import InstancePaths
    from wats.protocol.addresses import read_endpoints
    from wats.protocol.codec import ProtocolError

    cfg, _ = load_config_or_exit(config, instance)
    paths = InstancePaths.for_config(cfg)
    name = cfg.instance.name
    sup = cfg.supervisor
    if cfg.bus.hub:
        addresses, curve = _attach_hub(cfg, paths)
        return _Attachment(
            instance=f"{name}@{cfg.bus.hub}",
            runtime_dir=paths.runtime_dir,
            addresses=addresses,
            heartbeat_interval=sup.heartbeat_interval_seconds,
            heartbeat_misses=sup.heartbeat_misses,
            request_timeout=sup.request_timeout_seconds,
            curve=curve,
        )
    try:
        addresses = read_endpoints(paths.runtime_dir)
    except FileNotFoundError:
        options = "".join(
            f" {flag} {value}" for flag, value in (("--config", config), ("--instance", instance))
            if value is not None
        )
        typer.echo(
            f"error: instance {name!r} is not running (no bus endpoints in "
            f"{paths.runtime_dir}); start it with `wats-supervisor start{options}`",
            err=True,
        )
        raise typer.Exit(1) from None
    except ProtocolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return _Attachment(
        instance=name,
        runtime_dir=paths.runtime_dir,
        addresses=addresses,
        heartbeat_interval=sup.heartbeat_interval_seconds,
        heartbeat_misses=sup.heartbeat_misses,
        request_timeout=sup.request_timeout_seconds,
    )


@contextmanager
def _stop_on_sigterm() -> Iterator[Callable[[], bool]]:
    """Yield ``stopping()``, which turns True on SIGTERM, so loops end cleanly like on Ctrl+C."""
    stop = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield lambda: stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quiet_bus_logs(to_stderr: bool) -> None:
    """Keep the bus helpers' warnings (e.g. a dropped garbage frame) off stdout.

    ``events`` sends them to stderr so stdout stays pure event lines; ``monitor`` silences them
    because the screen already counts dropped frames and a stray line would tear the live view.
    """
    import logging
    import sys

    import structlog

    if to_stderr:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    else:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def _deadline(duration: float | None) -> float:
    return float("inf") if duration is None else time.monotonic() + duration


HEARTBEATS = frozenset({topics.WORKER_HEARTBEAT, topics.SUPERVISOR_HEARTBEAT})


def shown(event_type: str, *, show_all: bool, topics: list[str] | None) -> bool:
    """Whether ``events`` prints an event: heartbeats (one per worker every interval) drown
    everything else, so they show only with ``--all`` or when a ``--topic`` was asked for (the
    bus has already filtered by it; what it lets through is what the user wants)."""
    return show_all or bool(topics) or event_type not in HEARTBEATS


def _ping(ctx: Any, attachment: _Attachment, timeout: float) -> str | None:
    """None when the supervisor answers ``ping``; else why not (for a warning, not an error)."""
    from wats.protocol.bus import ControlClient, ControlTimeout

    client = ControlClient(
        ctx, attachment.addresses.control, src=f"cli:{os.getpid()}", curve=attachment.curve
    )
    try:
        reply = client.request("ping", timeout=timeout)
    except ControlTimeout as exc:
        return f"instance {attachment.instance!r}: {exc}"
    finally:
        client.close()
    if not reply.ok and reply.error is not None:
        return f"ping was answered with {reply.error.code}: {reply.error.reason}"
    return None


@app.command("events")
def events(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object (the whole envelope) per line.")
    ] = False,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            help="Only events whose type starts with this prefix (repeatable), "
            "e.g. --topic supervisor.worker --topic connection.",
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl+C).")
    ] = None,
    count: Annotated[
        int | None, typer.Option(help="Stop after this many events.", min=1)
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Also print heartbeats (hidden unless asked: several a second)."
        ),
    ] = False,
) -> None:
    """Print the instance's bus events live, one line each, until Ctrl+C.

    Heartbeats are left out unless --all is given or a --topic asks for them (--topic
    worker.heartbeat); a --topic prints every event it matches. Lost events (a sender's
    sequence numbers jumping) are reported as a note line (on stderr with --json, so the
    output stays pure JSON lines).
    """
    import zmq

    from wats.cli.event_format import describe_gap, event_to_json, format_event
    from wats.cli.seq_gaps import SeqGaps
    from wats.protocol.bus import Subscriber

    attachment = _attach(config, instance)
    _quiet_bus_logs(to_stderr=True)
    ctx = zmq.Context()
    subscriber = Subscriber(
        ctx, attachment.addresses.events_out, list(topic or [""]), curve=attachment.curve
    )
    gaps = SeqGaps()
    seen = 0
    end = _deadline(duration)
    try:
        warning = _ping(ctx, attachment, min(attachment.request_timeout, 2.0))
        if warning:
            typer.echo(f"warning: {warning}; waiting for events anyway", err=True)
        elif not show_all and not topic:
            # a quiet instance prints nothing for a long time: say it is listening, and why quiet
            typer.echo(
                f"listening to instance {attachment.instance!r} (heartbeats hidden: --all shows "
                "them; Ctrl-C to leave)",
                err=True,
            )
        with _stop_on_sigterm() as stopping:
            while not stopping() and time.monotonic() < end and (count is None or seen < count):
                left = max(0.0, end - time.monotonic())
                event = subscriber.recv(timeout=min(_POLL_SECONDS, left))
                if event is None:
                    continue
                missed = gaps.observe(event.src, event.type, event.seq)
                if missed:
                    typer.echo(describe_gap(event.src, missed), err=as_json)
                if not shown(event.type, show_all=show_all, topics=topic):
                    continue
                seen += 1
                typer.echo(event_to_json(event) if as_json else format_event(event))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # `events | head`: the reader left; stop quietly instead of a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    finally:
        subscriber.close()
        ctx.destroy(linger=0)


def _request_status(client: Any, state: Any, timeout: float) -> bool:
    """Refresh the monitor's picture from a ``status`` reply; a failure becomes a notice.

    Returns whether the supervisor answered with a status.
    """
    from wats.protocol.bus import ControlTimeout

    try:
        reply = client.request("status", timeout=timeout)
    except ControlTimeout as exc:
        state.notice = f"{exc}; showing bus events only"
        return False
    if reply.ok and isinstance(reply.result, dict):
        result = dict(reply.result)
        queue = _uploader_queue_stats(client, timeout)
        if queue is not None:
            result["queue"] = queue
        state.apply_status(result, now=time.time())
        return True
    if reply.error is not None:
        state.notice = f"`status` was answered with {reply.error.code}: {reply.error.reason}"
    return False


_QUEUE_STATS_KEYS = ("pending", "failed", "completed", "in_flight", "uploaded_total", "paused")


def _uploader_queue_stats(client: Any, timeout: float) -> dict[str, Any] | None:
    """The queue counts as the uploader knows them, asked over the bus (never from the folders).

    The uploader publishes ``queue.stats`` only when the counts change, so a monitor started on
    a quiet queue would otherwise show "unknown" until the next upload. ``None`` when no
    uploader answers (not configured, not running).
    """
    from wats.protocol.bus import ControlTimeout

    try:
        reply = client.request("uploader.status", target="uploader", timeout=timeout)
    except ControlTimeout:
        return None
    if not reply.ok or not isinstance(reply.result, dict):
        return None
    return {key: reply.result[key] for key in _QUEUE_STATS_KEYS if key in reply.result}


@app.command("monitor")
def monitor(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Listen for one heartbeat interval, print one snapshot and exit "
            "(exit code 1 if the supervisor did not answer).",
        ),
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl+C).")
    ] = None,
    status_every: Annotated[
        float,
        typer.Option(
            help="Ask the supervisor for `status` again every this many seconds, for CPU and "
            "RSS figures (0: only once at start; everything else comes from bus events).",
            min=0,
        ),
    ] = 5.0,
) -> None:
    """A live view of the instance: workers, server connection and the latest events.

    Fed by the bus (heartbeats, worker events, connection status) after one initial `status`
    request; nothing is read from files while it runs.
    """
    import zmq
    from rich.console import Console
    from rich.live import Live

    from wats.cli.monitor_view import MonitorState, render_monitor
    from wats.protocol.bus import ControlClient, Subscriber

    attachment = _attach(config, instance)
    _quiet_bus_logs(to_stderr=False)
    console = Console()
    state = MonitorState(
        instance=attachment.instance,
        heartbeat_interval=attachment.heartbeat_interval,
        heartbeat_misses=attachment.heartbeat_misses,
    )
    ctx = zmq.Context()
    # Subscribe before asking for status so no event between the two is lost.
    subscriber = Subscriber(ctx, attachment.addresses.events_out, [""], curve=attachment.curve)
    client = ControlClient(
        ctx, attachment.addresses.control, src=f"cli:{os.getpid()}", curve=attachment.curve
    )
    timeout = min(attachment.request_timeout, 2.0)

    def screen(live: bool = True) -> Any:
        return render_monitor(state, time.time(), console.width, live=live)

    def pump(until: float) -> None:
        """Apply every event that arrives before ``until`` (monotonic)."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            event = subscriber.recv(timeout=left)
            if event is not None:
                state.apply(event)
            state.dropped = subscriber.dropped

    try:
        answered = _request_status(client, state, timeout)
        if once:
            pump(time.monotonic() + max(attachment.heartbeat_interval, 0.5))
            console.print(screen(live=False))
            if not answered:
                raise typer.Exit(1)  # a snapshot without the supervisor is not a healthy one
            return
        end = _deadline(duration)
        next_status = time.monotonic() + status_every if status_every else float("inf")
        with _stop_on_sigterm() as stopping, Live(
            screen(), console=console, auto_refresh=False, redirect_stderr=False
        ) as live:
            while not stopping() and time.monotonic() < end:
                pump(min(end, time.monotonic() + _POLL_SECONDS))
                if time.monotonic() >= next_status:
                    _request_status(client, state, timeout)
                    next_status = time.monotonic() + status_every
                live.update(screen(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        subscriber.close()
        ctx.destroy(linger=0)
