"""Converter sandbox benchmark: the per-file cost of isolation with a trivial converter.

What one file costs in ``Sandbox.convert`` (fork of the warm fork server, rlimits, private temp
dir, capture files, result over the pipe, reap, cleanup) with a converter that does almost
nothing (it reads a few bytes and returns one tiny UUT report). Next to it, in the same run:

- ``sandbox_fork_per_file``: the same with ``conversions_per_child = 1`` (a fresh fork per
  file, the sandbox's first design);
- ``in-process``: the same converter called directly (what the work itself costs);
- ``fresh interpreter``: ``python -c`` importing what a converter needs (the cost per file a
  spawn-per-file sandbox would pay before doing anything; the reason for the fork server).

The converter is loaded the way a site's own is: a ``trivial.py`` in a converters folder.
Goal (issue 4): sandbox ≤ 10 ms per file.

Usage: ``.venv/bin/python bench/sandbox_cost.py [--files 500] [--warmup 20] [--spawns 5] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wats.api.station import Station
from wats.converters.base import ConverterContext, ConverterSource
from wats.converters.loader import load_converter_class
from wats.converters.sandbox import Sandbox, SandboxLimits

TRIVIAL = '''
from wats.api.models import parse_report
from wats.converters.base import ConverterBase, ConverterResult


class Trivial(ConverterBase):
    """One tiny UUT report per file; the serial number is the file's text."""

    name = "trivial"
    file_patterns = ("*.txt",)

    def convert(self, source, context):
        serial = source.read_text().strip() or "EMPTY"
        return ConverterResult.ok(parse_report({
            "type": "T", "id": "00000000-0000-0000-0000-000000000000", "pn": "PN", "sn": serial,
            "rev": "A", "processCode": 10, "result": "P", "machineName": "m", "location": "l",
            "purpose": "p", "start": "2024-01-02T03:04:05+00:00",
            "root": {"status": "P", "stepType": "SequenceCall", "name": "MainSequence"},
        }))
'''

STATION = {"name": "bench", "location": "lab", "purpose": "bench"}


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(samples),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
    }


def run(files: int, warmup: int, spawns: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wats-bench-") as tmp:
        root = Path(tmp)
        converters = root / "converters"
        converters.mkdir()
        (converters / "trivial.py").write_text(TRIVIAL)
        source = root / "result.txt"
        source.write_text("SN-0001\n")

        cls = load_converter_class("trivial.py", converters)
        converter = cls()
        context = ConverterContext(station=Station(**STATION))
        in_process = []
        for i in range(warmup + files):
            started = time.perf_counter()
            converter.convert(ConverterSource(source), context)
            if i >= warmup:
                in_process.append(time.perf_counter() - started)

        def timed(limits: SandboxLimits) -> tuple[list[float], float]:
            samples = []
            started_server = time.perf_counter()
            with Sandbox(limits, converters_dir=converters) as sandbox:
                server_start = time.perf_counter() - started_server
                sandbox.preload(["trivial.py"])
                for i in range(warmup + files):
                    started = time.perf_counter()
                    outcome = sandbox.convert("trivial.py", {}, source, {"station": STATION})
                    if i >= warmup:
                        samples.append(time.perf_counter() - started)
                    if not outcome.ok:
                        raise SystemExit(f"conversion failed: {outcome.failure}: {outcome.message}")
            return samples, server_start

        sandboxed, server_start = timed(SandboxLimits())  # a reused child (the default)
        fresh_child, _ = timed(SandboxLimits(conversions_per_child=1))  # a fork per file

        fresh = []
        code = "import wats.api.models, wats.converters.base, wats.converters.loader"
        for _ in range(spawns):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            fresh.append(time.perf_counter() - started)

    return {
        "files": files,
        "sandbox": _stats(sandboxed),
        "sandbox_fork_per_file": _stats(fresh_child),
        "in_process": _stats(in_process),
        "fresh_interpreter": _stats(fresh),
        "fork_server_start_ms": round(server_start * 1000, 1),
        "overhead_p50_ms": round(
            (statistics.median(sandboxed) - statistics.median(in_process)) * 1000, 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500, help="timed conversions per phase")
    parser.add_argument("--warmup", type=int, default=20, help="untimed conversions first")
    parser.add_argument("--spawns", type=int, default=5, help="fresh interpreters to time")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    result = run(args.files, args.warmup, args.spawns)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{'phase':<22} {'n':>5} {'mean ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8}")
    for phase in ("sandbox", "sandbox_fork_per_file", "in_process", "fresh_interpreter"):
        s = result[phase]
        print(
            f"{phase:<22} {s['n']:>5} {s['mean_ms']:>9} {s['p50_ms']:>8} "
            f"{s['p95_ms']:>8} {s['min_ms']:>8}"
        )
    print(f"fork server start: {result['fork_server_start_ms']} ms (once per worker)")
    print(f"sandbox overhead per file (p50): {result['overhead_p50_ms']} ms")


if __name__ == "__main__":
    main()
