"""The server's HTML pages: the latest reports, and one report's step tree.

Server-rendered with every value escaped (report text comes from stations and is untrusted); no
JavaScript: the list pages by ``page``, searches by ``serial``/``part``/``station`` (contained,
ignoring case) and reloads itself with a meta refresh (``refresh`` seconds, 0 = off), all in the
query string, so a report's page can link back to the same view. Protected by the same Basic
auth as the API, so the browser's login prompt works.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from html import escape
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from wats.server.context import ServerContext
from wats.server.odata import BoolOp, FunctionCall, compile_filter, parse_datetime
from wats.server.store import HEADER_FIELDS, ReportHeader

PAGE_SIZE = 50
REFRESH_S = 10
_MEASUREMENT_KEYS = ("numericMeas", "booleanMeas", "stringMeas")

_STATUS_CLASS = {"P": "pass", "F": "fail", "E": "error", "T": "error", "S": "skip", "D": "done"}
_STATUS_WORD = {
    "P": "Passed",
    "F": "Failed",
    "E": "Error",
    "T": "Terminated",
    "S": "Skipped",
    "D": "Done",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f6f8;
color:#1d2733}
header{background:#16324f;color:#fff;padding:14px 28px;display:flex;align-items:baseline;gap:18px}
header h1{font-size:20px;margin:0}header span{opacity:.75;font-size:13px}
header a{color:#fff;text-decoration:none}
main{padding:20px 28px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.08)}
th,td{padding:7px 10px;text-align:left;border-bottom:1px solid #e6e9ed;font-size:14px}
th{background:#eef1f5;font-weight:600;color:#3b4a5a}
tr:hover td{background:#f8fafc}
a{color:#1565c0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.pass{background:#e3f4e8;color:#1b7a3a}.fail{background:#fde7e7;color:#b3261e}
.error{background:#fff1d6;color:#8a5a00}.skip,.done{background:#eceff3;color:#566372}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;
padding:14px 18px;margin-bottom:18px;box-shadow:0 1px 3px rgba(0,0,0,.08);font-size:14px}
.meta dt{color:#566372}.meta dd{margin:0}
.step td.name{white-space:nowrap}.muted{color:#7b8794}.num{font-variant-numeric:tabular-nums}
.empty{padding:40px;text-align:center;color:#7b8794;background:#fff}
.search{display:flex;gap:14px;align-items:center;margin-bottom:10px;font-size:14px}
.search input{padding:4px 6px}.pager{margin:8px 0 12px;font-size:14px;display:flex;gap:12px}
.back{display:inline-block;margin-bottom:12px;font-size:14px}
"""


def _page(title: str, content: str, subtitle: str = "", refresh_s: int = 0) -> HTMLResponse:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s > 0 else ""
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"{refresh}<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1><a href="/">WATS-compatible server</a></h1>'
        f"<span>{escape(subtitle)}</span></header><main>{content}</main></body></html>"
    )
    return HTMLResponse(html)


