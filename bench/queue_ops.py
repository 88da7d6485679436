"""What the durable queue's operations cost per report (run by hand; docs/benchmarks.md).

Why: every report passes ``enqueue`` (converter worker), ``due`` (uploader scans) and
``mark_uploaded`` (uploader) once, each fsynced; these figures show what durability costs per
report next to the ~10 ms the server needs to take a report in.

Queues N copies of ``new_report_example.json`` (~100 KB, fresh ids) into a fresh queue under
/tmp, then times: ``enqueue`` (per report), ``due()`` over all N (first call, then again: the
meta cache), ``mark_retry`` (per report), ``mark_uploaded`` (per report), and, for scale, an
fsync of a small file and of a folder on the same file system.

Usage: ``.venv/bin/python bench/queue_ops.py [--count 200] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from wats.fsutil import fsync_dir
from wats.queue import ReportQueue

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _sample() -> dict[str, Any]:
    root = os.environ.get("WATS_SAMPLES")
    folder = Path(root) / "wsjf" if root else PROJECT_ROOT.parent / "shared" / "samples" / "wsjf"
    return json.loads((folder / "new_report_example.json").read_bytes())


def run(count: int) -> dict[str, Any]:
    sample = _sample()
    root = Path(tempfile.mkdtemp(prefix="qb", dir="/tmp"))
    try:
        queue = ReportQueue(root)
        reports = [{**sample, "id": str(uuid.uuid4())} for _ in range(count)]
        out: dict[str, Any] = {"count": count, "load_avg": round(os.getloadavg()[0], 2)}

        t0 = time.perf_counter()
        for report in reports:
            queue.enqueue(report, converter="wsjf", source_file="x.json", station="ST")
        out["enqueue_ms"] = (time.perf_counter() - t0) / count * 1000

        t0 = time.perf_counter()
        due = queue.due()
        out["due_all_first_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        queue.due()
        out["due_all_again_ms"] = (time.perf_counter() - t0) * 1000
        assert len(due) == count

        t0 = time.perf_counter()
        for report in reports:
            queue.mark_retry(report["id"], "HTTP 503", next_attempt=0.0)
        out["mark_retry_ms"] = (time.perf_counter() - t0) / count * 1000

        t0 = time.perf_counter()
        for report in reports:
            queue.mark_uploaded(report["id"])
        out["mark_uploaded_ms"] = (time.perf_counter() - t0) / count * 1000

        probe = root / "fsync-probe"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            t0 = time.perf_counter()
            for _ in range(100):
                os.write(fd, b"x" * 100)
                os.fsync(fd)
            out["fsync_file_ms"] = (time.perf_counter() - t0) / 100 * 1000
        finally:
            os.close(fd)
        t0 = time.perf_counter()
        for _ in range(100):
            fsync_dir(root)
        out["fsync_dir_ms"] = (time.perf_counter() - t0) / 100 * 1000
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.count)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
