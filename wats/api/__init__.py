"""Client library for the WATS REST API.

Start with ``WatsClient`` (or ``AsyncWatsClient``)::

    from wats.api import WatsClient, basic_token

    with WatsClient("https://company.wats.com", basic_token("user", "password")) as client:
        print(client.app.version())
        report_id = client.report.submit_wsjf(report)

See docs/api.md for errors, rate limiting, retries, stations and the services.
"""

from wats.api.auth import Secret, basic_token, redact_headers
from wats.api.builder import ReportBuilder, UUTReportBuilder
from wats.api.client import AsyncWatsClient, WatsClient
from wats.api.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
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
