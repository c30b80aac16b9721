"""The portal's forms that change data, in a real browser: Debian's Chromium driven by
Playwright against an in-process federation with the four registries' systems (seeded),
as tests/integration/test_portal_pages.py has it. A citizen reports an address change
and asks for a child's clinic attachment; a parent asks for a kindergarten place and a
school enrolment for their minor child, and withdraws a child from the kindergarten
queue (with its confirmation step). Each form is filled through its labels and sent
with its button, the result page is read, and the owner's database shows the change.

Skipped or failed and screenshots kept exactly as tests/browser/test_portal_browser.py
says (docs/portal.md, "Tests").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from tests.browser.test_portal_browser import CHROMIUM_ARGS, _chromium_or_skip, artifacts
from tests.integration.bus_federation import PORTAL_GATEWAY, start_federation
from tests.integration.seeded_agencies import KZ_TIME, serve_seeded_agencies
from tests.integration.test_portal_child_pages import parent_of_age, write
from tests.integration.test_portal_pages import (
    World,
    another_clinic,
    family_with_attached_child,
    open_clinic,
)
from zhol.adapters.education import rules
from zhol.cli.federation import ALL_AGENCIES
from zhol.portal.app import create_app
from zhol.portal.i18n import CATALOGUES
from zhol.portal.settings import PortalSettings

pytestmark = pytest.mark.integration
__all__ = ["artifacts"]  # the fixture, shared with the other browser tests

EN = CATALOGUES["en"]
RU = CATALOGUES["ru"]


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    _chromium_or_skip()  # before starting anything
    fed = await start_federation(tmp_path, persons=300, agencies=(*ALL_AGENCIES, "portal"))
    servers: dict[str, Any] = {}
    try:
        await serve_seeded_agencies(fed, servers)
        settings = PortalSettings(
            gateway=fed.is_address(PORTAL_GATEWAY), demo=True, secure_cookies=False
        )
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
            yield World(fed, servers, client)
    finally:
        for running in servers.values():
            await running.stop(0)
        await fed.stop()


class Browser:
    """One Chromium for a test; ``signed_in`` opens a fresh context signed in as ``iin``."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._playwright: Any = None
        self._browser: Any = None

    async def __aenter__(self) -> Browser:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=str(_chromium_or_skip()), args=CHROMIUM_ARGS, chromium_sandbox=False
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._browser.close()
        await self._playwright.stop()

    async def signed_in(self, iin: str, lang: str) -> Any:
        context = await self._browser.new_context(locale=lang)
        context.set_default_timeout(10_000)  # fail in seconds, not Playwright's 30
        page = await context.new_page()
        texts = CATALOGUES[lang]
        await page.goto(f"{self.base}/signin?lang={lang}")
        await page.get_by_label(texts["iin"]).fill(iin)
        await page.get_by_role("button", name=texts["send_code"]).click()
        await page.wait_for_url("**/signin/code")
        outbox = await context.new_page()
        await outbox.goto(f"{self.base}/dev/outbox")
        row = outbox.locator("tr", has=outbox.locator("td.to", has_text=iin))
        code = await row.locator("td.code").first.inner_text()
        await outbox.close()
        await page.get_by_label(texts["code"]).fill(code)
        await page.get_by_role("button", name=texts["check_code"]).click()
        await page.wait_for_url("**/me")
        return page


def base_of(world: World) -> str:
    return str(world.client.make_url("/")).rstrip("/")


