"""The server's HTML pages: the latest reports, and one report's step tree.

Server-rendered with every value escaped (report text comes from stations and is untrusted); no
JavaScript. Protected by the same Basic auth as the API, so the browser's login prompt works.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from wats.server.context import ServerContext
from wats.server.store import ReportHeader

PAGE_SIZE = 200

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
"""


def _page(title: str, content: str, subtitle: str = "") -> HTMLResponse:
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1><a href="/">WATS-compatible server</a></h1>'
        f"<span>{escape(subtitle)}</span></header><main>{content}</main></body></html>"
    )
    return HTMLResponse(html)


def _badge(status: Any) -> str:
    code = str(status or "")
    css = _STATUS_CLASS.get(code, "done")
    return f'<span class="badge {css}">{escape(_STATUS_WORD.get(code, code or "-"))}</span>'


def _cell(value: Any) -> str:
    return '<span class="muted">-</span>' if value in (None, "") else escape(str(value))


def _report_row(header: ReportHeader) -> str:
    link = f"/reports/{quote(header.uuid)}"
    kind = "Repair" if header.report_type == "R" else "Test"
    return (
        "<tr>"
        f'<td class="num">{_cell(header.received_utc[:19].replace("T", " "))}</td>'
        f"<td>{_cell(header.station_name)}</td><td>{_cell(header.part_number)}</td>"
        f'<td><a href="{link}">{escape(header.serial_number)}</a></td>'
        f"<td>{escape(kind)}</td><td>{_cell(header.process_name or header.process_code)}</td>"
        f'<td>{_badge(header.result)}</td><td class="num">{header.step_count}</td>'
        "</tr>"
    )


async def index(request: Request) -> Response:
    """The latest reports, newest first."""
    ctx: ServerContext = request.app.state.context
    headers = ctx.store.latest(PAGE_SIZE)
    total = ctx.store.count()
    if not headers:
        body = '<div class="empty">No reports received yet.</div>'
    else:
        rows = "".join(_report_row(h) for h in headers)
        body = (
            "<table><thead><tr><th>Received (UTC)</th><th>Station</th><th>Part</th>"
            "<th>Serial</th><th>Kind</th><th>Process</th><th>Result</th><th>Steps</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    return _page("WATS reports", body, f"{total} report(s) · latest {len(headers)} shown")


def _limits(meas: dict[str, Any]) -> str:
    comp = meas.get("compOp")
    low, high, limit = meas.get("lowLimit"), meas.get("highLimit"), meas.get("limit")
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
    return f"{escape(str(comp or ''))} {escape(text)}".strip() or '<span class="muted">-</span>'


def _measurement_rows(step: dict[str, Any], depth: int) -> str:
    rows: list[str] = []
    for key in ("numericMeas", "booleanMeas", "stringMeas"):
        for meas in step.get(key) or []:
            if not isinstance(meas, dict):
                continue
            value = meas.get("value")
            unit = meas.get("unit")
            shown = "" if value is None else f"{value}{' ' + unit if unit else ''}"
            rows.append(
                '<tr class="meas">'
                f'<td style="padding-left:{22 + depth * 18}px" class="muted">'
                f"↳ {_cell(meas.get('name') or key.replace('Meas', ''))}</td>"
                f'<td></td><td class="num">{_cell(shown)}</td><td>{_limits(meas)}</td>'
                f"<td>{_badge(meas.get('status'))}</td><td></td></tr>"
            )
    return "".join(rows)


def _step_rows(step: dict[str, Any], depth: int = 0) -> str:
    tot = step.get("totTime")
    time_text = f"{tot:.3f} s" if isinstance(tot, int | float) else ""
    rows = [
        '<tr class="step">'
        f'<td class="name" style="padding-left:{10 + depth * 18}px">'
        f'{_cell(step.get("name"))}</td><td class="muted">{_cell(step.get("stepType"))}</td>'
        "<td></td><td></td>"
        f'<td>{_badge(step.get("status"))}</td><td class="num muted">{escape(time_text)}</td>'
        "</tr>",
        _measurement_rows(step, depth),
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
    stored = ctx.store.get(request.path_params["report_id"])
    if stored is None:
        return _page("Not found", '<div class="empty">No such report.</div>')
    h = stored.header
    data = json.loads(stored.body)
    facts = [
        ("Serial", h.serial_number),
        ("Part / rev", f"{h.part_number} / {h.revision or '-'}"),
        ("Result", None),
        ("Process", f"{h.process_code} {h.process_name or ''}".strip()),
        ("Station", f"{h.station_name} · {h.location} · {h.purpose}"),
        ("Operator", h.operator),
        ("Start (UTC)", h.start_utc),
        ("Received (UTC)", h.received_utc),
        ("Execution time", f"{h.execution_time} s" if h.execution_time is not None else None),
        ("Report id", h.uuid),
    ]
    meta = "".join(
        f"<dt>{escape(k)}</dt><dd>{_badge(h.result) if k == 'Result' else _cell(v)}</dd>"
        for k, v in facts
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
    content = f'<dl class="meta">{meta}</dl>{tree}'
    return _page(f"{h.serial_number} - report", content, f"{h.part_number} · {h.serial_number}")


routes = [
    Route("/", index, methods=["GET"]),
    Route("/reports/{report_id}", report_detail, methods=["GET"]),
]
