"""Driving the portal as a browser without JavaScript would: aiohttp's test client on a
real 127.0.0.1 socket, forms posted with the CSRF token the page carried."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from zhol.portal.app import create_app
from zhol.portal.settings import PortalSettings

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
OUTBOX_ROW = re.compile(r'<td class="to">(\d{12})</td><td class="code">(\d{6})</td>')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def outbox_code(client: TestClient, iin: str) -> str:
    """The newest code sent to ``iin``, read from the demo's SMS outbox page."""
    page = await client.get("/dev/outbox")
    assert page.status == 200
    for to, code in OUTBOX_ROW.findall(await page.text()):
        if to == iin:
            return code
    raise AssertionError("no code in the outbox for this IIN")


async def ask_code(client: TestClient, iin: str) -> int:
    page = await client.get("/signin")
    form = {"csrf": csrf_of(await page.text()), "iin": iin}
    answer = await client.post("/signin", data=form, allow_redirects=False)
    return answer.status


async def send_code(client: TestClient, code: str) -> tuple[int, str]:
    page = await client.get("/signin/code")
    form = {"csrf": csrf_of(await page.text()), "code": code}
    answer = await client.post("/signin/code", data=form, allow_redirects=False)
    return answer.status, answer.headers.get("Location", "")


async def sign_in(client: TestClient, iin: str) -> None:
    assert await ask_code(client, iin) == 303
    status, location = await send_code(client, await outbox_code(client, iin))
    assert (status, location) == (303, "/me")


def demo_portal(gateway: str, **settings: Any) -> TestServer:
    """The portal in demo mode (SMS outbox page) behind the IS port ``gateway``, on a
    127.0.0.1 test server; cookies without Secure, since the test speaks plain HTTP."""
    portal = PortalSettings(gateway=gateway, demo=True, secure_cookies=False, **settings)
    return TestServer(create_app(portal), host="127.0.0.1")


async def usage_html(client: TestClient, query: str = "") -> str:
    """The "who used my data" page in English (``query`` appended), which must be 200."""
    page = await client.get(f"/usage?lang=en{'&' if query else ''}{query}")
    assert page.status == 200
    return await page.text()
