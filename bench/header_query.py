"""Header queries against a filled embedded server (run by hand; docs/benchmarks.md).

Why this exists: ``GET /api/Report/Query/Header`` serves computed columns (``run``,
``passedInRun``) and columns added to the store after the report body. Done naively either
makes every query cost per report *stored* instead of per report *returned*; this measures the
last page of N stored reports (``$skip=N-1&$top=1``, what a client paging to the end asks, and
what bench/pipeline_throughput.py asks once a second) and a filter on a computed column.

Usage::

    .venv/bin/python bench/header_query.py --count 1000 --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from wats.server.testing import EmbeddedServer

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
SAMPLE = SAMPLES / "wsjf" / "new_report_example.json"
HEADER = "/api/Report/Query/Header"


def _timed(client: httpx.Client, params: dict[str, object], repeat: int) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        client.get(HEADER, params=params).raise_for_status()
    return {
        "ms_per_query": round((time.perf_counter() - started) / repeat * 1000, 2),
        "client_cpu_ms": round((time.process_time() - cpu) / repeat * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="reports to store first")
    parser.add_argument("--repeat", type=int, default=20, help="queries per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedServer(Path(folder) / "server") as server,
        httpx.Client(base_url=server.url, headers=server.auth_headers, timeout=60) as client,
    ):
        for n in range(args.count):
            report = {**sample, "id": str(uuid.uuid4()), "sn": f"HQ-{n:06d}"}
            client.post(
                "/api/Report/WSJF",
                content=json.dumps(report),
                headers={"Content-Type": "application/json"},
            ).raise_for_status()
        result = {
            "stored": args.count,
            "last_page": _timed(client, {"$skip": args.count - 1, "$top": 1}, args.repeat),
            "first_page_100": _timed(client, {"$top": 100}, args.repeat),
            "filter_run_eq_1": _timed(client, {"$filter": "run eq 1", "$top": 1}, args.repeat),
        }
    # The server runs in this process: client CPU includes its work.
    print(json.dumps(result, indent=2) if args.json else result)


if __name__ == "__main__":
    main()
