"""How many events per second does the bus carry, and how late do they arrive? (run by hand)

Why this exists: every worker heartbeat, lifecycle event and (later) pipeline hint travels
publisher → supervisor proxy → subscriber. The issue's goal is ≥ 50,000 msgs/s with 1 KB msgpack
bodies; this script measures it the way the system runs it, through the real ``wats.protocol``
helpers (``Publisher.publish`` validates and encodes, ``Subscriber.recv`` decodes, validates and
tracks sequence gaps), in three processes:

1. a proxy process binds XSUB/XPUB exactly as the supervisor does (``BusAddresses.for_runtime_dir``,
   ``bind``, ``write_endpoints``) and runs ``zmq.proxy``;
2. a publisher process (started fresh per phase) reads ``endpoints.json`` and publishes;
3. this process subscribes and measures: rate = events received / time from first to last
   arrival; latency = arrival time minus the envelope's ``ts`` (same machine, same clock).

Phases: ``saturated`` publishes as fast as one publisher can (throughput; latency then includes
queueing), ``paced`` publishes at ``--rate`` per second (latency under an ordinary load).
Lost events = sent - received. Because other load on the machine changes the rates, the script
also reports the CPU time each process spends per message (publisher and subscriber from
``time.process_time``, the proxy from psutil), which does not depend on what else runs; the slowest
process's cost gives the rate the pipeline could reach with a core per process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgpack
import psutil
import zmq

from wats.protocol import BusAddresses, Publisher, Subscriber, bind, read_endpoints, write_endpoints
from wats.protocol.addresses import ENDPOINTS_FILE

SAMPLE = "bench.sample"
PROBE = "bench.probe"
END = "bench.end"
STARTUP_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 5.0


@dataclass
class PhaseResult:
    """One phase: what was sent and received, how fast, how late."""

    name: str
    target_rate: float | None
    sent: int
    received: int
    lost: int
    publisher_seconds: float
    publisher_rate: float
    seconds: float
    rate_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    publisher_cpu_us: float
    proxy_cpu_us: float
    subscriber_cpu_us: float


def body_of_size(size: int) -> dict[str, Any]:
    """A body shaped like a real event (a few fields and a payload) packing to ``size`` bytes."""
    body: dict[str, Any] = {"n": 2**31, "station": "bench-station", "data": ""}
    overhead = len(msgpack.packb(body))
    body["data"] = "x" * max(0, size - overhead - 2)  # str8 → str16 header grows by 2 bytes
    return body


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def run_proxy(runtime: Path, transport: str, hwm: int) -> None:
    """Bind XSUB/XPUB like the supervisor, record the endpoints, forward until killed."""
    ctx = zmq.Context()
    planned = BusAddresses.for_runtime_dir(runtime, ipc=transport == "ipc")
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.RCVHWM, hwm)
    events_in, events_out = bind(xsub, planned.events_in), bind(xpub, planned.events_out)
    write_endpoints(runtime, BusAddresses(events_in, events_out, control="tcp://127.0.0.1:1"))
    zmq.proxy(xsub, xpub)


def run_publisher(runtime: Path, count: int, rate: float, body_bytes: int, hwm: int) -> None:
    """Probe until told "go" on stdin, publish ``count`` samples (paced if ``rate``), report."""
    ctx = zmq.Context()
    pub = Publisher(ctx, read_endpoints(runtime).events_in, "bench", sndhwm=hwm, linger_ms=-1)
    while not select.select([sys.stdin], [], [], 0.01)[0]:
        pub.publish(PROBE, {})
    sys.stdin.readline()
    body = body_of_size(body_bytes)
    cpu_started = time.process_time()
    started = time.perf_counter()
    if rate > 0:
        for n in range(count):
            due = started + n / rate
            while (wait := due - time.perf_counter()) > 0:
                if wait > 0.002:
                    time.sleep(wait - 0.001)
            body["n"] = n
            pub.publish(SAMPLE, body)
    else:
        for n in range(count):
            body["n"] = n
            pub.publish(SAMPLE, body)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    for _ in range(3):  # the subscriber stops at the first one it sees
        pub.publish(END, {"sent": count})
    pub.close()
    ctx.term()
    print(json.dumps({"sent": count, "seconds": seconds, "cpu": cpu_seconds}), flush=True)


def run_phase(
    ctx: zmq.Context[Any],
    args: argparse.Namespace,
    runtime: Path,
    proxy: psutil.Process,
    name: str,
    count: int,
    rate: float,
) -> PhaseResult:
    """Start a fresh publisher, wait until its probes arrive, then receive and time its samples."""
    sub = Subscriber(ctx, read_endpoints(runtime).events_out, ["bench."], rcvhwm=args.hwm)
    cmd = [
        sys.executable,
        __file__,
        "--role",
        "publisher",
        "--runtime",
        str(runtime),
        "--count",
        str(count),
        "--rate",
        str(rate),
        "--body-bytes",
        str(args.body_bytes),
        "--hwm",
        str(args.hwm),
    ]
    publisher = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert publisher.stdin is not None and publisher.stdout is not None
    try:
        env = sub.recv(timeout=STARTUP_TIMEOUT_S)
        if env is None or env.type != PROBE:
            raise RuntimeError("publisher never reached the subscriber through the proxy")
        while sub.recv(timeout=0) is not None:  # drain the probes
            pass
        proxy_cpu = sum(proxy.cpu_times()[:2])
        own_cpu = time.process_time()
        publisher.stdin.write("go\n")
        publisher.stdin.flush()
        latencies: list[float] = []
        first = last = 0.0
        while True:
            env = sub.recv(timeout=IDLE_TIMEOUT_S)
            now = time.time()
            if env is None or env.type == END:
                break
            if env.type != SAMPLE:
                continue
            if not latencies:
                first = time.perf_counter()
            last = time.perf_counter()
            latencies.append(now - env.ts)
        own_cpu = time.process_time() - own_cpu
        proxy_cpu = sum(proxy.cpu_times()[:2]) - proxy_cpu
        report = json.loads(publisher.stdout.readline() or "{}")
        publisher.wait(STARTUP_TIMEOUT_S)
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        sub.close()
    received = len(latencies)
    seconds = last - first if received > 1 else float("nan")
    latencies.sort()
    sent = int(report.get("sent", count))
    pub_seconds = float(report.get("seconds", float("nan")))
    frame_bytes = args.body_bytes + 100  # envelope fields add ~100 bytes around the body
    rate_per_s = (received - 1) / seconds if received > 1 else 0.0
    per_message_us = 1e6 / received if received else float("nan")
    return PhaseResult(
        name=name,
        target_rate=rate or None,
        sent=sent,
        received=received,
        lost=sent - received,
        publisher_seconds=round(pub_seconds, 3),
        publisher_rate=round(sent / pub_seconds, 1) if pub_seconds else 0.0,
        seconds=round(seconds, 3),
        rate_per_s=round(rate_per_s, 1),
        mb_per_s=round(rate_per_s * frame_bytes / 1e6, 2),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
        max_ms=round((latencies[-1] if latencies else float("nan")) * 1000, 3),
        publisher_cpu_us=round(float(report.get("cpu", float("nan"))) * 1e6 / max(sent, 1), 2),
        proxy_cpu_us=round(proxy_cpu * per_message_us, 2),
        subscriber_cpu_us=round(own_cpu * per_message_us, 2),
    )


def wait_for_endpoints(runtime: Path, proxy: subprocess.Popen[bytes]) -> None:
    """Poll for the proxy's endpoints.json (with a deadline; the proxy may fail to start)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (runtime / ENDPOINTS_FILE).exists():
        if proxy.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("proxy did not start (no endpoints.json)")
        time.sleep(0.01)


