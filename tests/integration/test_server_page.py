"""The HTML page: the latest reports (paged, searchable, refreshing) and one report's step tree,
behind Basic auth."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from wats.server.page import PAGE_SIZE, REFRESH_S
from wats.server.testing import EmbeddedServer

pytestmark = pytest.mark.timeout(30)


def test_page_asks_the_browser_for_basic_credentials(wats_server: EmbeddedServer) -> None:
    answer = httpx.get(f"{wats_server.url}/")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Basic realm="WATS"')


def test_page_lists_a_submitted_report_and_its_detail_shows_steps(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.get("/").text.count("No reports received yet") == 1
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
        index = client.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        for text in (report["sn"], report["pn"], report["machineName"], "Passed"):
            assert text in index.text
        assert f'href="/reports/{report["id"]}"' in index.text
        detail = client.get(f"/reports/{report['id']}")
        assert detail.status_code == 200
        assert "Measure fixture temp" in detail.text  # a step
        assert "GELE" in detail.text and "low 10.0" in detail.text  # its limits
        assert "30.1822794904241 degC" in detail.text  # its measurement


def test_page_escapes_report_text(wats_server: EmbeddedServer, samples_dir: Path) -> None:
    report = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    report["id"] = str(uuid.uuid4())
    report["machineName"] = "<script>alert(1)</script>"
    report["root"]["name"] = "<b>root</b>"
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
        assert "<script>alert" not in client.get("/").text
        detail = client.get(f"/reports/{report['id']}").text
        assert "&lt;b&gt;root&lt;/b&gt;" in detail and "<b>root</b>" not in detail


def test_repair_report_detail_lists_failures(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "uur_example.json").read_text("utf-8"))
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
        detail = client.get(f"/reports/{report['id']}")
        assert detail.status_code == 200 and "Category" in detail.text


def _copies(report: dict, count: int, **fields: str) -> list[dict]:
    copies = []
    for index in range(count):
        copy = json.loads(json.dumps(report))
        copy["id"] = str(uuid.uuid4())
        copy["sn"] = f"SN-PAGE-{index:03d}"
        copy.update(fields)
        copies.append(copy)
    return copies


def _serials(html: str) -> list[str]:
    return re.findall(r">(SN-[A-Z]+-\d+)</a>", html)


def test_page_lists_reports_a_page_at_a_time(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    count = PAGE_SIZE + 5
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        for copy in _copies(report, count):
            assert client.post("/api/Report/WSJF", json=copy).status_code == 200
        first = client.get("/").text
        second = client.get("/", params={"page": 2}).text

    newest_first = [f"SN-PAGE-{i:03d}" for i in reversed(range(count))]
    assert _serials(first) == newest_first[:PAGE_SIZE]
    assert _serials(second) == newest_first[PAGE_SIZE:]
    assert 'href="/?page=2"' in first and "Older" in first
    assert 'href="/"' in second and "Newer" in second
    assert f"of {count}" in first


def test_page_searches_by_serial_part_and_station(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    line_a = _copies(report, 3, pn="PN-ALPHA", machineName="STATION-A")
    line_b = _copies(report, 2, pn="PN-BETA", machineName="STATION-B")
    line_b[0]["sn"] = "SN-SPECIAL-1"
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        for copy in line_a + line_b:
            assert client.post("/api/Report/WSJF", json=copy).status_code == 200
        by_serial = client.get("/", params={"serial": "special"}).text
        by_part = client.get("/", params={"part": "alpha"}).text
        by_station = client.get("/", params={"station": "station-b"}).text
        both = client.get("/", params={"part": "BETA", "station": "station-a"}).text

    assert _serials(by_serial) == ["SN-SPECIAL-1"]
    assert sorted(_serials(by_part)) == sorted(c["sn"] for c in line_a)
    assert sorted(_serials(by_station)) == sorted(c["sn"] for c in line_b)
    assert _serials(both) == [] and "No report matches this search" in both
    assert 'value="special"' in by_serial  # the form keeps what was searched


def test_page_refreshes_itself_unless_told_not_to(wats_server: EmbeddedServer) -> None:
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        default = client.get("/").text
        stopped = client.get("/", params={"refresh": "0"}).text

    assert f'<meta http-equiv="refresh" content="{REFRESH_S}">' in default
    assert 'http-equiv="refresh"' not in stopped
    assert 'href="/?refresh=0"' in default and "stop refreshing" in default


def test_report_page_links_back_to_the_same_search_and_page(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
        listing = client.get("/", params={"part": report["pn"]}).text
        [link] = re.findall(r'href="(/reports/[^"]+)"', listing)
        detail = client.get(html.unescape(link)).text
        plain = client.get(f"/reports/{report['id']}").text

    [back] = re.findall(r'<a class="back" href="([^"]+)"', detail)
    assert html.unescape(back) == f"/?part={report['pn']}"
    assert '<a class="back" href="/">' in plain


def test_pass_fail_steps_have_no_empty_measurement_rows(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "uut-wsjf-export.json").read_text("utf-8"))
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
        detail = client.get(f"/reports/{report['id']}").text

    assert "↳ boolean" not in detail and "↳ numeric" not in detail and "↳ string" not in detail
    assert ">SinglePass<" in detail  # the single pass/fail step is still listed
    for name in ("Pass", "Fail", "PassSkipped"):  # a multiple pass/fail step's named results
        assert f"↳ {name}<" in detail


def test_every_time_on_the_pages_reads_the_same_way(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    report = json.loads((samples_dir / "wsjf" / "uut-wsjf-export.json").read_text("utf-8"))
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.post("/api/Report/WSJF", json=report).status_code == 200
        pages = [client.get("/").text, client.get(f"/reports/{report['id']}").text]

    start = datetime.fromisoformat(report["start"]).astimezone(UTC)
    for text in pages:
        assert start.strftime("%Y-%m-%d %H:%M:%S UTC") in text
        times = re.findall(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}[^<]*", text)
        assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in times)


def test_repair_report_page_links_to_the_test_report_it_repairs(
    wats_server: EmbeddedServer, samples_dir: Path
) -> None:
    repair = json.loads((samples_dir / "wsjf" / "uur_example.json").read_text("utf-8"))
    with httpx.Client(base_url=wats_server.url, headers=wats_server.auth_headers) as client:
        assert client.post("/api/Report/WSJF", json=repair).status_code == 200
        detail = client.get(f"/reports/{repair['id']}").text
    assert f'href="/reports/{repair["uur"]["refUUT"].lower()}"' in detail
