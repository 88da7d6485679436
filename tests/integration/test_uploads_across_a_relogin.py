"""A token revoked while the station runs: reports wait, nothing fails, and a new
``wats-supervisor login`` takes effect without restarting anything.

A real supervisor delivers to the embedded server with the token from the encrypted store. The
server then stops accepting that token (an administrator revoking it): the next report is
refused with 401 and must stay pending, not go to failed/. Logging in with the new token
(through the credential store, as the ``login`` command does) lets the uploader pick it up at
its next attempt, and the report arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pipeline_harness import (
    Pipeline,
    pipeline,
    use_stored_login,
    wait_for,
    wsjf_copy,
)
from wats.api import Secret
from wats.config.paths import InstancePaths
from wats.credentials import login
from wats.credentials.crypto import MACHINE_ID_FILE_ENV
from wats.server.auth import make_token

pytestmark = pytest.mark.timeout(120)

OLD_TOKEN = make_token("station-7", "first-password")
NEW_TOKEN = make_token("station-7", "renewed-password")


@pytest.fixture
def station(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with pipeline(start=False, server_token=OLD_TOKEN) as pipe:
        machine = use_stored_login(pipe)
        monkeypatch.setenv(MACHINE_ID_FILE_ENV, str(machine))
        login(pipe.cfg, pipe.server.url, "station-7", Secret(OLD_TOKEN))
        pipe.start()
        pipe.wait_workers()
        yield pipe


def test_a_revoked_token_holds_reports_pending_until_a_new_login_delivers_them(
    station: Pipeline, samples_dir: Path
) -> None:
    pipe = station
    sample = (samples_dir / "wsjf" / "uut-wsjf-export.json").read_bytes()
    pipe.drop("wsjf", "before.json", wsjf_copy(sample, "RELOGIN-1"))
    wait_for(lambda: pipe.server_count() >= 1, 60, "the first report with the stored token")

    pipe.server.context.tokens.replace([NEW_TOKEN])  # the old token is revoked
    pipe.drop("wsjf", "during.json", wsjf_copy(sample, "RELOGIN-2"))
    # Whichever meets the 401 first - the uploader's attempt or the health worker's probe,
    # which pauses the uploads - the report waits pending and the log says what to do.
    log_file = InstancePaths.for_config(pipe.cfg).log_file
    wait_for(
        lambda: pipe.queue.counts().pending == 1
        and "401" in (text := log_file.read_text("utf-8"))
        and "run wats-supervisor login" in text,
        60,
        "the 401 logged with the remedy and the report kept pending",
    )
    assert pipe.queue.counts().failed == 0
    assert pipe.server_count() == 1

    login(pipe.cfg, pipe.server.url, "station-7", Secret(NEW_TOKEN))
    wait_for(lambda: pipe.server_count() >= 2, 60, "the held report after the new login")
    wait_for(lambda: pipe.queue.counts().pending == 0, 30, "the queue drained")
    assert pipe.queue.counts().failed == 0
    serials = sorted(h.serial_number for h in pipe.server_headers())
    assert serials == ["RELOGIN-1", "RELOGIN-2"]
