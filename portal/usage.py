"""'Who used my data': the signed-in citizen's timeline, gathered live from every gateway.

The portal asks each gateway of the federation (as its own gateway's Discovery lists
them, ``zhol.portal.directory``; or ``PortalSettings.usage_targets``) for the records
of its own message log about the citizen, through the portal's own gateway
(``/zhol.bus.v1.Usage/FindUsage``, ``zhol-provider`` naming a subsystem that gateway
serves, the request's ``gateway`` pinning it), all in parallel. Every query declares the
citizen (or their minor child) as data subject and the citizen as acting user, so each
is itself on record. The answers are merged into one timeline, newest first, one row
per exchange (a request and its response, logged at both ends, share a message id). A
gateway that cannot be asked is named on the page; the rest renders. The data subject
is the signed-in citizen or, checked against their family in population at that
moment, one of their minor children: nothing the browser sends can name anyone else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from zhol.bus.v1 import usage_pb2
from zhol.core.busclient import BusCallError, BusClient
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.portal.service_names import agency_label, service_name

USAGE_SERVICE = "zhol.bus.v1.Usage"
FIND_USAGE = f"/{USAGE_SERVICE}/FindUsage"
USAGE_PURPOSE = "citizen's own request in the e-government portal: who used my data"
CHILD_USAGE_PURPOSE = (
    "citizen's request in the e-government portal about their minor child: who used "
    "my child's data"
)
PAGE_SIZE = 50
# A gateway answers at most 1000 records a query; the portal asks for one page of them
# per gateway, so the timeline goes back at most this many pages (then: narrow the range).
MAX_RECORDS = 1000
MAX_PAGE = MAX_RECORDS // (2 * PAGE_SIZE)
KAZAKHSTAN = dt.timezone(dt.timedelta(hours=5))  # one time zone, UTC+5, since 2024
ACCESS_KEYS: dict[int, str] = {
    usage_pb2.USAGE_ACCESS_READ: "usage_read",
    usage_pb2.USAGE_ACCESS_CHANGE: "usage_change",
    usage_pb2.USAGE_ACCESS_EVENT: "usage_event",
}


@dataclass(frozen=True)
class UsageTarget:
    """One gateway to ask, and a subsystem it serves (how a FindUsage query names it)."""

    gateway: str  # KZ/GOV/MJ/gw1
    subsystem: str  # KZ/GOV/MJ/population

    @property
    def member(self) -> str:
        return self.gateway.rpartition("/")[0]


def parse_target(text: str) -> UsageTarget:
    """``GATEWAY=SUBSYSTEM`` (``KZ/GOV/MJ/gw1=KZ/GOV/MJ/population``); ValueError if not."""
    gateway, eq, subsystem = text.partition("=")
    g, s = gateway.strip().split("/"), subsystem.strip().split("/")
    if not eq or len(g) != 4 or len(s) != 4 or g[:3] != s[:3] or not all(g + s):
        raise ValueError(f"not GATEWAY=SUBSYSTEM of one member: {text!r}")
    return UsageTarget("/".join(g), "/".join(s))


@dataclass(frozen=True)
class Filters:
    """The page's checked GET form: agency (a member id or ""), days, page, and whose
    timeline (``whom``: "" the citizen's, else an IIN, checked against the family)."""

    agency: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive
    page: int = 1
    whom: str = ""

    @property
    def from_ms(self) -> int:
        return _day_start_ms(self.date_from) if self.date_from else 0

    @property
    def to_ms(self) -> int:
        return _day_start_ms(self.date_to + dt.timedelta(days=1)) if self.date_to else 0

    def query(self, **changes: object) -> str:
        """This form's query string, with ``changes`` (for the paging links)."""
        values: dict[str, object] = {
            "agency": self.agency,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "page": self.page,
            "whom": self.whom,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _day_start_ms(day: dt.date) -> int:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=KAZAKHSTAN)
    return int(start.timestamp() * 1000)


def parse_filters(query: Mapping[str, str], agencies: Iterable[str]) -> Filters:
    """The form's fields, each checked; anything malformed is ValueError (a 400 page).
    Fields the form does not have (an IIN, say) are ignored: the subject is the citizen."""
    agency = query.get("agency", "").strip()
    if agency and agency not in set(agencies):
        raise ValueError("unknown agency")
    date_from = _date(query.get("from", ""))
    date_to = _date(query.get("to", ""))
    if date_from and date_to and date_from > date_to:
        raise ValueError("empty time range")
    page_text = query.get("page", "1").strip() or "1"
    if not page_text.isascii() or not page_text.isdigit() or len(page_text) > 3:
        raise ValueError("bad page")
    page = int(page_text)
    if not 1 <= page <= MAX_PAGE:
        raise ValueError("bad page")
    whom = query.get("whom", "").strip()
    if whom:
        try:
            whom = Iin.parse(whom).value
        except ZholError:
            raise ValueError("bad IIN") from None
    return Filters(agency, date_from, date_to, page, whom)


def _date(text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    if len(text) != 10:
        raise ValueError("bad date")
    day = dt.date.fromisoformat(text)  # ValueError when malformed
    if not 2000 <= day.year <= 2999:  # and no overflow at the range's end
        raise ValueError("bad date")
    return day


@dataclass(frozen=True)
class Answer:
    """One gateway's answer: its records, whether it had more, or why it could not be asked."""

    target: UsageTarget
    entries: tuple[usage_pb2.UsageEntry, ...] = ()
    more: bool = False
    problem: str | None = None  # "unavailable" | "refused"


@dataclass(frozen=True)
class Row:
    """One use of the data: an exchange (or event delivery), seen by ``gateways``."""

    at_ms: int
    message_id: str
    client: str
    client_member: str
    user_id: str
    service: str
    grpc_service: str
    method: str
    purpose: str
    access: int
    gateways: tuple[str, ...]

    @property
    def provider(self) -> str:
        """The subsystem whose service or event it was (KZ/GOV/MJ/population)."""
        return "/".join(self.service.split("/")[:4])

    @property
    def is_usage_query(self) -> bool:
        """A "who used my data" query of a gateway's own log (a use too)."""
        return self.grpc_service == USAGE_SERVICE

    @property
    def local_time(self) -> str:
        at = dt.datetime.fromtimestamp(self.at_ms / 1000, KAZAKHSTAN)
        return at.strftime("%d.%m.%Y %H:%M:%S")

    @property
    def iso_time(self) -> str:
        return dt.datetime.fromtimestamp(self.at_ms / 1000, KAZAKHSTAN).isoformat(
            timespec="seconds"
        )

    @property
    def access_key(self) -> str:
        return ACCESS_KEYS.get(self.access, "usage_other")


@dataclass(frozen=True)
class Timeline:
    rows: tuple[Row, ...]  # this page's
    has_more: bool  # an older page exists
    truncated: bool  # older records exist beyond what the portal may page to


_KIND_ORDER = {"request": 0, "event": 0, "response": 1}


def merge(answers: Sequence[Answer], filters: Filters) -> Timeline:
    """One timeline from every answer: a row per message id, newest first; this page's
    rows, and whether more exist. A gateway that had more records than it gave covers
    only back to its oldest given record: rows older than that are not shown yet, since
    that gateway's part of them is unknown."""
    by_id: dict[str, list[tuple[usage_pb2.UsageEntry, str]]] = {}
    cutoff = 0
    for answer in answers:
        for entry in answer.entries:
            by_id.setdefault(entry.message_id, []).append((entry, answer.target.gateway))
        if answer.more and answer.entries:
            cutoff = max(cutoff, min(e.logged_at_unix_ms for e in answer.entries))
    rows = []
    for message_id, seen in by_id.items():
        first = min(seen, key=lambda s: (_KIND_ORDER.get(s[0].kind, 2), s[0].logged_at_unix_ms))[0]
        at = min(e.logged_at_unix_ms for e, _ in seen)
        if at <= cutoff and cutoff:
            continue
        if filters.agency and first.client_member != filters.agency:
            continue
        rows.append(
            Row(
                at_ms=at,
                message_id=message_id,
                client=first.client,
                client_member=first.client_member,
                user_id=first.user_id,
                service=first.service,
                grpc_service=first.grpc_service,
                method=first.method or first.grpc_service,
                purpose=first.purpose,
                access=first.access,
                gateways=tuple(sorted({g for _, g in seen})),
            )
        )
    rows.sort(key=lambda r: (r.at_ms, r.message_id), reverse=True)
    start = (filters.page - 1) * PAGE_SIZE
    page = tuple(rows[start : start + PAGE_SIZE])
    more_here = len(rows) > start + PAGE_SIZE
    truncated = bool(cutoff) and not more_here
    return Timeline(
        page,
        more_here and filters.page < MAX_PAGE,
        truncated or (more_here and filters.page >= MAX_PAGE),
    )


async def ask(
    bus: BusClient,
    target: UsageTarget,
    citizen: str,
    filters: Filters,
    timeout: float,
    subject: str = "",
) -> Answer:
    """One gateway's records about ``subject`` (the citizen, or their minor child),
    enough of them for the page asked; the citizen is the acting user."""
    subject = subject or citizen
    limit = min(MAX_RECORDS, 2 * filters.page * PAGE_SIZE + 2)
    request = usage_pb2.FindUsageRequest(
        data_subject=subject,
        limit=limit,
        from_unix_ms=filters.from_ms,
        to_unix_ms=filters.to_ms,
        gateway=target.gateway,
    )
    try:
        answer = await bus.call(
            FIND_USAGE,
            request,
            usage_pb2.FindUsageResponse,
            purpose=USAGE_PURPOSE if subject == citizen else CHILD_USAGE_PURPOSE,
            data_subject=subject,
            user_id=f"citizen:{citizen}",
            timeout=timeout,
            provider=target.subsystem,
        )
    except BusCallError as err:
        problem = (
            "refused" if err.zhol_error and "AccessDenied" in err.zhol_error else "unavailable"
        )
        return Answer(target, problem=problem)
    return Answer(target, tuple(answer.entries), bool(answer.next_page_token))


async def gather(
    bus: BusClient,
    targets: Sequence[UsageTarget],
    citizen: str,
    filters: Filters,
    timeout: float,
    subject: str = "",
) -> tuple[Answer, ...]:
    return tuple(
        await asyncio.gather(*(ask(bus, t, citizen, filters, timeout, subject) for t in targets))
    )


async def checked_subject(request: web.Request, citizen: str, whom: str) -> str:
    """Whose data a request is about: the citizen (``whom`` empty or theirs), or one of
    their minor children as population says now. Anyone else's IIN is 403, a malformed
    one 400, population down 503: raised before anything is asked about anyone."""
    from zhol.portal import app as portal  # app.py routes here: imported late (no cycle)
    from zhol.portal import reads

    if not whom.strip():
        return citizen
    try:
        subject = Iin.parse(whom.strip()).value
    except ZholError:
        raise portal.PageError(400, "error_400") from None
    if subject == citizen:
        return citizen
    family = await portal.family_of(request, citizen)
    if family.value is None:
        raise portal.PageError(503, "error_503")
    if subject not in reads.minor_children(family.value, request.app[portal.TODAY]()):
        raise portal.PageError(403, "error_403")
    return subject


async def _names(
    bus: BusClient, citizen: str, children: tuple[str, ...], timeout: float
) -> dict[str, str]:
    """The minor children's names for the choice of whose timeline, read from population
    in parallel, each about that child; a name that cannot be read is left out (the IIN
    is shown alone)."""
    from zhol.portal import reads

    people = await asyncio.gather(*(reads.read_person(bus, citizen, c, timeout) for c in children))
    return {
        child: f"{person.value.last_name} {person.value.first_name}"
        for child, person in zip(children, people, strict=True)
        if person.value is not None
    }


async def usage_page(request: web.Request) -> web.StreamResponse:
    """GET /usage: the signed-in citizen's timeline, or their minor child's (``whom``,
    parenthood read from population now); anyone else's IIN is 403, nothing asked."""
    # The page helpers live in app.py, which routes here: imported late (no cycle).
    from zhol.portal import app as portal
    from zhol.portal import directory as usage_directory
    from zhol.portal import reads

    citizen = portal._citizen(request)
    settings = request.app[portal.SETTINGS]
    bus, timeout = request.app[portal.BUS], settings.bus_timeout_s
    directory = await request.app[usage_directory.DIRECTORY].current()
    try:
        filters = parse_filters(request.query, directory.members)
    except ValueError:
        raise portal.PageError(400, "error_400") from None
    today = request.app[portal.TODAY]()
    family_read = portal.family_of(request, citizen)
    subject = filters.whom or citizen
    if subject != citizen:  # parenthood first: nothing is asked about anyone else
        family = await family_read
        if family.value is None:
            raise portal.PageError(503, "error_503")
        children = reads.minor_children(family.value, today)
        if subject not in children:
            raise portal.PageError(403, "error_403")
        answers, people = await asyncio.gather(
            gather(bus, directory.targets, citizen, filters, timeout, subject),
            _names(bus, citizen, children, timeout),
        )
    else:  # the family only offers the children's timelines: read alongside

        async def children_named() -> tuple[tuple[str, ...], dict[str, str]]:
            family = await family_read
            found = reads.minor_children(family.value, today) if family.value else ()
            return found, await _names(bus, citizen, found, timeout)

        (children, people), answers = await asyncio.gather(
            children_named(), gather(bus, directory.targets, citizen, filters, timeout)
        )
    timeline = merge(answers, filters)
    lang = portal._state(request).lang
    context: dict[str, Any] = {
        "agency": functools.partial(agency_label, lang, registered=directory.names),
        "service_label": lambda row: service_name(lang, row.grpc_service, row.method),
        "child_view": subject != citizen,
        "filters": filters,
        "agencies": directory.members,
        "directory": directory,
        "children": [(child, people.get(child, "")) for child in children],
        "subject": subject,
        "subject_name": people.get(subject, ""),
        "timeline": timeline,
        "missing": [a for a in answers if a.problem],
        "page_size": PAGE_SIZE,
    }
    return portal._page(request, "usage.html", context)
