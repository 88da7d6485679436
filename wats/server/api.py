"""The WATS REST endpoints (paths as WATS spells them; routing is case-insensitive upstream).

Each handler is a thin translation between HTTP and the context's store and reference data; the
rules live in :mod:`ingest`, :mod:`odata` and :mod:`reference`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wats.server.clients import ClientConflict
from wats.server.context import ServerContext
from wats.server.detail import Detail, DetailError, apply_detail, parse_level
from wats.server.expand import ExpandError, expansions, parse_expand
from wats.server.ingest import (
    ReportRejected,
    build_header,
    count_steps,
    decode_json,
    dump_wsjf,
    validate_wsjf,
    validate_wsxf,
)
from wats.server.odata import ODataError, filter_to_sql, orderby_to_sql
from wats.server.store import HEADER_FIELDS

_REPORT_TYPES = {"U": "T", "T": "T", "R": "R"}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error body clients parse: ``{"message": ...}``."""
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _context(request: Request) -> ServerContext:
    return request.app.state.context


def _flag(request: Request, name: str, default: bool) -> bool:
    """A boolean query flag, case-insensitive name, ``true``/``false``/``1``/``0`` values."""
    for key, value in request.query_params.multi_items():
        if key.lower() == name.lower():
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ReportRejected(f"{name}: expected true or false, got {value!r}")
    return default


class BodyTooLarge(Exception):
    """The request body is bigger than the server accepts."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes without reading (or holding) the rest.

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    sent in chunks is counted as it arrives. Without this, one oversized POST would be held in
    memory whole before validation could refuse it.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(ctx: ServerContext) -> JSONResponse:
    mib = ctx.max_body_bytes / (1024 * 1024)
    return error(413, f"report body larger than the server accepts ({mib:g} MiB)")


def _param(request: Request, name: str) -> str | None:
    for key, value in request.query_params.multi_items():
        if key.lower() == name.lower():
            return value
    return None


def _store_report(ctx: ServerContext, data: dict[str, Any], report: Any, body: str) -> str:
    header = build_header(data, count_steps(report), ctx.reference)
    ctx.store.put(header, body)
    return header.uuid


async def submit_wsjf(request: Request) -> Response:
    """``POST /api/Report/WSJF``: validate, store (replacing an existing id), answer ``[{ID}]``."""
    ctx = _context(request)
    try:
        body = await read_body(request, ctx.max_body_bytes)
    except BodyTooLarge:
        return _too_large(ctx)
    try:
        data = decode_json(body)
        report = validate_wsjf(data)
        report_id = _store_report(ctx, data, report, body.decode("utf-8"))
    except ReportRejected as exc:
        return error(400, str(exc))
    return JSONResponse([{"ID": report_id}])


async def submit_wsxf(request: Request) -> Response:
    """``POST /api/Report/WSXF``: convert the XML to WSJF, then as ``submit_wsjf``."""
    ctx = _context(request)
    try:
        body = await read_body(request, ctx.max_body_bytes)
    except BodyTooLarge:
        return _too_large(ctx)
    try:
        report = validate_wsxf(body)
        data = dump_wsjf(report)
        report_id = _store_report(ctx, data, report, json.dumps(data, separators=(",", ":")))
    except ReportRejected as exc:
        return error(400, str(exc))
    return JSONResponse([{"ID": report_id}])


async def get_wsjf(request: Request) -> Response:
    """``GET /api/Report/Wsjf/{id}``: the report, trimmed to the options; 404 when unknown.

    ``detailLevel`` (0-7, default 7 = all), ``includeChartdata`` and ``includeAttachments``
    (default true) choose what is left out; see :mod:`wats.server.detail`. The whole report is
    sent exactly as stored.
    """
    report_id = request.path_params["report_id"]
    try:
        uuid.UUID(report_id)
    except ValueError:
        return error(400, f"id: {report_id!r} is not a valid report id (UUID)")
    try:
        detail = Detail(
            level=parse_level(_param(request, "detailLevel")),
            chart_data=_flag(request, "includeChartdata", True),
            attachments=_flag(request, "includeAttachments", True),
        )
    except (DetailError, ReportRejected) as exc:
        return error(400, str(exc))
    body = _context(request).store.get_body(report_id)
    if body is None:
        return error(404, f"report {report_id} not found")
    if detail.is_full:
        return Response(body, media_type="application/json")
    return JSONResponse(apply_detail(json.loads(body), detail))


async def query_headers(request: Request) -> Response:
    """``GET /api/Report/Query/Header``: headers filtered/sorted/paged by OData options."""
    ctx = _context(request)
    type_param = (_param(request, "reportType") or "U").upper()
    if type_param not in _REPORT_TYPES:
        return error(400, f"reportType: expected U (UUT) or R (UUR), got {type_param!r}")
    try:
        top = _non_negative(request, "$top")
        skip = _non_negative(request, "$skip") or 0
        where, params = None, None
        if (source := _param(request, "$filter")) is not None and source.strip():
            where, params = filter_to_sql(source, HEADER_FIELDS)
        order = None
        if (ordering := _param(request, "$orderby")) is not None and ordering.strip():
            order = orderby_to_sql(ordering, HEADER_FIELDS)
        expand = parse_expand(_param(request, "$expand"))
    except (ODataError, ExpandError, ReportRejected) as exc:
        return error(400, str(exc))
    headers = ctx.store.query(
        report_type=_REPORT_TYPES[type_param],
        where=where,
        params=params,
        order_by=order,
        top=top,
        skip=skip,
    )
    answer = [h.to_wire() for h in headers]
    if expand:
        bodies = ctx.store.get_bodies([h.uuid for h in headers])
        for header, wire in zip(headers, answer, strict=True):
            report = json.loads(bodies.get(header.uuid, "{}"))
            wire.update(expansions(header.report_type, report, expand))
    return JSONResponse(answer)


def _non_negative(request: Request, name: str) -> int | None:
    raw = _param(request, name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ReportRejected(f"{name}: expected a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise ReportRejected(f"{name}: expected a non-negative integer, got {raw!r}")
    return value


async def processes(request: Request) -> Response:
    """``GET /api/App/Processes`` with the ``include*`` flags."""
    try:
        selected = _context(request).reference.select_processes(
            include_test=_flag(request, "includeTestOperations", True),
            include_repair=_flag(request, "includeRepairOperations", True),
            include_wip=_flag(request, "includeWipOperations", True),
            include_inactive=_flag(request, "includeInactiveProcesses", False),
        )
    except ReportRejected as exc:
        return error(400, str(exc))
    return JSONResponse([p.model_dump() for p in selected])


async def levels(request: Request) -> Response:
    """``GET /api/App/Levels``."""
    return JSONResponse([lv.model_dump() for lv in _context(request).reference.levels])


async def product_groups(request: Request) -> Response:
    """``GET /api/App/ProductGroups``."""
    return JSONResponse([g.model_dump() for g in _context(request).reference.productGroups])


async def version(request: Request) -> Response:
    """``GET /api/App/Version``: a JSON string; also the clients' ping, so never cached."""
    return JSONResponse(_context(request).server_version, headers={"Cache-Control": "no-store"})


