"""``client.report``: submit, fetch and query test (UUT) and repair (UUR) reports.

Submission is safe to retry: a report carries its own ``id`` and WATS replaces a report whose id
it already has, so the client retries submits on transient failures like any other call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    validate_call,
)
from pydantic.alias_generators import to_camel

from wats.api._client import ApiCall
from wats.api.errors import WatsProtocolError
from wats.api.models import UURReport, UUTReport, parse_report, report_to_json
from wats.api.response import Response
from wats.api.services._executor import AsyncExecutor, SyncExecutor, bool_param, drop_none, parse_as
from wats.api.wsxf import WsxfError, wsxf_to_report

__all__ = ["AsyncReportService", "ReportHeader", "ReportRepository", "ReportService"]

Report = UUTReport | UURReport
ReportInput = UUTReport | UURReport | Mapping[str, Any] | str | bytes
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ReportHeader(BaseModel):
    """One row of a header query: the summary of a stored report.

    Known keys are typed; anything else the server sends is kept (``model_extra``).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    uuid: UUID | None = None
    serial_number: str | None = None
    part_number: str | None = None
    revision: str | None = None
    report_type: str | None = None
    station_name: str | None = None
    location: str | None = None
    purpose: str | None = None
    process_code: int | None = None
    process_name: str | None = None
    result: str | None = None
    start_utc: datetime | None = None
    operator: str | None = None
    execution_time: float | None = None


_HEADERS = TypeAdapter(list[ReportHeader])


def extract_report_id(data: Any) -> str | None:
    """The id in a submit answer: ``["<id>"]``, ``{"ID": ...}``, ``{"id": ...}`` or a string."""
    if isinstance(data, list) and data:
        return extract_report_id(data[0])
    if isinstance(data, Mapping):
        for key in ("ID", "id", "Id", "uuid"):
            if data.get(key):
                return str(data[key])
        return None
    if isinstance(data, str) and data.strip():
        return data.strip()
    return None


def _submitted_id(what: str, fallback: str | None) -> Callable[[Response], str]:
    def parse(response: Response) -> str:
        found = extract_report_id(response.data) or fallback
        if found is None:
            raise WatsProtocolError(f"{what}: the server accepted the report but sent no id")
        return found

    return parse


def _parse_report(response: Response) -> Report:
    if not isinstance(response.data, Mapping):
        raise WatsProtocolError(f"GET report: expected a JSON object, got {type(response.data)}")
    try:
        return parse_report(dict(response.data))
    except ValueError as exc:  # pydantic.ValidationError and ReportFormatError are ValueErrors
        raise WatsProtocolError(f"GET report: the server sent an unreadable report: {exc}") from exc


class ReportRepository:
    """Endpoints under ``/api/Report``: paths, parameters and answer parsing, no I/O."""

    def submit_wsjf(self, body: bytes, report_id: str | None = None) -> ApiCall[str]:
        """``POST /api/Report/WSJF`` with a serialised report; answers the stored id."""
        return ApiCall(
            "POST",
            "/api/Report/WSJF",
            content=body,
            content_type="application/json",
            parse=_submitted_id("POST /api/Report/WSJF", report_id),
        )

    def submit_wsxf(self, body: bytes, report_id: str | None = None) -> ApiCall[str]:
        """``POST /api/Report/WSXF`` with an XML report; answers the stored id."""
        return ApiCall(
            "POST",
            "/api/Report/WSXF",
            content=body,
            content_type="application/xml",
            parse=_submitted_id("POST /api/Report/WSXF", report_id),
        )

    def get_wsjf(self, report_id: str, params: Mapping[str, str] | None = None) -> ApiCall[Report]:
        """``GET /api/Report/Wsjf/{id}`` (WATS's casing) → a parsed report model."""
        return ApiCall(
            "GET", f"/api/Report/Wsjf/{report_id}", params=params or None, parse=_parse_report
        )

    def query_headers(self, params: Mapping[str, str]) -> ApiCall[list[ReportHeader]]:
        """``GET /api/Report/Query/Header`` with OData parameters → report headers."""
        return ApiCall(
            "GET",
            "/api/Report/Query/Header",
            params=params,
            parse=lambda r: parse_as(_HEADERS, r, "GET /api/Report/Query/Header"),
        )


