"""The portal in a real browser against the real demo federation (every component its
own process, as `zhol demo` starts it): a birth registered in population reaches the
mother's feed, and every page of the menu renders and names its source; the father
signed in sees the child on his family page and what the birth brought: by the rules
no decision is his own (the benefits are paid to the mother), so his feed shows the
decisions about his child, each new until he marks it read.

Debian's Chromium driven by Playwright, skipped or failed and screenshots kept exactly
as tests/browser/test_portal_browser.py says.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_portal_browser import CHROMIUM_ARGS, _chromium_or_skip, artifacts
from tests.integration.test_portal_feed import DECISIONS, parents_and_stranger, register_birth
from zhol.cli.demo import start_federation
from zhol.cli.federation import PORTAL_AGENCY, Layout
from zhol.cli.processes import Supervisor
from zhol.portal.i18n import CATALOGUES
from zhol.portal.settings import PORTAL_SUBSYSTEM

pytestmark = pytest.mark.integration
if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = ["artifacts"]  # the fixture, shared with the in-process browser test

EN = CATALOGUES["en"]
# Each page of the menu and its heading's catalogue key.
MENU = (
    ("/me", "me"), ("/family", "family"), ("/pension", "pension_page"),
    ("/health", "health_page"), ("/education", "education_page"), ("/feed", "feed"),
    ("/usage", "usage"),
)  # fmt: skip
FEED_WAIT = 90  # seconds; the decisions travel through three agencies and two gateways


async def sign_in(browser: Browser, base: str, iin: str) -> Page:
    """A page of a fresh browser context (its own cookies) signed in as ``iin`` through
    the demo's SMS outbox page, in English."""
    page = await browser.new_page(locale="en-GB")
    await page.goto(f"{base}/signin?lang=en")
    await page.get_by_label(EN["iin"]).fill(iin)
    await page.get_by_role("button", name=EN["send_code"]).click()
    await page.wait_for_url("**/signin/code")
    outbox = await browser.new_page()
    await outbox.goto(f"{base}/dev/outbox")
    row = outbox.locator("tr", has=outbox.locator("td.to", has_text=iin))
    code = await row.locator("td.code").first.inner_text()
    await outbox.close()
    await page.get_by_label(EN["code"]).fill(code)
    await page.get_by_role("button", name=EN["check_code"]).click()
    await page.wait_for_url("**/me")
    return page


async def walk_the_portal(
    base: str, executable: Path, artifacts: Path, mother: str, child: str, stranger: str,
    father: str,
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, chromium_sandbox=False
        )
        try:
            page = await sign_in(browser, base, mother)

            # The birth's decisions arrive by themselves: reload until they show.
            expected = [EN[key] for key in DECISIONS[:2]]  # the benefit, the clinic
            deadline = time.monotonic() + FEED_WAIT
            while True:
                await page.goto(f"{base}/feed")
                text = await page.locator("main").inner_text()
                if all(e in text for e in expected) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            for e in expected:
                assert e in text, f"the mother's feed lacks {e!r}"
            assert await page.locator(f'main a[href="/person/{child}"]').count() > 0
            await page.screenshot(path=artifacts / "demo-feed-en.png", full_page=True)

            for path, heading in MENU:
                answer = await page.goto(f"{base}{path}")
                assert answer is not None and answer.status == 200, path
                h1 = await page.get_by_role("heading", level=1).inner_text()
                assert h1 == EN[heading], path
                main = await page.locator("main").inner_text()
                if path == "/feed":  # each entry names the agency that decided
                    source = EN["feed_agency"]
                    assert EN["KZ/GOV/MLSPP/pension"] in main and EN["KZ/GOV/MOH/health"] in main
                elif path == "/usage":  # each row names the agency that read the data
                    source = EN["usage_agency"]
                else:
                    source = EN["source"]
                assert source in main, f"{path} names no source"
                if path == "/family":
                    assert await page.locator(f'main a[href="/person/{child}"]').count() > 0
                await page.screenshot(path=artifacts / f"demo{path.replace('/', '-')}-en.png",
                                      full_page=True)  # fmt: skip

            # Still on /usage: the portal read the mother's data for her, and pension
            # read her family on its own (the childbirth benefit, no application).
            clients = await page.locator("table.usage td.client").all_inner_texts()
            assert PORTAL_SUBSYSTEM in clients, clients
            assert any(c.startswith("KZ/GOV/MLSPP/") for c in clients), clients

            for lang in ("kk", "ru"):
                await page.goto(f"{base}/me?lang={lang}")
                assert await page.locator("html").get_attribute("lang") == lang
                h1 = await page.get_by_role("heading", level=1).inner_text()
                assert h1 == CATALOGUES[lang]["me"]
                await page.screenshot(path=artifacts / f"demo-me-{lang}.png", full_page=True)

            answer = await page.goto(f"{base}/person/{stranger}")
            assert answer is not None and answer.status == 403
            await page.screenshot(path=artifacts / "demo-other-citizen-403.png", full_page=True)

            await fathers_view(await sign_in(browser, base, father), base, artifacts, child)
        finally:
            await browser.close()


