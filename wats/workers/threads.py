"""Threads for a worker's blocking jobs, kept between jobs for the next one.

Why: workers run each file move, conversion and upload as a job in a thread
(``Worker.run_in_thread``). Starting a thread costs ~0.1 ms of CPU, and a report passes through
three such jobs, which in a burst of thousands of files is CPU the pipeline needs for real work.
A thread that finishes a job waits a while for the next one instead of exiting; a quiet worker
still ends up holding no job threads, because an idle thread exits after ``idle_seconds``.

The threads are daemon threads, as the per-job threads were: a job stuck in I/O must never keep
a stopping worker alive (the worker bounds its own wait for running jobs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["JobThreads"]


class JobThreads:
    """Runs callables in daemon threads, reusing idle ones; never queues behind a busy one.

    Every ``submit`` runs at once: in an idle thread if there is one, else in a new thread. So
    it behaves like a thread per job (no job waits for another to finish), minus the start-up.
    ``fn`` must handle its own exceptions; one that escapes ends that thread only.
    """

    def __init__(self, prefix: str, idle_seconds: float = 10.0) -> None:
        self._prefix = prefix
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle = 0
        self._tasks: queue.SimpleQueue[tuple[str, Callable[[], None]]] = queue.SimpleQueue()

    @property
    def idle(self) -> int:
        """Threads waiting for a job right now."""
        with self._lock:
            return self._idle

    def submit(self, name: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` now, in a thread named ``<prefix>-<name>`` while it runs."""
        with self._lock:
            if self._idle:
                # Put while holding the lock: an idle thread that times out takes the lock
                # before giving up, so it either sees this job or is no longer counted.
                self._idle -= 1
                self._tasks.put((name, fn))
                return
        thread = threading.Thread(
            target=self._serve, args=(name, fn), name=f"{self._prefix}-{name}", daemon=True
        )
        thread.start()

    def _serve(self, name: str, fn: Callable[[], None]) -> None:
        me = threading.current_thread()
        while True:
            me.name = f"{self._prefix}-{name}"
            fn()
            me.name = f"{self._prefix}-idle"
            with self._lock:
                self._idle += 1
            try:
                name, fn = self._tasks.get(timeout=self._idle_seconds)
                continue
            except queue.Empty:
                pass
            with self._lock:
                try:
                    name, fn = self._tasks.get_nowait()  # handed over as we timed out
                except queue.Empty:
                    self._idle -= 1
                    return
