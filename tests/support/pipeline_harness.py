"""The whole report pipeline as a user runs it, for end-to-end and chaos tests.

``Pipeline`` owns a short private folder under /tmp (ipc:// socket paths must stay short), an
in-process :class:`~wats.server.testing.EmbeddedServer` the config's ``[server] url`` points at,
and a real supervisor (``python -m wats.supervisor --config ...``) running the default pipeline
workers (watcher, converter, uploader) plus health, with WSJF and WSXF converters watching folders
in that tree. Tests drop files into the watch folders, run the real CLI against the instance and
look at the server's store and the folders. Waiting is always polling against a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from wats.config.folders import ConverterFolders, converter_folders
from wats.config.load import load_config
from wats.config.models import ClientConfig
from wats.fsutil import is_temp_name
from wats.protocol.addresses import read_endpoints
from wats.protocol.bus import ControlClient
from wats.queue import ReportQueue
from wats.server.testing import EmbeddedServer

__all__ = [
    "CLI",
    "TOKEN_ENV",
    "EventStream",
    "Pipeline",
    "pipeline",
    "temp_files",
    "wait_for",
]

T = TypeVar("T")

# ``python -m wats.cli.main`` registers no sub-commands (the module runs as __main__ while the
# command modules attach to ``wats.cli.main.app``), so call the entry point like the script does.
CLI = [sys.executable, "-c", "from wats.cli.main import app; app()"]
TOKEN_ENV = "WATS_PIPELINE_TEST_TOKEN"

FAST_SUPERVISOR: dict[str, Any] = {
    "heartbeat_interval_seconds": 0.2,
    "heartbeat_misses": 5,
    "heartbeat_grace_seconds": 0.4,
    "stop_grace_seconds": 3.0,
    "backoff_first_seconds": 0.0,
    "backoff_base_seconds": 0.1,
    "backoff_max_seconds": 0.5,
    "flap_max_restarts": 100,
    "flap_window_seconds": 30.0,
    "flap_cooldown_seconds": 1.0,
    "orphan_timeout_seconds": 1.5,
    "request_timeout_seconds": 3.0,
}

FAST_QUEUE: dict[str, Any] = {
    "retry_base_seconds": 0.2,
    "retry_max_seconds": 1.0,
    "rescan_seconds": 2.0,
    "max_in_flight": 8,
}

# Retry of a pending file after its sandbox died: short, so a killed converter costs little.
CONVERTER_DEFAULTS: dict[str, Any] = {"retry_delay_seconds": 0.5}


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, step: float = 0.05) -> T:
    """Return ``probe()``'s first truthy value; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        threading.Event().wait(step)  # the poll interval of a deadline loop, not a sync sleep


def temp_files(*roots: Path) -> list[Path]:
    """Every ``.*.tmp`` file (the durable writers' temp names) under ``roots``."""
    found: list[Path] = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            found += [Path(folder) / name for name in files if is_temp_name(name)]
    return found


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(type(value))


def _table(header: str, values: dict[str, Any]) -> list[str]:
    return ["", header, *(f"{k} = {_toml(v)}" for k, v in values.items())]


