"""A small HTTP forward proxy on 127.0.0.1 for tests: real sockets, counted requests, Basic auth.

Why our own: the client's proxy support must be proven against a proxy that really sits on the
wire (absolute-URI requests, ``Proxy-Authorization``, 407), not a mock of httpx. It forwards every
request to one fixed ``upstream`` (the embedded server), whatever host the URL names, so a test
can use a host name that does not resolve (``wats.proxy-test.invalid``): a request that arrives
at the server at all must have come through the proxy.

Only plain-HTTP forwarding is implemented (``CONNECT`` is answered 501): enough for the embedded
server, which speaks HTTP.
"""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["ForwardProxy", "SeenRequest", "forward_proxy"]

# Hop-by-hop headers (RFC 9110 7.6.1) are for the proxy, never passed on.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True)
class SeenRequest:
    """One request the proxy received: method, the absolute URL, headers as sent to the proxy,
    and whether it was let through (False: answered 407)."""

    method: str
    url: str
    headers: dict[str, str]
    forwarded: bool


class ForwardProxy:
    """A threaded forward proxy; use as a context manager (it owns its thread and socket).

    ``credentials`` (user, password) makes it demand ``Proxy-Authorization: Basic`` and answer
    407 otherwise. ``requests`` lists what it saw; ``count`` is how many arrived.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        credentials: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.upstream = upstream
        self.credentials = credentials
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``HTTP_PROXY``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request seen so far (a copy)."""
        with self._lock:
            return list(self._seen)

    @property
    def count(self) -> int:
        """How many requests reached the proxy."""
        with self._lock:
            return len(self._seen)

    def start(self) -> ForwardProxy:
        """Serve in a background thread; returns at once (the socket is already listening)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- the handler ---------------------------------------------------------------------

    def _record(self, seen: SeenRequest) -> None:
        with self._lock:
            self._seen.append(seen)

    def _authorised(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode("ascii")
        return header == f"Basic {expected}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: test output is not the place for an access log."""

            def _relay(self) -> None:
                headers = dict(self.headers.items())
                allowed = proxy._authorised(self.headers.get("Proxy-Authorization"))
                proxy._record(SeenRequest(self.command, self.path, headers, allowed))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not allowed:
                    self._answer(
                        407,
                        b"proxy authentication required",
                        {"Proxy-Authenticate": 'Basic realm="test-proxy"'},
                    )
                    return
                target = urlsplit(self.path)
                if not target.scheme:  # origin-form: a client that did not know it was proxied
                    self._answer(400, b"a forward proxy needs an absolute URI", {})
                    return
                path = target.path or "/"
                if target.query:
                    path += "?" + target.query
                forwarded = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    upstream.request(self.command, path, body=body or None, headers=forwarded)
                    answer = upstream.getresponse()
                    data = answer.read()
                    extra = {
                        k: v
                        for k, v in answer.getheaders()
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
                    }
                    self._answer(answer.status, data, extra)
                except OSError as exc:
                    self._answer(502, f"upstream failed: {exc}".encode(), {})
                finally:
                    upstream.close()

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_CONNECT(self) -> None:
                proxy._record(SeenRequest("CONNECT", self.path, dict(self.headers.items()), False))
                self._answer(501, b"CONNECT is not supported by the test proxy", {})

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _relay

        return Handler


@contextmanager
def forward_proxy(
    upstream: tuple[str, int], *, credentials: tuple[str, str] | None = None
) -> Iterator[ForwardProxy]:
    """``with forward_proxy((host, port)) as proxy:`` — a started :class:`ForwardProxy`."""
    with ForwardProxy(upstream, credentials=credentials) as proxy:
        yield proxy
