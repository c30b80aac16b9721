"""A minor child's own pension, health and education pages, the names of kindergartens
and schools, and a parent's applications to education for a minor child, against a
real in-process federation (the registry, the five gateways and the four registries'
systems as real gRPC servers on seeded SQLite files; the portal on a real socket)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3

import pytest
from markupsafe import escape

from tests.integration import test_portal_pages
from tests.integration.seeded_agencies import KZ_TIME
from tests.integration.test_portal_pages import (
    EN,
    World,
    family_with_attached_child,
    minor_cutoff,
    portal_log,
    post_form,
    record_benefit,
)
from tests.portal_client import csrf_of, sign_in
from zhol.adapters.education import rules
from zhol.portal.i18n import CATALOGUES
from zhol.portal.pages import CHILD_ACTION_PURPOSE
from zhol.portal.reads import CHILD_PURPOSE

pytestmark = pytest.mark.integration

RU = "ru"
world = test_portal_pages.world  # the same federation with the four registries, seeded


def write(world: World, agency: str, sql: str, *args: object) -> None:
    db = world.fed.layout.adapter_db(agency)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(sql, args)


def school_name(world: World, school_id: str) -> str:
    return str(world.rows("education", "SELECT name FROM schools WHERE school_id = ?",
                          school_id)[0][0])  # fmt: skip


def another_minor(world: World, parent: str, child: str) -> str:
    """A living minor who is neither the parent nor their child."""
    found = world.rows(
        "population", "SELECT iin FROM persons WHERE iin NOT IN (?, ?) AND death_date IS NULL"
        " AND birth_date > ? ORDER BY iin LIMIT 1", parent, child, minor_cutoff())  # fmt: skip
    return str(found[0][0])


def parent_of_age(world: World, low: dt.date, high: dt.date) -> tuple[str, str]:
    """(living parent, living child born in [low, high]) — the child's age decides."""
    pairs = world.rows(
        "population",
        "SELECT f.iin, f.relative_iin FROM family_links f JOIN persons c ON c.iin ="
        " f.relative_iin JOIN persons p ON p.iin = f.iin WHERE f.relation = 'child'"
        " AND c.birth_date BETWEEN ? AND ? AND p.death_date IS NULL AND c.death_date IS NULL"
        " ORDER BY f.iin, f.relative_iin",
        low.isoformat(), high.isoformat(),
    )  # fmt: skip
    assert pairs, "the seed has no such family"
    return pairs[0]


async def test_a_parent_reads_their_minor_childs_own_pages(world: World) -> None:
    parent, child = family_with_attached_child(world)
    record_benefit(world, parent, child)  # paid to the parent, for the child
    await sign_in(world.client, parent)
    family = await (await world.client.get("/family?lang=en")).text()
    child_page = await (await world.client.get(f"/person/{child}?lang=en")).text()
    for page in ("pension", "health", "education"):
        assert f'href="/person/{child}/{page}"' in family
        assert f'href="/person/{child}/{page}"' in child_page

    answer = await world.client.get(f"/person/{child}/pension?lang=en")
    html = await answer.text()
    assert answer.status == 200 and EN["KZ/GOV/MLSPP/pension"] in html
    assert EN["about_child"] in html and EN["benefit_child_care_allowance"] in html
    assert EN["part_unavailable"] not in html

    answer = await world.client.get(f"/person/{child}/health?lang=en")
    html = await answer.text()
    clinic = world.rows("health", "SELECT clinic_id FROM attachments WHERE iin = ?"
                        " AND detached_on IS NULL", child)[0][0]  # fmt: skip
    assert answer.status == 200 and EN["KZ/GOV/MOH/health"] in html
    assert clinic in html and EN["conclusions"] in html and EN["part_unavailable"] not in html

    answer = await world.client.get(f"/person/{child}/education?lang=en")
    html = await answer.text()
    assert answer.status == 200 and EN["KZ/GOV/MES/education"] in html
    assert EN["ask_kindergarten"] in html and EN["part_unavailable"] not in html

    # Every read of these pages was filed under the child, as the parent's request about
    # their minor child; the parent's own pages were not read.
    about_child = [r for r in portal_log(world) if r["data_subject"] == child]
    services = {str(r["service"]).rsplit("/", 1)[1] for r in about_child}
    assert {"ListBenefits", "GetContributions", "ListDisabilityConclusions"} <= services
    benefits = [r for r in about_child if str(r["service"]).endswith("/ListBenefits")]
    assert benefits and {r["purpose"] for r in benefits} == {CHILD_PURPOSE}
    assert {r["user_id"] for r in about_child} == {f"citizen:{parent}"}