class EventStream:
    """``wats-supervisor events --json`` as a subprocess, its lines read by a thread so a test
    can wait for an event with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """The first event (already seen or arriving before the deadline) that ``match``es."""
        for event in self.seen:
            if match(event):
                return event
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                self.seen.append(event)
                if match(event):
                    return event
        kinds = sorted({e.get("type", "?") for e in self.seen})
        raise AssertionError(f"no {what} within {timeout} s; event types seen: {kinds}")

    def close(self) -> None:
        """Stop the ``events`` process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Pipeline:
    """One instance of the station client delivering to an embedded server (module docstring).

    ``converters`` maps a converter name to its ``[[converters]]`` table (``watch_folder`` is
    filled in under the root); ``workers`` holds ``[workers.NAME]`` tables merged over the
    defaults; ``queue`` the ``[queue]`` settings.
    """

    root: Path
    server: EmbeddedServer
    converters: dict[str, dict[str, Any]]
    workers: dict[str, dict[str, Any]]
    queue_settings: dict[str, Any]
    health_interval: float = 0.3
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _streams: list[EventStream] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config_path = self.write_config()
        self.cfg: ClientConfig = load_config(self.config_path)[0]
        self.env = {**os.environ, TOKEN_ENV: self.server.token, "COLUMNS": "200"}
        self.queue = ReportQueue.for_config(self.cfg)
        for name in self.converters:
            self.folders(name).ensure(watch=True)

    # ---- config and folders -------------------------------------------------------------

    def write_config(self) -> Path:
        """The instance's config.toml (rewritten from the current settings)."""
        lines = [
            "[instance]",
            'name = "pipeline-test"',
            *_table("[server]", {"url": self.server.url, "token_env": TOKEN_ENV}),
            *_table("[station]", {"name_source": "config", "name": "e2e-station"}),
            *_table("[health]", {"interval_seconds": self.health_interval, "timeout_seconds": 2}),
            *_table("[supervisor]", FAST_SUPERVISOR),
            *_table("[queue]", {**FAST_QUEUE, **self.queue_settings}),
            *_table("[workers.sync]", {"enabled": False}),
        ]
        for name, spec in self.workers.items():
            lines += _table(f"[workers.{name}]", spec)
        for name, conv in self.converters.items():
            table = {
                "name": name,
                "watch_folder": str(self.root / "watch" / name),
                **CONVERTER_DEFAULTS,
                **conv,
            }
            lines += _table("[[converters]]", table)
        lines += [
            *_table("[logging]", {"level": "info"}),
            *_table(
                "[paths]",
                {"data_dir": str(self.root / "data"), "runtime_dir": str(self.root / "run")},
            ),
        ]
        path = self.root / "config.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def folders(self, converter: str) -> ConverterFolders:
        """The resolved watch/pending/done/error/state folders of ``converter``."""
        return converter_folders(self.cfg, self.cfg.converter(converter))

    def watch(self, converter: str) -> Path:
        """``converter``'s watch folder."""
        return self.folders(converter).watch

    def drop(self, converter: str, name: str | bytes, data: bytes) -> Path:
        """Write a file into ``converter``'s watch folder the way a station would (open, write,
        close). ``name`` may be bytes (a non-UTF-8 file name)."""
        path = os.path.join(os.fsencode(self.watch(converter)), os.fsencode(name))
        with open(path, "wb") as handle:
            handle.write(data)
        return Path(os.fsdecode(path))

    def drop_atomically(self, converter: str, name: str, data: bytes) -> Path:
        """Write to a temp name in the watch folder and rename (the atomic-writer pattern)."""
        folder = self.watch(converter)
        temp = folder / f".{name}.drop.tmp"
        temp.write_bytes(data)
        final = folder / name
        os.replace(temp, final)
        return final

    def files(self, converter: str, which: str) -> list[Path]:
        """The entries of one of ``converter``'s folders (watch/pending/done/error)."""
        folder: Path = getattr(self.folders(converter), which)
        try:
            return sorted(p for p in folder.iterdir() if not is_temp_name(p.name))
        except FileNotFoundError:
            return []

    def sources(self, converter: str, which: str) -> list[Path]:
        """Source files in a folder (the error folder's ``.error.json`` files left out)."""
        return [p for p in self.files(converter, which) if not p.name.endswith(".error.json")]

    def error_reason(self, source: Path) -> dict[str, Any]:
        """The ``.error.json`` beside a file in an error folder."""
        reason = source.with_name(source.name + ".error.json")
        return json.loads(reason.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    # ---- the server ---------------------------------------------------------------------

    def server_headers(self) -> list[Any]:
        """Every report header the server stores."""
        return self.server.context.store.query()

    def server_count(self) -> int:
        """Distinct reports on the server."""
        return self.server.report_count()

    # ---- the supervisor -----------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        """Start ``python -m wats.supervisor`` and wait until it answers with its own pid."""
        out = open(self.root / "supervisor.out", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wats.supervisor", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=self.env,
            )
        finally:
            out.close()
        self.starts += 1
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"supervisor exited with {proc.returncode}: {self.output()}")
            with contextlib.suppress(OSError, ValueError, TimeoutError, KeyError):
                reply = self.request("ping", timeout=0.5)
                return bool(reply.ok and reply.result["pid"] == proc.pid)
            return False

        wait_for(answers, timeout, "the supervisor to answer ping")

    def request(self, command: str, args: dict[str, Any] | None = None, *,
                target: str | None = None, timeout: float = 5.0) -> Any:
        """One control request (a throwaway client; endpoints read afresh each time)."""
        import zmq

        ctx = zmq.Context.instance()
        client = ControlClient(ctx, read_endpoints(self.root / "run").control, "e2e")
        try:
            return client.request(command, args, target=target, timeout=timeout)
        finally:
            client.close()

    def worker_pids(self) -> dict[str, int | None]:
        """Worker name → pid of its RUNNING process (None otherwise), from ``status``."""
        reply = self.request("status")
        assert reply.ok, reply.error
        return {
            w["name"]: (w["pid"] if w["state"] == "RUNNING" else None)
            for w in reply.result["workers"]
        }

    def wait_workers(self, names: tuple[str, ...] = ("watcher", "converter", "uploader"),
                     timeout: float = 20.0) -> dict[str, int]:
        """Wait until every worker in ``names`` is RUNNING; their pids."""

        def running() -> dict[str, int] | None:
            with contextlib.suppress(OSError, TimeoutError, ValueError, KeyError):
                pids = self.worker_pids()
                if all(pids.get(n) for n in names):
                    return {n: int(pids[n] or 0) for n in names}
            return None

        return wait_for(running, timeout, f"workers {names} RUNNING")

    def kill_supervisor(self) -> int:
        """SIGKILL the supervisor (its workers notice it is gone and exit as orphans)."""
        assert self.proc is not None
        pid = self.proc.pid
        self.proc.kill()
        self.proc.wait(timeout=10)
        return pid

    def stop(self, timeout: float = 20.0) -> None:
        """Shut the supervisor down cleanly (SIGKILL if it will not go)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(Exception):
            self.request("shutdown", timeout=3.0)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def output(self) -> str:
        """What the supervisor printed (its console log), for failure messages."""
        path = self.root / "supervisor.out"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    # ---- the CLI ------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """``wats-supervisor ARGS --config <this instance>``."""
        return subprocess.run(
            [*CLI, *args, "--config", str(self.config_path)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def status_json(self) -> dict[str, Any]:
        """``wats-supervisor status --json``."""
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def events(self, *args: str) -> EventStream:
        """Start ``wats-supervisor events --json ARGS`` (stopped at teardown)."""
        process = subprocess.Popen(
            [*CLI, "events", "--json", *args, "--config", str(self.config_path)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        stream = EventStream(process)
        self._streams.append(stream)
        return stream

    def close(self) -> None:
        """Stop event streams and the supervisor."""
        for stream in self._streams:
            stream.close()
        self.stop()


@contextlib.contextmanager
def pipeline(
    *,
    converters: dict[str, dict[str, Any]] | None = None,
    workers: dict[str, dict[str, Any]] | None = None,
    queue_settings: dict[str, Any] | None = None,
    start: bool = True,
    health_interval: float = 0.3,
    server_token: str | None = None,
) -> Iterator[Pipeline]:
    """A started :class:`Pipeline` (WSJF and WSXF converters by default), torn down after."""
    root = Path(tempfile.mkdtemp(prefix="ws", dir="/tmp"))
    default_workers: dict[str, dict[str, Any]] = {
        "watcher": {"args": {"debounce_ms": 100, "rescan_seconds": 2.0}},
        "converter": {"args": {"rescan_seconds": 2.0, "max_parallel": 2}},
        "uploader": {
            "args": {
                "rate_limit_requests": 100000,
                "probe_first_seconds": 0.2,
                "probe_max_seconds": 0.5,
                "stats_interval_seconds": 0.2,
            }
        },
    }
    merged = dict(default_workers)
    for name, spec in (workers or {}).items():
        base = dict(merged.get(name, {}))
        args = {**base.get("args", {}), **spec.get("args", {})}
        merged[name] = {**base, **spec, "args": args}
    try:
        token = {"token": server_token} if server_token else {}
        with EmbeddedServer(root / "server", **token) as server:
            pipe = Pipeline(
                root=root,
                server=server,
                converters=converters
                if converters is not None
                else {"wsjf": {"converter": "wsjf"}, "wsxf": {"converter": "wsxf"}},
                workers=merged,
                queue_settings=queue_settings or {},
                health_interval=health_interval,
            )
            try:
                if start:
                    pipe.start()
                yield pipe
            finally:
                pipe.close()
    finally:
        _make_removable(root)
        shutil.rmtree(root, ignore_errors=True)


def _make_removable(root: Path) -> None:
    """chmod 000 files a test left behind would survive rmtree when not root; undo that."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, name), 0o600)


