"""The portal's pension, health and education pages, the children on the family page and
the two actions, against a real in-process federation: the registry, the five gateways
and the four registries' systems as real gRPC servers on 127.0.0.1, each on its own
seeded SQLite file; the portal on a real socket, driven as a browser without
JavaScript would (forms posted with the page's CSRF token)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from markupsafe import escape

from tests.integration.bus_federation import (
    PORTAL_GATEWAY,
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    start_federation,
)
from tests.integration.seeded_agencies import GATEWAY_OF, KZ_TIME, serve_seeded_agencies
from tests.portal_client import csrf_of, sign_in
from zhol.adapters.pension.model import (
    BenefitDecision,
    BenefitKind,
    CalcItem,
    Frequency,
    Month,
    Payment,
    SourceRead,
)
from zhol.adapters.pension.store import insert_benefit
from zhol.cli.demo import PROVIDER_GATEWAY as POPULATION_GATEWAY
from zhol.cli.federation import ALL_AGENCIES
from zhol.gateway.messagelog import list_records
from zhol.pension.v1 import pension_pb2
from zhol.portal import reads
from zhol.portal.app import create_app
from zhol.portal.i18n import CATALOGUES
from zhol.portal.settings import PORTAL_SUBSYSTEM, PortalSettings

pytestmark = pytest.mark.integration

EN = CATALOGUES["en"]


@dataclass
class World:
    fed: Federation
    servers: dict[str, Any]
    client: TestClient

    def rows(self, agency: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
        db = self.fed.layout.population_db if agency == "population" else (
            self.fed.layout.adapter_db(agency))  # fmt: skip
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute(sql, args).fetchall()

    def logged_subjects(self) -> set[str]:
        log = self.fed.layout.gateway(PORTAL_GATEWAY) / "messagelog.db"
        return {r["data_subject"] for r in list_records(log, limit=100_000)}


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
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


def minor_cutoff() -> str:
    return (dt.datetime.now(KZ_TIME).date() - dt.timedelta(days=17 * 366)).isoformat()


def family_with_attached_child(world: World) -> tuple[str, str]:
    """(parent, minor child) where the child has an open clinic attachment."""
    attached = {iin for (iin,) in world.rows(
        "health", "SELECT iin FROM attachments WHERE detached_on IS NULL")}  # fmt: skip
    pairs = world.rows(
        "population",
        "SELECT f.iin, f.relative_iin FROM family_links f JOIN persons c ON c.iin ="
        " f.relative_iin JOIN persons p ON p.iin = f.iin WHERE f.relation = 'child'"
        " AND c.birth_date > ? AND p.death_date IS NULL AND c.death_date IS NULL"
        " ORDER BY f.iin",
        minor_cutoff(),
    )
    return next((p, c) for p, c in pairs if c in attached and p in attached)


def record_benefit(world: World, recipient: str, child: str) -> None:
    """A childcare allowance for ``recipient``, written as pension writes its decisions."""
    today = dt.datetime.now(KZ_TIME).date()
    decision = BenefitDecision(
        BenefitKind.CHILD_CARE_ALLOWANCE, recipient, child, 50_000, Frequency.MONTHLY,
        today, None, "test birth act", (CalcItem("mci", "3692", "KZT", "rule table"),),
        (SourceRead("zhol.population.v1.PopulationRegistry/GetFamily", "KZ/GOV/MJ/population",
                    "test", child, "Test source fact", 0),),
        (Payment(Month(today.year, today.month), 50_000),),
    )  # fmt: skip
    db = world.fed.layout.adapter_db("pension")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        assert insert_benefit(conn, decision, today=today, now_ms=0)


def record_recalculation(world: World, recipient: str) -> None:
    """A recalculation decision of ``recipient``'s benefit with arrears paid this month,
    written as the recalculation run writes it."""
    month = Month.of(dt.datetime.now(KZ_TIME).date())
    db = world.fed.layout.adapter_db("pension")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        (benefit_id,) = conn.execute("SELECT benefit_id FROM benefits WHERE recipient_iin = ?"
                                     " AND basis = 'test birth act'", (recipient,)).fetchone()
        conn.execute(
            "INSERT INTO recalculations (recalculation_id, benefit_id, decided_on, as_of,"
            " change_from, old_amount, new_amount, arrears_total, reason, rules, replaced,"
            " schedule, old_calculation, new_calculation) VALUES ('RC-test', ?, '2026-06-15',"
            " '2026-06-15', ?, 50000, 55000, 12345, 'Test recalculation reason', ?, '[]',"
            " '[]', '[]', '[]')",
            (benefit_id, str(month),
             '[["STATE_BENEFIT","2010-01-01","Test rule source"],["INDEXED_YEARLY","","x"]]'))
        conn.execute("INSERT INTO recalculation_arrears VALUES ('RC-test', '2026-01', 20000,"
                     " 7655, 12345)")
        conn.execute("INSERT INTO arrears_payments (recalculation_id, month, amount)"
                     " VALUES ('RC-test', ?, 12345)", (str(month),))


def open_clinic(world: World, iin: str) -> str:
    return world.rows(
        "health", "SELECT clinic_id FROM attachments WHERE iin = ? AND detached_on IS NULL", iin
    )[0][0]


def another_clinic(world: World, iin: str, same_district: bool) -> str:
    """A clinic other than the person's current one, in (or outside) their district."""
    region, district = world.rows(
        "population",
        "SELECT region, district FROM addresses WHERE iin = ? AND valid_to IS NULL", iin,
    )[0]  # fmt: skip
    current = open_clinic(world, iin)
    for clinic_id, c_region, c_district in world.rows(
        "health", "SELECT clinic_id, region, district FROM clinics ORDER BY clinic_id"
    ):
        if clinic_id != current and ((c_region, c_district) == (region, district)) == same_district:
            return clinic_id
    raise AssertionError("the seed has no such clinic")