async def test_a_childs_clinic_attachment_and_an_address_change(
    world: World, artifacts: Path
) -> None:
    parent, child = family_with_attached_child(world)
    target = another_clinic(world, child, same_district=True)
    street = "Browser street 7"
    async with Browser(base_of(world)) as chromium:
        page = await chromium.signed_in(parent, "en")
        # The clinic first: the form offers the clinics of the citizen's district now.
        await page.get_by_role("link", name=EN["health_page"]).click()
        await page.get_by_role("link", name=EN["ask_attachment"]).click()
        await page.wait_for_url("**/actions/clinic")
        await page.get_by_role("combobox", name=EN["whom"]).select_option(child)
        await page.get_by_role("combobox", name=EN["clinic_choice"]).select_option(target)
        await page.screenshot(path=artifacts / "clinic-form-en.png", full_page=True)
        await page.get_by_role("button", name=EN["send"]).click()
        await page.wait_for_load_state()
        assert target in await page.locator("dd.clinic").inner_text()
        await page.screenshot(path=artifacts / "clinic-done-en.png", full_page=True)

        await page.get_by_role("link", name=EN["change_address"]).click()
        await page.wait_for_url("**/actions/address")
        await page.get_by_role("combobox", name=EN["whom"]).select_option(parent)
        for field, value in (("region", "Astana"), ("district", "Yesil district"),
                             ("locality", "Astana"), ("street", street), ("building", "3")):
            await page.get_by_label(EN[field]).fill(value)  # fmt: skip
        await page.screenshot(path=artifacts / "address-form-en.png", full_page=True)
        await page.get_by_role("button", name=EN["send"]).click()
        await page.wait_for_load_state()
        assert street in await page.locator("dd.address").inner_text()
        assert EN["result_done"] in await page.get_by_role("status").inner_text()
        await page.screenshot(path=artifacts / "address-done-en.png", full_page=True)
    assert world.rows("population", "SELECT street FROM addresses WHERE iin = ?"
                      " AND valid_to IS NULL", parent) == [(street,)]  # fmt: skip
    assert open_clinic(world, child) == target


async def test_a_childs_kindergarten_place_and_school_enrolment(
    world: World, artifacts: Path
) -> None:
    today = dt.datetime.now(KZ_TIME).date()
    parent, toddler = parent_of_age(world, today.replace(year=today.year - 5), today)
    write(world, "education", "UPDATE queue_entries SET status = 'withdrawn', placed_in = NULL,"
          " withdrawn_because = 'request' WHERE iin = ?", toddler)  # fmt: skip
    start = rules.school_year_start(today)
    pupil_parent, pupil = parent_of_age(
        world, start.replace(year=start.year - 7) + dt.timedelta(days=1),
        start.replace(year=start.year - 6),
    )  # fmt: skip
    async with Browser(base_of(world)) as chromium:
        # The kindergarten: from the family page to the child's education page, its link.
        page = await chromium.signed_in(parent, "ru")
        await page.get_by_role("link", name=RU["family"]).click()
        await page.locator(f'a[href="/person/{toddler}/education"]').click()
        await page.wait_for_url(f"**/person/{toddler}/education")
        await page.screenshot(path=artifacts / "child-education-ru.png", full_page=True)
        await page.get_by_role("link", name=RU["ask_kindergarten"]).click()
        await page.wait_for_url("**/actions/kindergarten?child=*")
        assert await page.get_by_role("combobox", name=RU["child_choice"]).input_value() == toddler
        choice = page.get_by_role("combobox", name=RU["preferred_kindergarten"])
        kindergarten = await choice.locator("option").nth(1).get_attribute("value")
        await choice.select_option(kindergarten)
        await page.screenshot(path=artifacts / "kindergarten-form-ru.png", full_page=True)
        await page.get_by_role("button", name=RU["send"]).click()
        await page.wait_for_load_state()
        assert RU["result_done"] in await page.get_by_role("status").inner_text()
        assert f"({kindergarten})" in await page.locator("dd.kindergarten").inner_text()
        await page.screenshot(path=artifacts / "kindergarten-done-ru.png", full_page=True)
        # Once more: education refuses, and the page says why in Russian.
        await page.go_back()
        await page.get_by_role("button", name=RU["send"]).click()
        await page.wait_for_load_state()
        alert = await page.get_by_role("alert").inner_text()
        assert RU["refusal_kindergarten_already_exists"] in alert
        await page.screenshot(path=artifacts / "kindergarten-refused-ru.png", full_page=True)

        # The school: grade 1 in another school of the child's district.
        page = await chromium.signed_in(pupil_parent, "en")
        await page.goto(f"{chromium.base}/education")
        await page.get_by_role("link", name=EN["ask_school"]).first.click()
        await page.get_by_role("combobox", name=EN["child_choice"]).select_option(pupil)
        current = world.rows("education", "SELECT school_id FROM school_enrolments"
                             " WHERE iin = ? AND status = 'active'", pupil)  # fmt: skip
        schools = page.get_by_role("combobox", name=EN["school"])
        offered = await schools.locator("option").evaluate_all("os => os.map(o => o.value)")
        target = next(s for s in offered if (s,) not in current)
        await schools.select_option(target)
        await page.get_by_role("combobox", name=EN["grade_choice"]).select_option("1")
        await page.screenshot(path=artifacts / "school-form-en.png", full_page=True)
        await page.get_by_role("button", name=EN["send"]).click()
        await page.wait_for_load_state()
        assert f"({target})" in await page.locator("dd.school").inner_text()
        await page.screenshot(path=artifacts / "school-done-en.png", full_page=True)
    assert world.rows("education", "SELECT kindergarten_id FROM queue_entries WHERE iin = ?"
                      " AND status = 'waiting'", toddler) == [(kindergarten,)]  # fmt: skip
    assert world.rows("education", "SELECT school_id FROM school_enrolments WHERE iin = ?"
                      " AND status = 'active'", pupil) == [(target,)]  # fmt: skip


