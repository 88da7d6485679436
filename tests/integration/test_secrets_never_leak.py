"""The API token never leaks: a whole session, then a search of everything it left behind.

One session as a user would run it, with debug logging on: a failed and a good
``wats-supervisor login`` (the token then lives only in the encrypted credential store),
the supervisor with its workers delivering reports, the server answering 400 (a report it
refuses) and 401 (the token revoked meanwhile), a file that makes the converter fail with an
exception, and ``status --json``. A raw subscriber records every frame on every bus topic.

Afterwards the token, its decoded ``user:password`` form and the password are searched for in
every file the session wrote (logs, config, credential store, queue, done and error folders,
the supervisor's output), in the bus frames and in every command's output: zero hits. The
embedded server's own data folder is the one place excluded: it is the server's credential
store, which must hold the password. (Secrets are searched for as bytes and never printed:
an assertion lists only where and which.)
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from typer.testing import CliRunner

from tests.support.pipeline_harness import (
    TOKEN_ENV,
    Pipeline,
    pipeline,
    use_stored_login,
    wait_for,
    wsjf_copy,
)
from wats.cli.main import app
from wats.config.paths import InstancePaths
from wats.credentials.crypto import MACHINE_ID_FILE_ENV
from wats.protocol.addresses import read_endpoints
from wats.server.auth import make_token

pytestmark = pytest.mark.timeout(180)

# distinctive, so a hit can only be a leak, never a word that happens to appear in a log
PROBE_USER = "leak-probe-user"
PROBE_PASSWORD = "Zq8vR3-leak-probe-pw-7Xk"


class BusRecorder:
    """A raw SUB socket on the events XPUB, subscribed to everything, keeping every frame."""

    def __init__(self, endpoint: str) -> None:
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._endpoint = endpoint
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "bus recorder did not start"

    def _run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self._endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if sock.poll(100):
                    self.frames.extend(sock.recv_multipart())
        finally:
            sock.close(linger=0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def session() -> Iterator[Pipeline]:
    with pipeline(start=False, server_token=make_token(PROBE_USER, PROBE_PASSWORD)) as pipe:
        use_stored_login(pipe, debug_logging=True)
        yield pipe


def _cli(pipe: Pipeline, *args: str, input: str | None = None) -> tuple[int, str]:
    saved = {k: os.environ.get(k) for k in (MACHINE_ID_FILE_ENV, TOKEN_ENV)}
    os.environ[MACHINE_ID_FILE_ENV] = pipe.env[MACHINE_ID_FILE_ENV]
    os.environ.pop(TOKEN_ENV, None)
    try:
        result = CliRunner().invoke(app, [*args, "--config", str(pipe.config_path)], input=input)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return result.exit_code, result.output


def _files_written(pipe: Pipeline) -> Iterator[Path]:
    server_data = pipe.server.data_dir.resolve()
    for path in pipe.root.rglob("*"):
        if path.is_file() and not path.is_symlink() and server_data not in path.resolve().parents:
            yield path


def test_a_whole_session_leaves_the_token_and_password_nowhere(
    session: Pipeline, samples_dir: Path
) -> None:
    pipe = session
    token = pipe.server.token
    username, password = PROBE_USER, PROBE_PASSWORD
    secrets = {
        "token": token.encode(),
        "user:password": base64.b64decode(token),
        "password": password.encode(),
    }
    outputs: list[str] = []

    code, out = _cli(pipe, "login", "--username", username, input="not-the-password\n")
    outputs.append(out)
    assert code != 0 and "refused" in out
    code, out = _cli(pipe, "login", "--username", username, input=f"{password}\n")
    outputs.append(out)
    assert code == 0, out

    pipe.start()
    recorder = BusRecorder(read_endpoints(pipe.root / "run").events_out)
    try:
        pipe.wait_workers()
        sample = (samples_dir / "wsjf" / "uut-wsjf-export.json").read_bytes()
        for i in range(3):
            pipe.drop("wsjf", f"good-{i}.json", wsjf_copy(sample, f"LEAK-OK-{i}"))
        wait_for(lambda: pipe.server_count() >= 3, 60, "3 reports uploaded")

        pipe.server.set_faults(reject_next_reports=1)  # 400
        pipe.drop("wsjf", "refused.json", wsjf_copy(sample, "LEAK-400"))
        wait_for(lambda: pipe.queue.counts().failed >= 1, 60, "the 400 in failed/")
        pipe.server.clear_faults()

        pipe.server.context.tokens.replace(["c29tZW9uZTplbHNl"])  # token revoked: 401
        pipe.drop("wsjf", "revoked.json", wsjf_copy(sample, "LEAK-401"))
        log_file = InstancePaths.for_config(pipe.cfg).log_file
        wait_for(  # the uploader's attempt or the health probe meets the 401 first
            lambda: pipe.queue.counts().pending == 1 and "401" in log_file.read_text("utf-8"),
            60,
            "the 401 answered and the report kept pending",
        )
        pipe.server.context.tokens.replace([token])  # reinstated: the report goes by itself
        wait_for(lambda: pipe.server_count() >= 4, 60, "the held report uploaded")

        pipe.drop("wsjf", "broken.json", b'{"type": "T", "pn": ')  # the converter fails
        wait_for(lambda: pipe.files("wsjf", "error"), 60, "the broken file in error/")

        status = pipe.cli("status", "--json")
        outputs += [status.stdout, status.stderr]
        events = pipe.cli("queue", "list", "--state", "failed")
        outputs += [events.stdout, events.stderr]
    finally:
        recorder.close()
        with contextlib.suppress(Exception):
            pipe.stop()

    assert recorder.frames, "the recorder saw no bus traffic"
    assert pipe.queue.counts().failed == 1  # the 400; the 401 waited, then went
    leaks = []
    for path in _files_written(pipe):
        data = path.read_bytes()
        leaks += [
            f"{path.relative_to(pipe.root)}: {name}" for name, s in secrets.items() if s in data
        ]
    bus = b"\n".join(recorder.frames)
    leaks += [f"bus: {name}" for name, s in secrets.items() if s in bus]
    said = "\n".join(outputs).encode()
    leaks += [f"command output: {name}" for name, s in secrets.items() if s in said]
    assert leaks == []
    # the search is not vacuous: it read a debug log, the queue, an error file, the store
    log = InstancePaths.for_config(pipe.cfg).log_file.read_text(encoding="utf-8")
    assert '"level": "debug"' in log and "401" in log
    searched = {p.name for p in _files_written(pipe)}
    assert "connection.json" in searched and "broken.json.error.json" in searched
    assert sum(name.endswith(".json") for name in searched) >= 6
