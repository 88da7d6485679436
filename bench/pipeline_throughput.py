"""The report pipeline end to end: throughput, latency and a hub (run by hand; docs/benchmarks.md).

Why this exists: the pipeline pays for durability (every hand-off is an fsynced file), isolation
(every file is converted in a forked, rlimited sandbox) and exactly-once identities. These
figures say what that costs next to the plain HTTP limit, and whether one file dropped into a
watch folder reaches the server quickly enough for an operator not to wait on it.

Each phase runs a real supervisor (``python -m wats.supervisor --config <tmp config>``, short
private folder under /tmp) with the pipeline workers (watcher, converter, uploader; health, sync
and the supervisor's own embedded server disabled) and ``[server] url`` pointing at an embedded
WATS server run as a separate process (``wats-supervisor server --port 0``, fresh data folder).
The uploader's client-side pacing is turned off (``rate_limit_requests = 0``): its default for a
configured server is WATS's documented 500 requests / 60 s, which would make this a benchmark of
the limiter. Everything else is the default configuration.

Phases:

1. ``throughput``: N (2,000) copies of ``new_report_example.json`` (fresh id and serial each, so
   each has its own content and derived report id) are written to a staging folder, then renamed
   into the watch folder in one burst; the time from the first rename until the server has
   accepted all N gives the rate (the ``report.uploaded`` stamp of the last of them, checked
   against the server through ``GET /api/Report/Query/Header`` with ``$skip=N-1&$top=1``).
   In the same run, just before and just after the pipeline, each against a fresh server, a
   bare loop POSTs the same N bodies with one keep-alive ``httpx.Client``: the limit without
   durability, conversion or isolation. The ratio is taken against the mean of the two; each
   phase also gives the share of CPU time the hypervisor gave to other guests meanwhile
   (``cpu_steal_pct``, from /proc/stat), since a shared VM can shrink under one phase only.
   ``ceiling`` turns the measured CPU per report (pipeline and server) into the best rate the
   machine's cores allow and the best ratio that permits (see ``cpu_ceiling``).
2. ``latency``: one file at a time (the next only after the last is on the server): time from
   its rename into the watch folder to the uploader's ``report.uploaded`` event (stamped by the
   uploader right after the server accepted it and the queue recorded it), with the
   ``file.pending`` (watcher) and ``report.queued`` (converter) stamps as a breakdown.
3. ``hub``: S station presets and F watch folders (100), one converter each; K files per folder
   dropped into all folders at once (saturated), then a paced load (each folder gets a file
   every P seconds): sustained reports/s, and the CPU of the supervisor's whole process tree
   (psutil, all children) as a share of one core and per report.

Usage::

    .venv/bin/python bench/pipeline_throughput.py                    # all phases
    .venv/bin/python bench/pipeline_throughput.py --phase latency --files 100
    .venv/bin/python bench/pipeline_throughput.py --json

The sample is read from ``$WATS_SAMPLES/wsjf`` or ``../shared/samples/wsjf`` next to the project.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import zmq

from wats.protocol import topics
from wats.protocol.addresses import read_endpoints
from wats.protocol.bus import ControlClient, Subscriber
from wats.server.testing import DEFAULT_TEST_TOKEN, ServerProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_NAME = "new_report_example.json"
SUBMIT_PATH = "/api/Report/WSJF"
HEADER_PATH = "/api/Report/Query/Header"
TOKEN_ENV = "WATS_BENCH_TOKEN"
CONVERTER = "bench"


# ---- inputs ---------------------------------------------------------------------------------


def sample_path() -> Path:
    """``$WATS_SAMPLES/wsjf`` or ``../shared/samples/wsjf`` next to the project."""
    root = os.environ.get("WATS_SAMPLES")
    folder = Path(root) / "wsjf" if root else PROJECT_ROOT.parent / "shared" / "samples" / "wsjf"
    path = folder / SAMPLE_NAME
    if not path.is_file():
        raise SystemExit(f"sample not found: {path} (set WATS_SAMPLES)")
    return path


def fresh_bodies(template: dict[str, Any], count: int, tag: str) -> list[bytes]:
    """``count`` copies of the sample, each with a fresh id and serial number."""
    bodies = []
    for n in range(count):
        report = dict(template)
        report["id"] = str(uuid.uuid4())
        report["sn"] = f"BENCH-{tag}-{n:06d}-{uuid.uuid4().hex[:6]}"
        bodies.append(json.dumps(report).encode("utf-8"))
    return bodies


def expected_id(converter: str, body: bytes) -> str:
    """The id the file's only report is queued under (invariant 3): the bench's converters
    are WSJF, whose reports keep their own id (other formats' ids are derived from the
    converter's name and the content)."""
    del converter
    return str(uuid.UUID(json.loads(body)["id"]))


# ---- the server -----------------------------------------------------------------------------


@contextmanager
def server(root: Path, name: str) -> Iterator[ServerProcess]:
    """A fresh embedded server in its own process (no access log)."""
    proc = ServerProcess(root / name, extra_args=["--log-level", "warning"]).start()
    try:
        yield proc
    finally:
        proc.stop()


def server_holds(client: httpx.Client, count: int) -> bool:
    """True when the server has at least ``count`` UUT reports (one header, not a list of all)."""
    answer = client.get(HEADER_PATH, params={"$skip": str(count - 1), "$top": "1"})
    answer.raise_for_status()
    return bool(answer.json())


def http_client(url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Basic {DEFAULT_TEST_TOKEN}"},
        timeout=30.0,
        trust_env=False,
    )


def wait_until(condition: Callable[[], Any], timeout: float, what: str, step: float) -> float:
    """Poll ``condition`` until true; return the perf_counter time it was first seen true."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)  # polling interval against a deadline, not synchronisation


def wait_accepted(
    sub: Subscriber, client: httpx.Client, want: set[str], total: int, timeout: float
) -> tuple[float, str]:
    """Wait until the server holds every report in ``want``; the epoch time the last one was
    accepted, and how that time was taken.

    The time is the ``report.uploaded`` stamp of the last of them (the uploader publishes it
    right after the server's answer), so the probe adds no load to the two shared cores while
    the pipeline runs: polling the server every 50 ms cost it ~20 HTTP requests a second. The
    server is asked once a second all the same, and once at the end, so a missed event can
    neither hang the run nor hide a report the server does not have (``timed_by`` = "poll"
    when the server's answer, not the events, ended the wait).
    """
    deadline = time.monotonic() + timeout
    missing = set(want)
    last = 0.0
    next_poll = time.monotonic() + 1.0
    while missing:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s; {len(missing)} reports not seen")
        env = sub.recv(timeout=0.5)
        if env is not None and env.type == "file.failed":
            raise SystemExit(f"conversion failed: {env.body}")
        uploaded = (
            env.body.get("id") if env is not None and env.type == topics.REPORT_UPLOADED else None
        )
        if uploaded in missing:
            missing.discard(uploaded)
            last = max(last, env.ts)
        if missing and time.monotonic() >= next_poll:
            next_poll = time.monotonic() + 1.0
            if server_holds(client, total):
                return time.time(), "poll"
    if not server_holds(client, total):
        raise SystemExit("every report.uploaded event arrived but the server lacks reports")
    return last, "events"


# ---- the supervisor -------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(type(value))


def write_config(
    root: Path,
    url: str,
    folders: list[Path],
    *,
    presets: int = 0,
    uploader_args: dict[str, Any] | None = None,
    converter_args: dict[str, Any] | None = None,
) -> Path:
    """A config: pipeline workers only, ``[server] url``, one wsjf converter per folder."""
    lines = [
        "[instance]",
        'name = "bench"',
        "",
        "[server]",
        f"url = {_toml(url)}",
        f"token_env = {_toml(TOKEN_ENV)}",
        "",
        "[station]",
        'name_source = "config"',
        'name = "BENCH-HUB"',
        'location = "Bench"',
        'purpose = "Production"',
    ]
    for name in ("health", "sync", "server"):
        lines += ["", f"[workers.{name}]", "enabled = false"]
    args = {"rate_limit_requests": 0, **(uploader_args or {})}
    lines += ["", "[workers.uploader]", f"args = {_toml(args)}"]
    for name, target in WORKER_TARGETS.items():
        lines += ["", f"[workers.{name}]", f"target = {_toml(target)}"]
    if converter_args:
        lines += ["", "[workers.converter]", f"args = {_toml(converter_args)}"]
    lines += [
        "",
        "[logging]",
        'level = "warning"',
        "",
        "[paths]",
        f"data_dir = {_toml(str(root / 'data'))}",
        f"runtime_dir = {_toml(str(root / 'run'))}",
    ]
    for n in range(presets):
        lines += ["", f"[stations.st{n:02d}]", f'name = "ST-{n:02d}"', f'location = "Line {n}"']
    for n, folder in enumerate(folders):
        name = CONVERTER if len(folders) == 1 else f"{CONVERTER}{n:03d}"
        lines += [
            "",
            "[[converters]]",
            f"name = {_toml(name)}",
            'converter = "wsjf"',
            f"watch_folder = {_toml(str(folder))}",
        ]
        if presets:
            lines.append(f'station = "st{n % presets:02d}"')
    path = root / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Supervisor:
    """``python -m wats.supervisor`` on a config, with a bus subscriber and CPU accounting."""

    def __init__(self, root: Path, config: Path) -> None:
        self.root = root
        env = {**os.environ, TOKEN_ENV: DEFAULT_TEST_TOKEN}
        self.out = open(root / "supervisor.out", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wats.supervisor", "--config", str(config), "--quiet"],
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=self.out,
            env=env,
            cwd=PROJECT_ROOT,
        )
        self.ctx: zmq.Context[Any] = zmq.Context()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.addresses = read_endpoints(root / "run")
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(
                        f"supervisor did not come up; see {root}/supervisor.out"
                    ) from None
                time.sleep(0.05)
        self.sub = Subscriber(
            self.ctx,
            self.addresses.events_out,
            [topics.FILE_PENDING, topics.REPORT_QUEUED, topics.REPORT_UPLOADED, "file.failed"],
        )

    def request(self, command: str, target: str | None = None) -> Any:
        client = ControlClient(self.ctx, self.addresses.control, "bench")
        try:
            return client.request(command, target=target, timeout=10).unwrap()
        finally:
            client.close()

    def wait_workers(self, names: tuple[str, ...], timeout: float = 60.0) -> None:
        def running() -> bool:
            try:
                workers = {w["name"]: w["state"] for w in self.request("status")["workers"]}
            except Exception:
                return False
            return all(workers.get(n) == "RUNNING" for n in names)

        wait_until(running, timeout, f"workers {names} running", 0.1)

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User + system CPU of the supervisor and every live descendant (ended grandchildren,
        i.e. sandbox forks, are counted in their parents' ``children_*`` times once reaped)."""
        total = 0.0
        for proc in self.tree():
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                continue
        return total

    def cpu_by_process(self, kind: str = "all") -> dict[str, float]:
        """CPU seconds (as ``cpu_seconds``) per process: the supervisor, each worker by name,
        and anything below a worker (the converter's sandbox fork server) as ``<worker>+``.
        ``kind`` "system" counts kernel time only (file system, pipes, sockets)."""
        names = {}
        try:
            for worker in self.request("status")["workers"]:
                if worker.get("pid"):
                    names[worker["pid"]] = worker["name"]
        except Exception:
            pass
        names[self.proc.pid] = "supervisor"
        out: dict[str, float] = {}
        for proc in self.tree():
            try:
                t = proc.cpu_times()
                label = names.get(proc.pid)
                if label is None:
                    parent = proc.ppid()
                    label = f"{names.get(parent, 'other')}+"
            except psutil.NoSuchProcess:
                continue
            total = t.system + t.children_system
            if kind != "system":
                total += t.user + t.children_user
            out[label] = out.get(label, 0.0) + total
        return out

    def rss_mb(self) -> float:
        total = 0
        for proc in self.tree():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 1e6

    def close(self) -> None:
        try:
            self.request("shutdown")
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.sub.close()
        self.ctx.term()
        self.out.close()


@contextmanager
def pipeline(root: Path, url: str, folders: list[Path], **config: Any) -> Iterator[Supervisor]:
    root.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    config.setdefault("converter_args", CONVERTER_ARGS)
    sup = Supervisor(root, write_config(root, url, folders, **config))
    try:
        sup.wait_workers(("watcher", "converter", "uploader"))
        yield sup
    finally:
        sup.close()


def stage(folder: Path, bodies: list[bytes], prefix: str) -> list[Path]:
    """Write the files where the watcher does not look (same file system), ready to rename in."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, body in enumerate(bodies):
        path = folder / f"{prefix}-{n:06d}.json"
        path.write_bytes(body)
        paths.append(path)
    return paths


DROP_MODE = "write"
CONVERTER_ARGS: dict[str, Any] = {}
WORKER_TARGETS: dict[str, str] = {}


def drop(staged: Path, folder: Path, body: bytes) -> None:
    """Put one result file into a watch folder the way a station does.

    ``write`` (default): create, write and close it in place (the watcher sees the close).
    ``rename``: rename a finished file in from outside the watched tree (atomic drop).
    """
    target = folder / staged.name
    if DROP_MODE == "rename":
        staged.rename(target)
    else:
        with open(target, "wb") as handle:
            handle.write(body)


def warm_up(sup: Supervisor, client: httpx.Client, root: Path, folder: Path, tpl: dict) -> int:
    """A few files through every stage first (fork server, imports, connections)."""
    bodies = fresh_bodies(tpl, 5, "warm")
    for path, body in zip(stage(root / "stage-warm", bodies, "warm"), bodies, strict=True):
        drop(path, folder, body)
    wait_until(lambda: server_holds(client, len(bodies)), 120, "warm-up reports", 0.1)
    return len(bodies)


# ---- phases ---------------------------------------------------------------------------------


def bench_throughput(root: Path, tpl: dict[str, Any], count: int) -> dict[str, Any]:
    """The pipeline's rate against a bare loop run just before and just after it.

    The VM's other tenants come and go (see ``cpu_steal_pct``), so one bare loop before or
    after can catch a different machine than the pipeline did; the ratio is taken against the
    mean of the two, and both are reported."""
    bodies = fresh_bodies(tpl, count, "tp")
    result: dict[str, Any] = {"files": count}
    before = bare_loop(root, tpl, bodies, "srv-bare-before")

    with server(root, "srv-pipeline") as srv, http_client(srv.url) as client:
        watch = root / "in"
        with pipeline(root / "p1", srv.url, [watch]) as sup:
            warm = warm_up(sup, client, root / "p1", watch, tpl)
            staged = stage(root / "p1" / "stage", bodies, "tp")
            # Only what the wait needs, with room for every event of the run: the general
            # subscriber also takes 2,000 file.pending events within a second of the drop.
            sub = Subscriber(
                sup.ctx,
                sup.addresses.events_out,
                [topics.REPORT_UPLOADED, "file.failed"],
                rcvhwm=4 * count + 1000,
            )
            while sup.sub.recv(timeout=0.2) is not None:  # drain the warm-up's events
                pass
            want = {expected_id(CONVERTER, body) for body in bodies}
            cpu0, load0 = sup.cpu_seconds(), os.getloadavg()[0]
            per0, sys0 = sup.cpu_by_process(), sup.cpu_by_process("system")
            steal0, srv0 = cpu_jiffies(), process_cpu(srv)
            t0 = time.time()
            for path, body in zip(staged, bodies, strict=True):
                drop(path, watch, body)
            dropped = time.time() - t0
            t1, timed_by = wait_accepted(sub, client, want, warm + count, 900)
            sub.close()
            seconds = t1 - t0
            steal = cpu_steal_pct(steal0, cpu_jiffies())
            server_cpu = process_cpu(srv) - srv0
            per1, sys1 = sup.cpu_by_process(), sup.cpu_by_process("system")
            result["cpu_ms_per_report_by_process"] = {
                k: round((v - per0.get(k, 0.0)) / count * 1000, 2) for k, v in per1.items()
            }
            result["system_cpu_ms_per_report_by_process"] = {
                k: round((v - sys0.get(k, 0.0)) / count * 1000, 2) for k, v in sys1.items()
            }
            result["pipeline"] = {
                "seconds": round(seconds, 3),
                "rate_per_s": round(count / seconds, 1),
                "drop_seconds": round(dropped, 3),
                "timed_by": timed_by,
                "cpu_seconds_tree": round(sup.cpu_seconds() - cpu0, 2),
                "cpu_ms_per_report": round((sup.cpu_seconds() - cpu0) / count * 1000, 2),
                "cpu_steal_pct": steal,
                "server_cpu_ms_per_report": round(server_cpu / count * 1000, 2),
                "load_avg_before": round(load0, 2),
                "rss_mb_tree": round(sup.rss_mb(), 1),
            }

    after = bare_loop(root, tpl, bodies, "srv-bare-after")
    mean = (before["rate_per_s"] + after["rate_per_s"]) / 2
    result["bare_loop"] = {"rate_per_s": round(mean, 1), "before": before, "after": after}
    result["ratio"] = round(result["pipeline"]["rate_per_s"] / mean, 3)
    result["ceiling"] = cpu_ceiling(result["pipeline"], mean)
    return result


def cpu_ceiling(pipeline: dict[str, Any], bare_rate: float) -> dict[str, Any]:
    """What the machine's cores allow, from the CPU this run measured.

    The bare loop is serial (one request at a time), so it runs on about one core; the pipeline
    and the server share every core. With C cores, P ms of pipeline CPU and S ms of server CPU
    per report, the pipeline cannot beat C / (P + S) reports per ms, however well it overlaps
    its stages. ``ceiling_ratio`` is that bound over the bare loop's rate: the best ratio this
    run's CPU costs permit. ``pipeline_cpu_ms_for_goal`` is the P at which 0.8x becomes
    possible at all (the server's S held as measured).
    """
    cores = os.cpu_count() or 1
    p_ms = pipeline["cpu_ms_per_report"]
    s_ms = pipeline["server_cpu_ms_per_report"]
    bound = cores * 1000 / (p_ms + s_ms)
    return {
        "cores": cores,
        "cpu_bound_rate_per_s": round(bound, 1),
        "share_of_cpu_bound": round(pipeline["rate_per_s"] / bound, 3),
        "ceiling_ratio": round(bound / bare_rate, 3),
        "pipeline_cpu_ms_for_goal": round(cores * 1000 / (0.8 * bare_rate) - s_ms, 2),
    }


def bare_loop(root: Path, tpl: dict[str, Any], bodies: list[bytes], name: str) -> dict[str, Any]:
    """One keep-alive client POSTing ``bodies`` in turn to a fresh server: the limit without
    durability, conversion or isolation."""
    with server(root, name) as srv, http_client(srv.url) as client:
        for body in fresh_bodies(tpl, 20, "warm-bare"):
            client.post(SUBMIT_PATH, content=body, headers={"Content-Type": "application/json"})
        errors = 0
        steal0, srv0, own0 = cpu_jiffies(), process_cpu(srv), time.process_time()
        t0 = time.perf_counter()
        for body in bodies:
            answer = client.post(
                SUBMIT_PATH, content=body, headers={"Content-Type": "application/json"}
            )
            errors += answer.status_code != 200
        seconds = time.perf_counter() - t0
        server_cpu, own_cpu = process_cpu(srv) - srv0, time.process_time() - own0
    return {
        "seconds": round(seconds, 3),
        "rate_per_s": round(len(bodies) / seconds, 1),
        "errors": errors,
        "cpu_steal_pct": cpu_steal_pct(steal0, cpu_jiffies()),
        "server_cpu_ms_per_report": round(server_cpu / len(bodies) * 1000, 2),
        "client_cpu_ms_per_report": round(own_cpu / len(bodies) * 1000, 2),
    }


def process_cpu(srv: ServerProcess) -> float:
    """CPU seconds the server process has used so far."""
    assert srv.process is not None
    times = psutil.Process(srv.process.pid).cpu_times()
    return float(times.user + times.system)


def cpu_jiffies() -> tuple[int, int] | None:
    """(steal, total) CPU time of the whole machine from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])


def cpu_steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the machine's CPU time the hypervisor gave to other guests meanwhile (%):
    a run with high steal measured a smaller machine."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _dist(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(values, 50), 1),
        "p90_ms": round(_percentile(values, 90), 1),
        "p99_ms": round(_percentile(values, 99), 1),
        "mean_ms": round(statistics.fmean(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def bench_latency(root: Path, tpl: dict[str, Any], files: int) -> dict[str, Any]:
    bodies = fresh_bodies(tpl, files, "lat")
    staged = stage(root / "p2" / "stage", bodies, "lat")
    stages: dict[str, list[float]] = {"pending": [], "queued": [], "uploaded": []}
    with server(root, "srv-latency") as srv, http_client(srv.url) as client:
        watch = root / "in-latency"
        with pipeline(root / "p2", srv.url, [watch]) as sup:
            warm_up(sup, client, root / "p2", watch, tpl)
            while sup.sub.recv(timeout=0.2) is not None:  # drain the warm-up's events
                pass
            for path, body in zip(staged, bodies, strict=True):
                want = expected_id(CONVERTER, body)
                seen: dict[str, float] = {}
                dropped = time.time()
                drop(path, watch, body)
                deadline = time.monotonic() + 60
                while "uploaded" not in seen:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{path.name}: not uploaded within 60 s")
                    env = sup.sub.recv(timeout=1.0)
                    if env is None:
                        continue
                    if env.type == "file.failed":
                        raise SystemExit(f"conversion failed: {env.body}")
                    source = Path(str(env.body.get("source", ""))).name
                    if env.type == topics.FILE_PENDING and source == path.name:
                        seen["pending"] = env.ts
                    elif env.type == topics.REPORT_QUEUED and env.body.get("id") == want:
                        seen["queued"] = env.ts
                    elif env.type == topics.REPORT_UPLOADED and env.body.get("id") == want:
                        seen["uploaded"] = env.ts
                for name, stamp in seen.items():
                    stages[name].append((stamp - dropped) * 1000)
    return {
        "files": files,
        "drop_to_uploaded": _dist(stages["uploaded"]),
        "drop_to_pending": _dist(stages["pending"]) if stages["pending"] else None,
        "drop_to_queued": _dist(stages["queued"]) if stages["queued"] else None,
    }


def bench_hub(
    root: Path,
    tpl: dict[str, Any],
    folders: int,
    presets: int,
    per_folder: int,
    paced_seconds: float,
    paced_interval: float,
) -> dict[str, Any]:
    result: dict[str, Any] = {"folders": folders, "presets": presets}
    with server(root, "srv-hub") as srv, http_client(srv.url) as client:
        watch = [root / "hub" / f"station-{n:03d}" for n in range(folders)]
        with pipeline(root / "p3", srv.url, watch, presets=presets) as sup:
            warm = warm_up(sup, client, root / "p3", watch[0], tpl)
            result["processes"] = len(sup.tree())
            # idle CPU: nothing to do, 100 folders watched
            cpu0, t0 = sup.cpu_seconds(), time.perf_counter()
            time.sleep(5.0)  # a measuring window, not synchronisation
            idle = (sup.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
            result["idle_cpu_percent"] = round(idle * 100, 1)

            # saturated: per_folder files into every folder at once
            total = folders * per_folder
            bodies = fresh_bodies(tpl, total, "hub")
            staged = stage(root / "p3" / "stage", bodies, "hub")
            cpu0, load0 = sup.cpu_seconds(), os.getloadavg()[0]
            t0 = time.perf_counter()
            for n, (path, body) in enumerate(zip(staged, bodies, strict=True)):
                drop(path, watch[n % folders], body)
            done = warm + total
            t1 = wait_until(lambda: server_holds(client, done), 1800, f"{total} reports", 0.1)
            cpu = sup.cpu_seconds() - cpu0
            result["saturated"] = {
                "files": total,
                "seconds": round(t1 - t0, 2),
                "rate_per_s": round(total / (t1 - t0), 1),
                "cpu_percent_of_one_core": round(cpu / (t1 - t0) * 100, 1),
                "cpu_ms_per_report": round(cpu / total * 1000, 2),
                "load_avg_before": round(load0, 2),
                "rss_mb_tree": round(sup.rss_mb(), 1),
            }

            # paced: every folder gets a file every paced_interval seconds, in a round robin
            if paced_seconds > 0:
                rounds = max(1, int(paced_seconds / paced_interval))
                paced = fresh_bodies(tpl, folders * rounds, "paced")
                staged = stage(root / "p3" / "stage-paced", paced, "paced")
                step = paced_interval / folders
                cpu0, t0 = sup.cpu_seconds(), time.perf_counter()
                for n, (path, body) in enumerate(zip(staged, paced, strict=True)):
                    due = t0 + n * step
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)  # pacing the load generator, not synchronisation
                    drop(path, watch[n % folders], body)
                offered_s = time.perf_counter() - t0
                done += len(paced)
                t1 = wait_until(lambda: server_holds(client, done), 900, "paced reports", 0.1)
                cpu = sup.cpu_seconds() - cpu0
                result["paced"] = {
                    "files": len(paced),
                    "offered_per_s": round(len(paced) / offered_s, 1),
                    "drained_after_last_drop_s": round(t1 - t0 - offered_s, 2),
                    "cpu_percent_of_one_core": round(cpu / (t1 - t0) * 100, 1),
                    "cpu_ms_per_report": round(cpu / len(paced) * 1000, 2),
                }
    return result


# ---- main -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--phase", action="append", choices=("throughput", "latency", "hub"), default=None
    )
    parser.add_argument("--count", type=int, default=2000, help="files in the throughput phase")
    parser.add_argument("--files", type=int, default=100, help="files in the latency phase")
    parser.add_argument("--folders", type=int, default=100, help="hub watch folders")
    parser.add_argument("--presets", type=int, default=5, help="hub station presets")
    parser.add_argument("--per-folder", type=int, default=10, help="hub: files per folder")
    parser.add_argument("--paced-seconds", type=float, default=30.0, help="hub: paced phase")
    parser.add_argument(
        "--paced-interval", type=float, default=10.0, help="hub: seconds between a folder's files"
    )
    parser.add_argument(
        "--drop",
        choices=("write", "rename"),
        default="write",
        help="how files arrive: written in place (default) or renamed in from outside",
    )
    parser.add_argument(
        "--converter-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="[workers.converter] args, e.g. max_parallel=4 (default: none, the defaults)",
    )
    parser.add_argument(
        "--worker-target",
        action="append",
        default=[],
        metavar="NAME=module:Class",
        help="run a worker from another class (experiments; the module must be importable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    global DROP_MODE, CONVERTER_ARGS
    DROP_MODE = args.drop
    for item in args.worker_target:
        name, _, target = item.partition("=")
        WORKER_TARGETS[name] = target
    for item in args.converter_arg:
        key, _, value = item.partition("=")
        CONVERTER_ARGS[key] = json.loads(value)
    phases = args.phase or ["throughput", "latency", "hub"]
    tpl = json.loads(sample_path().read_bytes())
    root = Path(tempfile.mkdtemp(prefix="wp", dir="/tmp"))
    out: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(sys.argv),
        "drop": DROP_MODE,
        "converter_args": CONVERTER_ARGS,
        "worker_targets": WORKER_TARGETS,
    }
    try:
        for phase in phases:
            if phase == "throughput":
                out["throughput"] = bench_throughput(root, tpl, args.count)
            elif phase == "latency":
                out["latency"] = bench_latency(root, tpl, args.files)
            else:
                out["hub"] = bench_hub(
                    root,
                    tpl,
                    args.folders,
                    args.presets,
                    args.per_folder,
                    args.paced_seconds,
                    args.paced_interval,
                )
            if not args.json:
                print(f"== {phase}", json.dumps(out[phase], indent=2), flush=True)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
