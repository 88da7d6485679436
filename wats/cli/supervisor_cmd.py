"""``wats-supervisor start|stop|status|restart|instances``: run and steer one supervisor instance.

``start`` runs the supervisor in this process (foreground) or launches ``python -m
wats.supervisor`` in its own session (``--detach``) and returns once every worker is ready. The
other commands talk to a running supervisor over its control socket; none of them reads the
supervisor's files in a loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from wats.cli.event_format import counted
from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption

# How long --detach waits for every worker to report ready before giving up.
_DETACH_READY_SECONDS = 60.0


def _load(config: Path | None, instance: str | None) -> tuple[Any, Path | None, Any]:
    from wats.cli.config_cmd import load_config_or_exit
    from wats.config.paths import InstancePaths

    cfg, path = load_config_or_exit(config, instance)
    return cfg, path, InstancePaths.for_config(cfg)


def _request(
    paths: Any, cfg: Any, command: str, args: dict[str, Any] | None = None, quiet: bool = False
) -> Any:
    """Send one control request to the instance; exit 1 with a clear message when unreachable."""
    import zmq

    from wats.protocol.addresses import read_endpoints
    from wats.protocol.bus import ControlClient, ControlTimeout

    try:
        addresses = read_endpoints(paths.runtime_dir)
    except (OSError, ValueError):
        if quiet:
            return None
        typer.echo(f"instance {cfg.instance.name!r} is not running", err=True)
        raise typer.Exit(1) from None
    ctx = zmq.Context()
    try:
        client = ControlClient(ctx, addresses.control, f"cli:{os.getpid()}")
        try:
            return client.request(command, args, timeout=cfg.supervisor.request_timeout_seconds)
        except ControlTimeout as exc:
            if quiet:
                return None
            typer.echo(f"instance {cfg.instance.name!r} is not answering: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            client.close()
    finally:
        ctx.term()


def _fail_on_error(reply: Any) -> Any:
    if not reply.ok:
        error = reply.error
        typer.echo(f"error: {error.code}: {error.reason}", err=True)
        raise typer.Exit(1)
    return reply.result


@app.command("start")
def start(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Run in the background; return once every worker is ready."),
    ] = False,
) -> None:
    """Start the supervisor of an instance (foreground unless --detach).

    Before any worker is spawned it checks what can be checked: the instance is not running
    already, the embedded server's port is free, every watch folder exists (or is created where
    create_watch_folder = true); each problem is one line naming what to change.
    """
    try:
        _start(config, instance, detach)
    except KeyboardInterrupt:
        # Ctrl-C before the supervisor's own handler is in place (or after it is gone):
        # nothing was left running; one line, not a traceback.
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def _start(config: Path | None, instance: str | None, detach: bool) -> None:
    from wats.cli.config_cmd import exit_on_converter_problems

    cfg, path, paths = _load(config, instance)
    exit_on_converter_problems(cfg, path, load_site=False)
    _exit_on_start_problems(cfg, paths)
    if detach:
        _start_detached(cfg, path, paths, instance)
        return
    from wats.platform import LockHeld
    from wats.protocol.security import BusSecurityError
    from wats.supervisor.run import run_supervisor

    _print_pointers(cfg, paths, path, instance, foreground=True)
    try:
        run_supervisor(cfg, path, console=sys.stderr)
    except LockHeld as exc:
        typer.echo(
            f"error: instance {cfg.instance.name!r} is already running (pid {exc.pid})", err=True
        )
        raise typer.Exit(1) from None
    except BusSecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _exit_on_start_problems(cfg: Any, paths: Any) -> None:
    """Print each reason the instance cannot start and exit (2: a setting, 1: it runs)."""
    from wats.supervisor.preflight import exit_code, start_problems

    problems = start_problems(cfg, paths)
    if not problems:
        return
    for problem in problems:
        typer.echo(problem.line(), err=True)
    raise typer.Exit(exit_code(problems))


def _print_pointers(
    cfg: Any, paths: Any, path: Path | None, instance: str | None, *, foreground: bool
) -> None:
    """Tell a new user where to look: the log, the server and its page, each converter's
    folders, and the other commands, spelled with the options that reach this instance."""
    from wats.cli.invocation import command_name
    from wats.config.folders import converter_folders

    option = _target_options(path, instance)
    command = command_name()
    lines = [f"instance {cfg.instance.name!r}", f"  log file:   {paths.log_file}"]
    if cfg.server.uses_embedded:
        url = cfg.server.effective_url()
        lines.append(f"  server:     embedded WATS server, page and API at {url}/")
        lines.append(
            f"  login:      user and password in {paths.server_data_dir / 'credentials.json'}"
        )
    else:
        lines.append(f"  server:     {cfg.server.effective_url()}")
    for conv in cfg.converters:
        if not conv.enabled:
            continue
        folders = converter_folders(cfg, conv)
        after = {
            "move": f"moved to {folders.done}",
            "archive": f"archived in {folders.archive}",
            "delete": "deleted",
            "keep": "left in the watch folder",
        }[conv.post_action]
        lines.append(f"  converter {conv.name!r}: watches {folders.watch}")
        lines.append(f"      converted files {after}; failed ones to {folders.error}")
    lines.append(f"  status:     {command} status{option}")
    lines.append(f"  live view:  {command} monitor{option}")
    lines.append(f"  events:     {command} events{option}")
    stop_hint = "Ctrl-C here, or " if foreground else ""
    lines.append(f"  stop:       {stop_hint}{command} stop{option}")
    typer.echo("\n".join(lines), err=True)


def _target_options(path: Path | None, instance: str | None) -> str:
    """The options another command needs to reach this instance: ``--config`` unless the
    config is the per-user default (a bare ``wats-supervisor stop`` would otherwise act on the
    default instance, not this one), and ``--instance`` when it was given."""
    import shlex

    from wats.config.paths import default_config_path

    option = ""
    if path is not None and Path(path).resolve() != default_config_path().resolve():
        option += f" --config {shlex.quote(str(path))}"
    if instance:
        option += f" --instance {shlex.quote(instance)}"
    return option


def _start_detached(cfg: Any, path: Path | None, paths: Any, instance: str | None) -> None:
    paths.ensure()
    cmd = [sys.executable, "-m", "wats.supervisor", "--quiet"]
    if path is not None:
        cmd += ["--config", str(path)]
    if instance is not None:
        cmd += ["--instance", instance]
    console_log = paths.log_dir / "supervisor-console.log"
    with open(console_log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + _DETACH_READY_SECONDS
    status: dict[str, Any] | None = None
    offset = console_log.stat().st_size if console_log.exists() else 0
    try:
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                with open(console_log, "rb") as log:
                    log.seek(offset)
                    tail = log.read().decode("utf-8", errors="replace").strip()
                typer.echo(tail or f"error: the supervisor exited with code {code}", err=True)
                raise typer.Exit(code or 1)
            reply = _request(paths, cfg, "status", quiet=True)
            if reply is not None and reply.ok and reply.result["supervisor"]["pid"] == proc.pid:
                status = reply.result
                workers = status["workers"]
                if all(w["state"] == "RUNNING" and w["ready"] for w in workers):
                    _print_status(status)
                    _print_pointers(cfg, paths, path, instance, foreground=False)
                    return
                failed = [w for w in workers if w["state"] == "FAILED"]
                if failed:
                    _print_status(status)
                    for w in failed:
                        typer.echo(f"error: {w['name']}: {_failure_text(w)}", err=True)
                    _stop_launched(proc, cfg)
                    typer.echo(
                        f"error: instance {cfg.instance.name!r} did not start; stopped it "
                        f"(see {paths.log_file})",
                        err=True,
                    )
                    raise typer.Exit(1)
            time.sleep(0.1)  # polling a child we just launched; nothing to wait on instead
    except KeyboardInterrupt:
        _stop_launched(proc, cfg)
        raise
    if status is not None:
        _print_status(status)
    _stop_launched(proc, cfg)
    typer.echo(
        f"error: not every worker was ready within {_DETACH_READY_SECONDS:g} s; stopped the "
        f"supervisor (pid {proc.pid}); see {paths.log_file}",
        err=True,
    )
    raise typer.Exit(1)


def _stop_launched(proc: subprocess.Popen[bytes], cfg: Any) -> None:
    """Stop the supervisor ``start --detach`` launched: a failed start leaves nothing running.

    SIGTERM is its ordered shutdown (workers first); SIGKILL of its session only if that does
    not finish within every stop group's grace period.
    """
    import signal

    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=3 * cfg.supervisor.stop_grace_seconds + 10.0)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError, AttributeError):  # (no killpg on Windows)
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the workers die with it
        proc.wait(timeout=10.0)


def _failure_text(worker: dict[str, Any]) -> str:
    """Why a worker is FAILED, for people: its start failure's message, or the flapping."""
    failure = worker.get("failure") or {}
    return str(failure.get("message") or failure.get("reason") or "failed")


