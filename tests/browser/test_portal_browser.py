"""The portal in a real browser: Debian's Chromium driven by Playwright (never
Playwright's own browser download), against an in-process federation on 127.0.0.1.

`make test` installs Chromium (`apt-get install -y chromium`) where it runs as root with
apt; elsewhere this test is skipped with one line saying so. Where it could have been
installed (root, apt) a missing Chromium fails the test instead: CI must run it.

Screenshots of each page are kept in $ZHOL_TEST_ARTIFACTS/browser when that is set,
otherwise in the test's tmp directory (docs/portal.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.integration.bus_federation import PORTAL_GATEWAY, Federation, start_federation
from tests.integration.test_portal import parent_of_minor, stranger
from zhol.portal.app import create_app
from zhol.portal.i18n import CATALOGUES
from zhol.portal.settings import PortalSettings

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("ZHOL_CHROMIUM", "/usr/bin/chromium"))
# As the machine notes say: without the background-networking flags Chromium keeps
# trying the closed network; headless, no sandbox when run as root (CI).
CHROMIUM_ARGS = [
    "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _could_install() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def _chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if _could_install():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs it (apt-get install -y chromium)")
    pytest.skip("browser tests skipped: no Chromium and no root apt to install it")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    base = os.environ.get("ZHOL_TEST_ARTIFACTS")
    folder = Path(base) / "browser" if base else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = await start_federation(
        tmp_path / "federation", persons=200, agencies=("population", "portal")
    )
    try:
        yield fed
    finally:
        await fed.stop()


async def test_citizen_signs_in_reads_me_switches_language(
    federation: Federation, artifacts: Path
) -> None:
    executable = _chromium_or_skip()
    from playwright.async_api import async_playwright

    settings = PortalSettings(
        gateway=federation.is_address(PORTAL_GATEWAY), demo=True, secure_cookies=False
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    db = federation.layout.population_db
    parent, last_name, child = parent_of_minor(db)
    other = stranger(db, parent, child)
    base = str(server.make_url("/")).rstrip("/")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(executable), args=CHROMIUM_ARGS,
                chromium_sandbox=False,
            )  # fmt: skip
            try:
                page = await browser.new_page(locale="kk-KZ")
                await page.goto(f"{base}/signin")
                await page.screenshot(path=artifacts / "signin.png", full_page=True)
                # Keyboard first: Tab reaches the skip link before anything else.
                await page.keyboard.press("Tab")
                assert await page.evaluate("document.activeElement.className") == "skip"
                await page.get_by_label(CATALOGUES["kk"]["iin"]).fill(parent)
                await page.get_by_role("button", name=CATALOGUES["kk"]["send_code"]).click()
                await page.wait_for_url("**/signin/code")
                outbox = await browser.new_page()
                await outbox.goto(f"{base}/dev/outbox")
                await outbox.screenshot(path=artifacts / "outbox.png", full_page=True)
                code = await outbox.locator("td.code").first.inner_text()
                await outbox.close()
                await page.get_by_label(CATALOGUES["kk"]["code"]).fill(code)
                await page.get_by_role("button", name=CATALOGUES["kk"]["check_code"]).click()
                await page.wait_for_url("**/me")
                assert last_name in await page.locator("dd.name").inner_text()
                assert await page.locator("html").get_attribute("lang") == "kk"
                await page.screenshot(path=artifacts / "me-kk.png", full_page=True)
                await page.get_by_role("link", name="Русский").click()
                await page.wait_for_url("**/me?lang=ru")
                assert await page.locator("html").get_attribute("lang") == "ru"
                heading = await page.get_by_role("heading", level=1).inner_text()
                assert heading == CATALOGUES["ru"]["me"]
                await page.screenshot(path=artifacts / "me-ru.png", full_page=True)
                await page.get_by_role("link", name=CATALOGUES["ru"]["family"]).click()
                await page.wait_for_url("**/family")
                await page.screenshot(path=artifacts / "family-ru.png", full_page=True)
                await page.locator(f'a[href="/person/{child}"]').click()
                await page.wait_for_url(f"**/person/{child}")
                heading = await page.get_by_role("heading", level=1).inner_text()
                assert heading == CATALOGUES["ru"]["child_page"]
                await page.screenshot(path=artifacts / "child-ru.png", full_page=True)
                answer = await page.goto(f"{base}/person/{other}")
                assert answer is not None and answer.status == 403
                await page.screenshot(path=artifacts / "other-citizen-403.png", full_page=True)
            finally:
                await browser.close()
    finally:
        await server.close()
    assert sorted(p.name for p in artifacts.glob("*.png")) == [
        "child-ru.png", "family-ru.png", "me-kk.png", "me-ru.png", "other-citizen-403.png",
        "outbox.png", "signin.png",
    ]  # fmt: skip
