"""Whom "who used my data" asks: every gateway of the federation, as the portal's own
gateway lists them (``zhol.bus.v1.Discovery/ListMembers``, docs/protocol.md).

The portal is an IS and holds no global configuration; its gateway does, and answers
discovery from it. The list is read at most once a minute (``refresh_s``), not per
page, and one reading serves every page meanwhile; a gateway that joins the
federation is asked from the next reading on, with no change to the portal. Explicit
targets (``zhol portal serve --usage-target``) replace discovery altogether.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from zhol.bus.v1 import discovery_pb2
from zhol.core.busclient import BusCallError, BusClient
from zhol.portal.usage import UsageTarget

LIST_MEMBERS = "/zhol.bus.v1.Discovery/ListMembers"
REFRESH_S = 60.0
# The gateway needs no purpose for discovery; this one says why, should it be logged.
DISCOVERY_PURPOSE = "e-government portal: the federation's gateways for 'who used my data'"


@dataclass(frozen=True)
class Directory:
    """The gateways to ask and the members (agencies) to offer in the filter.

    ``problem``: None; "stale" (the list could not be read now: the last one read is
    used); "unavailable" (no list could be read: nobody can be asked)."""

    targets: tuple[UsageTarget, ...]
    members: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)  # member -> registered name
    version: int = 0
    problem: str | None = None


def directory_from(answer: discovery_pb2.ListMembersResponse) -> Directory:
    """Every gateway that serves a subsystem, each with the first such subsystem (by id:
    a FindUsage query names a subsystem the gateway serves); every member, by id."""
    serves: dict[str, str] = {}
    for member in answer.members:
        for subsystem in sorted(member.subsystems, key=lambda s: s.id):
            for gateway in subsystem.gateways:
                serves.setdefault(gateway, subsystem.id)
    targets = tuple(UsageTarget(g, serves[g]) for g in sorted(serves))
    members = tuple(sorted(m.id for m in answer.members))
    names = {m.id: m.name for m in answer.members if m.name}
    return Directory(targets, members, names, answer.configuration_version)


def fixed_directory(targets: tuple[UsageTarget, ...]) -> Directory:
    return Directory(targets, tuple(dict.fromkeys(t.member for t in targets)))


class UsageDirectory:
    """The current ``Directory``: read from the portal's gateway when older than
    ``refresh_s`` (one reading at a time), or the fixed targets when given."""

    def __init__(
        self,
        bus: BusClient,
        fixed: tuple[UsageTarget, ...],
        timeout: float,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._fixed = fixed_directory(fixed) if fixed else None
        self._timeout = timeout
        self._refresh_s = refresh_s
        self._clock = clock
        self._last: Directory | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> Directory:
        if self._fixed is not None:
            return self._fixed
        async with self._lock:  # one reading serves the pages waiting for it
            if self._last is not None and self._clock() - self._read_at < self._refresh_s:
                return self._last
            try:
                answer = await self._bus.call(
                    LIST_MEMBERS,
                    discovery_pb2.ListMembersRequest(),
                    discovery_pb2.ListMembersResponse,
                    purpose=DISCOVERY_PURPOSE,
                    timeout=self._timeout,
                )
            except BusCallError:
                if self._last is None:
                    return Directory((), (), problem="unavailable")
                return Directory(
                    self._last.targets,
                    self._last.members,
                    self._last.names,
                    self._last.version,
                    problem="stale",
                )
            self._last = directory_from(answer)
            self._read_at = self._clock()
            return self._last


DIRECTORY: web.AppKey[UsageDirectory] = web.AppKey("usage_directory", UsageDirectory)