def portal_log(world: World) -> list[dict[str, object]]:
    log = world.fed.layout.gateway(PORTAL_GATEWAY) / "messagelog.db"
    return [dict(r) for r in list_records(log, limit=100_000)]


async def post_form(client: TestClient, page: str, form: dict[str, str]) -> tuple[int, str]:
    html = await (await client.get(page)).text()
    answer = await client.post(page, data={"csrf": csrf_of(html), **form})
    return answer.status, await answer.text()


async def test_pages_render_the_owners_data_and_the_family_shows_each_child(
    world: World,
) -> None:
    parent, child = family_with_attached_child(world)
    await sign_in(world.client, parent)
    pension = await world.client.get("/pension?lang=en")
    html = await pension.text()
    assert pension.status == 200
    assert EN["KZ/GOV/MLSPP/pension"] in html and EN["contributions"] in html
    months = world.rows("pension", "SELECT DISTINCT month FROM contributions WHERE iin = ?"
                        " ORDER BY month DESC LIMIT 1", parent)  # fmt: skip
    assert months, "the seeded parent has no contributions"
    # the seed's contributions run to this month: the newest is in the table
    assert f'<th scope="row">{months[0][0]}</th>' in html
    assert EN["employer_pension_contribution"] in html  # the OPVR column
    assert "<caption>" in html and "part_" not in html and EN["part_unavailable"] not in html
    # A benefit's kind, status and payments are translated, never the raw codes.
    record_benefit(world, parent, child)
    html = await (await world.client.get("/pension?lang=ru")).text()
    ru = CATALOGUES["ru"]
    assert ru["benefit_child_care_allowance"] in html and ru["bstatus_active"] in html
    assert ru["pay_scheduled"] in html and ru["freq_monthly"] in html
    assert ">child_care_allowance<" not in html and "Test source fact" in html
    # Its recalculation decision: amounts, reason, rules with sources, arrears paid once.
    record_recalculation(world, parent)
    html = await (await world.client.get("/pension?lang=kk")).text()
    kk = CATALOGUES["kk"]
    assert kk["recalculations_caption"] in html and "50000 → 55000" in html
    assert "Test recalculation reason" in html and "Test rule source" in html
    assert "<code>STATE_BENEFIT</code>" in html and kk["recalc_in_force_from"] in html
    assert f"12345 {kk['unit_KZT']}, {kk['recalc_paid_in']}" in html
    marked = f"<span class=\"arrears\">({kk['pay_kind_arrears']})"
    assert f"12345, {kk['pay_scheduled']} {marked}" in html
    # A pensioner's page explains the calculation, with the sources it read.
    pensioner = world.rows("pension", "SELECT iin FROM pension_assignments WHERE kind = 'age'"
                           " AND status = 'active' LIMIT 1")  # fmt: skip
    assert pensioner, "the seed has no age pensioner"
    world.client.session.cookie_jar.clear()
    await sign_in(world.client, pensioner[0][0])
    html = await (await world.client.get("/pension?lang=en")).text()
    assert EN["pkind_age"] in html and 'class="calculation"' in html
    assert 'class="explanation"' in html
    # The calculation's item names are labelled in the citizen's language, not raw.
    html = await (await world.client.get("/pension?lang=kk")).text()
    kk = CATALOGUES["kk"]
    assert f'<th scope="row">{kk["calc_base_share"]}</th>' in html and ">base_share<" not in html
    world.client.session.cookie_jar.clear()
    await sign_in(world.client, parent)

    health = await world.client.get("/health?lang=en")
    html = await health.text()
    assert health.status == 200 and EN["KZ/GOV/MOH/health"] in html
    assert open_clinic(world, parent) in html and EN["conclusions"] in html
    assert EN["part_unavailable"] not in html

    education = await world.client.get("/education?lang=en")
    html = await education.text()
    assert education.status == 200 and EN["KZ/GOV/MES/education"] in html
    assert EN["part_unavailable"] not in html
    queue = world.rows("education", "SELECT status FROM queue_entries WHERE iin = ?", child)
    school = world.rows("education", "SELECT school_id FROM school_enrolments WHERE iin = ?", child)
    assert queue or school, "the seeded child is neither queued nor enrolled"
    if school:
        assert school[0][0] in html

    family = await world.client.get("/family?lang=en")
    html = await family.text()
    assert family.status == 200
    block = html[html.index(f'id="child-{child}"') :]
    assert open_clinic(world, child) in block  # the child's clinic on the family page
    assert EN["insurance"] in block and EN["part_unavailable"] not in html
    # The child's reads were filed under the child in the portal gateway's log.
    assert child in world.logged_subjects()


