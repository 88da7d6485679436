"""Running the app under uvicorn, with the ability to stop listening and come back.

Why a subclass: "the server is unreachable" is a different failure from "the server answers 503",
and clients must handle both. Closing the listening socket makes new connections fail with
"connection refused"; existing keep-alive connections are closed once idle, like a real outage.
Listening again binds a fresh socket to the same address, so clients recover without
reconfiguration. uvicorn has no public API for this, so we recreate its protocol factory; the
hooks used (``config.http_protocol_class``, ``server_state``, ``lifespan.state``, ``servers``)
are the ones ``uvicorn.Server.startup`` itself uses.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port); SO_REUSEADDR allows rebinding later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it Nagle + delayed ACK add ~40 ms to every keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class RefusableServer(uvicorn.Server):
    """A uvicorn server that can close its listening socket and later listen again."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.address: tuple[str, int] | None = None
        self._refusing = False
        self._resume_handle: asyncio.TimerHandle | None = None
        self._resume_task: asyncio.Task[None] | None = None

    @property
    def refusing(self) -> bool:
        """True while the listening socket is closed."""
        return self._refusing

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, remembering the loop and the bound address."""
        await super().startup(sockets=sockets)
        self.loop = asyncio.get_running_loop()
        for server in getattr(self, "servers", []):
            for sock in server.sockets or ():
                host, port = sock.getsockname()[:2]
                self.address = (host, port)
                break

    def _create_protocol(self, _loop: asyncio.AbstractEventLoop | None = None) -> Any:
        config = self.config
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=_loop,
        )

    def close_listeners(self) -> None:
        """Close the listening socket(s) and idle connections; in-flight requests finish."""
        if self._refusing:
            return
        self._refusing = True
        for server in getattr(self, "servers", []):
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        log.info("listening socket closed: connections are refused")

    async def stop_listening(self) -> None:
        """Coroutine form of :meth:`close_listeners` (for ``run_in_loop``)."""
        self._cancel_resume()
        self.close_listeners()

    async def start_listening(self) -> None:
        """Bind the same address again and accept connections."""
        self._cancel_resume()
        if not self._refusing or self.address is None or self.should_exit:
            return
        loop = asyncio.get_running_loop()
        sock = bind_socket(*self.address)
        server = await loop.create_server(
            self._create_protocol, sock=sock, backlog=self.config.backlog
        )
        self.servers.append(server)
        self._refusing = False
        log.info("listening again on %s:%d", *self.address)

    def schedule_refusal(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` (call from the event loop, e.g. a request handler)."""
        self._cancel_resume()
        self.close_listeners()
        loop = asyncio.get_running_loop()
        self._resume_handle = loop.call_later(seconds, self._resume_from_timer)

    def _resume_from_timer(self) -> None:
        self._resume_handle = None
        task = asyncio.get_running_loop().create_task(self.start_listening())
        self._resume_task = task
        task.add_done_callback(self._resume_done)

    def _resume_done(self, task: asyncio.Task[None]) -> None:
        # The server owns this task: a failure to rebind must be loud, and it ends the server
        # (a server that silently never listens again would make every outage test hang).
        if not task.cancelled() and task.exception() is not None:
            log.error("could not listen again: %s; shutting down", task.exception())
            self.should_exit = True

    def _cancel_resume(self) -> None:
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Cancel a pending comeback, then shut down as uvicorn does."""
        self._cancel_resume()
        await super().shutdown(sockets=sockets)

    def run_in_loop(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop from another thread and wait for it."""
        if self.loop is None:
            raise RuntimeError("server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
