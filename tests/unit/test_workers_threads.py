"""JobThreads: every job starts at once, idle threads are reused and then retire."""

from __future__ import annotations

import threading
import time

from wats.workers.threads import JobThreads

DEADLINE = 10.0


def _wait_for(condition, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)  # polling against a deadline


def test_a_job_never_waits_for_a_busy_thread():
    pool = JobThreads("t")
    release = threading.Event()
    second_ran = threading.Event()
    pool.submit("blocked", lambda: release.wait(DEADLINE))
    pool.submit("second", second_ran.set)
    try:
        assert second_ran.wait(DEADLINE), "the second job waited behind the first"
    finally:
        release.set()


def test_an_idle_thread_takes_the_next_job_and_is_named_after_it():
    pool = JobThreads("w", idle_seconds=DEADLINE)
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def record() -> None:
        me = threading.current_thread()
        seen.append((me.ident or 0, me.name))
        done.set()

    pool.submit("first", record)
    assert done.wait(DEADLINE)
    _wait_for(lambda: pool.idle == 1, "the thread to go idle")
    done.clear()
    pool.submit("second", record)
    assert done.wait(DEADLINE)
    assert seen[0][0] == seen[1][0]  # the same thread
    assert [name for _, name in seen] == ["w-first", "w-second"]
    _wait_for(lambda: pool.idle == 1, "the thread to go idle again")


def test_idle_threads_retire_after_their_idle_time():
    pool = JobThreads("r", idle_seconds=0.05)
    ran = threading.Event()
    before = threading.active_count()
    pool.submit("once", ran.set)
    assert ran.wait(DEADLINE)
    _wait_for(lambda: pool.idle == 0 and threading.active_count() <= before, "retirement")
    ran.clear()
    pool.submit("again", ran.set)  # a retired pool still runs jobs (in a new thread)
    assert ran.wait(DEADLINE)


def test_a_job_that_raises_ends_only_its_thread():
    pool = JobThreads("x", idle_seconds=DEADLINE)

    def boom() -> None:
        raise RuntimeError("job failed")

    original = threading.excepthook
    threading.excepthook = lambda args: None  # the escaped error is expected here
    try:
        pool.submit("boom", boom)
        ran = threading.Event()
        pool.submit("after", ran.set)
        assert ran.wait(DEADLINE)
    finally:
        threading.excepthook = original
    _wait_for(lambda: pool.idle == 1, "the surviving thread to go idle")


def test_many_jobs_from_many_threads_each_run_exactly_once():
    pool = JobThreads("m", idle_seconds=0.01)  # short: threads retire while jobs arrive
    count = 2000
    runs = [0] * count
    lock = threading.Lock()
    finished = threading.Semaphore(0)

    def job(i: int) -> None:
        with lock:
            runs[i] += 1
        if i % 7 == 0:
            time.sleep(0.001)
        finished.release()

    def submitter(start: int) -> None:
        for i in range(start, count, 4):
            pool.submit(f"j{i}", lambda i=i: job(i))
            if i % 50 == 0:
                time.sleep(0.02)  # let idle threads time out between bursts

    submitters = [threading.Thread(target=submitter, args=(k,)) for k in range(4)]
    for t in submitters:
        t.start()
    for t in submitters:
        t.join(DEADLINE)
    for _ in range(count):
        assert finished.acquire(timeout=DEADLINE), "a job never ran"
    assert runs == [1] * count
