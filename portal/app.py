"""The portal's web application: routes, sessions, CSRF, languages and error pages.

Every page is rendered on the server (Jinja2, autoescaped) and works without
JavaScript. Bad input of any kind ends on an error page with its HTTP status and
changes nothing. The portal's own log names routes and statuses, never an IIN, a
path with one, a code or a cookie.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from zhol.core.busclient import BusClient, BusIdentity
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.population.v1 import population_pb2
from zhol.portal import directory, evidence, feed, pages, reads, usage
from zhol.portal.i18n import LANGUAGE_NAMES, LANGUAGES, choose_language, text
from zhol.portal.settings import PortalSettings
from zhol.portal.signin import (
    CODE_DIGITS,
    CodeCheck,
    CodeSender,
    DemoOutbox,
    RateLimiter,
    Session,
    SessionStore,
    new_code,
)

log = logging.getLogger("zhol.portal")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "zhol_portal_session"
LANG_COOKIE = "zhol_portal_lang"

SETTINGS: web.AppKey[PortalSettings] = web.AppKey("settings", PortalSettings)
SESSIONS: web.AppKey[SessionStore] = web.AppKey("sessions", SessionStore)
SENDER: web.AppKey[CodeSender] = web.AppKey("sender", CodeSender)
OUTBOX: web.AppKey[DemoOutbox | None] = web.AppKey("outbox")
BUS: web.AppKey[BusClient] = web.AppKey("bus", BusClient)
LIMITS: web.AppKey[dict[str, RateLimiter]] = web.AppKey("limits")
TODAY: web.AppKey[Callable[[], dt.date]] = web.AppKey("today")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class State:
    """What the middleware learnt about one request: its language and session."""

    lang: str = "kk"
    session: Session | None = None
    session_ended: bool = False  # a session cookie came, but no live session has its id
    new_session: bool = False  # created by this request: its cookie must be set
    unread: int | None = None  # the feed's unread entries, for the menu (None: no feed)


STATE: web.RequestKey[State] = web.RequestKey("state", State)


def _state(request: web.Request) -> State:
    state = request.get(STATE)
    if state is None:  # an error before the context middleware ran
        state = request[STATE] = State(
            lang=choose_language(None, None, request.headers.get("Accept-Language"))
        )
    return state


class PageError(Exception):
    """Ends a request on the error page: ``status`` and the text's key."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


def create_app(
    settings: PortalSettings,
    sender: CodeSender | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    today: Callable[[], dt.date] | None = None,
) -> web.Application:
    """The portal. In demo mode the code sender is the SMS outbox (shown at /dev/outbox);
    in production mode a ``sender`` (a real identity provider) is required."""
    outbox: DemoOutbox | None = None
    if sender is None:
        if not settings.demo:
            raise ValueError("production mode needs a CodeSender (an identity provider)")
        outbox = DemoOutbox(clock)
        sender = outbox
    app = web.Application(middlewares=[_errors, _context], client_max_size=settings.max_form_bytes)
    app[SETTINGS] = settings
    app[SESSIONS] = SessionStore(clock, settings.session_idle_s, settings.max_sessions)
    app[SENDER] = sender
    app[OUTBOX] = outbox if settings.demo else None
    app[BUS] = BusClient(BusIdentity(settings.gateway, settings.client))
    app[TODAY] = today or _today_in_kazakhstan
    app[directory.DIRECTORY] = directory.UsageDirectory(
        app[BUS], settings.usage_targets, settings.bus_timeout_s, settings.usage_refresh_s
    )
    window = settings.rate_window_s
    app[LIMITS] = {
        "iin": RateLimiter(clock, settings.signin_per_iin, window),
        "address": RateLimiter(clock, settings.signin_per_address, window),
        "code_iin": RateLimiter(clock, settings.code_checks_per_iin, window),
        "code_address": RateLimiter(clock, settings.signin_per_address, window),
    }
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True
    )
    env.filters["date"] = _format_date
    app.router.add_get("/", home, name="home")
    app.router.add_get("/signin", signin_page, name="signin")
    app.router.add_post("/signin", signin_submit, name="signin_submit")
    app.router.add_get("/signin/code", code_page, name="code")
    app.router.add_post("/signin/code", code_submit, name="code_submit")
    app.router.add_post("/signout", signout, name="signout")
    app.router.add_get("/me", me_page, name="me")
    app.router.add_get("/family", family_page, name="family")
    app.router.add_get("/person/{iin}", person_page, name="person")
    app.router.add_get("/usage", usage.usage_page, name="usage")
    app.router.add_get("/usage/evidence", evidence.evidence_download, name="usage_evidence")
    pages.add_routes(app)  # pension, health, education; the actions
    app.router.add_get("/feed", feed.feed_page, name="feed")
    app.router.add_post("/feed/read", feed.mark_read, name="feed_read")
    app.router.add_post("/feed/read-all", feed.mark_all_read, name="feed_read_all")
    feed.open_feed(app, settings.feed_db, settings.feed_retention_days)
    if app[OUTBOX] is not None:  # demo mode only: never routed in production
        app.router.add_get("/dev/outbox", outbox_page, name="outbox")
    app.router.add_static("/static/", HERE / "static", name="static")
    app.on_cleanup.append(_close_bus)
    return app


