"""Replay protection: a message id is accepted once within the freshness window.

Pure logic, time passed in. Ids older than the window need no memory: the
clock-skew check already rejects their issued-at time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from zhol.core.errors import ZholError


class ReplayGuard:
    def __init__(self, window_ms: int) -> None:
        self._window_ms = window_ms
        self._seen: OrderedDict[str, int] = OrderedDict()

    def remember(self, ids: Iterable[str], now_ms: int) -> None:
        for message_id in ids:
            self._seen[message_id] = now_ms

    def check_and_remember(self, message_id: str, now_ms: int) -> None:
        """Raise ReplayedMessage if the id was seen within the window, else record it."""
        self._prune(now_ms)
        if message_id in self._seen:
            raise ZholError("ReplayedMessage", "message id already used")
        self._seen[message_id] = now_ms

    def _prune(self, now_ms: int) -> None:
        horizon = now_ms - self._window_ms
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