async def test_actions_change_the_owners_data_and_the_pages_show_it(world: World) -> None:
    parent, child = family_with_attached_child(world)
    await sign_in(world.client, parent)
    # An address change, for the citizen: population registers it; "me" shows it.
    street = "Portal street 12"
    status, html = await post_form(world.client, "/actions/address?lang=en", {
        "iin": parent, "region": "Astana", "district": "Yesil district", "locality": "Astana",
        "street": street, "building": "3", "apartment": "",
    })  # fmt: skip
    assert status == 200 and EN["result_done"] in html and street in html
    assert world.rows("population", "SELECT street FROM addresses WHERE iin = ?"
                      " AND valid_to IS NULL", parent) == [(street,)]  # fmt: skip
    assert street in await (await world.client.get("/me")).text()

    # A clinic attachment for the minor child, in the child's district.
    target = another_clinic(world, child, same_district=True)
    status, html = await post_form(world.client, "/actions/clinic?lang=en",
                                   {"iin": child, "clinic": target})  # fmt: skip
    assert status == 200 and EN["result_done"] in html and target in html
    assert open_clinic(world, child) == target
    family = await (await world.client.get("/family")).text()
    assert target in family[family.index(f'id="child-{child}"') :]

    # A clinic outside the district: the owner refuses, the page says so and why.
    before = world.rows("health", "SELECT * FROM attachments")
    elsewhere = another_clinic(world, child, same_district=False)
    status, html = await post_form(world.client, "/actions/clinic?lang=en",
                                   {"iin": child, "clinic": elsewhere})  # fmt: skip
    assert status == 409 and EN["result_refused_by_owner"] in html
    assert 'class="owner-reason"' in html and "serves" in html
    assert world.rows("health", "SELECT * FROM attachments") == before


def an_uninsured_attached_adult(world: World) -> str:
    """A living, attached adult without a state-paid period today and without a paid
    contribution in the 3 months before this month (pension's INSURANCE rule)."""
    today = dt.datetime.now(KZ_TIME).date()
    since = str(Month(today.year, today.month).plus(-3))
    paid = {iin for (iin,) in world.rows(
        "pension", "SELECT DISTINCT iin FROM contributions WHERE month >= ?"
        " AND pension_amount > 0", since)}  # fmt: skip
    state_paid = {iin for (iin,) in world.rows(
        "health", "SELECT iin FROM insurance_periods WHERE category = 'state_paid'"
        " AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?)",
        today.isoformat(), today.isoformat())}  # fmt: skip
    attached = {iin for (iin,) in world.rows(
        "health", "SELECT iin FROM attachments WHERE detached_on IS NULL")}  # fmt: skip
    adults = world.rows(
        "population", "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin"
        " AND a.valid_to IS NULL WHERE p.death_date IS NULL AND p.birth_date < ?"
        " AND a.district <> '' ORDER BY p.iin", minor_cutoff())  # fmt: skip
    return next(iin for (iin,) in adults
                if iin in attached and iin not in paid and iin not in state_paid)