def _today_in_kazakhstan() -> dt.date:
    """Today's date in Kazakhstan (one time zone, UTC+5, since 2024): who is a minor."""
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=5))).date()


async def _close_bus(app: web.Application) -> None:
    await app[BUS].close()


def _format_date(value: population_pb2.Date) -> str:
    if not value.year:
        return ""
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


# -- middlewares -----------------------------------------------------------------------


@web.middleware
async def _context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Language and session for every request; security headers on every answer."""
    query_lang = request.query.get("lang")
    cookie = request.cookies.get(SESSION_COOKIE)
    session = request.app[SESSIONS].get(cookie)
    request[STATE] = State(
        lang=choose_language(
            query_lang, request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language")
        ),
        session=session,
        session_ended=bool(cookie) and session is None,
    )
    if session is not None and session.iin is not None and not request.path.startswith("/static/"):
        await _count_unread(request, session.iin, session.children or ())
    response = await handler(request)
    if query_lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            query_lang,
            max_age=365 * 24 * 3600,
            path="/",
            samesite="Lax",
            secure=request.app[SETTINGS].secure_cookies,
            httponly=True,
        )
    _secure_headers(response)
    return response


async def _count_unread(request: web.Request, citizen: str, children: tuple[str, ...]) -> None:
    """The menu's count: the citizen's and the given children's entries the citizen has
    not marked read, from the portal's own inbox (no bus call)."""
    store = request.app.get(feed.FEED_STORE)
    if store is None:
        return
    try:
        _state(request).unread = await store.unread(citizen, (citizen, *children))
    except sqlite3.Error:  # a count is not worth a page: the menu goes without it
        log.exception("the feed's unread count failed")


async def note_family(
    request: web.Request, citizen: str, family: reads.Part[population_pb2.Family]
) -> None:
    """Remember the signed-in citizen's minor children as ``family`` (just read from
    population) names them, for the menu's unread count, and count again if they
    changed."""
    session = _state(request).session
    if family.value is None or session is None or session.iin != citizen:
        return
    children = reads.minor_children(family.value, request.app[TODAY]())
    if session.children != children:
        session.children = children
        await _count_unread(request, citizen, children)


async def family_of(request: web.Request, citizen: str) -> reads.Part[population_pb2.Family]:
    """The signed-in citizen's family, read from population now (and noted for the
    menu's unread count)."""
    family = await reads.read_family(
        request.app[BUS], citizen, citizen, request.app[SETTINGS].bus_timeout_s
    )
    await note_family(request, citizen, family)
    return family


