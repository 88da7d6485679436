"""How fast does the embedded WATS server take in reports? (run by hand; see docs/benchmarks.md)

Why this exists: the embedded server is the peer of every client benchmark and integration test.
If the server were the slow side, client benchmarks would measure the server instead. This script
gives the server's ingest rate for a real WSJF report and, in the same run, a floor to compare it
with: the rate of ``GET /api/App/Version``, which goes through the same HTTP stack, auth and
framework but does no validation and no storage. ``ingest / version`` is therefore the share of
the framework's capacity that is left after validating and storing a report.

What it does:

1. starts ``wats-supervisor server`` as a subprocess on a free loopback port with a fresh data
   directory and a random token (its own process, so client and server do not share a GIL),
   unless ``--url`` points at a server that is already running;
2. for each client count (1 keep-alive client, then ``--clients`` concurrent ones, one thread and
   one ``httpx.Client`` each): warms up, then times ``--count`` version pings and ``--count``
   submissions of ``new_report_example.json``, each with a fresh report id;
3. prints reports/s, request MB/s and p50/p95/p99 latency per phase, and the ratios; ``--json``
   prints the same as one JSON object.

The sample is read from ``$WATS_SAMPLES/wsjf`` or ``../shared/samples/wsjf`` next to the project.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_NAME = "new_report_example.json"
ID_PLACEHOLDER = "00000000-0000-4000-8000-00000000b3c4"
SUBMIT_PATH = "/api/Report/WSJF"
VERSION_PATH = "/api/App/Version"
STARTUP_TIMEOUT_S = 30.0
PHASE_SETUP_TIMEOUT_S = 30.0


@dataclass
class PhaseResult:
    """One timed phase: what was sent, how long it took, and the latency distribution."""

    name: str
    clients: int
    requests: int
    errors: int
    seconds: float
    bytes_sent: int
    rate_per_s: float
    mb_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    first_error: str | None = None


@dataclass
class BenchResult:
    """The whole run: machine, command, phases and the ratios that make them comparable."""

    machine: dict[str, object]
    command: str
    sample: str
    sample_bytes: int
    server: str
    phases: list[PhaseResult] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)


def samples_wsjf_dir() -> Path:
    """Where the WSJF samples live: ``$WATS_SAMPLES/wsjf`` or ``../shared/samples/wsjf``."""
    override = os.environ.get("WATS_SAMPLES")
    root = Path(override) if override else PROJECT_ROOT.parent / "shared" / "samples"
    return root / "wsjf"


def load_template(path: Path) -> str:
    """The sample as compact JSON text whose id is a placeholder, so fresh ids are a cheap replace.

    Building each body by text replacement keeps client-side work per request tiny and constant,
    so the figures describe the server rather than ``json.dumps`` in the client.
    """
    report = json.loads(path.read_text(encoding="utf-8"))
    report["id"] = ID_PLACEHOLDER
    text = json.dumps(report, separators=(",", ":"), ensure_ascii=False)
    if text.count(ID_PLACEHOLDER) != 1:
        raise SystemExit(f"{path}: the report id placeholder must occur exactly once")
    return text


def fresh_bodies(template: str, count: int) -> list[bytes]:
    """``count`` request bodies, each the sample with a new random report id."""
    return [template.replace(ID_PLACEHOLDER, str(uuid.uuid4())).encode() for _ in range(count)]


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(port: int, data_dir: Path, token: str, log_level: str) -> list[str]:
    """The CLI line that runs the embedded server in the foreground (as ``make run`` would)."""
    exe = shutil.which("wats-supervisor", path=str(Path(sys.executable).parent))
    prefix = [exe] if exe else [sys.executable, "-m", "wats.cli.main"]
    return [
        *prefix,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data",
        str(data_dir),
        "--log-level",
        log_level,
        "--token",
        token,
    ]


def wait_until_up(url: str, token: str, process: subprocess.Popen[bytes] | None) -> None:
    """Poll the version endpoint until it answers 200, the server exits, or the deadline passes."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    headers = {"Authorization": f"Basic {token}"}
    last_problem = "no answer yet"
    with httpx.Client(base_url=url, headers=headers, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise SystemExit(f"server exited with code {process.returncode} during start-up")
            try:
                response = client.get(VERSION_PATH)
                if response.status_code == 200:
                    return
                last_problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                last_problem = type(exc).__name__
            time.sleep(0.05)  # polling interval while waiting for the port, not synchronisation
    raise SystemExit(f"server at {url} not up after {STARTUP_TIMEOUT_S:.0f} s ({last_problem})")


@contextmanager
def spawned_server(keep_data: bool, log_level: str) -> Iterator[tuple[str, str, str]]:
    """Run the embedded server as a subprocess for the duration of the block.

    Yields (url, token, description). The token is random per run and never printed.
    """
    token = base64.b64encode(f"bench:{secrets.token_urlsafe(16)}".encode()).decode()
    data_dir = Path(tempfile.mkdtemp(prefix="wats-bench-"))
    port = free_port()
    command = server_command(port, data_dir, token, log_level)
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(url, token, process)
        except SystemExit:
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            raise
        shown = " ".join([*command[:-1], "<token>"])
        yield url, token, f"subprocess pid {process.pid}: {shown}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


RequestFn = Callable[[httpx.Client, int], tuple[int, int]]


def submit_request(bodies: list[bytes]) -> RequestFn:
    """A request function that posts body ``i``; returns (status, bytes sent)."""

    def send(client: httpx.Client, i: int) -> tuple[int, int]:
        body = bodies[i]
        response = client.post(SUBMIT_PATH, content=body)
        return response.status_code, len(body)

    return send


def version_request(client: httpx.Client, _i: int) -> tuple[int, int]:
    """A request function for the framework floor: one version ping; returns (status, 0)."""
    return client.get(VERSION_PATH).status_code, 0


def make_client(url: str, token: str) -> httpx.Client:
    """One keep-alive client with the headers a WATS client sends."""
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        timeout=30.0,
    )


