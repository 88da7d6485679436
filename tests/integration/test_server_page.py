"""The HTML page: the latest reports and one report's step tree, behind Basic auth."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

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
