"""The login line of ``wats-supervisor status``: what it tells a user who has not logged in."""

from __future__ import annotations

from wats.cli.login_cmd import login_lines


def test_without_a_login_status_points_at_the_login_command() -> None:
    assert login_lines(None) == ["login      not logged in (wats-supervisor login)"]


def test_with_the_embedded_server_status_says_no_login_is_needed() -> None:
    [line] = login_lines(None, embedded=True)
    assert "none needed" in line and "[server] url" in line


def test_an_unreadable_record_is_shown_with_its_reason() -> None:
    assert login_lines({"error": "encrypted on another machine"}) == [
        "login      unusable: encrypted on another machine"
    ]


def _summary(state: str = "ONLINE") -> dict:
    return {
        "logged_in": False,
        "state": state,
        "state_since": "2026-01-30T21:01:41+00:00",
        "stats": {"connections": 1, "disconnections": 0, "health_checks": 3, "failed_checks": 0},
        "proxy": None,
    }


def test_a_stopped_instance_shows_its_link_as_last_seen_not_as_now() -> None:
    running = login_lines(_summary(), embedded=True)[1]
    assert running.startswith("link       ONLINE since 2026-01-30T21:01:41+00:00;")
    stopped = login_lines(_summary(), embedded=True, running=False)[1]
    assert stopped.startswith("link       last seen ONLINE since 2026-01-30T21:01:41+00:00")
    assert "no supervisor runs" in stopped
