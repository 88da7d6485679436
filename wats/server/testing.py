"""Run the real server for tests: in-process on a free port, or as a CLI subprocess.

``EmbeddedServer`` is the same app, store and uvicorn stack as ``wats-supervisor server``, started
in a background thread on a pre-bound 127.0.0.1 socket, so tests talk real HTTP over real sockets.
The test owns it: the context manager stops the server and removes a temporary data folder it made.
Readiness is waited for by polling with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from wats.server.app import build_context, create_app
from wats.server.auth import make_token
from wats.server.context import DEFAULT_MAX_BODY_MB, ServerContext
from wats.server.faults import FaultSettings
from wats.server.serving import RefusableServer, bind_socket
from wats.server.settings import ServerSettings

DEFAULT_TEST_TOKEN = make_token("test", "secret")
URL_LINE = re.compile(r"^wats-server-url: (?P<url>http://\S+)$")


class EmbeddedServer:
    """The embedded WATS server in a background thread of this process.

    Attributes once started: ``url`` (``http://127.0.0.1:<port>``), ``port``, ``token`` (the Basic
    token to send), ``data_dir``, ``context`` (store, reference data, faults).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        token: str | None = DEFAULT_TEST_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        reference_file: Path | None = None,
        faults: FaultSettings | None = None,
        ready_timeout: float = 10.0,
        max_body_mb: float = DEFAULT_MAX_BODY_MB,
    ) -> None:
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="wats-server-"))
        self.host = host
        self._settings = ServerSettings(
            data_dir=self.data_dir,
            host=host,
            port=port,
            tokens=[token] if token else [],
            reference_file=reference_file,
            faults=faults or FaultSettings(),
            max_body_mb=max_body_mb,
        )
        self._ready_timeout = ready_timeout
        self._context: ServerContext | None = None
        self._server: RefusableServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.token = token or ""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedServer(url={self.url!r}, data_dir={str(self.data_dir)!r}, {state})"

    @property
    def url(self) -> str:
        """Base URL clients use (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def context(self) -> ServerContext:
        """Direct access to the store, reference data and faults (for assertions)."""
        if self._context is None:
            raise RuntimeError("server not started")
        return self._context

    @property
    def auth_headers(self) -> dict[str, str]:
        """``{"Authorization": "Basic <token>"}`` for httpx."""
        return {"Authorization": f"Basic {self.token}"}

    def start(self) -> EmbeddedServer:
        """Bind, start serving in a thread and return once requests are answered."""
        if self.running:
            return self
        self._context = build_context(self._settings)
        if not self.token:
            self.token = make_token(*self._credentials())
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self._context),
            lifespan="off",
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=5,
        )
        self._server = RefusableServer(config)
        self._context.connection_control = self._server
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"wats-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + self._ready_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError("embedded WATS server exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"embedded WATS server not ready in {self._ready_timeout}s")
            self._thread.join(timeout=0.01)  # waits on the thread, returns early if it dies
        return self

    def _credentials(self) -> tuple[str, str]:
        from wats.server.auth import load_or_create_credentials

        creds = load_or_create_credentials(self.data_dir)
        return creds.username, creds.password

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close the store, remove a temporary data folder we created."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None
        self._server = None
        self._thread = None
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- faults ----------------------------------------------------------------------------

    def set_faults(self, settings: FaultSettings | None = None, **changes: Any) -> FaultSettings:
        """Replace the faults with ``settings``, or change only the given fields (keyword form)."""
        faults = self.context.faults
        if settings is not None:
            faults.configure(settings)
            if changes:
                return faults.update(**changes)
            return faults.settings
        return faults.update(**changes)

    def clear_faults(self) -> None:
        """Back to a well-behaved server."""
        self.context.faults.clear()

    def refuse_connections(self) -> None:
        """Close the listening socket: connections are refused until :meth:`accept_connections`."""
        server = self._require_server()
        server.run_in_loop(server.stop_listening())

    def accept_connections(self) -> None:
        """Listen again on the same port (returns once connections are accepted)."""
        server = self._require_server()
        server.run_in_loop(server.start_listening())

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """``with server.unreachable(): ...`` — refuse connections inside the block."""
        self.refuse_connections()
        try:
            yield
        finally:
            self.accept_connections()

    @property
    def refusing(self) -> bool:
        """True while connections are refused."""
        return self._server is not None and self._server.refusing

    def report_count(self) -> int:
        """How many distinct reports the store holds."""
        return self.context.store.count()

    def _require_server(self) -> RefusableServer:
        if self._server is None or not self.running:
            raise RuntimeError("server not running")
        return self._server


class ServerProcess:
    """``wats-supervisor server`` as a child process (tests of the CLI, benchmarks).

    Starts with ``--port 0`` unless told otherwise and reads the actual URL from the
    ``wats-server-url: ...`` line the command prints. ``stop()`` sends SIGTERM and waits.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        token: str | None = DEFAULT_TEST_TOKEN,
        port: int = 0,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 20.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.token = token or ""
        self.url = ""
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        args = ["server", "--host", "127.0.0.1", "--port", str(port), "--data", str(data_dir)]
        if token:
            args += ["--token", token]
        self.command = [
            sys.executable,
            "-c",
            "from wats.cli.main import app; app()",
            *args,
            *extra_args,
        ]
        self._ready_timeout = ready_timeout
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ServerProcess(url={self.url!r}, pid={self.process.pid if self.process else None})"

    def start(self) -> ServerProcess:
        """Spawn the command and wait (bounded) for its URL line."""
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self._reader = threading.Thread(target=self._read, name="wats-server-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self._ready_timeout
        while not self.url:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise TimeoutError(
                    f"server printed no URL in {self._ready_timeout}s: {self.output}"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait(5)
                raise RuntimeError(f"server exited with {code} before serving: {self.output}")
            if match := URL_LINE.match(line):
                self.url = match.group("url")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait for a clean exit (SIGKILL after ``timeout``); returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return int(self.process.returncode)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
