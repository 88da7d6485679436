"""Conversion rate per format: files/s and MB/s of each built-in converter, in the sandbox.

For every format the genuine samples in ``../shared/samples/<format>/`` are converted in turn
(``--rounds`` files per format; CSV, which has no shared sample, uses a generated 200-row
result file). Two figures per format, measured in the same run:

- ``sandbox``: ``Sandbox.convert`` exactly as the converter worker calls it (fork of the warm
  fork server, rlimits, the converter, the derived ids and station stamped, WSJF bytes back);
- ``in_process``: the converter called directly plus the WSJF encoding (the work itself).

``ratio`` = sandbox rate / in-process rate: what isolation costs for that format.

Usage: ``.venv/bin/python bench/conversion_rate.py [--rounds 100] [--samples DIR] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wats.api.models import dump_report
from wats.api.station import Station
from wats.converters import ConverterContext, ConverterSource, builtin_converters, content_hash
from wats.converters.sandbox import Sandbox, SandboxLimits
from wats.queue.item import encode_report

FOLDERS = {
    "wsjf": "wsjf",
    "wsxf": "wsxf",
    "atml": "atml",
    "teststand-xml": "teststand_xml",
    "openhtf": "openhtf",
}
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
STATION = {"name": "bench", "location": "lab", "purpose": "bench"}


def _csv_file(folder: Path, rows: int = 200) -> Path:
    lines = [
        "Serial Number: SN-BENCH-1",
        "Part Number: PCBA-200",
        "Revision: B",
        "Operator: bench",
        "Start Time: 2024-03-05T14:02:11+01:00",
        "",
        "Name,Value,Unit,Low,High,Status",
    ]
    lines += [f"Rail {i},{3.3 + i * 0.001:.3f},V,3.0,3.6,Passed" for i in range(rows)]
    path = folder / "bench.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _sources(samples: Path, tmp: Path) -> dict[str, list[Path]]:
    found = {
        name: sorted(p for p in (samples / folder).iterdir() if p.is_file())
        for name, folder in FOLDERS.items()
    }
    found["csv"] = [_csv_file(tmp)]
    return found


def _rate(count: int, size: int, seconds: float) -> dict[str, float]:
    return {
        "files_per_s": round(count / seconds, 1),
        "mb_per_s": round(size / seconds / 1e6, 2),
        "ms_per_file": round(seconds / count * 1000, 2),
    }


def run(rounds: int, samples: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    converters = builtin_converters()
    context = ConverterContext(station=Station(**STATION))
    with (
        tempfile.TemporaryDirectory(prefix="wats-bench-") as tmp,
        Sandbox(SandboxLimits()) as sandbox,
    ):
        sandbox.preload(list(converters))
        for name, paths in _sources(samples, Path(tmp)).items():
            order = [paths[i % len(paths)] for i in range(rounds)]
            size = sum(p.stat().st_size for p in order)
            digests = {p: content_hash(p) for p in paths}
            converter = converters[name]()

            started = time.perf_counter()
            for path in order:
                result = converter.convert(ConverterSource(path), context)
                if not result.success:
                    raise SystemExit(f"{name}: {path.name}: {result.message}")
                for report in result.reports:
                    encode_report(dump_report(report))
            in_process = time.perf_counter() - started

            for path in paths:  # warm the fork server's caches for this converter
                sandbox.convert(name, {}, path, {"station": STATION})
            started = time.perf_counter()
            for path in order:
                stamp = {"name": name, "digest": digests[path]}
                outcome = sandbox.convert(name, {}, path, {"station": STATION, "stamp": stamp})
                if not outcome.ok:
                    raise SystemExit(f"{name}: {path.name}: {outcome.failure}: {outcome.message}")
            sandboxed = time.perf_counter() - started

            results[name] = {
                "files": [p.name for p in paths],
                "mean_file_kb": round(size / rounds / 1024, 1),
                "sandbox": _rate(rounds, size, sandboxed),
                "in_process": _rate(rounds, size, in_process),
                "ratio": round(in_process / sandboxed, 2),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="files converted per format")
    parser.add_argument(
        "--samples",
        type=Path,
        default=Path(
            os.environ.get("WATS_SAMPLES", Path(__file__).parents[2] / "shared" / "samples")
        ),
        help="the samples folder (default: ../shared/samples)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if not args.samples.is_dir():
        raise SystemExit(f"samples folder {args.samples} not found (use --samples)")
    results = run(args.rounds, args.samples)
    if args.json:
        print(json.dumps({"command": " ".join(sys.argv), "formats": results}, indent=2))
        return
    print(
        f"{'format':<14} {'KB/file':>8} {'sandbox files/s':>16} {'MB/s':>6} "
        f"{'in-process files/s':>19} {'MB/s':>6} {'ratio':>6}"
    )
    for name, row in results.items():
        print(
            f"{name:<14} {row['mean_file_kb']:>8} {row['sandbox']['files_per_s']:>16} "
            f"{row['sandbox']['mb_per_s']:>6} {row['in_process']['files_per_s']:>19} "
            f"{row['in_process']['mb_per_s']:>6} {row['ratio']:>6}"
        )


if __name__ == "__main__":
    main()
