"""The server worker: the embedded WATS-compatible server as a supervised process.

Used when the config names no server URL (the default), so a fresh clone runs the whole system
locally. It serves ``wats.server``'s app with uvicorn in a thread of this worker, on
``[server.embedded] host``/``port``, with data (reports, ``credentials.json``) in
``[server.embedded] data_dir`` (default ``<instance data>/server``). It reports ``ready`` once the
socket accepts connections; if the serving thread dies, the worker fails (exit 1) and the
supervisor restarts it. A port held by another process is a start failure
(:class:`~wats.workers.base.StartError`, "port 8080 on 127.0.0.1 in use ..."): after a few such
starts the supervisor marks the worker FAILED with that reason instead of restarting it forever.

Every answer carries ``X-Wats-Instance`` (``wats.workers.connection.embedded_identity``), added
here around the app, so the health worker can tell this instance's server from whatever else
answers on the port. Command: ``server.info`` (URL, data folder, report count).
"""

from __future__ import annotations

import errno
import threading
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wats.protocol.messages import WorkerFailure
from wats.server.app import build_context, create_app
from wats.server.context import ServerContext
from wats.server.serving import RefusableServer, bind_socket
from wats.server.settings import ServerSettings
from wats.workers.base import StartError, Worker, handles
from wats.workers.connection import INSTANCE_HEADER, embedded_data_dir, embedded_identity

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
        except OSError as exc:
            self.context.close()
            self.context = None
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                from wats.supervisor.preflight import port_holder

                raise StartError(
                    WorkerFailure.PORT_IN_USE,
                    f"port {embedded.port} on {embedded.host} in use "
                    f"({port_holder(embedded.port)}); set [server.embedded] port",
                ) from None
            raise
        self.port = int(sock.getsockname()[1])
        shown = f"[{embedded.host}]" if ":" in embedded.host else embedded.host
        self.url = f"http://{shown}:{self.port}"
        app = IdentityHeader(create_app(self.context), embedded_identity(self.config))
        config = uvicorn.Config(
            app,
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


class IdentityHeader:
    """ASGI wrapper adding ``X-Wats-Instance: <identity>`` to every response (health checks it)."""

    def __init__(self, app: ASGIApp, identity: str) -> None:
        self.app = app
        self.header = (INSTANCE_HEADER.lower().encode(), identity.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)
