"""The converter sandbox: a fork server and the locked-down child that runs one conversion.

Why a sandbox: converter code is site code. It may raise, loop forever, allocate without bound,
crash the interpreter (ctypes, C extensions) or print to stdout. None of that may take the
converter worker down, and none of it may cost more than the one file it was converting
(DESIGN invariant 4).

Why a fork server: starting a fresh interpreter and importing pydantic, the report models and the
converter per file costs hundreds of milliseconds. Instead :class:`Sandbox` starts one fresh
process (``python -m wats.converters.sandbox``; a fresh interpreter, so it holds none of the
worker's ZeroMQ sockets) that imports the converters once and ``fork()``s a locked-down
grandchild to run conversions. Forking an already-warm, single-threaded interpreter costs
about a millisecond.

Reusing the child: a fresh fork per file also pays for its copy-on-write faults and teardown
(about as much CPU as converting a 100 KB report), so a child that finished a conversion
cleanly takes the next one of the same converter, up to ``conversions_per_child`` (100), each
in a fresh private working dir with fresh stdout/stderr captures and its own CPU allowance.
A child is never reused after a failure that ended it (crash, timeout, limit), nor when the
converter left threads or processes running; and a file that crashes or hits a limit in a
child that converted other files before is converted again in a fresh child before it is
blamed, so per-file isolation of failures is what it was with a fork per file. What a reused
child does share between files is the converter's module state, as the SDK already says
(instances are reused; keep per-source state local). ``conversions_per_child = 1`` restores a
fresh process per file.

The grandchild, before it runs any converter code:

- joins a process group of its own (so a timeout kills whatever it spawned too) and asks to be
  killed when the fork server dies;
- sets rlimits: ``RLIMIT_AS`` (address space), ``RLIMIT_CPU`` (CPU seconds: SIGXCPU at the soft
  limit, SIGKILL one second later), ``RLIMIT_NOFILE`` (open files), ``RLIMIT_CORE`` 0;
- replaces stdin with ``/dev/null``, points stdout/stderr at capture files (returned, truncated),
  closes every other inherited descriptor;
- per job, chdirs into a private temp dir (also ``TMPDIR``), which the fork server removes
  afterwards, and gets a soft ``RLIMIT_CPU`` of ``cpu_seconds`` beyond what it used before;

then runs ``validate()`` and ``convert()`` and writes the reports (``dump_report`` dicts),
confidence, message and warnings back over a pipe as one length-prefixed msgpack map. The fork
server enforces the wall-clock timeout (SIGKILL of the grandchild's process group) and turns the
exit status into a failure reason.

What the sandbox does NOT do: rlimits do not confine the filesystem. A converter can still write
(or delete) anything the worker's user may touch; only its working directory is private. Real
filesystem confinement needs OS help (a separate user, namespaces/containers, or a Windows
AppContainer), which is outside this module.

The wire protocol between :class:`Sandbox` and the fork server (the server's stdin/stdout) and
between the fork server and a grandchild (a pipe) is the same: a 4-byte big-endian length, then a
msgpack map.

POSIX only (``fork``, ``setrlimit``): a Windows sandbox would use a Job Object with memory, CPU
and process limits and a spawned (not forked) child; it belongs next to the other platform code.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgpack

__all__ = [
    "FAILURE_REASONS",
    "FailureReason",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxOutcome",
    "serve",
]

FailureReason = Literal["exception", "crash", "timeout", "limit", "rejected", "invalid"]
FAILURE_REASONS: tuple[str, ...] = ("exception", "crash", "timeout", "limit", "rejected", "invalid")

_HEADER = struct.Struct(">I")
_MAX_MESSAGE = 512 * 1024 * 1024  # a result bigger than this is a limit failure, not a read
_START_TIMEOUT = 30.0  # seconds for the fork server to import and say ready
_LOAD_MARGIN = 30.0  # extra seconds the parent waits beyond wall_seconds (imports, cleanup)
_READ_CHUNK = 1 << 20
_WORKDIR_PREFIX = "wats-sandbox-"  # + "<fork server pid>-<random>": orphans are recognisable


class SandboxError(RuntimeError):
    """The fork server could not be started (or answered nonsense)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one conversion.

    ``address_space_mb``: RLIMIT_AS of the grandchild (virtual memory, so leave room above what
    the converter really needs: the interpreter itself maps ~100-300 MB). ``cpu_seconds``:
    RLIMIT_CPU. ``open_files``: RLIMIT_NOFILE. ``wall_seconds``: the fork server kills the
    grandchild after this long, whatever it is doing. ``max_output_bytes``: how much of the
    converter's stdout and of its stderr is kept (each). ``conversions_per_child``: how many
    conversions one locked-down child may run before a fresh one is forked (1: a fresh process
    per file; see "Reusing the child" in the module docstring).
    """

    address_space_mb: int = 1024
    cpu_seconds: int = 60
    open_files: int = 256
    wall_seconds: float = 120.0
    max_output_bytes: int = 64 * 1024
    conversions_per_child: int = 100

    def __post_init__(self) -> None:
        for name in (
            "address_space_mb",
            "cpu_seconds",
            "open_files",
            "max_output_bytes",
            "conversions_per_child",
        ):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be > 0")
        if self.wall_seconds <= 0:
            raise ValueError("SandboxLimits.wall_seconds must be > 0")
        if self.open_files < 16:
            raise ValueError("SandboxLimits.open_files must be >= 16 (the interpreter needs some)")


@dataclass
class SandboxOutcome:
    """What one conversion produced.

    ``ok`` is True when the converter ran to completion and said success; ``reports`` are then
    ``dump_report`` dicts (not yet validated by the caller) or, when the request asked for a
    ``stamp``, ``report_json`` holds the final queue bodies instead (see
    :meth:`Sandbox.convert`). Otherwise ``failure`` names why
    (``exception``, ``crash``, ``timeout``, ``limit``, ``rejected`` (the converter declined the
    file), ``invalid`` (it returned something that is not a report)) and ``detail`` holds the
    facts: exception type and traceback, signal number and name, exit code, or
    ``fork_server_died`` when the fork server itself died during the job. A ``signal`` (or a
    ``timeout``) without ``fork_server_died`` is the child dying on the file, seen by a living
    fork server: evidence against the file. ``fork_server_died`` is not (the fork server may
    have been killed from outside); wats.workers.attempts counts the two apart.
    """

    ok: bool
    reports: list[dict[str, Any]] = field(default_factory=list)
    report_json: list[bytes] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    confidence: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SandboxOutcome:
        """Build from the fork server's answer (unknown keys ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


