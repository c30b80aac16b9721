"""`zhol demo --check`'s look at the citizen portal: a real HTTP sign-in through the demo's
SMS outbox, then the "me" page read over the bus from the four registries, as a citizen
without JavaScript would."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from zhol.portal.i18n import text
from zhol.portal.service_names import service_name

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_OUTBOX_ROW = re.compile(r'<td class="to">(\d{12})</td><td class="code">(\d{6})</td>')


class PortalCheckFailed(RuntimeError):
    pass


async def sign_in(http: aiohttp.ClientSession, base: str, iin: str) -> None:
    """Sign in as ``iin`` on the demo portal at ``base`` (the session's cookies keep it):
    the IIN, then the code from the SMS outbox page, each form with its CSRF token."""

    async def form(path: str, fields: dict[str, str]) -> str:
        async with http.get(f"{base}{path}") as page:
            token = _CSRF.search(await page.text())
        if token is None:
            raise PortalCheckFailed(f"{path}: no form")
        async with http.post(f"{base}{path}", data={**fields, "csrf": token.group(1)}) as r:
            if r.status != 200:
                raise PortalCheckFailed(f"{path}: HTTP {r.status}")
            return str(r.url.path)

    await form("/signin", {"iin": iin})
    async with http.get(f"{base}/dev/outbox") as outbox:
        codes = [c for to, c in _OUTBOX_ROW.findall(await outbox.text()) if to == iin]
    if not codes:
        raise PortalCheckFailed("no code in the SMS outbox")
    if await form("/signin/code", {"code": codes[0]}) != "/me":
        raise PortalCheckFailed("the code did not sign in")


async def check_portal(url: str, iin: str, last_name: str, timeout: float = 30.0) -> None:
    """Sign in as ``iin`` at the portal ``url``, find ``last_name`` on the "me" page and
    the reads on "who used my data", asked of every gateway."""
    base = url.rstrip("/")
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address (127.0.0.1)
    limits = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=limits) as http:
        await sign_in(http, base, iin)
        # The portal's gateway may still be fetching its first configuration: a part
        # "could not be read" until then.
        # Every registry must answer: a part that could not be read, or that a provider
        # refused the portal (its access rights), fails the check.
        missing = (text("kk", "part_unavailable"), text("kk", "part_refused"))
        for _ in range(50):
            async with http.get(f"{base}/me") as me:
                page = await me.text()
                if me.status == 200 and last_name in page and not any(m in page for m in missing):
                    break
            await asyncio.sleep(0.2)
        else:
            raise PortalCheckFailed(f"/me: HTTP {me.status}, a part missing or not read")
        # "Who used my data": every gateway answers, and the reads just made are there.
        async with http.get(f"{base}/usage") as usage:
            page = await usage.text()
        read = service_name("kk", "zhol.population.v1.PopulationRegistry", "GetPerson") or ""
        problems = ("usage_missing", "usage_discovery_unavailable", "usage_discovery_stale")
        missing_part = any(text("kk", p) in page for p in problems)
        if usage.status != 200 or missing_part or not read or read not in page:
            raise PortalCheckFailed(f"/usage: HTTP {usage.status}, a gateway missing or no reads")
