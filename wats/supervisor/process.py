"""One running worker process: spawn it fresh, know its whole tree, stop it, measure it.

Why psutil and a remembered tree: a worker may start children, and a child may call ``setsid`` to
leave the worker's process group. Signalling the group would miss it; walking the tree from the
worker's pid finds it while the worker lives, and remembering each descendant (pid + create time)
finds it after the worker died and the kernel reparented it to the supervisor (a child subreaper).
The create time makes sure a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import psutil

from wats.supervisor.spec import WorkerSpec

__all__ = ["ProcessRef", "WorkerProcess", "kill_refs", "reap_children"]

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)


@dataclass(frozen=True)
class ProcessRef:
    """A process identity that survives pid reuse: the pid and its create time."""

    pid: int
    create_time: float

    def to_json(self) -> dict[str, float]:
        """The state-file form."""
        return {"pid": self.pid, "create_time": self.create_time}

    def process(self) -> psutil.Process | None:
        """The live process with this identity, or None if it is gone (or the pid was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) >= 0.05:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (*_GONE, psutil.AccessDenied):
            return None
        return proc


class WorkerProcess:
    """One incarnation of a worker: from ``spawn`` until its exit has been reported.

    The exit is seen by a thread blocked in ``wait()`` (no polling tick); it calls ``on_exit``
    with the return code, which the arbiter turns into a wake-up of its loop.
    """

    def __init__(self, spec: WorkerSpec, popen: subprocess.Popen[bytes]) -> None:
        self.spec = spec
        self.popen = popen
        self.pid = popen.pid
        self.started = time.time()
        self.started_mono = time.monotonic()
        self._proc: psutil.Process | None
        try:
            self._proc = psutil.Process(self.pid)
            self.ref = ProcessRef(self.pid, self._proc.create_time())
        except _GONE:  # died before we looked: the wait thread reports the exit
            self._proc = None
            self.ref = ProcessRef(self.pid, 0.0)
        self._descendants: dict[int, psutil.Process] = {}

    @classmethod
    def spawn(
        cls,
        spec: WorkerSpec,
        env: Mapping[str, str],
        python: str = sys.executable,
        standby: bool = False,
    ) -> WorkerProcess:
        """Start a fresh interpreter running the worker (never a fork of this process).

        ``standby=True`` starts a warm spare instead (``wats.supervisor.standby``): fully
        imported, waiting for :meth:`activate` to become the worker.
        """
        module = "wats.supervisor.standby" if standby else "wats.workers"
        cmd = [python, "-m", module, "--name", spec.name, "--target", spec.target]
        full_env = dict(env)
        full_env["WATS_WORKER_ARGS"] = json.dumps(spec.args)
        popen = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            close_fds=True,
            # Its own process group: a Ctrl-C in the terminal of a foreground `start` goes to
            # the supervisor alone, which stops the workers in order; they never see SIGINT.
            # (POSIX; a Windows console delivers Ctrl-C differently, see wats.platform).
            process_group=None if os.name == "nt" else 0,
        )
        return cls(spec, popen)

    def activate(self) -> bool:
        """Turn a warm spare into the running worker; False if the spare is no longer usable."""
        stdin = self.popen.stdin
        if stdin is None:
            return False
        try:
            stdin.write(b"go\n")
            stdin.close()
        except OSError:
            return False
        self.popen.stdin = None
        self.started = time.time()
        self.started_mono = time.monotonic()
        return True

    def discard(self) -> None:
        """Drop an unused spare: closing its stdin makes it exit; kill it to be sure."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
            self.popen.stdin = None
        self.kill_tree(wait=0.0)

    @property
    def streams(self) -> dict[str, IO[bytes]]:
        """The worker's captured output pipes by stream name."""
        out: dict[str, IO[bytes]] = {}
        if self.popen.stdout is not None:
            out["stdout"] = self.popen.stdout
        if self.popen.stderr is not None:
            out["stderr"] = self.popen.stderr
        return out

    def wait(self) -> int:
        """Block until the worker exits; return its code (negative = killed by that signal)."""
        return self.popen.wait()

    def uptime(self) -> float:
        """Seconds since spawn."""
        return time.monotonic() - self.started_mono

    def refresh_tree(self) -> None:
        """Remember the worker's current descendants (call it now and then while it lives)."""
        if self._proc is None:
            return
        try:
            children = self._proc.children(recursive=True)
        except _GONE:
            return
        for child in children:
            if child.pid not in self._descendants:
                self._descendants[child.pid] = child

    def tree(self) -> list[psutil.Process]:
        """The live processes of this worker's tree: itself, current and remembered descendants."""
        self.refresh_tree()
        procs: list[psutil.Process] = []
        if self._proc is not None and _alive(self._proc):
            procs.append(self._proc)
        for pid, proc in list(self._descendants.items()):
            if _alive(proc):
                procs.append(proc)
            else:
                del self._descendants[pid]
        return procs

    def refs(self) -> list[ProcessRef]:
        """Identities of the tree, for the state file (leftovers are killed on the next start)."""
        refs = [self.ref]
        for proc in self._descendants.values():
            with contextlib.suppress(*_GONE, psutil.AccessDenied):
                refs.append(ProcessRef(proc.pid, proc.create_time()))
        return refs

    def signal_tree(self, sig: int) -> None:
        """Send ``sig`` to every live process of the tree (psutil checks the pid is not reused)."""
        for proc in self.tree():
            with contextlib.suppress(*_GONE, psutil.AccessDenied):
                proc.send_signal(sig)

    def terminate(self) -> None:
        """Ask the whole tree to stop (SIGTERM); the arbiter escalates after the grace period."""
        self.signal_tree(signal.SIGTERM)

    def kill_tree(self, wait: float = 0.5) -> None:
        """SIGKILL the whole tree and reap what is ours to reap (waiting at most ``wait``)."""
        procs = self.tree()
        for proc in procs:
            with contextlib.suppress(*_GONE, psutil.AccessDenied):
                proc.kill()
        # The worker itself is reaped by its wait thread; descendants reparented to us are reaped
        # here (psutil waits on our own children with waitpid), others just disappear.
        others = [p for p in procs if p.pid != self.pid]
        if others:
            psutil.wait_procs(others, timeout=wait)

    def kill_leftover_descendants(self) -> None:
        """After the worker exited: kill what remains of its tree so no orphan outlives it."""
        self._proc = None
        self.kill_tree()

    def stats(self) -> dict[str, Any]:
        """RSS (bytes) and CPU percent of the tree (CPU since the previous call)."""
        rss = 0
        cpu = 0.0
        for proc in self.tree():
            with contextlib.suppress(*_GONE, psutil.AccessDenied):
                rss += proc.memory_info().rss
                cpu += proc.cpu_percent(interval=None)
        return {"rss": rss, "cpu_percent": round(cpu, 1)}


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except _GONE:
        return False
    except psutil.AccessDenied:
        return True


def kill_refs(refs: Iterable[ProcessRef], log: Callable[..., Any] | None = None) -> int:
    """SIGKILL every process still matching one of ``refs`` (pid AND create time); return count."""
    killed = []
    for ref in refs:
        proc = ref.process()
        if proc is None:
            continue
        with contextlib.suppress(*_GONE, psutil.AccessDenied):
            proc.kill()
            killed.append(proc)
            if log is not None:
                log("killed leftover process", pid=ref.pid)
    if killed:
        psutil.wait_procs(killed, timeout=1.0)
    return len(killed)


def reap_children(keep: Iterable[int]) -> None:
    """Reap exited children that are not workers (orphans adopted as a subreaper).

    Only named pids are waited for: ``waitpid(-1)`` would steal a worker's exit status from the
    thread waiting on it.
    """
    keep_set = set(keep)
    try:
        children = psutil.Process(os.getpid()).children()
    except _GONE:  # pragma: no cover - we are alive
        return
    for child in children:
        if child.pid in keep_set:
            continue
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(child.pid, os.WNOHANG)