async def fathers_view(page: Page, base: str, artifacts: Path, child: str) -> None:
    """The father: the child on /family, the birth's decisions in /feed, marked read."""
    await page.goto(f"{base}/family")
    assert await page.locator(f'main a[href="/person/{child}"]').count() > 0
    await page.screenshot(path=artifacts / "demo-father-family-en.png", full_page=True)

    expected = [EN[key] for key in DECISIONS]  # the benefit, the clinic, the queue place
    deadline = time.monotonic() + FEED_WAIT
    while True:
        await page.goto(f"{base}/feed")
        text = await page.locator("main").inner_text()
        if all(e in text for e in expected) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    for e in expected:
        assert e in text, f"the father's feed lacks {e!r}"
    # Every entry is about his child, none his own; each says it is new in words.
    entries = page.locator("ol.feed > li")
    count = await entries.count()
    assert count >= len(expected)
    for whom in await page.locator("ol.feed dd.whom").all_inner_texts():
        assert whom == f"{EN['feed_for_child']} {child}", whom
    badges = page.locator("ol.feed h2 .badge")
    assert await badges.count() == count
    assert await badges.first.inner_text() == EN["feed_new"]
    await page.screenshot(path=artifacts / "demo-father-feed-en.png", full_page=True)

    # One entry marked read: its badge and its button go; the others stay new.
    first = entries.first
    await first.get_by_role("button", name=EN["feed_mark_read"]).click()
    await page.wait_for_url("**/feed")
    assert await first.locator(".badge").count() == 0
    assert await first.get_by_role("button", name=EN["feed_mark_read"]).count() == 0
    assert await badges.count() == count - 1
    await page.screenshot(path=artifacts / "demo-father-feed-one-read-en.png", full_page=True)

    await page.get_by_role("button", name=EN["feed_mark_all_read"]).click()
    await page.wait_for_url("**/feed")
    assert await badges.count() == 0
    assert f"{EN['feed_unread']}: 0" in await page.locator("main").inner_text()
    await page.screenshot(path=artifacts / "demo-father-feed-read-en.png", full_page=True)


def test_mother_sees_the_birth_and_reads_every_page(tmp_path: Path, artifacts: Path) -> None:
    executable = _chromium_or_skip()
    layout = Layout(tmp_path / "demo")
    with Supervisor(layout.logs) as supervisor:
        ports = start_federation(layout, "127.0.0.1", 400, supervisor)
        base = f"http://{ports.adapter_address(PORTAL_AGENCY)}"
        mother, father, stranger = parents_and_stranger(layout)
        child = asyncio.run(register_birth(ports.adapter_address("population"), mother, father))
        asyncio.run(
            walk_the_portal(base, executable, artifacts, mother, child, stranger, father)
        )
    assert (artifacts / "demo-usage-en.png").exists()
    assert (artifacts / "demo-father-feed-read-en.png").exists()
