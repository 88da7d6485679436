"""Converters that misbehave on purpose, for the sandbox and converter-worker tests.

Each is importable as ``tests.support.bad_converters:Name`` (the sandbox process needs the project
root on ``sys.path``/``PYTHONPATH``). The good ones build a small valid UUT report from the file's
text, so their reports can be enqueued and compared.
"""

from __future__ import annotations

import ctypes
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from wats.api.models import parse_report
from wats.converters.base import ConverterBase, ConverterContext, ConverterResult, ConverterSource

__all__ = [
    "AllocatesTooMuch",
    "BurnsCpu",
    "ForgesItsIdentity",
    "KillsItsSandbox",
    "KillsTheWorker",
    "LoopsForever",
    "LowConfidence",
    "OpensTooManyFiles",
    "PrintsToStdout",
    "Raises",
    "ReportsItsProcess",
    "ReturnsNotAReport",
    "RewritesItsStamp",
    "Segfaults",
    "SimpleText",
    "WaitsForRelease",
    "WritesOutsideTempDir",
]


def simple_report(serial: str, context: ConverterContext, *, station: str = "from-source") -> dict:
    """A minimal valid UUT report dict. Its nil id is no usable id (the pipeline derives one);
    its station is the file's, which the pipeline keeps unless the converter overrides it."""
    return {
        "type": "T",
        "id": "00000000-0000-0000-0000-000000000000",
        "pn": "PN-1",
        "sn": serial[:100] or "EMPTY",
        "rev": "A",
        "processCode": 10,
        "result": "P",
        "machineName": station,
        "location": "nowhere",
        "purpose": "test",
        "start": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat(),
        "root": {"status": "P", "stepType": "SequenceCall", "name": "MainSequence"},
    }


class SimpleText(ConverterBase):
    """One report per line of text: the line is the serial number. Well behaved."""

    name = "simple-text"
    file_patterns = ("*.txt",)

    class Arguments(BaseModel):
        confidence: float = 1.0

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        lines = [ln.strip() for ln in source.read_text().splitlines() if ln.strip()]
        reports = [parse_report(simple_report(line, context)) for line in lines]
        confidence = float(getattr(context.arguments, "confidence", 1.0))
        return ConverterResult.ok(reports, confidence=confidence, warnings=["checked"])


class Raises(SimpleText):
    """Raises from convert()."""

    name = "raises"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        raise ValueError(f"cannot make sense of {source.name}")


class LoopsForever(SimpleText):
    """Sleeps in a loop: only the wall-clock timeout stops it (it uses no CPU)."""

    name = "loops-forever"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        while True:
            signal.pause() if hasattr(signal, "pause") else os.read(0, 1)


class BurnsCpu(SimpleText):
    """Spins the CPU: RLIMIT_CPU stops it."""

    name = "burns-cpu"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        x = 0
        while True:
            x += 1


class AllocatesTooMuch(SimpleText):
    """Asks for far more memory than the address-space limit allows."""

    name = "allocates-too-much"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        hog = bytearray(16 * 1024 * 1024 * 1024)  # 16 GiB in one go
        return ConverterResult.fail(f"allocated {len(hog)} bytes?!")


class Segfaults(SimpleText):
    """Dereferences a null pointer through ctypes: the process dies of SIGSEGV."""

    name = "segfaults"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        ctypes.string_at(0)
        return ConverterResult.fail("still alive?!")


class PrintsToStdout(SimpleText):
    """Prints (stdout and stderr) and then converts fine."""

    name = "prints"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        print(f"converting {source.name} from {os.getcwd()}")
        print("a note on stderr", file=__import__("sys").stderr)
        return super().convert(source, context)


class WritesOutsideTempDir(SimpleText):
    """Writes a file into its cwd (private) and one to the absolute path in argument ``target``
    (outside its temp dir), then converts fine. rlimits do not stop the second write."""

    name = "writes-outside"

    class Arguments(BaseModel):
        target: str
        confidence: float = 1.0

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        Path("scratch.txt").write_text(os.getcwd())
        Path(context.arguments.target).write_text(f"written from {os.getcwd()}")  # type: ignore[attr-defined]
        return super().convert(source, context)


class LowConfidence(SimpleText):
    """Converts, with the confidence given in the first line ``confidence=0.3``."""

    name = "low-confidence"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        lines = source.read_text().splitlines()
        confidence = float(lines[0].split("=", 1)[1])
        reports = [parse_report(simple_report(line, context)) for line in lines[1:] if line]
        return ConverterResult.ok(reports, confidence=confidence)


class ReturnsNotAReport(SimpleText):
    """Returns something that is not a report model."""

    name = "not-a-report"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        result = ConverterResult.ok([])
        result.reports.append({"type": "T"})  # type: ignore[arg-type]
        return result


