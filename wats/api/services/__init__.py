"""Domain services over the WATS REST API, layered service → repository → HTTP.

- a *repository* knows one group of endpoints: paths, parameters, how to read the answers. It
  builds ``ApiCall`` values and does no I/O, so the same repository serves both client faces;
- a *service* is what callers use (``client.report``, ``client.process``, ``client.app``): it
  refuses bad input before anything is sent (pydantic's message names the field) and adds domain
  conveniences such as looking a process up by name;
- *HTTP* is the client core, which executes calls with rate limiting and retries.
"""

from wats.api.services.app import AppRepository, AppService, AsyncAppService
from wats.api.services.process import (
    AsyncProcessService,
    Level,
    Process,
    ProcessRepository,
    ProcessService,
    ProductGroup,
)
from wats.api.services.report import (
    AsyncReportService,
    ReportHeader,
    ReportRepository,
    ReportService,
)

__all__ = [
    "AppRepository",
    "AppService",
    "AsyncAppService",
    "AsyncProcessService",
    "AsyncReportService",
    "Level",
    "Process",
    "ProcessRepository",
    "ProcessService",
    "ProductGroup",
    "ReportHeader",
    "ReportRepository",
    "ReportService",
]
