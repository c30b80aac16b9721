"""Sign-in by IIN and one-time code, sessions and rate limits: pure logic, no I/O.

The code is delivered by a ``CodeSender``; a real identity provider (SMS gateway, eGov
mobile, a qualified signature) replaces the demo's ``DemoOutbox``. Sessions are random
ids kept in memory: the cookie carries only the id; nothing personal is stored beyond
the signed-in citizen's IIN, for as long as the session lives.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

CODE_DIGITS = 6


class CodeSender(Protocol):
    """Delivers a one-time code to the citizen holding ``iin`` (never logs it)."""

    async def send(self, iin: str, code: str) -> None: ...


@dataclass(frozen=True)
class OutboxMessage:
    iin: str
    code: str
    sent_at: float


class DemoOutbox:
    """The demo's "SMS outbox": the last messages, shown at /dev/outbox in demo mode only."""

    def __init__(self, clock: Callable[[], float], keep: int = 50) -> None:
        self._clock = clock
        self._messages: deque[OutboxMessage] = deque(maxlen=keep)

    async def send(self, iin: str, code: str) -> None:
        self._messages.appendleft(OutboxMessage(iin, code, self._clock()))

    @property
    def messages(self) -> tuple[OutboxMessage, ...]:
        return tuple(self._messages)


@dataclass
class Session:
    id: str
    csrf: str
    expires_at: float
    iin: str | None = None  # None until signed in
    # A sign-in under way: the IIN, the code, its expiry and the wrong attempts left.
    pending_iin: str | None = None
    pending_code: str | None = None
    pending_expires_at: float = 0.0
    pending_attempts_left: int = 0
    # The citizen's minor children as population last named them on a page of this
    # session (None until one read the family): only for the menu's unread count, so
    # that counting needs no bus call on every page.
    children: tuple[str, ...] | None = None


class CodeCheck:
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # expired, used up or never asked for


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class SessionStore:
    """Sessions by id, in memory. Anonymous sessions (before sign-in) and signed-in ones
    are kept apart, each dropping its least recently used past ``limit``: a flood of
    anonymous visits can never push a signed-in citizen out."""

    def __init__(self, clock: Callable[[], float], idle_s: int, limit: int) -> None:
        self._clock = clock
        self._idle_s = idle_s
        self._limit = limit
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._signed_in: OrderedDict[str, Session] = OrderedDict()

    def new(self, iin: str | None = None) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires_at=self._clock() + self._idle_s,
            iin=iin,
        )
        kept = self._anonymous if iin is None else self._signed_in
        kept[session.id] = session
        while len(kept) > self._limit:
            kept.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle time restarted), or None."""
        if not session_id or len(session_id) > 128:
            return None
        for kept in (self._signed_in, self._anonymous):
            session = kept.get(session_id)
            if session is None:
                continue
            now = self._clock()
            if session.expires_at <= now:
                del kept[session_id]
                return None
            session.expires_at = now + self._idle_s
            kept.move_to_end(session_id)
            return session
        return None

    def drop(self, session_id: str) -> None:
        self._anonymous.pop(session_id, None)
        self._signed_in.pop(session_id, None)

    def start_sign_in(
        self, session: Session, iin: str, code: str, ttl_s: int, attempts: int
    ) -> None:
        session.pending_iin = iin
        session.pending_code = code
        session.pending_expires_at = self._clock() + ttl_s
        session.pending_attempts_left = attempts

    def check_code(self, session: Session, code: str) -> tuple[str, Session]:
        """Check a code; on success a NEW session (new id and CSRF token) is signed in and
        the old one dropped, so an id seen before sign-in is worthless after it."""
        expected = session.pending_code
        if expected is None or session.pending_expires_at <= self._clock():
            _clear_pending(session)
            return CodeCheck.EXPIRED, session
        if not hmac.compare_digest(code.encode(), expected.encode()):
            session.pending_attempts_left -= 1
            if session.pending_attempts_left <= 0:
                _clear_pending(session)
            return CodeCheck.WRONG, session
        iin = session.pending_iin
        self.drop(session.id)
        return CodeCheck.OK, self.new(iin)


def _clear_pending(session: Session) -> None:
    session.pending_iin = session.pending_code = None
    session.pending_expires_at = 0.0
    session.pending_attempts_left = 0


@dataclass
class RateLimiter:
    """At most ``limit`` events per key in a sliding ``window_s`` (keys bounded in number)."""

    clock: Callable[[], float]
    limit: int
    window_s: float
    max_keys: int = 100_000
    _events: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (and not counted) when over the limit."""
        now = self.clock()
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        self._events.move_to_end(key)
        return True