async def test_another_citizens_child_pages_are_refused_and_nothing_is_read(
    world: World,
) -> None:
    parent, child = family_with_attached_child(world)
    other = another_minor(world, parent, child)
    await sign_in(world.client, parent)
    for page in ("pension", "health", "education"):
        answer = await world.client.get(f"/person/{other}/{page}?lang=en")
        assert answer.status == 403 and str(escape(EN["error_403"])) in await answer.text()
        assert (await world.client.get(f"/person/12345/{page}")).status == 404
        own = await world.client.get(f"/person/{parent}/{page}", allow_redirects=False)
        assert (own.status, own.headers["Location"]) == (303, f"/{page}")
    assert other not in world.logged_subjects()


async def test_kindergartens_and_schools_are_shown_by_name(world: World) -> None:
    start = rules.school_year_start(dt.datetime.now(KZ_TIME).date())
    parent, pupil = parent_of_age(
        world, start.replace(year=start.year - 12), start.replace(year=start.year - 7)
    )
    school = world.rows("education", "SELECT school_id FROM school_enrolments WHERE iin = ?"
                        " AND status = 'active'", pupil)[0][0]  # fmt: skip
    name = school_name(world, school)
    await sign_in(world.client, parent)
    label = f"{escape(name)} ({school})"
    for page in ("/education", "/family", f"/person/{pupil}", f"/person/{pupil}/education"):
        assert label in await (await world.client.get(page)).text(), page
    # The catalogues were read about nobody: no data subject in the log.
    catalogue = [r for r in portal_log(world) if str(r["service"]).endswith("/ListSchools")]
    assert catalogue and {r["data_subject"] for r in catalogue} == {""}


async def test_a_parent_asks_for_a_kindergarten_place_for_their_child(world: World) -> None:
    today = dt.datetime.now(KZ_TIME).date()
    parent, child = parent_of_age(world, today.replace(year=today.year - 5), today)
    write(world, "education", "UPDATE queue_entries SET status = 'withdrawn', placed_in = NULL,"
          " withdrawn_because = 'request' WHERE iin = ?", child)  # fmt: skip
    await sign_in(world.client, parent)
    form = await (await world.client.get(f"/actions/kindergarten?child={child}&lang=en")).text()
    assert f'<option value="{child}" selected>' in form
    kindergarten = form.split('<option value="KG-', 1)[1].split('"', 1)[0]
    kindergarten = f"KG-{kindergarten}"
    name = world.rows("education", "SELECT name FROM kindergartens WHERE kindergarten_id = ?",
                      kindergarten)[0][0]  # fmt: skip
    status, html = await post_form(world.client, "/actions/kindergarten?lang=en",
                                   {"iin": child, "kindergarten": kindergarten})  # fmt: skip
    assert status == 200 and EN["result_done"] in html and str(escape(name)) in html
    waiting = world.rows("education", "SELECT kindergarten_id, reason FROM queue_entries"
                         " WHERE iin = ? AND status = 'waiting'", child)  # fmt: skip
    assert waiting == [(kindergarten, "request")]
    page = await (await world.client.get(f"/person/{child}/education")).text()
    assert f"{escape(name)} ({kindergarten})" in page

    # Again: education refuses; the page says why in the citizen's language, and the owner's words.
    before = world.rows("education", "SELECT * FROM queue_entries")
    status, html = await post_form(world.client, f"/actions/kindergarten?lang={RU}",
                                   {"iin": child, "kindergarten": ""})  # fmt: skip
    assert status == 409 and CATALOGUES[RU]["refusal_kindergarten_already_exists"] in html
    assert 'class="owner-reason"' in html
    assert world.rows("education", "SELECT * FROM queue_entries") == before


async def test_a_parent_enrols_their_child_in_a_school(world: World) -> None:
    start = rules.school_year_start(dt.datetime.now(KZ_TIME).date())
    # six on the school year's 1 September: grade 1 (the seed has enrolled them already)
    parent, child = parent_of_age(
        world, start.replace(year=start.year - 7) + dt.timedelta(days=1),
        start.replace(year=start.year - 6),
    )  # fmt: skip
    current = world.rows("education", "SELECT school_id FROM school_enrolments WHERE iin = ?"
                         " AND status = 'active'", child)  # fmt: skip
    await sign_in(world.client, parent)
    form = await (await world.client.get("/actions/school?lang=en")).text()
    offered = ["SCH-" + part.split('"', 1)[0] for part in form.split('<option value="SCH-')[1:]]
    target = next(s for s in offered if (s,) not in current)
    status, html = await post_form(world.client, "/actions/school?lang=en",
                                   {"iin": child, "school": target, "grade": "1"})  # fmt: skip
    assert status == 200 and EN["result_done"] in html
    assert str(escape(school_name(world, target))) in html
    assert world.rows("education", "SELECT school_id, grade FROM school_enrolments WHERE iin = ?"
                      " AND status = 'active'", child) == [(target, 1)]  # fmt: skip

    before = world.rows("education", "SELECT * FROM school_enrolments")
    status, html = await post_form(world.client, "/actions/school?lang=en",
                                   {"iin": child, "school": target, "grade": "1"})  # fmt: skip
    assert status == 409 and EN["refusal_school_already_exists"] in html
    status, html = await post_form(world.client, "/actions/school?lang=kk",
                                   {"iin": child, "school": target, "grade": "9"})  # fmt: skip
    assert status == 409 and CATALOGUES["kk"]["refusal_school_failed_precondition"] in html
    assert world.rows("education", "SELECT * FROM school_enrolments") == before