def _secure_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    route = request.match_info.route.name or "unknown"
    try:
        response = await handler(request)
    except PageError as err:
        response = _error_page(request, err.status, err.key)
    except web.HTTPException as err:
        if err.status < 400:
            _log(route, err.status, started)
            raise
        key = f"error_{err.status}" if err.status in (404, 405, 413) else "error_400"
        response = _error_page(request, err.status, key)
    except Exception:
        log.exception("portal route %s failed", route)  # the stack names no citizen
        response = _error_page(request, 500, "error_500")
    _log(route, response.status, started)
    return response


def _log(route: str, status: int, started: float) -> None:
    # Route names only: a path may hold an IIN (/person/{iin}).
    log.info("route=%s status=%d ms=%.0f", route, status, (time.monotonic() - started) * 1000)


def _error_page(request: web.Request, status: int, key: str) -> web.Response:
    response = _page(request, "error.html", {"status": status, "message_key": key}, status)
    _secure_headers(response)
    return response


# -- helpers ---------------------------------------------------------------------------


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, context, status=status)


def _session_or_new(request: web.Request) -> Session:
    state = _state(request)
    if state.session is None:
        state.session = request.app[SESSIONS].new()
        state.new_session = True
    return state.session


def _set_session_cookie(
    request: web.Request, response: web.StreamResponse, session: Session
) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=settings.session_idle_s,
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="Lax",
    )


def _redirect(request: web.Request, location: str, session: Session | None = None) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    if session is not None:
        _set_session_cookie(request, response, session)
    return response


async def _form(request: web.Request) -> dict[str, str]:
    """The posted form, after its CSRF token is checked against the session's (403)."""
    form = await request.post()  # over client_max_size: 413, nothing read
    session = _state(request).session
    token = form.get("csrf")
    if session is None or not isinstance(token, str) or not _same(token, session.csrf):
        raise PageError(403, "error_csrf")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _session(request: web.Request) -> Session:
    """The session of a request whose form passed the CSRF check (so it has one)."""
    session = _state(request).session
    if session is None:
        raise PageError(403, "error_csrf")
    return session


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _citizen(request: web.Request) -> str:
    """The signed-in citizen's IIN; otherwise off to the sign-in page."""
    state = _state(request)
    session = state.session
    if session is None or session.iin is None:
        raise web.HTTPSeeOther("/signin?ended=1" if state.session_ended else "/signin")
    return session.iin


