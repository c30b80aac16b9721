"""The portal's sign-in, sessions, CSRF, limits and error pages (no registry is read:
the gateway address is never called by these pages)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.portal_client import ask_code, csrf_of, outbox_code, send_code, sign_in
from zhol.portal.app import OUTBOX, SESSION_COOKIE, create_app
from zhol.portal.i18n import CATALOGUES, choose_language
from zhol.portal.settings import PortalSettings
from zhol.portal.signin import DemoOutbox, SessionStore

IIN = "900101300017"  # a valid IIN (check digit), for nobody in particular
OTHER = "850505400018"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def demo_settings(**overrides: object) -> PortalSettings:
    base: dict[str, object] = {"gateway": "127.0.0.1:9", "demo": True, "secure_cookies": False}
    return PortalSettings(**(base | overrides))  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[TestClient]:
    app = create_app(demo_settings(signin_per_iin=3), clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def outbox(client: TestClient) -> DemoOutbox:
    box = client.app[OUTBOX]
    assert box is not None
    return box


def test_iins_are_valid() -> None:
    from zhol.core.iin import Iin

    assert Iin.parse(IIN) and Iin.parse(OTHER)


async def test_sign_in_with_the_outbox_code_then_sign_out(client: TestClient) -> None:
    await sign_in(client, IIN)
    me = await client.get("/", allow_redirects=False)
    assert me.headers["Location"] == "/me"
    page = await client.get("/signin")
    signout = await client.post(
        "/signout", data={"csrf": csrf_of(await page.text())}, allow_redirects=False
    )
    assert signout.status == 303
    after = await client.get("/me", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"].startswith("/signin")


async def test_the_session_id_changes_at_sign_in(client: TestClient) -> None:
    await client.get("/signin")
    before = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    await sign_in(client, IIN)
    after = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    assert before != after


async def test_a_code_is_single_use_and_expires(client: TestClient, clock: Clock) -> None:
    assert await ask_code(client, IIN) == 303
    code = await outbox_code(client, IIN)
    clock.now += 301  # the code lives 300 s
    assert (await send_code(client, code))[0] == 400
    assert await ask_code(client, IIN) == 303
    code = await outbox_code(client, IIN)
    assert (await send_code(client, code))[1] == "/me"
    # Used once: the same code again, in a new sign-in, is refused.
    client.session.cookie_jar.clear()
    assert await ask_code(client, IIN) == 303
    fresh = await outbox_code(client, IIN)
    wrong = code if code != fresh else f"{(int(code) + 1) % 1_000_000:06d}"
    assert (await send_code(client, wrong))[0] == 400


async def test_wrong_codes_void_the_code(client: TestClient) -> None:
    assert await ask_code(client, IIN) == 303
    code = await outbox_code(client, IIN)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        status, _ = await send_code(client, wrong)
        assert status == 400
    # Five wrong attempts: even the right code no longer signs in.
    page = await client.get("/signin/code", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/signin"


async def test_malformed_iin_and_code_get_400_and_send_nothing(client: TestClient) -> None:
    for bad in ("12345", "900101300012", "9001013000१२", ""):
        assert await ask_code(client, bad) == 400
    assert outbox(client).messages == ()
    assert await ask_code(client, IIN) == 303
    assert (await send_code(client, "12ab56"))[0] == 400


async def test_sign_in_attempts_are_limited_per_iin(client: TestClient) -> None:
    for _ in range(3):
        assert await ask_code(client, IIN) == 303
    assert await ask_code(client, IIN) == 429
    assert len(outbox(client).messages) == 3
    assert await ask_code(client, OTHER) == 303  # another IIN is not blocked


async def test_forms_without_csrf_get_403_and_change_nothing(client: TestClient) -> None:
    await client.get("/signin")
    answer = await client.post("/signin", data={"iin": IIN})
    assert answer.status == 403
    answer = await client.post("/signin", data={"iin": IIN, "csrf": "forged"})
    assert answer.status == 403
    assert outbox(client).messages == ()
    await sign_in(client, IIN)
    assert (await client.post("/signout", data={})).status == 403
    assert (await client.get("/me", allow_redirects=False)).status != 303  # still signed in


async def test_expired_or_tampered_session_cookie_goes_to_sign_in(
    client: TestClient, clock: Clock
) -> None:
    await sign_in(client, IIN)
    clock.now += 15 * 60 + 1
    answer = await client.get("/me", allow_redirects=False)
    assert (answer.status, answer.headers["Location"]) == (303, "/signin?ended=1")
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: "x" * 43})
    answer = await client.get("/family", allow_redirects=False)
    assert (answer.status, answer.headers["Location"]) == (303, "/signin?ended=1")
    page = await client.get("/signin?ended=1")
    assert CATALOGUES["kk"]["session_ended"] in await page.text()


async def test_unknown_page_oversized_form_and_wrong_method(client: TestClient) -> None:
    assert (await client.get("/no/such/page")).status == 404
    page = await client.get("/signin")
    form = {"csrf": csrf_of(await page.text()), "iin": "1" * 10_000}
    assert (await client.post("/signin", data=form)).status == 413
    assert outbox(client).messages == ()
    assert (await client.put("/signin")).status == 405


async def test_production_mode_has_no_outbox_and_secure_cookies() -> None:
    with pytest.raises(ValueError):
        PortalSettings(gateway="127.0.0.1:9", demo=False, secure_cookies=False)
    with pytest.raises(ValueError):
        create_app(PortalSettings(gateway="127.0.0.1:9"))  # no identity provider
    sender = DemoOutbox(lambda: 0.0)  # stands in for a real identity provider
    app = create_app(PortalSettings(gateway="127.0.0.1:9"), sender)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/dev/outbox")).status == 404
        page = await client.get("/signin")
        cookie = page.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Max-Age=900" in cookie
        assert "/dev/outbox" not in await page.text()


async def test_language_switch_on_every_page(client: TestClient) -> None:
    page = await client.get("/signin?lang=ru")
    html = await page.text()
    assert '<html lang="ru">' in html and CATALOGUES["ru"]["signin_intro"] in html
    assert 'href="#main"' in html and '<label for="iin">' in html
    again = await client.get("/no/such/page")  # the cookie keeps the choice
    assert '<html lang="ru">' in await again.text()
    assert choose_language(None, None, "en-GB,en;q=0.9") == "en"
    assert choose_language("xx", "yy", "de") == "kk"


async def test_no_iin_or_code_in_the_portal_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="zhol.portal")
    await sign_in(client, IIN)
    await client.get(f"/person/{OTHER}")
    code = outbox(client).messages[0].code
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "route=" in logged
    assert IIN not in logged and OTHER not in logged and code not in logged


def test_the_three_catalogues_have_the_same_keys() -> None:
    assert set(CATALOGUES["kk"]) == set(CATALOGUES["ru"]) == set(CATALOGUES["en"])


def test_a_flood_of_anonymous_visits_never_signs_a_citizen_out(clock: Clock) -> None:
    store = SessionStore(clock, idle_s=900, limit=3)
    citizen = store.new(IIN)
    first = store.new()
    for _ in range(10):  # new visitors, each a new anonymous session
        store.new()
    assert store.get(citizen.id) is citizen
    assert store.get(first.id) is None  # the oldest anonymous ones make room