# ---- input files ------------------------------------------------------------------------------


def use_stored_login(pipe: Pipeline, *, debug_logging: bool = False) -> Path:
    """Make a not yet started instance take its token from the store ``wats-supervisor login``
    writes, not from the environment: the token variable is dropped from the supervisor's
    environment and the machine id comes from a file of the test's own (returned; the test
    sets ``MACHINE_ID_FILE_ENV`` to it in its own process before logging in)."""
    from wats.credentials.crypto import MACHINE_ID_FILE_ENV

    pipe.env = {k: v for k, v in pipe.env.items() if k != TOKEN_ENV}
    machine = pipe.root / "machine-id"
    machine.write_text("5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e\n", encoding="utf-8")
    pipe.env[MACHINE_ID_FILE_ENV] = str(machine)
    if debug_logging:
        text = pipe.config_path.read_text(encoding="utf-8")
        pipe.config_path.write_text(text.replace('level = "info"', 'level = "debug"'), "utf-8")
    return machine


def wsjf_copy(sample: bytes | str, serial: str) -> bytes:
    """A WSJF sample with a fresh ``id`` and serial number: distinct content, a distinct report
    (the pipeline derives report ids from the content hash)."""
    import uuid

    data = json.loads(sample)
    data["id"] = str(uuid.uuid4())
    data["sn"] = serial
    return json.dumps(data).encode("utf-8")