class SpoilsItsReport(SimpleText):
    """Builds a valid report, then gives it a serial WATS refuses (models are not re-validated
    on assignment): the pipeline must still catch it before it reaches the queue."""

    name = "spoils-report"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        result = super().convert(source, context)
        for report in result.reports:
            report.sn = "SN*BAD"
        return result


class RewritesItsStamp(SimpleText):
    """Replaces the sandbox's stamping code in its own process, so its reports come back with
    an id the pipeline did not derive: the converter worker's stamp check must catch it."""

    name = "rewrites-stamp"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        import uuid

        from wats.converters import stamp

        original = stamp.stamp_fields

        def forged(report_id: str, station: dict) -> dict:
            return {**original(report_id, station), "id": str(uuid.uuid4())}

        stamp.stamp_fields = forged
        return super().convert(source, context)


class ForgesItsIdentity(SimpleText):
    """Replaces the pipeline's identity rule in its own process: a made-up id claimed to be the
    derived one, stamped consistently in body and decision. The body matches the decision, so
    only the converter worker's check of the decision against the rule can catch it."""

    name = "forges-identity"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        import dataclasses
        import uuid

        from wats.converters import provenance

        original = provenance.decide_identity

        def forged(*args: object, **kwargs: object) -> provenance.ReportIdentity:
            decided = original(*args, **kwargs)  # type: ignore[arg-type]
            return dataclasses.replace(decided, id=str(uuid.uuid4()))

        provenance.decide_identity = forged  # type: ignore[assignment]
        return super().convert(source, context)


class KillsItsSandbox(SimpleText):
    """SIGKILLs its parent (the fork server) when the file says ``kill``; else converts."""

    name = "kills-sandbox"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        if source.read_text().strip() == "kill":
            os.kill(os.getppid(), signal.SIGKILL)
            signal.pause()
        return super().convert(source, context)


class WaitsForRelease(SimpleText):
    """A conversion the test can hold open: a file whose first line is ``hold=<path>`` makes the
    converter create ``<path>.started`` and wait until ``<path>`` exists (up to 60 s), then
    convert the remaining lines. The test kills whatever it likes in between."""

    name = "waits-for-release"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        import time

        lines = source.read_text().splitlines()
        if lines and lines[0].startswith("hold="):
            release = Path(lines[0].split("=", 1)[1])
            Path(f"{release}.started").write_text(str(os.getpid()))
            deadline = time.monotonic() + 60
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.02)  # a poll with a deadline, in the converter under test
            lines = lines[1:]
        reports = [parse_report(simple_report(line, context)) for line in lines if line]
        return ConverterResult.ok(reports)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


class KillsTheWorker(SimpleText):
    """SIGKILLs the converter worker (its grandparent: child → fork server → worker) when the
    file says ``kill``; else converts. Linux only (reads /proc)."""

    name = "kills-worker"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        if source.read_text().strip() == "kill":
            worker = _parent_of(os.getppid())
            os.kill(worker, signal.SIGKILL)
            signal.pause()
        return super().convert(source, context)


class ReportsItsProcess(SimpleText):
    """Converts, with facts about its own process in the warnings: open descriptors, cwd,
    whether stdin is at EOF, and its rlimits (what the sandbox promises, observed from inside)."""

    name = "reports-process"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        import resource

        result = super().convert(source, context)
        fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        result.warnings = [
            f"fds={','.join(map(str, fds))}",
            f"cwd={os.getcwd()}",
            f"stdin={os.read(0, 10)!r}",
            f"as={resource.getrlimit(resource.RLIMIT_AS)[0]}",
            f"nofile={resource.getrlimit(resource.RLIMIT_NOFILE)[0]}",
            f"cpu={resource.getrlimit(resource.RLIMIT_CPU)[0]}",
        ]
        return result


class OpensTooManyFiles(SimpleText):
    """Opens files until the open-files limit stops it."""

    name = "opens-too-many"

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        handles = [open(source.path, "rb") for _ in range(100_000)]  # noqa: SIM115
        return ConverterResult.fail(f"opened {len(handles)} files?!")


class Remembers(SimpleText):
    """Converts, reporting its pid, the job's working dir and how many files this process has
    converted; prints a line naming the file. ``leave-thread`` in the file starts a thread that
    outlives the conversion; ``crash-if-reused`` segfaults in a process that converted before."""

    name = "remembers"
    converted = 0

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        import ctypes
        import threading
        import time

        text = source.read_text()
        if "crash-if-reused" in text and Remembers.converted > 0:
            ctypes.string_at(0)
        Remembers.converted += 1
        if "leave-thread" in text:
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        print(f"converting {source.name}")
        Path("scratch.txt").write_text("x")  # the job's own cwd
        result = super().convert(source, context)
        result.warnings = [
            f"pid={os.getpid()}",
            f"count={Remembers.converted}",
            f"cwd_files={sorted(os.listdir('.'))}",
        ]
        return result