async def register_client(request: Request) -> Response:
    """``POST /api/Client/Register?id=&type=&name=&location=&purpose=``: answer a passcode."""
    values = {k: _param(request, k) for k in ("id", "type", "name", "location", "purpose")}
    missing = [k for k in ("id", "type") if not values[k]]
    if missing:
        return error(400, f"{', '.join(missing)}: required query parameter missing")
    try:
        passcode = _context(request).clients.register(
            str(values["id"]),
            str(values["type"]),
            values["name"] or "",
            values["location"] or "",
            values["purpose"] or "",
        )
    except ClientConflict as exc:
        return error(409, str(exc))
    return JSONResponse(passcode)


# Paths are lower-case: PathCaseMiddleware lower-cases every request path before routing.
routes = [
    Route("/api/report/wsjf", submit_wsjf, methods=["POST"]),
    Route("/api/report/wsxf", submit_wsxf, methods=["POST"]),
    Route("/api/report/wsjf/{report_id}", get_wsjf, methods=["GET"]),
    Route("/api/report/query/header", query_headers, methods=["GET"]),
    Route("/api/app/processes", processes, methods=["GET"]),
    Route("/api/app/levels", levels, methods=["GET"]),
    Route("/api/app/productgroups", product_groups, methods=["GET"]),
    Route("/api/app/version", version, methods=["GET"]),
    Route("/api/client/register", register_client, methods=["POST"]),
]
