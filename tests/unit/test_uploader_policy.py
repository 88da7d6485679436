"""The uploader's decisions without processes, sockets or a server: backoff, the connection gate,
queue.stats throttling and the fate of a failed attempt — on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from wats.api.errors import (
    BadRequestError,
    ServerError,
    WatsConnectionError,
    WatsProtocolError,
    WatsTimeoutError,
    error_from_response,
)
from wats.api.response import Response
from wats.config.models import ClientConfig
from wats.workers.uploader import (
    RETRY_AFTER_LIMIT_SECONDS,
    Backoff,
    ConnectionGate,
    StatsThrottle,
    UploaderSettings,
    judge_failure,
    refuse_non_json_numbers,
    retry_after_of,
)

SUBMIT = ("POST", "/api/Report/WSJF")


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _answer(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.from_body(status, f'{{"message": "{message}"}}'.encode(), headers or {})


def _error(status: int, message: str = "nope", headers: dict[str, str] | None = None):
    return error_from_response(_answer(status, message, headers), *SUBMIT)


# ---- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_per_failure_until_the_cap() -> None:
    backoff = Backoff(base=5.0, cap=600.0, jitter=0.5)
    no_jitter = [backoff.delay(n, random=lambda: 0.0) for n in range(1, 10)]
    assert no_jitter == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 600.0, 600.0]


def test_backoff_jitter_only_shortens_within_the_jitter_fraction() -> None:
    backoff = Backoff(base=8.0, cap=600.0, jitter=0.5)
    assert backoff.delay(1, random=lambda: 0.999999) == pytest.approx(4.0, abs=1e-4)
    assert 4.0 <= backoff.delay(1) <= 8.0


def test_backoff_survives_absurd_failure_counts() -> None:
    assert Backoff(base=5.0, cap=600.0).delay(10_000, random=lambda: 0.0) == 600.0


def test_retry_after_is_honoured_never_earlier_and_at_most_ten_percent_later() -> None:
    backoff = Backoff(base=5.0, cap=600.0)
    assert backoff.delay(7, retry_after=2.0, random=lambda: 0.0) == 2.0
    assert backoff.delay(7, retry_after=2.0, random=lambda: 1.0) == pytest.approx(2.2)


def test_retry_after_beyond_an_hour_is_treated_as_an_hour() -> None:
    delay = Backoff().delay(1, retry_after=10 * 86400.0, random=lambda: 0.0)
    assert delay == RETRY_AFTER_LIMIT_SECONDS


def test_retry_after_comes_from_a_429_or_a_503_header() -> None:
    assert retry_after_of(_error(429, "slow down", {"Retry-After": "3"})) == 3.0
    assert retry_after_of(_error(503, "busy", {"Retry-After": "7"})) == 7.0
    assert retry_after_of(_error(500, "boom")) is None
    assert retry_after_of(WatsConnectionError("refused")) is None


# ---- the fate of a failed attempt ------------------------------------------------------------


def _judge(error: BaseException, failures: int = 1, max_attempts: int = 50):
    return judge_failure(
        error,
        failures,
        max_attempts=max_attempts,
        backoff=Backoff(base=5.0, cap=600.0),
        now=1000.0,
        random=lambda: 0.0,
    )


def test_a_400_fails_the_report_at_once_with_the_servers_message() -> None:
    verdict = _judge(_error(400, "processCode 99 unknown"))
    assert verdict.permanent and verdict.action == "fail"
    assert "processCode 99 unknown" in verdict.message and "400" in verdict.message
    assert verdict.next_attempt is None


@pytest.mark.parametrize("status", [403, 404, 409, 413, 422])
def test_other_4xx_are_permanent_too(status: int) -> None:
    assert _judge(_error(status)).permanent


@pytest.mark.parametrize("status", [401, 407])
def test_refused_credentials_keep_the_report_pending_and_hold_every_upload(status: int) -> None:
    # the 50th failure too: a refused login never exhausts a report's attempts
    verdict = _judge(_error(status, "Invalid credentials"), failures=50, max_attempts=50)
    assert verdict.action == "retry" and not verdict.permanent and verdict.credentials
    assert verdict.next_attempt == 1000.0 + 30.0 and verdict.hold == 30.0
    assert "wats-supervisor login" in verdict.message


def test_a_5xx_stays_pending_with_backoff() -> None:
    verdict = _judge(_error(503, "busy"), failures=3)
    assert verdict.action == "retry" and not verdict.permanent
    assert verdict.next_attempt == 1000.0 + 20.0
    assert not verdict.connection and verdict.hold is None


def test_a_429_waits_for_retry_after_and_holds_everyone() -> None:
    verdict = _judge(_error(429, "slow down", {"Retry-After": "2"}), failures=9)
    assert verdict.action == "retry"
    assert verdict.next_attempt == 1002.0
    assert verdict.hold == 2.0


def test_a_429_without_retry_after_holds_everyone_for_the_backoff() -> None:
    verdict = _judge(_error(429, "slow down"), failures=2)
    assert verdict.action == "retry" and verdict.next_attempt == 1010.0
    assert verdict.hold == 10.0


def test_non_finite_numbers_are_refused_but_the_words_in_strings_are_not() -> None:
    refuse_non_json_numbers(b'{"name":"NaN check","value":1.5,"x":"-Infinity"}')
    for bad in (b'{"value":NaN}', b'{"value":-Infinity}', b'{"v":[Infinity]}'):
        with pytest.raises(ValueError, match="not JSON compliant"):
            refuse_non_json_numbers(bad)


@pytest.mark.parametrize("error", [WatsConnectionError("refused"), WatsTimeoutError("slow")])
def test_no_answer_is_transient_and_flags_the_connection(error: BaseException) -> None:
    verdict = _judge(error)
    assert verdict.action == "retry" and verdict.connection


def test_the_max_attempts_th_transient_failure_sends_the_report_to_failed() -> None:
    assert _judge(_error(500), failures=4, max_attempts=5).action == "retry"
    verdict = _judge(_error(500, "boom"), failures=5, max_attempts=5)
    assert verdict.permanent
    assert "gave up after 5 transient failures" in verdict.message and "boom" in verdict.message


def test_an_unusable_success_answer_is_permanent() -> None:
    assert _judge(WatsProtocolError("no id in answer")).permanent


def test_a_body_that_cannot_be_encoded_is_permanent_but_local_io_trouble_is_not() -> None:
    assert _judge(ValueError("Out of range float values are not JSON compliant")).permanent
    assert _judge(OSError(28, "No space left on device")).action == "retry"


def test_server_error_class_is_transient() -> None:
    assert ServerError("x").transient and not BadRequestError("x").transient


# ---- the connection gate ---------------------------------------------------------------------


def test_gate_starts_open() -> None:
    gate = ConnectionGate(clock=FakeClock())
    assert gate.may_start() and not gate.paused and gate.probe_in() is None


def test_offline_status_pauses_and_online_resumes() -> None:
    gate = ConnectionGate(clock=FakeClock())
    assert gate.hear_status("OFFLINE", "HTTP 503") is True
    assert gate.paused and not gate.may_start()
    assert "OFFLINE" in (gate.reason or "")
    assert gate.hear_status("OFFLINE") is False  # no change
    assert gate.hear_status("ONLINE") is True
    assert gate.may_start() and gate.reason is None


def test_a_connection_error_pauses_until_a_probe_or_an_upload_succeeds() -> None:
    clock = FakeClock()
    gate = ConnectionGate(probe_first=1.0, probe_max=8.0, clock=clock)
    assert gate.connection_failed("refused") is True
    assert gate.probe_in() == 1.0
    clock.advance(1.0)
    assert gate.probe_in() == 0.0
    gate.probe_started()
    assert gate.probe_in() is None  # none due while one is out
    assert gate.succeeded() is True
    assert gate.may_start()
    assert gate.succeeded() is False  # already running: no change


def test_failed_probes_back_off_doubling_up_to_the_max() -> None:
    clock = FakeClock()
    gate = ConnectionGate(probe_first=1.0, probe_max=8.0, clock=clock)
    gate.connection_failed("refused")
    delays = [gate.probe_in()]
    for _ in range(5):
        gate.probe_started()
        assert gate.connection_failed("refused") is False
        delays.append(gate.probe_in())
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_good_news_resets_the_probe_delay() -> None:
    gate = ConnectionGate(probe_first=1.0, probe_max=8.0, clock=FakeClock())
    gate.connection_failed("a")
    gate.connection_failed("b")
    gate.hear_status("ONLINE")
    gate.connection_failed("c")
    assert gate.probe_in() == 1.0
    assert gate.pauses == 2


def test_only_health_lifts_a_pause_health_ordered_and_we_do_not_probe_meanwhile() -> None:
    gate = ConnectionGate(probe_first=1.0, clock=FakeClock())
    gate.connection_failed("refused")
    gate.hear_status("OFFLINE", "timeout")
    assert gate.probe_in() is None  # health is probing already
    assert gate.succeeded() is False and gate.paused  # an upload's success is not enough
    assert gate.hear_status("ONLINE") is True and gate.may_start()


def test_a_hold_blocks_new_uploads_until_it_ends_and_never_shrinks() -> None:
    clock = FakeClock()
    gate = ConnectionGate(clock=clock)
    gate.hold(2.0)
    gate.hold(1.0)
    assert not gate.may_start() and not gate.paused
    assert gate.held_for() == 2.0
    clock.advance(1.5)
    assert not gate.may_start()
    clock.advance(0.5)
    assert gate.may_start() and gate.held_for() == 0.0


# ---- queue.stats throttling ------------------------------------------------------------------


def test_stats_go_out_at_once_then_at_most_once_per_interval() -> None:
    clock = FakeClock()
    throttle = StatsThrottle(1.0, clock=clock)
    first = {"pending": 3, "failed": 0, "completed": 0}
    assert throttle.wait() == 0.0 and throttle.is_news(first)
    throttle.published(first)
    clock.advance(0.25)
    assert throttle.wait() == pytest.approx(0.75)
    clock.advance(0.75)
    assert throttle.wait() == 0.0


def test_unchanged_stats_are_not_news() -> None:
    throttle = StatsThrottle(1.0, clock=FakeClock())
    stats = {"pending": 1, "failed": 0, "completed": 2, "paused": False}
    throttle.published(stats)
    assert not throttle.is_news(dict(stats))
    assert throttle.is_news({**stats, "paused": True})


# ---- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_queue_section_and_the_worker_args(tmp_path: Path) -> None:
    config = ClientConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp_path)},
            "queue": {"max_in_flight": 8, "max_attempts": 3, "retry_base_seconds": 0.5},
        }
    )
    settings = UploaderSettings.from_config(config, {"probe_first_seconds": 0.2})
    assert settings.queue_root == tmp_path / "queue"
    assert (settings.max_in_flight, settings.max_attempts) == (8, 3)
    assert settings.retry_base_seconds == 0.5 and settings.retry_max_seconds == 600.0
    assert settings.probe_first_seconds == 0.2 and settings.timeout_seconds == 60.0


def test_pacing_defaults_to_the_wats_budget_for_a_configured_server_and_off_for_ours(
    tmp_path: Path,
) -> None:
    embedded = ClientConfig.model_validate({"paths": {"data_dir": str(tmp_path)}})
    remote = ClientConfig.model_validate(
        {"paths": {"data_dir": str(tmp_path)}, "server": {"url": "https://wats.example.com"}}
    )
    assert UploaderSettings.from_config(embedded).rate_limit_requests is None
    settings = UploaderSettings.from_config(remote)
    assert (settings.rate_limit_requests, settings.rate_limit_window_seconds) == (500, 60.0)
    assert (
        UploaderSettings.from_config(remote, {"rate_limit_requests": 0}).rate_limit_requests is None
    )
    raised = UploaderSettings.from_config(remote, {"rate_limit_requests": 5000})
    assert raised.rate_limit_requests == 5000


@pytest.mark.parametrize(
    "bad",
    [{"timeout_seconds": "soon"}, {"probe_max_seconds": 0}, {"rate_limit_requests": -1}],
)
def test_a_bad_worker_arg_is_named(tmp_path: Path, bad: dict[str, object]) -> None:
    config = ClientConfig.model_validate({"paths": {"data_dir": str(tmp_path)}})
    with pytest.raises(ValueError, match=next(iter(bad))):
        UploaderSettings.from_config(config, bad)