async def test_a_childs_withdrawal_from_the_kindergarten_queue(
    world: World, artifacts: Path
) -> None:
    kk = CATALOGUES["kk"]
    today = dt.datetime.now(KZ_TIME).date()
    parent, toddler = parent_of_age(world, today.replace(year=today.year - 5), today)
    write(world, "education", "UPDATE queue_entries SET status = 'withdrawn', placed_in = NULL,"
          " withdrawn_because = 'request' WHERE iin = ?", toddler)  # fmt: skip

    def waiting() -> list[tuple[Any, ...]]:
        return world.rows("education", "SELECT queue_entry_id FROM queue_entries"
                          " WHERE iin = ? AND status = 'waiting'", toddler)  # fmt: skip

    async with Browser(base_of(world)) as chromium:
        page = await chromium.signed_in(parent, "kk")
        education = f"{chromium.base}/person/{toddler}/education"
        # Queued first (through the form), so that there is a place to withdraw.
        await page.goto(education)
        await page.get_by_role("link", name=kk["ask_kindergarten"]).click()
        await page.get_by_role("button", name=kk["send"]).click()
        await page.wait_for_load_state()
        assert kk["result_done"] in await page.get_by_role("status").inner_text()
        (entry,) = waiting()

        # The child's education page offers the withdrawal; the first step only asks.
        await page.goto(education)
        await page.get_by_role("button", name=kk["withdraw_queue"]).click()
        await page.wait_for_load_state()
        assert kk["withdraw_warning"] in await page.get_by_role("note").inner_text()
        await page.screenshot(path=artifacts / "withdraw-confirm-kk.png", full_page=True)
        await page.get_by_role("link", name=kk["withdraw_cancel"]).click()  # changed my mind
        await page.wait_for_url(f"**/person/{toddler}/education")
        assert waiting() == [entry]

        await page.get_by_role("button", name=kk["withdraw_queue"]).click()
        await page.get_by_role("button", name=kk["withdraw_confirm"]).click()
        await page.wait_for_load_state()
        assert kk["result_done"] in await page.get_by_role("status").inner_text()
        assert kk["queue_3"] in await page.locator("dd.queue-status").inner_text()
        await page.screenshot(path=artifacts / "withdraw-done-kk.png", full_page=True)
        await page.get_by_role("link", name=kk["see_updated"]).click()
        await page.wait_for_url(f"**/person/{toddler}/education")
        assert await page.get_by_role("button", name=kk["withdraw_queue"]).count() == 0
    withdrawn = world.rows("education", "SELECT status, withdrawn_because FROM queue_entries"
                           " WHERE queue_entry_id = ?", entry[0])  # fmt: skip
    assert withdrawn == [("withdrawn", "request")]