class _ReportCalls:
    """Input validation shared by both faces: bad input is refused here, before sending."""

    def __init__(self, repository: ReportRepository | None = None) -> None:
        self._repo = repository or ReportRepository()

    def submit_wsjf_call(self, report: ReportInput) -> ApiCall[str]:
        model = report if isinstance(report, UUTReport | UURReport) else _to_model(report)
        body = report_to_json(model).encode("utf-8")
        return self._repo.submit_wsjf(body, str(model.id))

    def submit_wsxf_call(self, xml: str | bytes) -> ApiCall[str]:
        body = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
        if not body.strip():
            raise WsxfError("xml: the WSXF document is empty")
        # Parse it as the server will (safely: no DTDs or entities); an invalid report raises
        # pydantic's ValidationError naming the field, malformed XML raises WsxfError.
        model = wsxf_to_report(body)
        return self._repo.submit_wsxf(body, str(model.id))

    @validate_call
    def get_call(
        self,
        report_id: UUID,
        detail_level: Annotated[int, Field(ge=0)] | None = None,
        include_chartdata: bool | None = None,
        include_attachments: bool | None = None,
    ) -> ApiCall[Report]:
        params = drop_none(
            {
                "detailLevel": None if detail_level is None else str(detail_level),
                "includeChartdata": None
                if include_chartdata is None
                else bool_param(include_chartdata),
                "includeAttachments": None
                if include_attachments is None
                else bool_param(include_attachments),
            }
        )
        return self._repo.get_wsjf(str(report_id), params)

    @validate_call
    def query_call(
        self,
        filter: _Text | None = None,
        top: Annotated[int, Field(ge=1)] | None = None,
        skip: Annotated[int, Field(ge=0)] | None = None,
        orderby: _Text | None = None,
        report_type: Literal["U", "R"] = "U",
    ) -> ApiCall[list[ReportHeader]]:
        params = drop_none(
            {
                "reportType": report_type,
                "$filter": filter,
                "$top": None if top is None else str(top),
                "$skip": None if skip is None else str(skip),
                "$orderby": orderby,
            }
        )
        return self._repo.query_headers(params)


def _to_model(report: Mapping[str, Any] | str | bytes) -> Report:
    data: dict[str, Any] | str | bytes = dict(report) if isinstance(report, Mapping) else report
    return parse_report(data)


class ReportService(_ReportCalls):
    """Reports, blocking."""

    def __init__(self, http: SyncExecutor, repository: ReportRepository | None = None) -> None:
        super().__init__(repository)
        self._http = http

    def submit_wsjf(self, report: ReportInput) -> str:
        """Validate and submit a report (model, dict or JSON text); return its stored id.

        Invalid reports raise ``pydantic.ValidationError`` naming the field, before sending.
        """
        return self._http.execute(self.submit_wsjf_call(report))

    def submit_wsxf(self, xml: str | bytes) -> str:
        """Submit a WSXF (XML) test report; return its stored id.

        The XML is read before sending: malformed XML raises ``WsxfError`` (a ``ValueError``),
        an invalid report ``pydantic.ValidationError`` naming the field.
        """
        return self._http.execute(self.submit_wsxf_call(xml))

    def get_report(
        self,
        report_id: str | UUID,
        *,
        detail_level: int | None = None,
        include_chartdata: bool | None = None,
        include_attachments: bool | None = None,
    ) -> Report:
        """Fetch a report by id as a model; ``NotFoundError`` if the server has none."""
        call = self.get_call(
            report_id=report_id,  # type: ignore[arg-type]  # validate_call makes it a UUID
            detail_level=detail_level,
            include_chartdata=include_chartdata,
            include_attachments=include_attachments,
        )
        return self._http.execute(call)

    def query_headers(
        self,
        *,
        filter: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        orderby: str | None = None,
        report_type: Literal["U", "R"] = "U",
    ) -> list[ReportHeader]:
        """Report headers matching an OData ``filter`` (e.g. ``"serialNumber eq 'SN1'"``),
        paged by ``top``/``skip`` and sorted by ``orderby``. ``report_type`` ``U``: tests,
        ``R``: repairs.
        """
        call = self.query_call(
            filter=filter, top=top, skip=skip, orderby=orderby, report_type=report_type
        )
        return self._http.execute(call)


class AsyncReportService(_ReportCalls):
    """Reports, awaited."""

    def __init__(self, http: AsyncExecutor, repository: ReportRepository | None = None) -> None:
        super().__init__(repository)
        self._http = http

    async def submit_wsjf(self, report: ReportInput) -> str:
        """Validate and submit a report (model, dict or JSON text); return its stored id.

        Invalid reports raise ``pydantic.ValidationError`` naming the field, before sending.
        """
        return await self._http.execute(self.submit_wsjf_call(report))

    async def submit_wsxf(self, xml: str | bytes) -> str:
        """Submit a WSXF (XML) test report; return its stored id.

        The XML is read before sending: malformed XML raises ``WsxfError`` (a ``ValueError``),
        an invalid report ``pydantic.ValidationError`` naming the field.
        """
        return await self._http.execute(self.submit_wsxf_call(xml))

    async def get_report(
        self,
        report_id: str | UUID,
        *,
        detail_level: int | None = None,
        include_chartdata: bool | None = None,
        include_attachments: bool | None = None,
    ) -> Report:
        """Fetch a report by id as a model; ``NotFoundError`` if the server has none."""
        call = self.get_call(
            report_id=report_id,  # type: ignore[arg-type]  # validate_call makes it a UUID
            detail_level=detail_level,
            include_chartdata=include_chartdata,
            include_attachments=include_attachments,
        )
        return await self._http.execute(call)

    async def query_headers(
        self,
        *,
        filter: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        orderby: str | None = None,
        report_type: Literal["U", "R"] = "U",
    ) -> list[ReportHeader]:
        """Report headers matching an OData ``filter``, paged and sorted (see ``ReportService``)."""
        call = self.query_call(
            filter=filter, top=top, skip=skip, orderby=orderby, report_type=report_type
        )
        return await self._http.execute(call)
