"""Assemble the server: context (store, reference data, faults, credentials) and Starlette app.

Middleware order, outermost first: path case folding (WATS matches paths case-insensitively) →
fault injection (a broken server fails before it checks anyone's token) → Basic auth → routes.
All three are plain ASGI to keep per-request overhead small.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from wats.server import admin, api, page
from wats.server.auth import TokenChecker, load_or_create_credentials, prepare_data_dir
from wats.server.clients import ClientRegistry
from wats.server.context import ServerContext
from wats.server.faults import FaultInjector, FaultMiddleware
from wats.server.ingest import stored_header_extras
from wats.server.reference import default_reference_data, load_reference_data
from wats.server.settings import ServerSettings
from wats.server.store import ReportStore

_PAGE_REALM = b'Basic realm="WATS", charset="UTF-8"'


def build_context(settings: ServerSettings) -> ServerContext:
    """Open the data folder and store, load reference data, resolve tokens.

    Without configured tokens the server uses (creating once) ``<data>/credentials.json``.
    """
    prepare_data_dir(settings.data_dir)
    tokens = list(settings.tokens) or [load_or_create_credentials(settings.data_dir).token]
    checker = TokenChecker(tokens)
    reference = (
        load_reference_data(settings.reference_file)
        if settings.reference_file
        else default_reference_data()
    )
    store = ReportStore(settings.data_dir)
    store.backfill(lambda body: stored_header_extras(body, reference))
    return ServerContext(
        data_dir=settings.data_dir,
        store=store,
        reference=reference,
        faults=FaultInjector(settings.faults),
        tokens=checker,
        clients=ClientRegistry(settings.data_dir, checker),
        server_version=settings.server_version,
        max_body_bytes=int(settings.max_body_mb * 1024 * 1024),
    )


class PathCaseMiddleware:
    """Lower-case the request path before routing: WATS (IIS) matches paths case-insensitively."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["path"] = str(scope.get("path", "")).lower()
        await self.app(scope, receive, send)


class BasicAuthMiddleware:
    """401 unless ``Authorization: Basic <token>`` carries an accepted token.

    API paths get a JSON message; the HTML pages also get ``WWW-Authenticate`` so browsers prompt.
    """

    def __init__(self, app: ASGIApp, tokens: TokenChecker) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if self.tokens.accepts(authorization):
            await self.app(scope, receive, send)
            return
        message = (
            "Authorization header missing: send 'Authorization: Basic <token>'"
            if authorization is None
            else "Invalid credentials: the token is not accepted by this server"
        )
        body = json.dumps({"message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        path = str(scope.get("path", ""))
        if not (path.startswith("/api/") or path.startswith("/admin/")):
            headers.append((b"www-authenticate", _PAGE_REALM))
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {
        404: f"no such endpoint: {request.method} {request.url.path}",
        405: f"method {request.method} not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)


def create_app(context: ServerContext) -> ASGIApp:
    """The ASGI application serving ``context`` (the caller owns and closes the context)."""
    starlette = Starlette(
        routes=[*api.routes, *admin.routes, *page.routes],
        exception_handlers={HTTPException: _http_error},
    )
    starlette.state.context = context
    app: ASGIApp = BasicAuthMiddleware(starlette, context.tokens)
    app = FaultMiddleware(app, context.faults)
    return PathCaseMiddleware(app)
