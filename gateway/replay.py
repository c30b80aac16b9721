"""Replay protection: a message id is accepted once while its issued-at is fresh.

Pure logic, time passed in. A request is accepted while |issued_at - now| <= skew, so
its id must be remembered until issued_at + skew has passed; after that the clock-skew
check refuses it anyway and its id needs no memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from zhol.core.errors import ZholError

# Ids of the requests received at or after a time (ms): the message log's, after a restart.
RecentIds = Callable[[int], Iterable[str]]


def replay_window_ms(skew_ms: int) -> int:
    """How long after its receipt a message id is remembered under ``skew_ms``.

    A message dated ``skew_ms`` ahead of our clock passes the skew check until
    ``2 * skew_ms`` after we received it. A request's deadline never extends this (the
    skew check applies whatever the deadline), so the skew alone sets the window.
    """
    return 2 * skew_ms


class ReplayGuard:
    """Remembers the ids of the requests received within ``replay_window_ms(skew)``.

    The skew in force comes with each check (the registry may change it at run time).
    The window never shrinks: an id accepted under a larger skew stays acceptable,
    dated ahead, for that skew's window. When the skew rises above the largest the
    memory covers (and on the first check after a start), the ids received within the
    new window are first read again from ``recent_ids`` (the message log, where every
    accepted request is), since those received before the old window began were
    forgotten.
    """

    def __init__(self, recent_ids: RecentIds) -> None:
        self._recent_ids = recent_ids
        self._skew_ms = -1  # nothing covered yet: the first check reads recent_ids
        self._seen: OrderedDict[str, int] = OrderedDict()

    @property
    def window_ms(self) -> int:
        return replay_window_ms(max(self._skew_ms, 0))

    def check_and_remember(self, message_id: str, now_ms: int, skew_ms: int) -> None:
        """Raise ReplayedMessage if the id was seen within the window, else record it."""
        if skew_ms > self._skew_ms:
            self._cover(skew_ms, now_ms)
        self._prune(now_ms)
        if message_id in self._seen:
            raise ZholError("ReplayedMessage", "message id already used")
        self._seen[message_id] = now_ms

    def _cover(self, skew_ms: int, now_ms: int) -> None:
        # Read first: if it fails (LoggingFailed) nothing is marked covered, and the
        # next check tries again.
        ids = sorted(self._recent_ids(now_ms - replay_window_ms(skew_ms)))
        for message_id in ids:
            # Kept a whole window from now: their receipt times are not known here.
            self._seen[message_id] = now_ms
            self._seen.move_to_end(message_id)
        self._skew_ms = skew_ms

    def _prune(self, now_ms: int) -> None:
        # Oldest first; stops at the first id still within the window, so an id is
        # never forgotten early (one kept a little longer costs only memory).
        horizon = now_ms - self.window_ms
        while self._seen:
            oldest_id, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[oldest_id]

    def __len__(self) -> int:
        return len(self._seen)


def check_clock_skew(issued_at_ms: int, now_ms: int, skew_ms: int) -> None:
    """Raise ClockSkew unless issued_at is within +-skew of now."""
    if abs(now_ms - issued_at_ms) > skew_ms:
        raise ZholError("ClockSkew", "issued-at time outside the allowed clock skew")
