"""``wats-supervisor queue list|show|retry|purge-completed``: look at and steer the report queue.

These commands work on the queue folders directly, so they answer whether or not the supervisor
runs (the folders are the truth, invariant 1). After a change that gives the uploader work
(``retry``) they nudge a running uploader with an ``uploader.wake`` request; if nothing is
running, the uploader finds the reports by its own rescan when it starts.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption

queue_app = typer.Typer(
    help="Look at and steer the report queue (works without a running supervisor).",
    no_args_is_help=True,
)
app.add_typer(queue_app, name="queue")

StateOption = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="pending, failed or completed (default: pending and failed).",
        case_sensitive=False,
    ),
]

# The wake-up is a courtesy: never keep the user waiting long for it.
_WAKE_TIMEOUT_SECONDS = 1.0
_STATES = ("pending", "failed", "completed")


def _open(config: Path | None, instance: str | None) -> tuple[Any, Any, Any]:
    from wats.cli.config_cmd import load_config_or_exit
    from wats.config.paths import InstancePaths
    from wats.queue import ReportQueue

    cfg, _ = load_config_or_exit(config, instance)
    paths = InstancePaths.for_config(cfg)
    return cfg, paths, ReportQueue.for_config(cfg, paths)


_PREFIX = re.compile(r"[0-9a-f-]{1,36}")
_MAX_CANDIDATES_SHOWN = 10


def matching_ids(queue: Any, prefix: str) -> list[tuple[str, str]]:
    """``(id, state)`` of every queued report whose id starts with ``prefix`` (lower case, as
    ``events`` and ``monitor`` print the first 8 characters), sorted by id."""
    from wats.queue import canonical_id

    found = []
    for state in _STATES:
        try:
            names = os.listdir(queue.folder(state))
        except FileNotFoundError:
            continue
        for name in names:
            if not name.endswith(".json") or not name.startswith(prefix):
                continue
            try:
                found.append((canonical_id(name[: -len(".json")]), state))
            except ValueError:
                continue  # a temp or stray file, never a report
    return sorted(found)


def _report_id_or_exit(value: str, queue: Any) -> str:
    """The full report id ``value`` names: a whole UUID, or the start of one (``3f2a1b2c`` or
    ``3f2a1b2c…`` as events print it). Exit 2 for what is not an id or names several reports
    (listing them), 1 for a prefix no queued report has."""
    from wats.queue import canonical_id

    text = value.strip().rstrip("…").rstrip(".").lower()
    try:
        return canonical_id(text)
    except ValueError:
        pass
    if not _PREFIX.fullmatch(text):
        typer.echo(
            f"error: {value!r} is not a report id (a UUID, or its first characters)", err=True
        )
        raise typer.Exit(2)
    found = matching_ids(queue, text)
    if len(found) == 1:
        return found[0][0]
    if not found:
        typer.echo(f"error: no queued report id starts with {text!r}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"error: {len(found)} queued reports have ids starting with {text!r}; give more of the id:",
        err=True,
    )
    for report_id, state in found[:_MAX_CANDIDATES_SHOWN]:
        typer.echo(f"  {report_id}  {state}", err=True)
    if len(found) > _MAX_CANDIDATES_SHOWN:
        typer.echo(f"  ... and {len(found) - _MAX_CANDIDATES_SHOWN} more", err=True)
    raise typer.Exit(2)


def wake_uploader(cfg: Any, paths: Any) -> bool:
    """Ask a running uploader to look at the queue now; True if it answered.

    Best effort by design: a stopped supervisor, a missing uploader or a slow answer only mean
    the uploader's periodic rescan finds the work a little later.
    """
    import zmq

    from wats.protocol.addresses import read_endpoints
    from wats.protocol.bus import ControlClient, ControlTimeout
    from wats.protocol.codec import ProtocolError

    try:
        addresses = read_endpoints(paths.runtime_dir)
    except (OSError, ValueError, ProtocolError):
        return False
    ctx = zmq.Context()
    try:
        client = ControlClient(ctx, addresses.control, f"cli:{os.getpid()}")
        try:
            timeout = min(_WAKE_TIMEOUT_SECONDS, cfg.supervisor.request_timeout_seconds)
            reply = client.request("uploader.wake", {}, target="uploader", timeout=timeout)
            return bool(reply.ok)
        except (ControlTimeout, ProtocolError, zmq.ZMQError):
            return False
        finally:
            client.close()
    finally:
        ctx.term()


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch).isoformat(sep=" ", timespec="seconds")


@queue_app.command("list")
def list_reports(
    state: StateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON (no report bodies).")] = (
        False
    ),
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """List queued reports: id, state, failed attempts, when queued, next attempt or last error.

    'failures' counts the attempts that failed (a report uploaded at the first try shows 0).
    """
    if state is not None and state.lower() not in _STATES:
        typer.echo(f"error: --state must be one of {', '.join(_STATES)}", err=True)
        raise typer.Exit(2)
    _, _, queue = _open(config, instance)
    states = [state.lower()] if state else ["pending", "failed"]
    items = [item for name in states for item in queue.list(name)]
    if as_json:
        typer.echo(json.dumps([item.summary() for item in items], indent=2))
        return
    counts = queue.counts()
    typer.echo(
        f"queue {queue.root}: {counts.pending} pending, {counts.failed} failed, "
        f"{counts.completed} completed"
    )
    for item in items:
        meta = item.meta
        if item.state == "pending":
            detail = f"next {_when(meta.next_attempt)}" if meta.next_attempt else "due"
        elif item.state == "completed":
            detail = f"uploaded {_when(meta.uploaded_at)}"
        else:
            detail = "failed"
        if meta.last_error and item.state != "completed":
            detail += f"  error: {meta.last_error}"
        typer.echo(
            f"{item.id}  {item.state:<9} failures {meta.attempts:<3} queued {_when(meta.queued_at)}"
            f"  {meta.source_file or '-'}  {detail}"
        )


@queue_app.command("show")
def show(
    report_id: Annotated[
        str, typer.Argument(help="The report id, or its first characters as events print it.")
    ],
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Print one queued report: its state, meta and WSJF body, as JSON."""
    _, _, queue = _open(config, instance)
    item = queue.get(_report_id_or_exit(report_id, queue))
    if item is None:
        typer.echo(f"error: report {report_id} is not in the queue", err=True)
        raise typer.Exit(1)
    document = {"state": item.state, "meta": item.meta.to_json(), "report": item.report}
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