def _time(text: str | None) -> str:
    """Every time on the pages in one form: ``2026-01-30 21:01:41 UTC`` (stored times are UTC)."""
    if not text:
        return '<span class="muted">-</span>'
    try:
        value = parse_datetime(text)
    except ValueError:
        return escape(text)
    return escape(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _badge(status: Any) -> str:
    code = str(status or "")
    css = _STATUS_CLASS.get(code, "done")
    return f'<span class="badge {css}">{escape(_STATUS_WORD.get(code, code or "-"))}</span>'


def _cell(value: Any) -> str:
    return '<span class="muted">-</span>' if value in (None, "") else escape(str(value))


@dataclass(frozen=True)
class ListView:
    """What the list shows: the search terms, the page and the refresh period.

    Also what a report's page links back to, so "back" returns to the same search and page.
    """

    serial: str = ""
    part: str = ""
    station: str = ""
    page: int = 1
    refresh_s: int = REFRESH_S

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> ListView:
        """Read the view from query parameters; anything unreadable falls back to the default."""

        def number(name: str, default: int, low: int, high: int) -> int:
            raw = params.get(name, "")
            return min(max(int(raw), low), high) if raw.strip().isdigit() else default

        return cls(
            serial=params.get("serial", "").strip()[:100],
            part=params.get("part", "").strip()[:100],
            station=params.get("station", "").strip()[:100],
            page=number("page", 1, 1, 1_000_000),
            refresh_s=number("refresh", REFRESH_S, 0, 3600),
        )

    def query(self, **changes: Any) -> str:
        """This view's query string (only non-default values), with some values changed."""
        view = replace(self, **changes)
        items = [
            ("serial", view.serial),
            ("part", view.part),
            ("station", view.station),
            ("page", str(view.page) if view.page != 1 else ""),
            ("refresh", str(view.refresh_s) if view.refresh_s != REFRESH_S else ""),
        ]
        return urlencode([(k, v) for k, v in items if v])

    def link(self, **changes: Any) -> str:
        """The list URL of this view, with some values changed."""
        text = self.query(**changes)
        return f"/?{text}" if text else "/"

    def condition(self) -> tuple[str | None, list[Any]]:
        """The SQL condition of the search: each given term is contained (ignoring case)."""
        terms = [
            FunctionCall("contains", field, value, 0)
            for field, value in (
                ("serialNumber", self.serial),
                ("partNumber", self.part),
                ("stationName", self.station),
            )
            if value
        ]
        if not terms:
            return None, []
        node: Any = terms[0]
        for term in terms[1:]:
            node = BoolOp("and", node, term)
        return compile_filter(node, HEADER_FIELDS)


def _report_row(header: ReportHeader, view: ListView) -> str:
    back = view.query()
    link = f"/reports/{quote(header.uuid)}" + (f"?{urlencode({'back': back})}" if back else "")
    kind = "Repair" if header.report_type == "R" else "Test"
    return (
        "<tr>"
        f'<td class="num">{_time(header.received_utc)}</td>'
        f'<td class="num">{_time(header.start_utc)}</td>'
        f"<td>{_cell(header.station_name)}</td><td>{_cell(header.part_number)}</td>"
        f'<td><a href="{escape(link)}">{escape(header.serial_number)}</a></td>'
        f"<td>{escape(kind)}</td><td>{_cell(header.process_name or header.process_code)}</td>"
        f'<td>{_badge(header.result)}</td><td class="num">{header.step_count}</td>'
        "</tr>"
    )


def _search_form(view: ListView) -> str:
    def field(name: str, label: str, value: str) -> str:
        return (
            f'<label>{escape(label)} <input type="search" name="{name}" '
            f'value="{escape(value)}" size="16"></label>'
        )

    refresh = (
        f'<input type="hidden" name="refresh" value="{view.refresh_s}">'
        if view.refresh_s != REFRESH_S
        else ""
    )
    clear = ' <a href="/">Clear</a>' if view.serial or view.part or view.station else ""
    return (
        '<form class="search" method="get" action="/">'
        f"{field('serial', 'Serial', view.serial)}{field('part', 'Part', view.part)}"
        f"{field('station', 'Station', view.station)}{refresh}"
        f'<button type="submit">Search</button>{clear}</form>'
    )


def _pager(view: ListView, total: int, shown: int) -> str:
    pages = max(1, -(-total // PAGE_SIZE))
    first = (view.page - 1) * PAGE_SIZE + 1
    span = f"{first}-{first + shown - 1} of {total}" if shown else f"none of {total}"
    newer = (
        f'<a href="{escape(view.link(page=view.page - 1))}">&laquo; Newer</a>'
        if view.page > 1
        else '<span class="muted">&laquo; Newer</span>'
    )
    older = (
        f'<a href="{escape(view.link(page=view.page + 1))}">Older &raquo;</a>'
        if view.page < pages
        else '<span class="muted">Older &raquo;</span>'
    )
    if view.refresh_s:
        refresh = (
            f"refreshes every {view.refresh_s} s · "
            f'<a href="{escape(view.link(refresh_s=0))}">stop refreshing</a>'
        )
    else:
        refresh = f'<a href="{escape(view.link(refresh_s=REFRESH_S))}">refresh automatically</a>'
    return (
        f'<nav class="pager">{newer} <span>reports {span} · page {view.page} of {pages}</span> '
        f'{older} <span class="muted">· {refresh}</span></nav>'
    )


async def index(request: Request) -> Response:
    """The latest reports, newest first, a page at a time, optionally searched."""
    ctx: ServerContext = request.app.state.context
    view = ListView.from_query(request.query_params)
    where, params = view.condition()
    total = ctx.store.count_matching(where=where, params=params)
    headers = ctx.store.latest(
        PAGE_SIZE, offset=(view.page - 1) * PAGE_SIZE, where=where, params=params
    )
    if not headers:
        searched = view.serial or view.part or view.station
        text = "No report matches this search." if searched else "No reports received yet."
        if not searched and total:
            text = "No reports on this page."
        table = f'<div class="empty">{text}</div>'
    else:
        rows = "".join(_report_row(h, view) for h in headers)
        table = (
            "<table><thead><tr><th>Received</th><th>Start</th><th>Station</th><th>Part</th>"
            "<th>Serial</th><th>Kind</th><th>Process</th><th>Result</th><th>Steps</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    body = _search_form(view) + _pager(view, total, len(headers)) + table
    subtitle = f"{ctx.store.count()} report(s) received"
    return _page("WATS reports", body, subtitle, refresh_s=view.refresh_s)


_SINGLE_LIMIT_OPS = {"EQ", "NE", "LT", "LE", "GT", "GE"}


def _limits(meas: dict[str, Any]) -> str:
    """Limits as read: ``LE 50`` for a single-limit comparison, ``GELE low 4.5 high 5.5`` for a
    range, ``IGNORECASE limit 'OK'`` for a string, ``LOG`` for record only."""
    comp = str(meas.get("compOp") or "")
    low, high, limit = meas.get("lowLimit"), meas.get("highLimit"), meas.get("limit")
    if comp.upper() in _SINGLE_LIMIT_OPS and low is not None and high is None:
        return escape(f"{comp} {low}")
    parts = [
        p
        for p in (
            f"low {low}" if low is not None else "",
            f"high {high}" if high is not None else "",
            f"limit {limit!r}" if limit is not None else "",
        )
        if p
    ]
    text = " ".join(parts)
    return f"{escape(comp)} {escape(text)}".strip() or '<span class="muted">-</span>'


def _measurements(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for key in _MEASUREMENT_KEYS for m in step.get(key) or [] if isinstance(m, dict)]


def _shown_value(meas: dict[str, Any]) -> str:
    value, unit = meas.get("value"), meas.get("unit")
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value}{' ' + unit if unit else ''}"


def _measurement_rows(measurements: list[dict[str, Any]], depth: int) -> str:
    """One row per named measurement (multiple-measurement steps)."""
    rows: list[str] = []
    for meas in measurements:
        rows.append(
            '<tr class="meas">'
            f'<td style="padding-left:{22 + depth * 18}px" class="muted">'
            f"↳ {_cell(meas.get('name'))}</td>"
            f'<td></td><td class="num">{_cell(_shown_value(meas))}</td><td>{_limits(meas)}</td>'
            f"<td>{_badge(meas.get('status'))}</td><td></td></tr>"
        )
    return "".join(rows)


def _step_rows(step: dict[str, Any], depth: int = 0) -> str:
    """A step's row, then its measurements', then its children's.

    A step with one measurement (numeric, string or pass/fail) shows the value and limits on its
    own row: a row of its own would repeat the step's status under a made-up name, and a pass/fail
    measurement has nothing else to show.
    """
    tot = step.get("totTime")
    time_text = f"{tot:.3f} s" if isinstance(tot, int | float) else ""
    measurements = _measurements(step)
    value, limits, sub_rows = "", "", ""
    if len(measurements) == 1 and not measurements[0].get("name"):
        only = measurements[0]
        value = _cell(_shown_value(only)) if _shown_value(only) else ""
        limits = _limits(only) if only.get("compOp") else ""
    elif measurements:
        sub_rows = _measurement_rows(measurements, depth)
    rows = [
        '<tr class="step">'
        f'<td class="name" style="padding-left:{10 + depth * 18}px">'
        f'{_cell(step.get("name"))}</td><td class="muted">{_cell(step.get("stepType"))}</td>'
        f'<td class="num">{value}</td><td>{limits}</td>'
        f'<td>{_badge(step.get("status"))}</td><td class="num muted">{escape(time_text)}</td>'
        "</tr>",
        sub_rows,
    ]
    for child in step.get("steps") or []:
        if isinstance(child, dict):
            rows.append(_step_rows(child, depth + 1))
    return "".join(rows)


def _failure_rows(data: dict[str, Any]) -> str:
    rows: list[str] = []
    for unit in data.get("subUnits") or []:
        for failure in (unit or {}).get("failures") or []:
            rows.append(
                f"<tr><td>{_cell(unit.get('sn'))}</td><td>{_cell(failure.get('category'))}</td>"
                f"<td>{_cell(failure.get('code'))}</td><td>{_cell(failure.get('comment'))}</td>"
                f"<td>{_cell(failure.get('comRef'))}</td></tr>"
            )
    if not rows:
        return '<div class="empty">No failures recorded.</div>'
    return (
        "<table><thead><tr><th>Unit</th><th>Category</th><th>Code</th><th>Comment</th>"
        f"<th>Component</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


async def report_detail(request: Request) -> Response:
    """One report: header facts, then the step tree with measurements and limits."""
    ctx: ServerContext = request.app.state.context
    back_view = ListView.from_query(dict(parse_qsl(request.query_params.get("back", ""))))
    back = f'<a class="back" href="{escape(back_view.link())}">&larr; Back to the reports</a>'
    stored = ctx.store.get(request.path_params["report_id"])
    if stored is None:
        return _page("Not found", f'{back}<div class="empty">No such report.</div>')
    h = stored.header
    data = json.loads(stored.body)
    facts = [
        ("Serial", h.serial_number),
        ("Part / rev", f"{h.part_number} / {h.revision or '-'}"),
        ("Result", None),
        ("Process", f"{h.process_code} {h.process_name or ''}".strip()),
        ("Station", f"{h.station_name} · {h.location} · {h.purpose}"),
        ("Operator", h.operator),
        ("Start", None),
        ("Received", None),
        ("Execution time", f"{h.execution_time} s" if h.execution_time is not None else None),
        ("Test program", " ".join(p for p in (h.sw_filename, h.sw_version) if p)),
        ("Batch", h.batch_number),
        ("Fixture / socket", " / ".join(str(p) for p in (h.fixture_id, h.test_socket_index) if p)),
        ("Run", f"{h.run} (passed in run {h.passed_in_run})" if h.passed_in_run else h.run),
        ("Comment", h.comment),
        ("Repairs", None),
        ("Report id", h.uuid),
    ]
    if h.report_type != "R":
        facts = [f for f in facts if f[0] != "Repairs"]
    special = {"Result": _badge(h.result), "Start": _time(h.start_utc)}
    special["Received"] = _time(h.received_utc)
    if h.referenced_uut:
        target = f"/reports/{quote(h.referenced_uut)}"
        ref = escape(h.referenced_uut)
        special["Repairs"] = f'test report <a href="{escape(target)}">{ref}</a>'
    else:
        special["Repairs"] = _cell(None)
    meta = "".join(
        f"<dt>{escape(k)}</dt><dd>{special[k] if k in special else _cell(v)}</dd>" for k, v in facts
    )
    if h.report_type == "R":
        tree = _failure_rows(data)
    elif isinstance(data.get("root"), dict):
        tree = (
            "<table><thead><tr><th>Step</th><th>Type</th><th>Value</th><th>Limits</th>"
            f"<th>Status</th><th>Time</th></tr></thead><tbody>{_step_rows(data['root'])}"
            "</tbody></table>"
        )
    else:
        tree = '<div class="empty">This report has no steps.</div>'
    content = f'{back}<dl class="meta">{meta}</dl>{tree}'
    return _page(f"{h.serial_number} - report", content, f"{h.part_number} · {h.serial_number}")


routes = [
    Route("/", index, methods=["GET"]),
    Route("/reports/{report_id}", report_detail, methods=["GET"]),
]
