"""The server worker: the embedded WATS-compatible server as a supervised process.

Used when the config names no server URL (the default), so a fresh clone runs the whole system
locally. It serves ``wats.server``'s app with uvicorn in a thread of this worker, on
``[server.embedded] host``/``port``, with data (reports, ``credentials.json``) in
``[server.embedded] data_dir`` (default ``<instance data>/server``). It reports ``ready`` once the
socket accepts connections; if the serving thread dies, the worker fails (exit 1) and the
supervisor restarts it. Command: ``server.info`` (URL, data folder, report count).
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from wats.server.app import build_context, create_app
from wats.server.context import ServerContext
from wats.server.serving import RefusableServer, bind_socket
from wats.server.settings import ServerSettings
from wats.workers.base import Worker, handles
from wats.workers.connection import embedded_data_dir

__all__ = ["ServerWorker"]

_READY_CHECK_SECONDS = 0.02


class ServerWorker(Worker):
    """Runs the embedded server; ``ready`` once it accepts connections."""

    def setup(self) -> None:
        """Open the store, bind the port (a busy port fails the worker at once), start serving."""
        embedded = self.config.server.embedded
        self.data_dir = embedded_data_dir(self.config)
        self.context: ServerContext | None = build_context(
            ServerSettings(data_dir=self.data_dir, host=embedded.host, port=embedded.port)
        )
        try:
            sock = bind_socket(embedded.host, embedded.port)
        except OSError:
            self.context.close()
            raise
        self.port = int(sock.getsockname()[1])
        shown = f"[{embedded.host}]" if ":" in embedded.host else embedded.host
        self.url = f"http://{shown}:{self.port}"
        config = uvicorn.Config(
            create_app(self.context),
            lifespan="off",
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=max(1, int(self.config.supervisor.stop_grace_seconds / 2)),
        )
        self.server = RefusableServer(config)
        self.context.connection_control = self.server
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="wats-server", daemon=True
        )
        self.thread.start()
        self.log.info("embedded server starting", url=self.url, data_dir=str(self.data_dir))
        self._watch = self.every(_READY_CHECK_SECONDS, self._watch_server)

    def _watch_server(self) -> None:
        if not self.thread.is_alive():
            raise RuntimeError("the embedded server's serving thread ended")
        if not self.ready and self.server.started:
            self.ready = True
            self.log.info("embedded server ready", url=self.url)
            # From now on only a dead thread matters: check at the heartbeat's pace.
            self._watch.cancel()
            self._watch = self.every(self.heartbeat_interval, self._watch_server)
        if self.ready:
            self.tick()

    def teardown(self) -> None:
        """Stop serving (in-flight requests finish) and close the store."""
        server = getattr(self, "server", None)
        thread = getattr(self, "thread", None)
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(max(1.0, self.config.supervisor.stop_grace_seconds * 0.6))
            if thread.is_alive():
                server.force_exit = True
                thread.join(1.0)
        if self.context is not None:
            self.context.close()
            self.context = None

    def heartbeat_detail(self) -> dict[str, Any]:
        """The URL (the real port when configured with port 0)."""
        return {"url": self.url}

    @handles("server.info")
    def info(self, args: dict[str, Any]) -> dict[str, Any]:
        """Where the server listens and what it holds."""
        store = self.context.store if self.context is not None else None
        return {
            "url": self.url,
            "data_dir": str(self.data_dir),
            "reports": store.count() if store is not None else None,
            "ready": self.ready,
        }