def _page(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    state = _state(request)
    session = state.session
    base = {
        "lang": state.lang,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "t": lambda key: text(state.lang, key),
        "path": request.path,
        "signed_in": session is not None and session.iin is not None,
        "csrf": session.csrf if session is not None else "",
        "demo": request.app[OUTBOX] is not None,
        "feed_unread": state.unread,
    }
    response = _render(request, template, {**base, **context}, status)
    if state.new_session and session is not None:
        _set_session_cookie(request, response, session)
    return response


# -- sign-in ---------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    session = _state(request).session
    return _redirect(request, "/me" if session and session.iin else "/signin")


async def signin_page(request: web.Request) -> web.StreamResponse:
    _session_or_new(request)
    ended = _state(request).session_ended or request.query.get("ended") == "1"
    return _page(request, "signin.html", {"ended": ended})


async def signin_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    settings = request.app[SETTINGS]
    try:
        iin = Iin.parse(form.get("iin", "").strip()).value
    except ZholError:
        raise PageError(400, "error_bad_iin") from None
    limits = request.app[LIMITS]
    if not limits["address"].allow(request.remote or "") or not limits["iin"].allow(iin):
        raise PageError(429, "error_429")
    session = _session(request)
    code = new_code()
    request.app[SESSIONS].start_sign_in(
        session, iin, code, settings.code_ttl_s, settings.code_attempts
    )
    await request.app[SENDER].send(iin, code)
    return _redirect(request, "/signin/code")


async def code_page(request: web.Request) -> web.StreamResponse:
    session = _state(request).session
    if session is None or session.pending_iin is None:
        return _redirect(request, "/signin")
    return _page(request, "code.html", {})


async def code_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    session = _session(request)
    code = form.get("code", "").strip()
    limits = request.app[LIMITS]
    if not limits["code_address"].allow(request.remote or "") or (
        session.pending_iin and not limits["code_iin"].allow(session.pending_iin)
    ):
        raise PageError(429, "error_429")
    if len(code) != CODE_DIGITS or not code.isascii() or not code.isdigit():
        raise PageError(400, "error_bad_code")
    outcome, signed_in = request.app[SESSIONS].check_code(session, code)
    if outcome == CodeCheck.EXPIRED:
        raise PageError(400, "error_expired_code")
    if outcome == CodeCheck.WRONG:
        raise PageError(400, "error_bad_code")
    return _redirect(request, "/me", signed_in)


async def signout(request: web.Request) -> web.StreamResponse:
    await _form(request)
    session = _session(request)
    request.app[SESSIONS].drop(session.id)
    response = _redirect(request, "/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def outbox_page(request: web.Request) -> web.StreamResponse:
    outbox = request.app[OUTBOX]
    assert outbox is not None  # routed in demo mode only
    return _page(request, "outbox.html", {"messages": outbox.messages})


# -- the personal account --------------------------------------------------------------


async def me_page(request: web.Request) -> web.StreamResponse:
    citizen = _citizen(request)
    return await _person(request, citizen, citizen, "me")


async def person_page(request: web.Request) -> web.StreamResponse:
    """A minor child's page; anyone else's IIN, whatever its form, is refused (403)."""
    citizen = _citizen(request)
    try:
        subject = Iin.parse(request.match_info["iin"]).value
    except ZholError:
        raise PageError(404, "error_404") from None
    if subject == citizen:
        return _redirect(request, "/me")
    family = await family_of(request, citizen)
    if family.value is None:
        raise PageError(503, "error_503")
    if subject not in reads.minor_children(family.value, request.app[TODAY]()):
        raise PageError(403, "error_403")
    return await _person(request, citizen, subject, "person")


async def _person(
    request: web.Request, citizen: str, subject: str, page: str
) -> web.StreamResponse:
    bus, timeout = request.app[BUS], request.app[SETTINGS].bus_timeout_s
    account, places = await asyncio.gather(
        reads.read_account(bus, citizen, subject, timeout), pages.places_of(request, citizen)
    )
    if subject == citizen:  # "about me" read the citizen's family
        await note_family(request, citizen, account.family)
    context = {"page": page, "account": account, "subject": subject, "places": places}
    return _page(request, "me.html", context)


async def family_page(request: web.Request) -> web.StreamResponse:
    citizen = _citizen(request)
    bus, timeout = request.app[BUS], request.app[SETTINGS].bus_timeout_s
    family = await family_of(request, citizen)
    relatives: list[tuple[str, population_pb2.Relative]] = []
    if family.value is not None:
        value = family.value
        relatives += [("parents", r) for r in value.parents]
        if value.spouse.iin:
            relatives.append(("spouse", value.spouse))
        relatives += [("children", r) for r in value.children]
    minors = (
        reads.minor_children(family.value, request.app[TODAY]()) if family.value is not None else ()
    )
    people, children, places = await asyncio.gather(  # names, minors' blocks, in parallel
        asyncio.gather(
            *(
                reads.read_person(bus, citizen, r.iin, timeout, reads.FAMILY_PURPOSE)
                for _, r in relatives
            )
        ),
        pages.read_children(bus, citizen, minors, timeout),
        pages.places_of(request, citizen),
    )
    groups: dict[str, list[dict[str, Any]]] = {"parents": [], "spouse": [], "children": []}
    for (group, relative), person in zip(relatives, people, strict=True):
        groups[group].append(
            {
                "iin": relative.iin,
                "person": person,
                "minor": relative.iin in minors,
                "blocks": children.get(relative.iin) if group == "children" else None,
            }
        )
    return _page(request, "family.html", {"family": family, "groups": groups, "places": places})
