"""What isolation costs on a real report: CPU per file in the sandbox against in-process.

``conversion_rate.py`` compares wall-clock rates; this one compares CPU, which is what the
pipeline runs out of on a small machine. The built-in ``wsjf`` converter converts
``new_report_example.json`` (~100 KB) with the pipeline's stamp, in alternating batches:

- ``sandbox_child``: CPU of the sandbox's locked-down child per file (the conversion as the
  pipeline runs it, plus the job loop);
- ``sandbox_tree``: the child plus the fork server (job set-up, result relay);
- ``in_process``: the same converter, ``dump_report`` and ``stamped_body`` called directly.

Alternating batches (default 8 of 60 files each) so that a noisy neighbour on a shared VM
affects both sides alike; medians and minima are reported.

Usage: ``.venv/bin/python bench/sandbox_overhead.py [--batches 8] [--files 60] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from wats.api.models import dump_report
from wats.api.station import Station
from wats.converters.base import ConverterContext, ConverterSource
from wats.converters.builtin.wsjf import WSJFConverter
from wats.converters.sandbox import Sandbox, SandboxLimits
from wats.converters.stamp import stamped_body

SPEC = "wats.converters.builtin.wsjf:WSJFConverter"
STATION = {"name": "bench", "location": "lab", "purpose": "bench"}
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def measure(sample: Path, batches: int, files: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wats-bench-"))
    source = work / sample.name
    source.write_bytes(sample.read_bytes())
    context_data = {"station": STATION, "stamp": {"name": "wsjf", "digest": "ab" * 32}}
    converter = WSJFConverter()
    context = ConverterContext(station=Station(**STATION))

    def in_process() -> bytes:
        result = converter.convert(ConverterSource(source), context)
        return stamped_body(dump_report(result.reports[0]), "id", STATION)

    per: dict[str, list[float]] = {"sandbox_child": [], "sandbox_tree": [], "in_process": []}
    # One child for the whole run, so every batch measures the same process.
    limits = SandboxLimits(conversions_per_child=batches * files + 100)
    with Sandbox(limits) as sandbox:
        sandbox.start()
        sandbox.preload([SPEC])
        for _ in range(5):
            assert sandbox.convert(SPEC, {}, source, context_data).ok
            in_process()
        assert sandbox.pid is not None
        server = psutil.Process(sandbox.pid)
        [child] = server.children()
        for _ in range(batches):
            tree0, child0 = _cpu(server) + _cpu(child), _cpu(child)
            for _ in range(files):
                outcome = sandbox.convert(SPEC, {}, source, context_data)
                assert outcome.ok, outcome.message
            per["sandbox_tree"].append((_cpu(server) + _cpu(child) - tree0) / files * 1000)
            per["sandbox_child"].append((_cpu(child) - child0) / files * 1000)
            start = time.process_time()
            for _ in range(files):
                in_process()
            per["in_process"].append((time.process_time() - start) / files * 1000)
    return {
        "sample": sample.name,
        "bytes": sample.stat().st_size,
        "batches": batches,
        "files_per_batch": files,
        "load_avg_before": round(os.getloadavg()[0], 2),
        "cpu_ms_per_file": {
            name: {"median": round(statistics.median(v), 2), "min": round(min(v), 2)}
            for name, v in per.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--files", type=int, default=60, help="files per batch")
    parser.add_argument("--samples", type=Path, default=None, help="the samples folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    samples = args.samples or Path(os.environ.get("WATS_SAMPLES", DEFAULT_SAMPLES))
    sample = samples / "wsjf" / "new_report_example.json"
    if not sample.is_file():
        raise SystemExit(f"sample not found: {sample} (set WATS_SAMPLES or --samples)")
    result = measure(sample, args.batches, args.files)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, figures in result["cpu_ms_per_file"].items():
            print(f"{name:14} median {figures['median']:6.2f} ms   min {figures['min']:6.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