# ---- framing ------------------------------------------------------------------------------


def _pack(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return _HEADER.pack(len(body)) + body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes from ``fd``; None on EOF before any byte of a message; TimeoutError."""
    chunks = bytearray()
    while len(chunks) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise TimeoutError
        try:
            data = os.read(fd, min(_READ_CHUNK, size - len(chunks)))
        except InterruptedError:
            continue
        if not data:
            if chunks:
                raise EOFError("stream ended inside a message")
            return None
        chunks += data
    return bytes(chunks)


def _read_message(fd: int, deadline: float | None = None) -> dict[str, Any] | None:
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > _MAX_MESSAGE:
        raise EOFError(f"message of {size} bytes exceeds the {_MAX_MESSAGE}-byte limit")
    body = _read_exact(fd, size, deadline) if size else b""
    if body is None:
        raise EOFError("stream ended inside a message")
    data = msgpack.unpackb(body, raw=False)
    if not isinstance(data, dict):
        raise EOFError("message is not a map")
    return data


# ---- the parent side ----------------------------------------------------------------------


class _Spawner:
    """Starts fork servers from one long-lived thread.

    Why: the fork server asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), and
    Linux sends it when the parent *thread* that forked it exits, not the process. The converter
    worker calls the sandbox from short-lived job threads; a fork server started from one was
    killed as soon as that job ended, so the next file sent to it came back as a "fork server
    died" crash and counted as an attempt against an innocent file.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: list[tuple[Any, dict[str, Any], threading.Event]] = []
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(args, **kwargs)``, forked by the spawner thread."""
        box: dict[str, Any] = {"args": args}
        done = threading.Event()
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="sandbox-spawner", daemon=True
                )
                self._thread.start()
            self._jobs.append((box, kwargs, done))
            self._wake.notify()
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["proc"]  # type: ignore[no-any-return]

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._jobs:
                    self._wake.wait()
                box, kwargs, done = self._jobs.pop(0)
            try:
                box["proc"] = subprocess.Popen(box["args"], **kwargs)
            except BaseException as exc:  # handed to the caller
                box["error"] = exc
            done.set()


_SPAWNER = _Spawner()


class Sandbox:
    """Runs conversions in forked, rlimited grandchildren of a long-lived fork server.

    One conversion at a time per instance (calls are serialised by a lock); a worker wanting
    parallelism keeps several. If the fork server dies (killed, OOM, a converter's import
    crashed it) the next :meth:`convert` starts a fresh one transparently; a job that was
    running when it died comes back as a ``crash`` with ``detail["fork_server_died"]``.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        converters_dir: Path | None = None,
        env: dict[str, str] | None = None,
        python: str | None = None,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.converters_dir = converters_dir
        self._env = env
        self._python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The fork server's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> Sandbox:
        """Start the fork server (if not running) and wait until it is ready."""
        with self._lock:
            self._ensure_started()
        return self

    def preload(self, specs: list[str]) -> dict[str, str]:
        """Import converters in the fork server now, so the first file does not pay for it.

        Returns ``{spec: error}`` for the specs that failed to load (empty when all loaded).
        """
        answer = self._preload_answer(specs)
        errors = answer.get("errors", {}) if answer else {"*": "fork server died"}
        return {str(k): str(v) for k, v in errors.items()}

    def describe(self, specs: list[str]) -> dict[str, dict[str, Any] | str]:
        """What each converter says of itself (``kind``, ``file_patterns``), or why it could
        not be loaded: ``{spec: {"kind": ..., "file_patterns": [...]}}`` or ``{spec: error}``.

        For the watcher, which needs a site converter's default patterns but must not import
        the site's code into a process that holds bus sockets: the fork server imports it.
        """
        answer = self._preload_answer(specs)
        if answer is None:
            return {spec: "the converter sandbox died while loading it" for spec in specs}
        errors, described = answer.get("errors", {}), answer.get("described", {})
        result: dict[str, dict[str, Any] | str] = {}
        for spec in specs:
            if spec in errors:
                result[spec] = str(errors[spec])
            elif isinstance(described.get(spec), dict):
                result[spec] = dict(described[spec])
            else:
                result[spec] = "the converter sandbox did not describe it"
        return result

    def _preload_answer(self, specs: list[str]) -> dict[str, Any] | None:
        """The fork server's answer to loading ``specs`` (None if it died meanwhile)."""
        with self._lock:
            self._ensure_started()
            return self._exchange(
                {"op": "preload", "specs": list(specs), "converters_dir": self._dir()},
                time.monotonic() + _START_TIMEOUT + 30.0 * max(1, len(specs)),
            )

    def convert(
        self,
        converter_spec: str,
        converter_args: dict[str, Any],
        source_path: Path | str,
        context_data: dict[str, Any],
    ) -> SandboxOutcome:
        """Run ``converter_spec`` on ``source_path`` in a locked-down grandchild; never raises for
        anything the converter does.

        ``context_data`` carries what the child builds the converter's context from:
        ``station`` ({name, location, purpose}), ``reference_file`` (the sync worker's cache, or
        None), ``validate`` (run the converter's own ``validate()`` first; the final confidence
        is then the lower of the two), ``reject_threshold`` (a ``validate()`` below it skips
        ``convert()``) and ``validate_only`` (answer ``validate()``'s confidence, convert
        nothing: how ``wats-supervisor convert`` picks a converter). With ``stamp``
        ({``name``, ``digest``, ``override_file_station``}) the grandchild gives each report
        the id and station identity the pipeline decides (``wats.converters.provenance``),
        returns compact WSJF bytes in ``report_json``, ready for the queue, and each decision
        in ``identities``: the report is then serialised once, in the sandbox, instead of
        being decoded, re-validated and re-encoded by every process it passes through. Raises
        :class:`SandboxError` only if the fork server cannot be started.
        """
        started = time.monotonic()
        request = {
            "op": "convert",
            "spec": converter_spec,
            "args": dict(converter_args),
            # bytes: a file name need not be UTF-8, and msgpack strings must be
            "source": os.fsencode(source_path),
            "context": dict(context_data),
            "converters_dir": self._dir(),
            "limits": asdict(self.limits),
        }
        with self._lock:
            self._ensure_started()
            deadline = time.monotonic() + self.limits.wall_seconds + _LOAD_MARGIN
            answer = self._exchange(request, deadline)
        if answer is None:
            detail = {"fork_server_died": True, "returncode": self._last_returncode}
            return SandboxOutcome(
                ok=False,
                failure=self._last_failure,
                message=self._last_message,
                detail=detail,
                duration=time.monotonic() - started,
            )
        outcome = SandboxOutcome.from_wire(answer)
        outcome.duration = time.monotonic() - started
        return outcome

    def close(self) -> None:
        """Stop the fork server (EOF on its stdin, then SIGKILL if it lingers)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------------

    _last_returncode: int | None = None
    _last_failure: str = "crash"
    _last_message: str = ""

    def _dir(self) -> str | None:
        return str(self.converters_dir) if self.converters_dir is not None else None

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop()
        env = dict(os.environ if self._env is None else self._env)
        proc = _SPAWNER.popen(
            [self._python, "-m", "wats.converters.sandbox", "--parent", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the server's own log lines go where the worker's go
            close_fds=True,
            env=env,
        )
        self._proc = proc
        self.starts += 1
        assert proc.stdout is not None
        try:
            hello = _read_message(proc.stdout.fileno(), time.monotonic() + _START_TIMEOUT)
        except (TimeoutError, EOFError, ValueError) as exc:
            self._stop()
            raise SandboxError(f"converter sandbox did not start: {exc!r}") from None
        if not hello or hello.get("op") != "ready":
            code = proc.poll()
            self._stop()
            raise SandboxError(f"converter sandbox did not start (exit code {code})")

    def _exchange(self, request: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """Send one request and read its answer; None when the fork server died or hung."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            _write_all(proc.stdin.fileno(), _pack(request))
        except (BrokenPipeError, ConnectionResetError):
            # Died while idle (killed between jobs): the job never started; run it on a new one.
            self._ensure_started()
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            try:
                _write_all(proc.stdin.fileno(), _pack(request))
            except (BrokenPipeError, ConnectionResetError):
                return self._died("crash", "fork server died before the job started")
        try:
            answer = _read_message(proc.stdout.fileno(), deadline)
        except TimeoutError:
            return self._died("timeout", "fork server did not answer in time; it was killed")
        except (EOFError, ValueError) as exc:
            return self._died("crash", f"fork server sent a broken answer: {exc}")
        if answer is None:
            return self._died("crash", "fork server died during the job")
        return answer

    def _died(self, failure: str, message: str) -> None:
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            self._last_returncode = proc.returncode
        self._last_failure = failure
        self._last_message = message
        self._stop()
        return None

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ---- the fork server ----------------------------------------------------------------------