async def test_an_uninsured_citizen_attaches_to_a_clinic(world: World) -> None:
    # Attachment does not depend on insurance (health ATTACHMENT, egov.kz [q]).
    citizen = an_uninsured_attached_adult(world)
    await sign_in(world.client, citizen)
    html = await (await world.client.get("/health?lang=en")).text()
    assert EN["part_unavailable"] not in html and EN["not_insured"] in html
    target = another_clinic(world, citizen, same_district=True)
    status, html = await post_form(world.client, "/actions/clinic?lang=en",
                                   {"iin": citizen, "clinic": target})  # fmt: skip
    assert status == 200 and EN["result_done"] in html
    assert open_clinic(world, citizen) == target


async def test_bad_input_in_an_action_changes_nothing(world: World) -> None:
    parent, child = family_with_attached_child(world)
    other = world.rows(
        "population", "SELECT iin FROM persons WHERE iin NOT IN (?, ?) AND death_date IS NULL"
        " ORDER BY iin LIMIT 1", parent, child)[0][0]  # fmt: skip
    await sign_in(world.client, parent)
    attachments = world.rows("health", "SELECT * FROM attachments")
    addresses = world.rows("population", "SELECT * FROM addresses")
    clinic = another_clinic(world, other, same_district=True)
    address = {"region": "Astana", "locality": "Astana", "street": "X", "building": "1"}

    status, html = await post_form(world.client, "/actions/clinic?lang=en",
                                   {"iin": other, "clinic": clinic})  # fmt: skip
    assert status == 403 and str(escape(EN["error_403"])) in html
    status, html = await post_form(world.client, "/actions/address", {"iin": other, **address})
    assert status == 403
    assert other not in world.logged_subjects()  # nothing was even read about them

    page = "/actions/clinic"
    assert (await world.client.post(page, data={"iin": parent, "clinic": clinic})).status == 403
    status, html = await post_form(world.client, page + "?lang=en",
                                   {"iin": parent, "clinic": "PHC-x"})  # fmt: skip
    assert status == 400 and EN["error_bad_clinic"] in html
    status, _ = await post_form(world.client, page, {"iin": "12345", "clinic": clinic})
    assert status == 400
    status, html = await post_form(world.client, "/actions/address?lang=en",
                                   {"iin": parent, **address, "street": ""})  # fmt: skip
    assert status == 400 and EN["error_bad_address"] in html
    status, _ = await post_form(world.client, "/actions/address",
                                {"iin": parent, **address, "street": "y" * 101})  # fmt: skip
    assert status == 400
    status, _ = await post_form(world.client, "/actions/address",
                                {"iin": parent, **address, "pad": "z" * 5000})  # fmt: skip
    assert status == 413
    assert world.rows("health", "SELECT * FROM attachments") == attachments
    assert world.rows("population", "SELECT * FROM addresses") == addresses


async def test_a_registry_down_blanks_only_its_part(world: World) -> None:
    parent, child = family_with_attached_child(world)
    await sign_in(world.client, parent)
    await world.servers.pop("health").stop(0)
    health = await world.client.get("/health?lang=en")
    html = await health.text()
    assert health.status == 200 and EN["part_unavailable"] in html
    assert EN["KZ/GOV/MOH/health"] in html
    pension = await world.client.get("/pension?lang=en")
    assert pension.status == 200 and EN["part_unavailable"] not in await pension.text()
    family = await world.client.get("/family?lang=en")
    html = await family.text()
    block = html[html.index(f'id="child-{child}"') :]
    assert family.status == 200 and EN["part_unavailable"] in block
    assert re.search(r"queue-status|class=\"enrolments\"|" + re.escape(EN["no_queue"]), block)
    # An action whose owner is down says so and changes nothing.
    target = another_clinic(world, parent, same_district=True)
    status, html = await post_form(world.client, "/actions/clinic?lang=en",
                                   {"iin": parent, "clinic": target})  # fmt: skip
    assert status == 503 and EN["result_unavailable"] in html