@app.command("stop")
def stop(config: ConfigOption = None, instance: InstanceOption = None) -> None:
    """Stop the supervisor of an instance and all its workers (producers first)."""
    import psutil

    cfg, _, paths = _load(config, instance)
    ping = _fail_on_error(_request(paths, cfg, "ping"))
    _fail_on_error(_request(paths, cfg, "shutdown"))
    pid = int(ping["pid"])
    # Every stop group may use its full grace period before the SIGKILL.
    limit = 3 * cfg.supervisor.stop_grace_seconds + 10.0
    try:
        psutil.Process(pid).wait(timeout=limit)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        typer.echo(f"error: supervisor pid {pid} still running after {limit:g} s", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"instance {cfg.instance.name!r} stopped (pid {pid})")


@app.command("status")
def status(
    config: ConfigOption = None,
    instance: InstanceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the supervisor, the connection and every worker of a running instance.

    Who is logged in where (never the token) is shown even when the instance is not running:
    it comes from the connection record, not from the supervisor.
    """
    from wats.cli.login_cmd import login_lines, login_summary

    cfg, _, paths = _load(config, instance)
    login = login_summary(cfg)
    try:
        result = _fail_on_error(_request(paths, cfg, "status"))
    except typer.Exit:
        if as_json:
            typer.echo(json.dumps({"supervisor": None, "login": login}, indent=2))
        else:
            typer.echo("\n".join(login_lines(login, embedded=not cfg.server.url, running=False)))
        raise
    result["queue"] = _queue_counts(cfg, paths)
    result["login"] = login
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_status(result)
        typer.echo("\n".join(login_lines(login, embedded=not cfg.server.url)))


@app.command("restart")
def restart(
    worker: Annotated[str, typer.Argument(help="Name of the worker to restart.")],
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Restart one worker (graceful stop, then a fresh process; resets its backoff)."""
    cfg, _, paths = _load(config, instance)
    result = _fail_on_error(_request(paths, cfg, "restart", {"worker": worker}))
    typer.echo(f"worker {worker!r}: {result['state']}")


@app.command("instances")
def instances(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the instances running on this machine (name, pid, config, started)."""
    from wats.config.paths import instances_root
    from wats.supervisor.state import read_state

    rows = []
    root = instances_root()
    for state_file in sorted(root.glob("*/supervisor-state.json")) if root.is_dir() else []:
        state = read_state(state_file)
        if state is None or not state.is_running():
            continue
        rows.append(
            {
                "name": state.instance,
                "pid": state.pid,
                "config": state.config,
                "started": datetime.fromtimestamp(state.started).isoformat(timespec="seconds"),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no running instances")
        return
    for row in rows:
        typer.echo(
            f"{row['name']:<16} pid {row['pid']:<8} started {row['started']}  "
            f"config {row['config'] or '(defaults)'}"
        )


def _queue_counts(cfg: Any, paths: Any) -> dict[str, int] | None:
    """Pending/failed/completed counted from the queue folders (None if they cannot be read)."""
    from wats.queue import ReportQueue

    try:
        return ReportQueue.for_config(cfg, paths).counts().to_json()
    except OSError:
        return None


def _print_status(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from wats.cli.monitor_view import bytes_text  # the monitor's unit, so the two agree

    sup = result["supervisor"]
    conn = result.get("connection") or {}
    console = Console()
    console.print(
        f"instance [bold]{sup['instance']}[/] supervisor pid {sup['pid']} "
        f"up {_duration(sup['uptime'])} config {sup['config'] or '(defaults)'}"
    )
    if conn:
        since = conn.get("since")
        when = f" since {_clock(float(since))}" if since is not None else ""
        console.print(f"connection {conn.get('status')}{when} {conn.get('url', '')}")
    else:
        console.print("connection unknown (no health report yet)")
    queue = result.get("queue")
    if queue is not None:
        console.print(
            f"queue {queue['pending']} pending, {queue['failed']} failed, "
            f"{queue['completed']} completed"
        )
    converter = next((w for w in result["workers"] if w["name"] == "converter"), None)
    files = (converter or {}).get("detail") or {}
    if "converted" in files:
        # the converter worker's own counts, since it (re)started: not kept across restarts
        console.print(
            f"files {files['converted']} converted, {files.get('failed', 0)} failed, "
            f"{counted(files.get('duplicates', 0), 'duplicate report')} (already delivered; "
            "nothing new sent) since the converter started"
        )
    table = Table("worker", "state", "pid", "restarts", "uptime", "rss", "cpu%", "last exit")
    for w in result["workers"]:
        table.add_row(
            w["name"],
            w["state"],
            str(w["pid"] or "-"),
            str(w["restarts"]),
            _duration(w["uptime"]),
            bytes_text(w["rss"]) if w["rss"] else "-",
            f"{w['cpu_percent']:.1f}" if w["cpu_percent"] is not None else "-",
            _last_exit(w["last_exit"]),
        )
    console.print(table)
    for w in result["workers"]:
        if w["state"] == "FAILED":
            console.print(f"{w['name']} FAILED: {_failure_text(w)}", markup=False)


def _clock(epoch: float) -> str:
    """A moment as local time, with the date when it is not today."""
    moment = datetime.fromtimestamp(epoch)
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S")
    return moment.isoformat(sep=" ", timespec="seconds")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _last_exit(last: dict[str, Any] | None) -> str:
    if not last:
        return "-"
    failure = last.get("failure")
    if failure:
        return str(failure.get("message") or failure.get("reason"))
    how = f"signal {last['signal']}" if last.get("signal") else f"code {last.get('code')}"
    return f"{how} ({last.get('reason')})"