async def test_bad_applications_change_nothing_and_send_nothing(world: World) -> None:
    parent, child = family_with_attached_child(world)
    other = another_minor(world, parent, child)
    school = world.rows("education", "SELECT school_id FROM schools ORDER BY school_id")[0][0]
    await sign_in(world.client, parent)
    tables = ("queue_entries", "school_enrolments")
    before = {t: world.rows("education", f"SELECT * FROM {t}") for t in tables}  # noqa: S608

    for page, form in (
        ("/actions/kindergarten", {"kindergarten": ""}),
        ("/actions/school", {"school": school, "grade": "1"}),
    ):
        # someone else's child, and the citizen themself: 403, nothing read or sent
        for whom in (other, parent):
            status, html = await post_form(world.client, page + "?lang=en", {"iin": whom, **form})
            assert status == 403 and str(escape(EN["error_403"])) in html
        # no CSRF token: 403
        assert (await world.client.post(page, data={"iin": child, **form})).status == 403
        # malformed IIN 400; an oversized form 413
        assert (await post_form(world.client, page, {"iin": "1234", **form}))[0] == 400
        status, _ = await post_form(world.client, page, {"iin": child, **form, "pad": "z" * 5000})
        assert status == 413
    for form, key in (
        ({"kindergarten": "KG-1"}, "error_bad_kindergarten"),
        ({"kindergarten": "<b>"}, "error_bad_kindergarten"),
    ):
        status, html = await post_form(world.client, "/actions/kindergarten?lang=en",
                                       {"iin": child, **form})  # fmt: skip
        assert status == 400 and str(escape(EN[key])) in html
    for form, key in (
        ({"school": "SCH-x", "grade": "1"}, "error_bad_school"),
        ({"school": school, "grade": "12"}, "error_bad_grade"),
        ({"school": school, "grade": "one"}, "error_bad_grade"),
        ({"school": school, "grade": "0"}, "error_bad_grade"),
    ):
        status, html = await post_form(world.client, "/actions/school?lang=en",
                                       {"iin": child, **form})  # fmt: skip
        assert status == 400 and str(escape(EN[key])) in html
    assert other not in world.logged_subjects()
    assert not any(  # no application reached the bus
        str(r["service"]).endswith(("/EnqueueForKindergarten", "/EnrollInSchool"))
        for r in portal_log(world)
    )
    assert {t: world.rows("education", f"SELECT * FROM {t}") for t in tables} == before  # noqa: S608