async def test_an_account_page_reads_the_person_once_not_again_at_each_registry(
    world: World,
) -> None:
    """The portal has the person from population, so it asks pension, health and
    education without the copy they would embed (``read_mask``): a /me page, or a child's,
    makes one GetPerson, the portal's own. The masked reads still pass the gateways'
    data-subject binding: filed under the citizen, and refused declared as another."""
    parent, child = family_with_attached_child(world)
    await sign_in(world.client, parent)
    population_log = world.fed.layout.gateway(POPULATION_GATEWAY) / "messagelog.db"
    for subject, page in ((parent, "/me?lang=en"), (child, f"/person/{child}?lang=en")):
        before = len(list_records(population_log, data_subject=subject))
        answer = await world.client.get(page)
        html = await answer.text()
        assert answer.status == 200 and "⚠" not in html, page  # every part was read
        new = list_records(population_log, data_subject=subject)[before:]
        readers = [r["client"] for r in new
                   if r["kind"] == "request" and r["service"].endswith("/GetPerson")]
        assert readers == [PORTAL_SUBSYSTEM], page
    pension_log = world.fed.layout.gateway(GATEWAY_OF["pension"]) / "messagelog.db"
    status_reads = [r for r in list_records(pension_log, data_subject=parent)
                    if r["service"].endswith("/GetPensionStatus")]
    assert status_reads and not any(r["mismatch"] for r in status_reads)

    stranger = world.rows("population", "SELECT iin FROM persons WHERE iin NOT IN (?, ?)"
                          " LIMIT 1", parent, child)[0][0]  # fmt: skip
    request = pension_pb2.GetPensionStatusRequest(iin=parent)
    request.read_mask.paths[:] = ["receives_pension"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call_raw(world.fed.is_address(PORTAL_GATEWAY), reads.GET_PENSION_STATUS,
                       request.SerializeToString(),
                       bus_metadata(client=PORTAL_SUBSYSTEM, data_subject=stranger))
    assert error_code(refused.value) == "Client.DataSubjectMismatch"
    body, _ = await call_raw(world.fed.is_address(PORTAL_GATEWAY), reads.GET_PENSION_STATUS,
                             request.SerializeToString(),
                             bus_metadata(client=PORTAL_SUBSYSTEM, data_subject=parent))
    assert not pension_pb2.PensionStatus.FromString(body).HasField("person")


def a_student_attached_at_home(
    world: World,
) -> tuple[str, str, str, str, str, str, tuple[str, str]]:
    """A living adult with an open study at a college or university of another district
    than their home, attached at home: (iin, institution id, its name, level, form, first
    day as the pages show it, (region, district) of the institution)."""
    homes = {iin: (region, district) for iin, region, district in world.rows(
        "population", "SELECT a.iin, a.region, a.district FROM addresses a JOIN persons p"
        " ON p.iin = a.iin WHERE a.valid_to IS NULL AND p.death_date IS NULL"
        " AND p.birth_date < ?", minor_cutoff())}  # fmt: skip
    attached = {iin for (iin,) in world.rows(
        "health", "SELECT iin FROM attachments WHERE detached_on IS NULL")}  # fmt: skip
    for iin, institution, name, level, form, started, region, district in world.rows(
        "education", "SELECT s.iin, i.institution_id, i.name, s.level, s.form, s.started_on,"
        " d.region, d.name FROM studies s JOIN institutions i USING (institution_id)"
        " JOIN districts d USING (district_id) WHERE s.ended_on IS NULL ORDER BY s.iin",
    ):  # fmt: skip
        if iin in attached and homes.get(iin) not in (None, (region, district)):
            day = dt.date.fromisoformat(started).strftime("%d.%m.%Y")
            return iin, institution, name, level, form, day, (region, district)
    raise AssertionError("the seed has no student attached at home")


async def test_studies_on_the_education_page_and_the_attachment_basis_on_the_health_page(
    world: World,
) -> None:
    student, institution, name, level, form, started, place = a_student_attached_at_home(world)
    await sign_in(world.client, student)
    # Studies at colleges and universities: the institution by name, level, form, dates,
    # in the citizen's language (education's ListStudies, filed under the student).
    for lang in ("kk", "ru", "en"):
        texts = CATALOGUES[lang]
        answer = await world.client.get(f"/education?lang={lang}")
        html = await answer.text()
        assert answer.status == 200 and "⚠" not in html, lang
        assert texts["studies_caption"] in html
        row = html[html.index('<table class="studies">'):]
        assert f"{escape(name)} ({institution})" in row
        assert f"<td>{started}</td>" in row
        for key in (f"level_{level}", f"form_{form}", "studying_now"):
            assert f">{escape(texts[key])}<" in row, (lang, key)
    log = world.fed.layout.gateway(PORTAL_GATEWAY) / "messagelog.db"
    studies = [r for r in list_records(log, data_subject=student)
               if r["service"].endswith("/ListStudies") and r["kind"] == "request"]
    assert studies and all(r["user_id"] == reads.citizen_user_id(student) for r in studies)

    # The health page says on what the attachment rests: home, then the university.
    html = await (await world.client.get("/health?lang=kk")).text()
    kk = CATALOGUES["kk"]
    assert f'<dd class="attach-basis">{kk["basis_registered_address"]}</dd>' in html
    clinic = world.rows("health", "SELECT clinic_id FROM clinics WHERE region = ?"
                        " AND district = ? ORDER BY clinic_id LIMIT 1", *place)[0][0]  # fmt: skip
    status, html = await post_form(world.client, "/actions/clinic?lang=en",
                                   {"iin": student, "clinic": clinic})  # fmt: skip
    assert status == 200 and EN["result_done"] in html
    for lang in ("kk", "ru", "en"):
        html = await (await world.client.get(f"/health?lang={lang}")).text()
        label = CATALOGUES[lang]["basis_college_or_university"]
        assert f'<dd class="attach-basis">{escape(label)}</dd>' in html, lang

    # Education down: only its parts are blank; the health page is whole.
    await world.servers.pop("education").stop(0)
    answer = await world.client.get("/education?lang=en")
    html = await answer.text()
    assert answer.status == 200 and f"⚠ {EN['studies']}:</strong> {EN['part_unavailable']}" in html
    assert '<table class="studies">' not in html
    html = await (await world.client.get("/health?lang=en")).text()
    assert EN["part_unavailable"] not in html and 'class="attach-basis"' in html


async def test_the_education_page_offers_the_withdrawal_for_a_queued_child_only(
    world: World,
) -> None:
    waiting = {iin for (iin,) in world.rows(
        "education", "SELECT iin FROM queue_entries WHERE status = 'waiting'")}  # fmt: skip
    pairs = world.rows(
        "population", "SELECT f.iin, f.relative_iin FROM family_links f JOIN persons p"
        " ON p.iin = f.iin WHERE f.relation = 'child' AND p.death_date IS NULL"
        " ORDER BY f.iin")  # fmt: skip
    parent, child = next((p, c) for p, c in pairs if c in waiting)
    await sign_in(world.client, parent)
    html = await (await world.client.get("/education?lang=en")).text()
    assert f'<input type="hidden" name="iin" value="{child}">' in html
    assert 'class="menu-unread"' not in html  # this portal runs without a feed: no count
    form = {"csrf": csrf_of(html), "iin": child}
    answer = await world.client.post("/actions/withdraw?lang=en", data=form)
    assert answer.status == 200 and EN["withdraw_confirm"] in await answer.text()

    # Withdrawn meanwhile (by education): the confirmation says there is nothing to
    # withdraw and offers no button; the education page offers no form for the child.
    db = world.fed.layout.adapter_db("education")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE queue_entries SET status = 'withdrawn', withdrawn_because ="
                     " 'request' WHERE iin = ? AND status = 'waiting'", (child,))  # fmt: skip
    answer = await world.client.post("/actions/withdraw?lang=en", data=form)
    html = await answer.text()
    assert answer.status == 200 and str(escape(EN["withdraw_nothing"])) in html
    assert EN["withdraw_confirm"] not in html and 'name="confirm"' not in html
    html = await (await world.client.get("/education?lang=en")).text()
    assert f'<input type="hidden" name="iin" value="{child}">' not in html
    assert not any(str(r["service"]).endswith("/WithdrawFromQueue") for r in portal_log(world))