def wsxf_copy(sample: str, serial: str) -> bytes:
    """A WSXF sample whose report elements carry ``serial`` and fresh ids (sub-units keep
    theirs)."""
    import re
    import uuid

    def fresh_id(match: re.Match[str]) -> str:
        return match.group(1) + str(uuid.uuid4()).upper() + match.group(2)

    text = re.sub(r'(<Report\b[^>]*?\bSN=")[^"]*(")', rf"\g<1>{serial}\g<2>", sample)
    text = re.sub(r'(<Report\b[^>]*?\bID=")[^"]*(")', fresh_id, text)
    return text.encode("utf-8")


def small_report(serial: str, *, pn: str = "CHAOS-PN") -> bytes:
    """A small valid UUT report (WSJF bytes) built with the builder, serial ``serial``."""
    from wats.api.builder import UUTReportBuilder
    from wats.api.models import CompOp, dump_report

    builder = UUTReportBuilder(
        pn=pn, sn=serial, rev="A", process_code=10,
        station_name="chaos", location="lab", purpose="test",
    )
    with builder.sequence("Power") as power:
        power.numeric("VCC", 3.3, CompOp.GELE, low=3.2, high=3.4, unit="V")
        power.pass_fail("Boot", True)
    return json.dumps(dump_report(builder.build())).encode("utf-8")
