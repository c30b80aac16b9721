"""Injected time: every component takes a Clock so tests can move it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class FixedClock:
    """A clock that moves only when told (tests, scenarios)."""

    current_ms: int = field(default=1_790_000_000_000)

    def now_ms(self) -> int:
        return self.current_ms

    def advance(self, seconds: float) -> None:
        self.current_ms += int(seconds * 1000)