def run_phase(
    name: str, url: str, token: str, clients: int, count: int, request: RequestFn
) -> PhaseResult:
    """Send ``count`` requests split over ``clients`` threads, each with its own keep-alive client.

    Connections are opened (one warm request each) before the clock starts, so connection set-up
    is not part of the figure; a barrier releases all threads at once.
    """
    latencies: list[list[float]] = [[] for _ in range(clients)]
    sent = [0] * clients
    errors = [0] * clients
    first_error: list[str] = []
    barrier = threading.Barrier(clients + 1)
    finished = threading.Barrier(clients + 1)

    def worker(slot: int) -> None:
        try:
            measure(slot)
        except Exception as exc:  # a crashed worker must release the others, not hang them
            first_error.append(f"worker {slot}: {type(exc).__name__}: {exc}")
            barrier.abort()
            finished.abort()

    def measure(slot: int) -> None:
        with make_client(url, token) as client:
            client.get(VERSION_PATH)
            barrier.wait()
            for i in range(slot, count, clients):
                started = time.perf_counter()
                try:
                    status, size = request(client, i)
                except httpx.HTTPError as exc:
                    status, size = 0, 0
                    if not first_error:
                        first_error.append(f"{type(exc).__name__}: {exc}")
                latencies[slot].append(time.perf_counter() - started)
                if 200 <= status < 300:
                    sent[slot] += size
                else:
                    errors[slot] += 1
                    if not first_error and status:
                        first_error.append(f"HTTP {status}")
            finished.wait()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=PHASE_SETUP_TIMEOUT_S)
        started = time.perf_counter()
        finished.wait()
        seconds = time.perf_counter() - started
    except threading.BrokenBarrierError:
        raise SystemExit(f"{name} phase failed: {first_error or ['set-up timed out']}") from None
    for thread in threads:
        thread.join()

    all_latencies = sorted(value for slot in latencies for value in slot)
    total_bytes = sum(sent)
    return PhaseResult(
        name=name,
        clients=clients,
        requests=len(all_latencies),
        errors=sum(errors),
        seconds=round(seconds, 3),
        bytes_sent=total_bytes,
        rate_per_s=round(len(all_latencies) / seconds, 1),
        mb_per_s=round(total_bytes / seconds / 1e6, 2),
        p50_ms=round(statistics.median(all_latencies) * 1e3, 2) if all_latencies else 0.0,
        p95_ms=round(percentile(all_latencies, 0.95) * 1e3, 2),
        p99_ms=round(percentile(all_latencies, 0.99) * 1e3, 2),
        first_error=first_error[0] if first_error else None,
    )


def machine_info() -> dict[str, object]:
    """Enough about the machine to compare figures between runs."""
    cpu_model = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
    }


