"""Admin endpoints for fault injection (same token as the API; never subject to faults).

- ``GET /admin/faults``: current faults (counters show what is left).
- ``PUT /admin/faults``: replace all faults (omitted keys fall back to their defaults).
- ``PATCH /admin/faults``: change only the given keys.
- ``DELETE /admin/faults``: back to a well-behaved server.
- ``POST /admin/refuse-connections?seconds=N``: close the listening socket for N seconds (the
  answer is sent first); connections are refused, then the server listens again on the same port.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wats.server.api import error
from wats.server.context import ServerContext
from wats.server.faults import FaultSettings
from wats.server.ingest import describe_validation_error

MAX_REFUSAL_SECONDS = 3600.0


def _context(request: Request) -> ServerContext:
    return request.app.state.context


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _validation_message(exc: ValidationError) -> str:
    return describe_validation_error(exc, prefix="Invalid faults")


async def get_faults(request: Request) -> Response:
    """The current fault settings."""
    return JSONResponse(_context(request).faults.settings.model_dump())


async def put_faults(request: Request) -> Response:
    """Replace or (PATCH) merge the fault settings."""
    faults = _context(request).faults
    try:
        data = await _json_object(request)
        if request.method == "PUT":
            faults.configure(FaultSettings.model_validate(data))
        else:
            faults.update(**data)
    except ValidationError as exc:
        return error(400, _validation_message(exc))
    except ValueError as exc:
        return error(400, f"Malformed JSON: {exc}")
    return JSONResponse(faults.settings.model_dump())


async def delete_faults(request: Request) -> Response:
    """Clear every fault."""
    faults = _context(request).faults
    faults.clear()
    return JSONResponse(faults.settings.model_dump())


async def refuse_connections(request: Request) -> Response:
    """Stop listening for ``seconds`` (query or JSON body), then listen again on the same port."""
    ctx = _context(request)
    raw: Any = request.query_params.get("seconds")
    if raw is None:
        try:
            raw = (await _json_object(request)).get("seconds")
        except ValueError as exc:
            return error(400, f"Malformed JSON: {exc}")
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return error(400, f"seconds: expected a number of seconds, got {raw!r}")
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_REFUSAL_SECONDS:
        return error(400, f"seconds: must be > 0 and <= {MAX_REFUSAL_SECONDS:g}, got {raw!r}")
    if ctx.connection_control is None:
        return error(501, "this server cannot close its listening socket in this mode")
    ctx.connection_control.schedule_refusal(seconds)
    return JSONResponse({"refusingForSeconds": seconds})


routes = [
    Route("/admin/faults", get_faults, methods=["GET"]),
    Route("/admin/faults", put_faults, methods=["PUT", "PATCH"]),
    Route("/admin/faults", delete_faults, methods=["DELETE"]),
    Route("/admin/refuse-connections", refuse_connections, methods=["POST"]),
]