class _ForkServer:
    """The long-lived process: loads converters once; forks the locked-down child (reused)."""

    def __init__(self, proto_in: int, proto_out: int) -> None:
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.classes: dict[tuple[str, str | None], type] = {}
        self.child: _Child | None = None

    def run(self) -> None:
        # Everything a grandchild needs is imported here, once, before any fork: a grandchild
        # that had to import pydantic models itself would pay tens of milliseconds per file.
        import resource  # noqa: F401

        import wats.api.models
        import wats.api.station
        import wats.converters.base
        import wats.converters.identity
        import wats.converters.loader
        import wats.platform
        import wats.queue.item  # noqa: F401

        _remove_orphaned_workdirs()
        _write_all(self.proto_out, _pack({"op": "ready", "pid": os.getpid()}))
        while True:
            request = _read_message(self.proto_in)
            if request is None:  # the worker closed our stdin (or died): we are done
                return
            op = request.get("op")
            if op == "convert":
                answer = self.convert(request)
            elif op == "preload":
                answer = self.preload(request)
            else:
                answer = {"ok": False, "failure": "exception", "message": f"unknown op {op!r}"}
            _write_all(self.proto_out, _pack(answer))

    def load(self, spec: str, converters_dir: str | None) -> type:
        key = (spec, converters_dir)
        cls = self.classes.get(key)
        if cls is None:
            from wats.converters.loader import load_converter_class

            cls = load_converter_class(spec, Path(converters_dir) if converters_dir else None)
            self.classes[key] = cls
        return cls

    def preload(self, request: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, str] = {}
        described: dict[str, dict[str, Any]] = {}
        for spec in request.get("specs", []):
            try:
                cls = self.load(str(spec), request.get("converters_dir"))
                described[str(spec)] = {
                    "kind": str(cls.kind),
                    "file_patterns": [str(p) for p in cls.file_patterns],
                }
            except BaseException as exc:
                errors[str(spec)] = f"{type(exc).__name__}: {exc}"
        return {"op": "preloaded", "errors": errors, "described": described}

    def convert(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        limits = SandboxLimits(**request["limits"])
        try:
            cls = self.load(str(request["spec"]), request.get("converters_dir"))
        except BaseException as exc:
            return {
                "ok": False,
                "failure": "exception",
                "message": f"could not load converter {request['spec']!r}: {exc}",
                "detail": _exception_detail(exc),
                "duration": time.monotonic() - started,
            }
        key = (str(request["spec"]), request.get("converters_dir"), limits)
        answer, reused = self._run_job(cls, key, request, limits)
        if reused and answer.get("failure") in ("crash", "limit"):
            # A child that converted other files before may have been worn out by them (a
            # leak, a corrupted C library): the file gets a fresh process before it is blamed.
            answer, _ = self._run_job(cls, key, request, limits)
        answer["duration"] = time.monotonic() - started
        return answer

    def _run_job(
        self, cls: type, key: tuple[Any, ...], request: dict[str, Any], limits: SandboxLimits
    ) -> tuple[dict[str, Any], bool]:
        """One conversion in the current child (or a fresh one); (answer, ran in a reused child)."""
        child = self.child
        if child is not None and (child.key != key or child.jobs >= limits.conversions_per_child):
            self._discard_child()
            child = None
        if child is None:
            child = self.child = self._fork_child(cls, key, limits)
        reused = child.jobs > 0
        workdir = tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-")
        try:
            child.reset_captures()
            try:
                _write_all(child.job_w, _pack({**request, "workdir": workdir}))
            except (BrokenPipeError, ConnectionResetError):
                # It died between jobs (killed from outside): this file never started there.
                self._discard_child()
                if not reused:
                    raise
                child = self.child = self._fork_child(cls, key, limits)
                reused = False
                _write_all(child.job_w, _pack({**request, "workdir": workdir}))
            answer, alive = self._wait(child, limits)
            child.jobs += 1
            answer["stdout"] = _read_capture(child.out, limits.max_output_bytes)
            answer["stderr"] = _read_capture(child.err, limits.max_output_bytes)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        cpu_total = float(answer.pop("cpu_total", child.cpu_before))
        reusable = bool(answer.pop("reusable", False))
        child.cpu_before = cpu_total
        # Keep it only while it may run another full job within its CPU-seconds budget.
        budget_left = child.cpu_hard - cpu_total > limits.cpu_seconds + 1
        if not (alive and reusable and budget_left):
            self._discard_child()
        return answer, reused

    def _fork_child(self, cls: type, key: tuple[Any, ...], limits: SandboxLimits) -> _Child:
        out = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the child is discarded
        err = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the child is discarded
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        cpu_hard = int(limits.cpu_seconds) * int(limits.conversions_per_child) + 1
        # Move every object the server holds out of the collector's reach: a collection in the
        # child would otherwise touch (and so copy) most of the inherited heap's pages.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(job_w)
            os.close(result_r)
            _grandchild(cls, limits, cpu_hard, out.fileno(), err.fileno(), job_r, result_w)
        os.close(job_r)
        os.close(result_w)
        with contextlib.suppress(OSError):  # closes the race with the child's own setpgid
            os.setpgid(pid, pid)
        return _Child(
            pid=pid,
            pidfd=_pidfd_open(pid),
            job_w=job_w,
            result_r=result_r,
            out=out,
            err=err,
            key=key,
            cpu_hard=cpu_hard,
        )

    def _discard_child(self) -> None:
        """End the current child: close its job pipe, kill its process group, reap it."""
        child, self.child = self.child, None
        if child is None:
            return
        for fd in (child.job_w, child.result_r, child.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(OSError):  # whatever the converter spawned dies with it
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
        child.out.close()
        child.err.close()

    def _wait(self, child: _Child, limits: SandboxLimits) -> tuple[dict[str, Any], bool]:
        """The child's answer to one job, enforcing the wall clock; (answer, child still alive).

        A complete answer leaves the child waiting for its next job; an exit, a signal or the
        deadline ends it, and the exit status becomes the failure reason.
        """
        deadline = time.monotonic() + limits.wall_seconds
        data = bytearray()
        eof = exited = timed_out = too_big = False
        while not (eof and exited):
            complete = _complete_message(data)
            if complete is not None:
                if complete > _MAX_MESSAGE:
                    too_big = True
                    break
                if len(data) >= _HEADER.size + complete:
                    answer = _decode_result(bytes(data))
                    if answer is not None:
                        return answer, True
                    break  # a full frame that is not an answer: treat like a crash below
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            watch = ([] if eof else [child.result_r]) + (
                [child.pidfd] if child.pidfd is not None else []
            )
            if not watch:  # EOF seen and no pidfd: poll the exit in small steps
                if os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    exited = True
                    continue
                select.select([], [], [], min(remaining, 0.005))
                continue
            try:
                ready, _, _ = select.select(watch, [], [], remaining)
            except InterruptedError:
                continue
            if child.result_r in ready:
                chunk = os.read(child.result_r, _READ_CHUNK)
                if chunk:
                    data += chunk
                    if len(data) > _MAX_MESSAGE + _HEADER.size:
                        too_big = True
                        break
                else:
                    eof = True
            if child.pidfd is not None and child.pidfd in ready:
                exited = True
                if not eof:  # it may have left children holding the pipe: take what's there
                    data += _drain_nonblocking(child.result_r)
                    eof = True
        if timed_out or too_big:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except ChildProcessError:  # pragma: no cover - reaped elsewhere; nothing to learn
            status, usage = 0, None
        child.reaped = True
        cpu = (usage.ru_utime + usage.ru_stime) if usage is not None else child.cpu_before
        job_cpu = max(0.0, cpu - child.cpu_before)
        if timed_out:
            return {
                "ok": False,
                "failure": "timeout",
                "message": f"conversion took longer than {limits.wall_seconds:g} s; killed",
                "detail": {"wall_seconds": limits.wall_seconds, "cpu_seconds_used": job_cpu},
            }, False
        if too_big:
            return {
                "ok": False,
                "failure": "limit",
                "message": f"result larger than {_MAX_MESSAGE} bytes",
                "detail": {"limit": "result_size"},
            }, False
        if os.WIFSIGNALED(status):
            return _signal_answer(os.WTERMSIG(status), job_cpu, limits), False
        answer = _decode_result(bytes(data))
        if answer is None:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            return {
                "ok": False,
                "failure": "crash",
                "message": f"converter process exited (code {code}) without a result",
                "detail": {"exit_code": code},
            }, False
        return answer, False


@dataclass
class _Child:
    """The fork server's current locked-down child and the pipes and captures it uses."""

    pid: int
    pidfd: int | None
    job_w: int
    result_r: int
    out: Any
    err: Any
    key: tuple[Any, ...]
    cpu_hard: int
    jobs: int = 0
    cpu_before: float = 0.0
    reaped: bool = False

    def reset_captures(self) -> None:
        """Empty the stdout/stderr captures before a job. The child's fds 1 and 2 share these
        files' offsets (inherited open file descriptions), so it writes from 0 again."""
        for handle in (self.out, self.err):
            handle.seek(0)
            handle.truncate(0)


def _complete_message(data: bytearray) -> int | None:
    """The body size a buffer's length prefix announces, once the prefix has arrived."""
    if len(data) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack_from(data)
    return int(size)


def _remove_orphaned_workdirs() -> None:
    """Remove temp dirs left by fork servers that were killed mid-job (their pid is gone)."""
    root = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in root.glob(f"{_WORKDIR_PREFIX}*-*"):
            owner = entry.name.removeprefix(_WORKDIR_PREFIX).split("-", 1)[0]
            if not owner.isdigit():
                continue
            try:
                os.kill(int(owner), 0)
            except ProcessLookupError:
                shutil.rmtree(entry, ignore_errors=True)
            except PermissionError:
                continue  # alive, someone else's


def _signal_answer(signum: int, cpu: float, limits: SandboxLimits) -> dict[str, Any]:
    name = _signal_name(signum)
    detail: dict[str, Any] = {"signal": signum, "signal_name": name, "cpu_seconds_used": cpu}
    cpu_limit = signum == signal.SIGXCPU or (
        signum == signal.SIGKILL and cpu >= limits.cpu_seconds - 0.05
    )
    if cpu_limit:
        detail["limit"] = "cpu_seconds"
        return {
            "ok": False,
            "failure": "limit",
            "message": f"converter used more than {limits.cpu_seconds} CPU seconds ({name})",
            "detail": detail,
        }
    return {
        "ok": False,
        "failure": "crash",
        "message": f"converter process killed by signal {signum} ({name})",
        "detail": detail,
    }


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def _decode_result(data: bytes) -> dict[str, Any] | None:
    if len(data) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack_from(data)
    body = data[_HEADER.size : _HEADER.size + size]
    if len(body) != size:
        return None
    try:
        answer = msgpack.unpackb(body, raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    return answer if isinstance(answer, dict) else None


def _drain_nonblocking(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = bytearray()
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while chunk := os.read(fd, _READ_CHUNK):
            data += chunk
    return bytes(data)


def _pidfd_open(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _read_capture(handle: Any, limit: int) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    data = handle.read(limit)
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text += f"\n[... {size - limit} more bytes not kept]"
    return text


def _exception_detail(exc: BaseException) -> dict[str, Any]:
    return {
        "exception": type(exc).__name__,
        "exception_message": str(exc)[:2000],
        "traceback": "".join(traceback.format_exception(exc))[-8000:],
    }


# ---- the grandchild -----------------------------------------------------------------------


def _grandchild(
    cls: type,
    limits: SandboxLimits,
    cpu_hard: int,
    out_fd: int,
    err_fd: int,
    job_r: int,
    result_w: int,
) -> None:
    """Lock down, then run jobs from ``job_r`` until told to stop or unfit to go on; ``_exit``.

    Never returns. Each answer says whether this process may take another job (``reusable``):
    not when the converter left threads or child processes behind, which only killing the
    whole process group can clean up.
    """
    code = 0
    try:
        _lock_down(limits, cpu_hard, out_fd, err_fd, keep=(job_r, result_w))
        while True:
            request = _read_message(job_r)
            if request is None:  # the fork server closed the job pipe: done
                break
            _start_job(request, limits, cpu_hard)
            answer = _run_converter(cls, request)
            reusable = _left_nothing_running()
            answer["reusable"] = reusable
            answer["cpu_total"] = _cpu_used()
            try:
                payload = _pack(answer)
            except (TypeError, ValueError, OverflowError) as exc:
                payload = _pack(
                    {
                        "ok": False,
                        "failure": "invalid",
                        "message": f"converter result cannot be serialised: {exc}",
                        "detail": _exception_detail(exc),
                        "reusable": reusable,
                        "cpu_total": _cpu_used(),
                    }
                )
            with contextlib.suppress(OSError):
                sys.stdout.flush()
                sys.stderr.flush()
            _write_all(result_w, payload)
            if not reusable:
                break
    except BaseException:  # the lock-down itself failed: say so on stderr, exit non-zero
        code = 70
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)


def _lock_down(
    limits: SandboxLimits, cpu_hard: int, out_fd: int, err_fd: int, keep: tuple[int, ...]
) -> None:
    import resource

    os.setpgid(0, 0)
    from wats.platform import set_parent_death_signal

    set_parent_death_signal(signal.SIGKILL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    soft_nofile, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = max(soft_nofile if soft_nofile != resource.RLIM_INFINITY else 65536, max(keep) + 2)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, top)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 is /dev/null now
    as_bytes = int(limits.address_space_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
    # The hard CPU limit covers every job this process may run; each job gets its own soft
    # limit (SIGXCPU) of cpu_seconds beyond what was used before it (_start_job).
    resource.setrlimit(resource.RLIMIT_CPU, (int(limits.cpu_seconds), cpu_hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits.open_files), int(limits.open_files)))


def _start_job(request: dict[str, Any], limits: SandboxLimits, cpu_hard: int) -> None:
    """Per job: the job's own private working dir (and TMPDIR), and a fresh CPU allowance."""
    import resource

    workdir = str(request["workdir"])
    os.chdir(workdir)
    os.environ["TMPDIR"] = workdir
    tempfile.tempdir = workdir
    soft = min(cpu_hard, max(1, round(_cpu_used()) + int(limits.cpu_seconds)))
    resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))


def _cpu_used() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return float(usage.ru_utime + usage.ru_stime)


def _left_nothing_running() -> bool:
    """True when the converter left no threads and no child processes behind."""
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads > 1:
        return False
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True  # no children at all
    return False if pid == 0 else _left_nothing_running()


def _run_converter(cls: type, request: dict[str, Any]) -> dict[str, Any]:
    """validate() then convert(); the answer map (never raises for the converter's faults)."""
    try:
        return _execute(cls, request)
    except MemoryError as exc:
        return {
            "ok": False,
            "failure": "limit",
            "message": "converter ran out of memory (address-space limit)",
            "detail": {"limit": "address_space", **_exception_detail(exc)},
        }
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return {
                "ok": False,
                "failure": "limit",
                "message": f"converter hit the open-files limit: {exc}",
                "detail": {"limit": "open_files", **_exception_detail(exc)},
            }
        return _exception_answer(exc)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are converter faults too
        return _exception_answer(exc)


def _exception_answer(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "failure": "exception",
        "message": f"{type(exc).__name__}: {exc}"[:2000],
        "detail": _exception_detail(exc),
    }


def _execute(cls: type, request: dict[str, Any]) -> dict[str, Any]:
    from wats.api.models import UURReport, UUTReport, dump_report
    from wats.converters.base import ConverterBase

    context_data: dict[str, Any] = request.get("context") or {}
    converter = cls()
    source, context = _make_source_and_context(cls, request, context_data)
    confidence: float | None = None
    if context_data.get("validate_only"):
        # `wats-supervisor convert` without --converter: ask every candidate, convert nothing.
        return {
            "ok": True,
            "reports": [],
            "confidence": min(1.0, max(0.0, float(converter.validate(source, context)))),
            "message": "validate() only",
            "warnings": [],
        }
    # validate() is for telling whose file this is; the config already routed the file here, and
    # a full validate() often parses the file as convert() will. So it runs only when asked.
    if context_data.get("validate") and type(converter).validate is not ConverterBase.validate:
        confidence = float(converter.validate(source, context))
        reject = float(context_data.get("reject_threshold", 0.0))
        if confidence < reject:
            return {
                "ok": True,
                "reports": [],
                "confidence": confidence,
                "message": f"validate() gave confidence {confidence:.2f}; convert() not run",
                "warnings": [],
            }
    result = converter.convert(source, context)
    if not bool(getattr(result, "success", False)):
        return {
            "ok": False,
            "failure": "rejected",
            "message": str(getattr(result, "message", "") or "converter reported failure"),
            "confidence": float(getattr(result, "confidence", 0.0) or 0.0),
            "warnings": [str(w) for w in getattr(result, "warnings", [])],
        }
    reports: list[dict[str, Any]] = []
    encoded: list[bytes] = []
    identities: list[dict[str, Any]] = []
    stamp = context_data.get("stamp")
    # Built-in converters return models straight from validation; a site's converter may have
    # changed its models after building them, so its output is validated again here.
    trusted = cls.__module__.startswith("wats.converters.builtin.")
    for index, report in enumerate(result.reports):
        if not isinstance(report, UUTReport | UURReport):
            return {
                "ok": False,
                "failure": "invalid",
                "message": f"report {index} is a {type(report).__name__}, not a UUT/UUR report",
            }
        if stamp is None:
            reports.append(dump_report(report))
            continue
        body, identity, problem = _stamped_body(
            dump_report(report), index, stamp, context_data, trusted, cls
        )
        if problem is not None:
            return {"ok": False, "failure": "invalid", "message": problem}
        encoded.append(body)
        identities.append(identity)
    final = float(result.confidence)
    if confidence is not None:
        final = min(final, confidence)
    return {
        "ok": True,
        "reports": reports,
        "report_json": encoded,
        "identities": identities,
        "confidence": final,
        "message": str(result.message or ""),
        "warnings": [str(w) for w in result.warnings]
        + [str(w) for identity in identities for w in identity["warnings"]],
    }


def _stamped_body(
    body: dict[str, Any],
    index: int,
    stamp: dict[str, Any],
    context_data: dict[str, Any],
    trusted: bool,
    cls: type,
) -> tuple[bytes, dict[str, Any], str | None]:
    """The queue body of report ``index`` with the id and station the pipeline decided for it
    (``wats.converters.provenance``: the source's where it records them), written first so the
    converter worker can check them without decoding the body; compact JSON. Also returns the
    decision, which the worker checks and ``convert --explain`` shows."""
    from pydantic import ValidationError

    from wats.api.models import parse_report
    from wats.api.models.codec import describe_validation_error
    from wats.converters.provenance import decide_identity
    from wats.converters.stamp import stamp_fields, stamped_body

    identity = decide_identity(
        body,
        index,
        converter_name=str(stamp["name"]),
        digest=str(stamp["digest"]),
        configured=context_data["station"],
        override_file_station=bool(stamp.get("override_file_station")),
        keeps_source_ids=bool(getattr(cls, "source_ids", False)),
    )
    if not trusted:
        try:
            parse_report({**body, **stamp_fields(identity.id, identity.station)})
        except ValidationError as exc:
            return (
                b"",
                {},
                f"report {index} is not a valid WATS report: {describe_validation_error(exc)}",
            )
    return stamped_body(body, identity.id, identity.station), identity.to_wire(), None


def _make_source_and_context(
    cls: type, request: dict[str, Any], context_data: dict[str, Any]
) -> tuple[Any, Any]:
    from wats.api.station import Station
    from wats.converters.base import ConverterContext, ConverterSource, ReferenceLookup

    arguments = cls.parse_arguments(request.get("args") or {})
    reference_file = context_data.get("reference_file")
    reference = ReferenceLookup.from_file(Path(reference_file) if reference_file else None)
    station = Station.model_validate(context_data["station"])
    source = ConverterSource(Path(os.fsdecode(request["source"])))
    context = ConverterContext(station=station, arguments=arguments, reference=reference)
    return source, context


# ---- entry point --------------------------------------------------------------------------


def serve(argv: list[str] | None = None) -> int:
    """Run the fork server on this process's stdin/stdout (``python -m wats.converters.sandbox``).

    The protocol descriptors are moved off 0/1 first, so a converter that prints while being
    imported cannot corrupt the protocol: fd 1 then points at stderr, fd 0 at /dev/null.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parent = int(args[args.index("--parent") + 1]) if "--parent" in args else None
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    from wats.platform import set_parent_death_signal

    set_parent_death_signal(signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        return 0  # the worker died while we were starting
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the worker's business
    try:
        _ForkServer(proto_in, proto_out).run()
    except (BrokenPipeError, EOFError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(serve())