async def test_a_parent_withdraws_their_child_from_the_kindergarten_queue(world: World) -> None:
    today = dt.datetime.now(KZ_TIME).date()
    parent, child = parent_of_age(world, today.replace(year=today.year - 5), today)
    write(world, "education", "UPDATE queue_entries SET status = 'withdrawn', placed_in = NULL,"
          " withdrawn_because = 'request' WHERE iin = ?", child)  # fmt: skip
    await sign_in(world.client, parent)
    status, _ = await post_form(world.client, "/actions/kindergarten?lang=en",
                                {"iin": child, "kindergarten": ""})  # fmt: skip
    assert status == 200
    queued = world.rows("education", "SELECT * FROM queue_entries WHERE iin = ?"
                        " AND status = 'waiting'", child)  # fmt: skip
    assert len(queued) == 1

    # The child's education page offers the withdrawal, a POST form with the CSRF token.
    page = await (await world.client.get(f"/person/{child}/education?lang=en")).text()
    assert 'action="/actions/withdraw"' in page and EN["withdraw_queue"] in page
    form = {"csrf": csrf_of(page), "iin": child}

    # The first step only asks: the place the child would lose, nothing sent to education.
    answer = await world.client.post("/actions/withdraw?lang=en", data=form)
    html = await answer.text()
    assert answer.status == 200 and str(escape(EN["withdraw_warning"])) in html
    assert EN["withdraw_confirm"] in html and 'name="confirm" value="yes"' in html
    assert EN["queue_1"] in html
    assert world.rows("education", "SELECT * FROM queue_entries WHERE iin = ?"
                      " AND status = 'waiting'", child) == queued  # fmt: skip
    assert not any(str(r["service"]).endswith("/WithdrawFromQueue") for r in portal_log(world))

    # Confirmed: education withdraws it, the result in the citizen's language.
    answer = await world.client.post(f"/actions/withdraw?lang={RU}",
                                     data={**form, "confirm": "yes"})  # fmt: skip
    html = await answer.text()
    assert answer.status == 200 and CATALOGUES[RU]["result_done"] in html
    assert CATALOGUES[RU]["queue_3"] in html
    entry = world.rows("education", "SELECT status, withdrawn_because FROM queue_entries"
                       " WHERE queue_entry_id = ?", queued[0][0])  # fmt: skip
    assert entry == [("withdrawn", "request")]
    withdrawals = [r for r in portal_log(world)
                   if str(r["service"]).endswith("/WithdrawFromQueue")]  # fmt: skip
    assert withdrawals and {r["data_subject"] for r in withdrawals} == {child}
    assert {r["user_id"] for r in withdrawals} == {f"citizen:{parent}"}
    assert {r["purpose"] for r in withdrawals} == {CHILD_ACTION_PURPOSE}
    page = await (await world.client.get(f"/person/{child}/education?lang=en")).text()
    assert 'action="/actions/withdraw"' not in page

    # Again, the child no longer in the queue: education refuses (409), said in Kazakh.
    before = world.rows("education", "SELECT * FROM queue_entries")
    answer = await world.client.post("/actions/withdraw?lang=kk", data={**form, "confirm": "yes"})
    html = await answer.text()
    assert answer.status == 409 and CATALOGUES["kk"]["refusal_withdraw_not_found"] in html
    assert CATALOGUES["kk"]["result_refused_by_owner"] in html
    assert world.rows("education", "SELECT * FROM queue_entries") == before


async def test_bad_withdrawals_change_nothing_and_ask_nothing(world: World) -> None:
    today = dt.datetime.now(KZ_TIME).date()
    parent, child = parent_of_age(world, today.replace(year=today.year - 5), today)
    other = another_minor(world, parent, child)
    await sign_in(world.client, parent)
    before = world.rows("education", "SELECT * FROM queue_entries")
    csrf = csrf_of(await (await world.client.get("/education")).text())
    for confirm in ({}, {"confirm": "yes"}):
        # someone else's child, and the citizen themself: 403, nothing read or sent
        for whom in (other, parent):
            form = {"csrf": csrf, "iin": whom, **confirm}
            answer = await world.client.post("/actions/withdraw?lang=en", data=form)
            assert answer.status == 403 and str(escape(EN["error_403"])) in await answer.text()
        # no CSRF token, or another: 403
        for token in ({}, {"csrf": "x" * 43}):
            answer = await world.client.post("/actions/withdraw?lang=en",
                                             data={"iin": child, **token, **confirm})  # fmt: skip
            assert answer.status == 403 and str(escape(EN["error_csrf"])) in await answer.text()
        # a malformed IIN 400
        answer = await world.client.post("/actions/withdraw",
                                         data={"csrf": csrf, "iin": "1234", **confirm})  # fmt: skip
        assert answer.status == 400
    form = {"csrf": csrf, "iin": child, "confirm": "no"}
    answer = await world.client.post("/actions/withdraw", data=form)
    assert answer.status == 400
    assert (await world.client.get("/actions/withdraw")).status == 405
    assert other not in world.logged_subjects()
    assert not any(str(r["service"]).endswith("/WithdrawFromQueue") for r in portal_log(world))
    assert world.rows("education", "SELECT * FROM queue_entries") == before


async def test_whose_timeline_names_the_children(world: World) -> None:
    parent, child = family_with_attached_child(world)
    last, first = world.rows("population", "SELECT last_name, first_name FROM persons"
                             " WHERE iin = ?", child)[0]  # fmt: skip
    name = str(escape(f"{last} {first}"))
    await sign_in(world.client, parent)
    html = await (await world.client.get("/usage?lang=en")).text()
    option = html.split(f'<option value="{child}"', 1)[1].split("</option>", 1)[0]
    assert f"{EN['usage_child_named']} {name} ({EN['iin_short']} {child})" in option
    html = await (await world.client.get(f"/usage?whom={child}&lang={RU}")).text()
    assert f"{CATALOGUES[RU]['usage_of_child']} {child} ({name})" in html
    # The names were read about each child, as the parent's request about their child.
    about_child = [r for r in portal_log(world) if r["data_subject"] == child]
    names = [r for r in about_child if str(r["service"]).endswith("/GetPerson")]
    assert names and {r["purpose"] for r in names} == {CHILD_PURPOSE}
    assert {r["user_id"] for r in names} == {f"citizen:{parent}"}