@queue_app.command("retry")
def retry(
    report_id: Annotated[
        str | None,
        typer.Argument(
            help="The failed report to send again: its id, or the id's first characters.",
            show_default=False,
        ),
    ] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Send every failed report again.")
    ] = False,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Move failed reports back to pending (attempts reset) and wake the uploader."""
    if (report_id is None) == (not all_failed):
        typer.echo("error: give either a report id or --all-failed", err=True)
        raise typer.Exit(2)
    cfg, paths, queue = _open(config, instance)
    if all_failed:
        moved = queue.retry_all_failed()
        typer.echo(f"{moved} failed report(s) back in pending")
    else:
        assert report_id is not None
        canonical = _report_id_or_exit(report_id, queue)
        if not queue.retry(canonical):
            item = queue.get(canonical)
            where = f"it is {item.state}" if item else "it is not in the queue"
            typer.echo(f"error: report {canonical} is not failed ({where})", err=True)
            raise typer.Exit(1)
        moved = 1
        typer.echo(f"report {canonical} back in pending")
    if moved and not wake_uploader(cfg, paths):
        typer.echo("uploader not reachable: it will send them when it runs", err=True)


@queue_app.command("purge-completed")
def purge_completed(
    max_age_days: Annotated[
        float | None,
        typer.Option(
            "--max-age-days",
            help="Delete completed reports uploaded more than this many days ago (> 0).",
            show_default=False,
        ),
    ] = None,
    max_count: Annotated[
        int | None,
        typer.Option(
            "--max-count",
            help="Keep only this many completed reports, the newest (1 or more).",
            show_default=False,
        ),
    ] = None,
    purge_all: Annotated[
        bool, typer.Option("--all", help="Delete every completed report.")
    ] = False,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Delete completed reports: every one (--all), or those beyond an age or count limit.

    Pending and failed reports stay. Give --all, or --max-age-days and/or --max-count.
    """
    _check_purge_limits(max_age_days, max_count, purge_all)
    _, _, queue = _open(config, instance)
    max_age_s = max_age_days * 86400.0 if max_age_days is not None else None
    removed = queue.purge_completed(max_count=max_count, max_age_s=max_age_s)
    typer.echo(f"deleted {removed} completed report(s)")


def _check_purge_limits(max_age_days: float | None, max_count: int | None, purge_all: bool) -> None:
    """Refuse a purge whose meaning could surprise, before anything is deleted.

    In the config, ``completed_max_age_days = 0`` and ``completed_max_count = 0`` mean "no
    limit", so a 0 here must not silently mean the opposite (delete everything). Deleting
    everything is a deliberate ``--all``, and a bare command (which once deleted everything)
    now asks for one.
    """
    limited = max_age_days is not None or max_count is not None
    problem = ""
    if purge_all and limited:
        problem = "--all deletes every completed report: give it alone, without limits"
    elif not purge_all and not limited:
        problem = "give --all to delete every completed report, or --max-age-days / --max-count"
    elif max_age_days is not None and not max_age_days > 0:
        problem = "--max-age-days must be more than 0 (to delete every completed report: --all)"
    elif max_count is not None and max_count < 1:
        problem = "--max-count must be 1 or more (to delete every completed report: --all)"
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
