"""Client library for the WATS REST API.

Start with ``WatsClient`` (or ``AsyncWatsClient``)::

    from wats.api import WatsClient, basic_token

    with WatsClient("https://company.wats.com", basic_token("user", "password")) as client:
        print(client.app.version())
        report_id = client.report.submit_wsjf(report)

See docs/api.md for errors, rate limiting, retries, stations and the services.
"""

# Names are imported on first use (PEP 562), not here: a process that only needs the report
# models (the converter sandbox forks once per file) should not pay for httpx and the client.
import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AsyncWatsClient": "wats.api.client",
    "AuthenticationError": "wats.api.errors",
    "BadRequestError": "wats.api.errors",
    "ChartType": "wats.api.models",
    "CompOp": "wats.api.models",
    "ConflictError": "wats.api.errors",
    "ForbiddenError": "wats.api.errors",
    "Level": "wats.api.services",
    "NotFoundError": "wats.api.errors",
    "Process": "wats.api.services",
    "ProductGroup": "wats.api.services",
    "RateLimitError": "wats.api.errors",
    "RateLimiter": "wats.api.ratelimit",
    "RateLimiterStats": "wats.api.ratelimit",
    "Report": "wats.api.models",
    "ReportBuilder": "wats.api.builder",
    "ReportHeader": "wats.api.services",
    "ReportResult": "wats.api.models",
    "ReportType": "wats.api.models",
    "Response": "wats.api.response",
    "ProxyAuthenticationError": "wats.api.errors",
    "ProxySettings": "wats.api.proxy",
    "RetryPolicy": "wats.api.retry",
    "RetryStats": "wats.api.retry",
    "Secret": "wats.api.auth",
    "ServerError": "wats.api.errors",
    "Station": "wats.api.station",
    "StationRegistry": "wats.api.station",
    "StepGroup": "wats.api.models",
    "StepStatus": "wats.api.models",
    "UURReport": "wats.api.models",
    "UUTReport": "wats.api.models",
    "UUTReportBuilder": "wats.api.builder",
    "WatsClient": "wats.api.client",
    "WatsConnectionError": "wats.api.errors",
    "WatsError": "wats.api.errors",
    "WatsHTTPError": "wats.api.errors",
    "WatsProtocolError": "wats.api.errors",
    "WatsTimeoutError": "wats.api.errors",
    "WsxfError": "wats.api.wsxf",
    "basic_token": "wats.api.auth",
    "dump_report": "wats.api.models",
    "error_from_response": "wats.api.errors",
    "parse_report": "wats.api.models",
    "redact_headers": "wats.api.auth",
    "report_to_json": "wats.api.models",
    "report_to_wsxf": "wats.api.wsxf",
    "wsxf_to_report": "wats.api.wsxf",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wats.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from wats.api.auth import Secret, basic_token, redact_headers
    from wats.api.builder import ReportBuilder, UUTReportBuilder
    from wats.api.client import AsyncWatsClient, WatsClient
    from wats.api.errors import (
        AuthenticationError,
        BadRequestError,
        ConflictError,
        ForbiddenError,
        NotFoundError,
        ProxyAuthenticationError,
        RateLimitError,
        ServerError,
        WatsConnectionError,
        WatsError,
        WatsHTTPError,
        WatsProtocolError,
        WatsTimeoutError,
        error_from_response,
    )
    from wats.api.models import (
        ChartType,
        CompOp,
        Report,
        ReportResult,
        ReportType,
        StepGroup,
        StepStatus,
        UURReport,
        UUTReport,
        dump_report,
        parse_report,
        report_to_json,
    )
    from wats.api.proxy import ProxySettings
    from wats.api.ratelimit import RateLimiter, RateLimiterStats
    from wats.api.response import Response
    from wats.api.retry import RetryPolicy, RetryStats
    from wats.api.services import Level, Process, ProductGroup, ReportHeader
    from wats.api.station import Station, StationRegistry
    from wats.api.wsxf import WsxfError, report_to_wsxf, wsxf_to_report


__all__ = [
    "AsyncWatsClient",
    "AuthenticationError",
    "BadRequestError",
    "ChartType",
    "CompOp",
    "ConflictError",
    "ForbiddenError",
    "Level",
    "NotFoundError",
    "Process",
    "ProductGroup",
    "ProxyAuthenticationError",
    "ProxySettings",
    "RateLimitError",
    "RateLimiter",
    "RateLimiterStats",
    "Report",
    "ReportBuilder",
    "ReportHeader",
    "ReportResult",
    "ReportType",
    "Response",
    "RetryPolicy",
    "RetryStats",
    "Secret",
    "ServerError",
    "Station",
    "StationRegistry",
    "StepGroup",
    "StepStatus",
    "UURReport",
    "UUTReport",
    "UUTReportBuilder",
    "WatsClient",
    "WatsConnectionError",
    "WatsError",
    "WatsHTTPError",
    "WatsProtocolError",
    "WatsTimeoutError",
    "WsxfError",
    "basic_token",
    "dump_report",
    "error_from_response",
    "parse_report",
    "redact_headers",
    "report_to_json",
    "report_to_wsxf",
    "wsxf_to_report",
]