def main_run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the proxy, run the phases, stop the proxy; the whole run as a dict."""
    load_before = os.getloadavg()
    runtime = Path(tempfile.mkdtemp(prefix="wats-bench-"))
    proxy = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "proxy",
            "--runtime",
            str(runtime),
            "--transport",
            args.transport,
            "--hwm",
            str(args.hwm),
        ]
    )
    ctx = zmq.Context()
    try:
        wait_for_endpoints(runtime, proxy)
        watched = psutil.Process(proxy.pid)
        phases = [
            run_phase(ctx, args, runtime, watched, "saturated", args.count, 0.0),
            run_phase(ctx, args, runtime, watched, "paced", args.paced_count, args.rate),
        ]
    finally:
        proxy.terminate()
        proxy.wait(STARTUP_TIMEOUT_S)
        ctx.term()
        shutil.rmtree(runtime, ignore_errors=True)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "libzmq": zmq.zmq_version(),
            "pyzmq": zmq.__version__,
            "msgpack": ".".join(map(str, msgpack.version)),
            "load_average_before": [round(x, 2) for x in load_before],
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "transport": args.transport,
        "body_bytes": args.body_bytes,
        "phases": [asdict(p) for p in phases],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="samples in the saturated phase")
    parser.add_argument("--paced-count", type=int, default=50_000, help="paced samples")
    parser.add_argument("--rate", type=float, default=10_000, help="paced phase rate (msgs/s)")
    parser.add_argument("--body-bytes", type=int, default=1024, help="packed body size")
    parser.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    parser.add_argument("--hwm", type=int, default=1_000_000, help="ZeroMQ high-water marks")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--role", choices=["main", "proxy", "publisher"], default="main", help=argparse.SUPPRESS
    )
    parser.add_argument("--runtime", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.role == "proxy":
        run_proxy(args.runtime, args.transport, args.hwm)
        return
    if args.role == "publisher":
        run_publisher(args.runtime, args.count, args.rate, args.body_bytes, args.hwm)
        return
    result = main_run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"bus throughput: {result['transport']}, {args.body_bytes}-byte bodies, "
        f"{result['machine']['cpus']} CPUs, libzmq {result['machine']['libzmq']}"
    )
    print(
        "| phase | target/s | sent | received | lost | pub msgs/s | sub msgs/s | MB/s "
        "| p50 ms | p99 ms | max ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in result["phases"]:
        print(
            f"| {p['name']} | {p['target_rate'] or '-'} | {p['sent']} | {p['received']} | "
            f"{p['lost']} | {p['publisher_rate']:,.0f} | {p['rate_per_s']:,.0f} | "
            f"{p['mb_per_s']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} |"
        )
    saturated = result["phases"][0]
    costs = (
        saturated["publisher_cpu_us"],
        saturated["proxy_cpu_us"],
        saturated["subscriber_cpu_us"],
    )
    # Only the saturated phase: the paced publisher spins between sends, so its CPU is not cost.
    print(
        f"\nCPU per message, saturated (µs): publisher {costs[0]}, proxy {costs[1]}, "
        f"subscriber {costs[2]} -> {1e6 / max(costs):,.0f} msgs/s with a core per process"
    )
    print(f"\nload average before the run: {result['machine']['load_average_before']}")


if __name__ == "__main__":
    main()
