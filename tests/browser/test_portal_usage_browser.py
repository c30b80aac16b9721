"""'Who used my data' in a real browser (Debian's Chromium, Playwright): sign in, read
"me", open the timeline by keyboard-reachable links, filter it with the plain GET form.
Skipped or failed exactly as tests/browser/test_portal_browser.py says."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.browser.test_portal_browser import CHROMIUM_ARGS, _chromium_or_skip
from tests.integration.bus_federation import PORTAL_GATEWAY, Federation, start_federation
from tests.integration.test_portal import parent_of_minor
from tests.integration.test_portal_usage import TARGETS
from zhol.portal.app import create_app
from zhol.portal.i18n import CATALOGUES
from zhol.portal.service_names import SERVICE_NAMES
from zhol.portal.settings import PortalSettings

pytestmark = pytest.mark.integration
EN = CATALOGUES["en"]
GET_PERSON = "zhol.population.v1.PopulationRegistry/GetPerson"


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = await start_federation(
        tmp_path / "federation", persons=200, agencies=("population", "portal")
    )
    try:
        yield fed
    finally:
        await fed.stop()


async def test_citizen_sees_who_used_their_data(federation: Federation, tmp_path: Path) -> None:
    executable = _chromium_or_skip()
    from playwright.async_api import async_playwright

    base_dir = os.environ.get("ZHOL_TEST_ARTIFACTS")
    artifacts = Path(base_dir) / "browser" if base_dir else tmp_path / "screenshots"
    artifacts.mkdir(parents=True, exist_ok=True)
    settings = PortalSettings(
        gateway=federation.is_address(PORTAL_GATEWAY),
        demo=True,
        secure_cookies=False,
        usage_targets=TARGETS,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    citizen, _, child = parent_of_minor(federation.layout.population_db)
    base = str(server.make_url("/")).rstrip("/")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(executable), args=CHROMIUM_ARGS, chromium_sandbox=False
            )
            try:
                page = await browser.new_page(locale="en-GB")
                await page.goto(f"{base}/signin")
                await page.get_by_label(EN["iin"]).fill(citizen)
                await page.get_by_role("button", name=EN["send_code"]).click()
                await page.wait_for_url("**/signin/code")
                outbox = await browser.new_page()
                await outbox.goto(f"{base}/dev/outbox")
                code = await outbox.locator("td.code").first.inner_text()
                await outbox.close()
                await page.get_by_label(EN["code"]).fill(code)
                await page.get_by_role("button", name=EN["check_code"]).click()
                await page.wait_for_url("**/me")
                await page.get_by_role("link", name=EN["usage"]).click()
                await page.wait_for_url("**/usage")
                table = page.get_by_role("table", name=EN["usage_caption"])
                assert await table.locator("tbody tr").count() > 0
                assert SERVICE_NAMES["en"][GET_PERSON] in await table.inner_text()
                await page.screenshot(path=artifacts / "usage-en.png", full_page=True)
                # The filter form, by its labels: the Ministry of Justice used nothing.
                await page.get_by_label(EN["usage_agency"]).select_option("KZ/GOV/MJ")
                await page.get_by_role("button", name=EN["usage_show"]).click()
                await page.wait_for_url("**/usage?*agency=*")  # after whom= for a parent
                assert EN["usage_none"] in await page.locator("main").inner_text()
                await page.screenshot(path=artifacts / "usage-filtered-en.png", full_page=True)
                # A parent chooses their minor child's timeline, by the labelled choice.
                await page.get_by_label(EN["usage_agency"]).select_option("")
                await page.get_by_label(EN["usage_whom"]).select_option(child)
                await page.get_by_role("button", name=EN["usage_show"]).click()
                await page.wait_for_url(f"**/usage?*whom={child}*")
                assert f"{EN['usage_of_child']} {child}" in await page.locator("main").inner_text()
                await page.screenshot(path=artifacts / "usage-child-en.png", full_page=True)
            finally:
                await browser.close()
    finally:
        await server.close()
    assert (artifacts / "usage-en.png").exists()