def run(args: argparse.Namespace, url: str, token: str, server: str) -> BenchResult:
    """Warm up, then run version and ingest phases for 1 and ``--clients`` clients."""
    sample = samples_wsjf_dir() / SAMPLE_NAME
    if not sample.is_file():
        raise SystemExit(f"sample not found: {sample} (set WATS_SAMPLES to the samples folder)")
    template = load_template(sample)
    result = BenchResult(
        machine=machine_info(),
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        sample=SAMPLE_NAME,
        sample_bytes=len(fresh_bodies(template, 1)[0]),
        server=server,
    )

    warm = fresh_bodies(template, args.warmup)
    run_phase("warm-up", url, token, 1, args.warmup, submit_request(warm))
    run_phase("warm-up", url, token, 1, args.warmup, version_request)

    for clients in sorted({1, args.clients}):
        result.phases.append(run_phase("version", url, token, clients, args.count, version_request))
        bodies = fresh_bodies(template, args.count)
        result.phases.append(
            run_phase("ingest", url, token, clients, args.count, submit_request(bodies))
        )

    by_key = {(p.name, p.clients): p for p in result.phases}
    for clients in sorted({1, args.clients}):
        ingest, version = by_key[("ingest", clients)], by_key[("version", clients)]
        if version.rate_per_s:
            result.ratios[f"ingest/version, {clients} client(s)"] = round(
                ingest.rate_per_s / version.rate_per_s, 3
            )
    if args.clients != 1 and by_key[("ingest", 1)].rate_per_s:
        result.ratios[f"ingest {args.clients} clients / 1 client"] = round(
            by_key[("ingest", args.clients)].rate_per_s / by_key[("ingest", 1)].rate_per_s, 3
        )
    return result


def render_text(result: BenchResult) -> str:
    """A human-readable table of the run."""
    m = result.machine
    lines = [
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['implementation']} {m['python']}, "
        f"{m['os']}",
        f"server:  {result.server}",
        f"sample:  {result.sample} ({result.sample_bytes} bytes per submission, fresh id each)",
        "",
        f"{'phase':<8} {'clients':>7} {'requests':>8} {'errors':>6} {'seconds':>8} "
        f"{'req/s':>8} {'MB/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}",
    ]
    for p in result.phases:
        lines.append(
            f"{p.name:<8} {p.clients:>7} {p.requests:>8} {p.errors:>6} {p.seconds:>8.2f} "
            f"{p.rate_per_s:>8.1f} {p.mb_per_s:>6.2f} {p.p50_ms:>7.2f} {p.p95_ms:>7.2f} "
            f"{p.p99_ms:>7.2f}"
        )
        if p.first_error:
            lines.append(f"         first error: {p.first_error}")
    lines.append("")
    lines.extend(f"{name}: {value}" for name, value in result.ratios.items())
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--help`` explains each."""
    parser = argparse.ArgumentParser(
        prog="bench/server_ingest.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Figures: req/s = completed requests per second of wall time; MB/s = request body "
            "bytes of successful submissions per second; latencies are per request, measured "
            "in the client. The ratio ingest/version is the share of the framework's capacity "
            "left after validation and storage."
        ),
    )
    parser.add_argument(
        "--count", type=int, default=2000, help="requests per timed phase (default 2000)"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="untimed requests before timing (default 200)"
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients in the second round (default 8)"
    )
    parser.add_argument(
        "--url",
        help="benchmark an already running server at this base URL instead of starting one",
    )
    parser.add_argument(
        "--token-env",
        default="WATS_TOKEN",
        help="with --url: environment variable holding the Basic token (default WATS_TOKEN)",
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the spawned server's data directory"
    )
    parser.add_argument(
        "--server-log-level",
        default="warning",
        help="uvicorn log level of the spawned server (default warning: no access log line "
        "per request, as the figure is about ingest, not logging)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if args.count < 1 or args.clients < 1 or args.warmup < 1:
        parser.error("--count, --clients and --warmup must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the result."""
    args = parse_args(argv)
    if args.url:
        token = os.environ.get(args.token_env, "")
        if not token:
            raise SystemExit(f"--url needs the token in ${args.token_env}")
        wait_until_up(args.url, token, None)
        result = run(args, args.url, token, f"existing server at {args.url}")
    else:
        with spawned_server(args.keep_data, args.server_log_level) as (url, token, description):
            result = run(args, url, token, description)
    if args.json:
        payload = asdict(result)
        print(json.dumps(payload, indent=2))
    else:
        print(render_text(result))
    failed = sum(p.errors for p in result.phases)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
