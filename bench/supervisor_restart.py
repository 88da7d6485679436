"""Supervisor benchmark: restart latency, hung-worker detection time, idle footprint.

Runs a real supervisor (``python -m wats.supervisor``) in a subprocess with a throwaway config and
watches it from the bus, as any subscriber would:

1. Restart latency: SIGKILL the worker N times; time from the kill to the replacement's first
   ``worker.heartbeat`` (and, for the breakdown, to the supervisor's ``supervisor.worker.started``).
   ``backoff_reset_after_seconds`` is set short and the worker left running a little longer than
   that between kills, so every kill is a first crash (immediate restart) — consecutive crashes
   are deliberately slowed down by the backoff, which is not what this measures.
2. Hung-worker detection: a worker stops heartbeating while staying alive; time from its last
   heartbeat to the supervisor's ``supervisor.worker.exited`` with reason ``hung``, in heartbeat
   intervals, at the default policy (interval 1 s, 3 misses, the configured default grace) and
   with grace 0.5 s.
3. Idle footprint: supervisor plus workers left alone for D seconds: total RSS at the end and
   CPU time used over the period, as a percentage of one core.

Usage: ``.venv/bin/python bench/supervisor_restart.py [--kills 50] [--idle-seconds 60]
[--hung-samples 5] [--workers idle|default] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import zmq

from wats.config.models import SupervisorSection
from wats.protocol import topics
from wats.protocol.addresses import read_endpoints
from wats.protocol.bus import ControlClient, Subscriber

IDLE = "wats.workers.testing:IdleWorker"
HANGING = "wats.workers.testing:HangingWorker"


def _write_config(root: Path, workers: dict[str, str], supervisor: dict[str, Any]) -> Path:
    lines = ["[instance]", 'name = "bench"', "", "[supervisor]"]
    lines += [f"{k} = {v!r}" for k, v in supervisor.items()]
    if workers:
        for name in ("health", "sync", "server"):
            lines += ["", f"[workers.{name}]", "enabled = false"]
    for name, target in workers.items():
        lines += ["", f"[workers.{name}]", f'target = "{target}"']
        if target == HANGING:
            lines.append("args = { after_seconds = 2.5 }")
    lines += [
        "",
        "[logging]",
        'level = "warning"',
        "",
        "[server.embedded]",
        f"port = {_free_port()}",
        "",
        "[paths]",
        f'data_dir = "{root / "data"}"',
        f'runtime_dir = "{root / "run"}"',
    ]
    path = root / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """One supervisor subprocess and a subscriber on its bus."""

    def __init__(self, workers: dict[str, str], supervisor: dict[str, Any]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="wb", dir="/tmp"))
        config = _write_config(self.root, workers, supervisor)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wats.supervisor", "--config", str(config), "--quiet"],
            stdin=subprocess.DEVNULL,
        )
        self.ctx: zmq.Context[Any] = zmq.Context()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.addresses = read_endpoints(self.root / "run")
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("supervisor did not come up") from None
                time.sleep(0.05)
        self.sub = Subscriber(self.ctx, self.addresses.events_out, [""])

    def request(self, command: str) -> Any:
        client = ControlClient(self.ctx, self.addresses.control, "bench")
        try:
            return client.request(command, timeout=10).unwrap()
        finally:
            client.close()

    def wait_event(self, match: Any, timeout: float = 30.0) -> tuple[float, Any]:
        """The first event for which ``match(env)`` is true, with its local receive time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            env = self.sub.recv(timeout=0.5)
            if env is not None and match(env):
                return time.perf_counter(), env
        raise TimeoutError("event not seen")

    def close(self) -> None:
        try:
            self.request("shutdown")
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.sub.close()
        self.ctx.term()
        shutil.rmtree(self.root, ignore_errors=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def bench_restart(kills: int) -> dict[str, Any]:
    policy = {"backoff_reset_after_seconds": 0.3, "flap_max_restarts": 1000}
    run = Run({"idle": IDLE}, policy)
    try:
        _, env = run.wait_event(lambda e: e.type == topics.WORKER_HEARTBEAT)
        pid = env.body["pid"]
        to_beat: list[float] = []
        to_spawn: list[float] = []
        for _ in range(kills):
            time.sleep(0.4)  # let the worker count as healthy again (reset_after 0.3 s)
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            old = pid
            t_started, _ = run.wait_event(
                lambda e, old=old: (
                    e.type == topics.SUPERVISOR_WORKER_STARTED and e.body["pid"] != old
                )
            )
            t_beat, env = run.wait_event(
                lambda e, old=old: e.type == topics.WORKER_HEARTBEAT and e.body["pid"] != old
            )
            pid = env.body["pid"]
            to_spawn.append((t_started - killed) * 1000)
            to_beat.append((t_beat - killed) * 1000)
        return {
            "kills": kills,
            "first_heartbeat_ms": {
                "p50": round(statistics.median(to_beat), 1),
                "p99": round(_percentile(to_beat, 99), 1),
                "max": round(max(to_beat), 1),
            },
            "spawned_ms": {
                "p50": round(statistics.median(to_spawn), 1),
                "p99": round(_percentile(to_spawn, 99), 1),
            },
        }
    finally:
        run.close()


def bench_hung(samples: int, grace: float) -> dict[str, Any]:
    interval = 1.0
    run = Run(
        {"hangs": HANGING},
        {"heartbeat_interval_seconds": interval, "heartbeat_grace_seconds": grace},
    )
    try:
        detections: list[float] = []
        last_beat: dict[int, float] = {}
        while len(detections) < samples:
            t, env = run.wait_event(
                lambda e: e.type in (topics.WORKER_HEARTBEAT, topics.SUPERVISOR_WORKER_EXITED)
            )
            if env.type == topics.WORKER_HEARTBEAT:
                last_beat[env.body["pid"]] = t
            elif env.body["reason"] == "hung" and env.body["pid"] in last_beat:
                detections.append((t - last_beat[env.body["pid"]]) / interval)
        return {
            "samples": samples,
            "interval_s": interval,
            "misses": 3,
            "grace_s": grace,
            "intervals_since_last_heartbeat": {
                "mean": round(statistics.mean(detections), 2),
                "max": round(max(detections), 2),
            },
        }
    finally:
        run.close()


def bench_idle(seconds: float, workers: str) -> dict[str, Any]:
    chosen = {"a": IDLE, "b": IDLE, "c": IDLE} if workers == "idle" else {}
    run = Run(chosen, {})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = run.request("status")
            if all(w["state"] == "RUNNING" and w["ready"] for w in status["workers"]):
                break
            time.sleep(0.2)
        names = [w["name"] for w in status["workers"]]
        time.sleep(2.0)  # let start-up work settle before measuring idle
        sup = psutil.Process(run.proc.pid)

        def tree() -> list[psutil.Process]:
            return [sup, *sup.children(recursive=True)]

        def cpu(procs: list[psutil.Process]) -> float:
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            return total

        procs = tree()
        cpu0, t0 = cpu(procs), time.monotonic()
        time.sleep(seconds)
        procs = tree()
        cpu1, t1 = cpu(procs), time.monotonic()
        rss = sum(p.memory_info().rss for p in procs)
        uss = sum(p.memory_full_info().uss for p in procs)
        return {
            "workers": names,
            "processes": [" ".join(p.cmdline()[1:5]) for p in procs],
            "seconds": seconds,
            "rss_mb": round(rss / 1e6, 1),
            "uss_mb": round(uss / 1e6, 1),
            "cpu_percent_of_one_core": round((cpu1 - cpu0) / (t1 - t0) * 100, 2),
        }
    finally:
        run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--hung-samples", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--workers", choices=["idle", "default"], default="default")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip", action="append", default=[], help="restart|hung|idle")
    ns = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    if "restart" not in ns.skip:
        results["restart"] = bench_restart(ns.kills)
    if "hung" not in ns.skip:
        default_grace = SupervisorSection().heartbeat_grace_seconds
        results["hung_default"] = bench_hung(ns.hung_samples, default_grace)
        results["hung_grace_half"] = bench_hung(ns.hung_samples, 0.5)
    if "idle" not in ns.skip:
        results["idle"] = bench_idle(ns.idle_seconds, ns.workers)
    print(json.dumps(results, indent=None if ns.json else 2))


if __name__ == "__main__":
    main()
