"""The replay memory covers the allowed clock skew: pure, times as parameters."""

from __future__ import annotations

import pytest

from zhol.core.errors import ZholError
from zhol.gateway.replay import ReplayGuard, check_clock_skew, replay_window_ms

SKEW_MS = 3_600_000  # an hour: above the old fixed ten-minute memory


def accept(guard: ReplayGuard, message_id: str, issued_at_ms: int, now_ms: int) -> None:
    """What CheckFreshness does: the skew check, then the replay guard."""
    check_clock_skew(issued_at_ms, now_ms, SKEW_MS)
    guard.check_and_remember(message_id, now_ms, SKEW_MS)


def refused(guard: ReplayGuard, message_id: str, issued_at_ms: int, now_ms: int) -> str:
    with pytest.raises(ZholError) as caught:
        accept(guard, message_id, issued_at_ms, now_ms)
    return caught.value.code.name


def test_a_message_dated_ahead_is_refused_until_its_skew_check_would_refuse_it() -> None:
    guard = ReplayGuard(lambda since: ())
    received = 1_000_000_000
    issued_at = received + SKEW_MS  # as far ahead as the skew allows
    accept(guard, "m", issued_at, received)
    # Just under the window: the skew check still passes, the replay guard refuses.
    last = received + replay_window_ms(SKEW_MS)
    assert last - issued_at == SKEW_MS
    assert refused(guard, "m", issued_at, last) == "ReplayedMessage"
    # One ms later the id is forgotten, and the skew check refuses the message itself.
    assert refused(guard, "m", issued_at, last + 1) == "ClockSkew"


def test_the_window_never_shrinks_when_the_skew_is_lowered() -> None:
    guard = ReplayGuard(lambda since: ())
    guard.check_and_remember("m", 0, SKEW_MS)
    guard.check_and_remember("other", 2 * SKEW_MS - 10, 1000)  # the skew is now 1 s
    with pytest.raises(ZholError) as caught:
        guard.check_and_remember("m", 2 * SKEW_MS, 1000)
    assert caught.value.code.name == "ReplayedMessage"


def test_a_raised_skew_and_a_restart_read_the_new_window_from_the_log() -> None:
    asked: list[int] = []

    def logged(since_ms: int) -> set[str]:
        asked.append(since_ms)
        return {"before-restart"}

    guard = ReplayGuard(logged)
    now = 10 * SKEW_MS
    guard.check_and_remember("first", now, 1000)
    assert asked == [now - replay_window_ms(1000)]
    with pytest.raises(ZholError) as caught:
        guard.check_and_remember("before-restart", now + 1, 1000)
    assert caught.value.code.name == "ReplayedMessage"
    guard.check_and_remember("second", now + 2, SKEW_MS)  # the registry raised the skew
    assert asked[-1] == now + 2 - replay_window_ms(SKEW_MS)
    guard.check_and_remember("third", now + 3, SKEW_MS)
    assert len(asked) == 2  # read again only when the skew rises
