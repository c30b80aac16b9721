"""The portal actions' pure parts: the address form's and the education applications'
checks, how an owner's answer becomes the result page's status and the refusal's words,
and the names of kindergartens and schools kept for a while."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from zhol.adapters.education.model import StudyForm, StudyLevel
from zhol.adapters.health import rules as health_rules
from zhol.core.busclient import BusCallError
from zhol.education.v1 import education_pb2
from zhol.portal.i18n import CATALOGUES
from zhol.portal.pages import (
    _STATUS,
    NO_PLACES,
    Outcome,
    Places,
    PlacesCache,
    _outcome,
    parse_address,
    parse_kindergarten,
    parse_school,
    refusal_key,
)

GOOD = {"region": "Astana", "locality": "Astana", "street": "Abay  avenue", "building": "3"}


def test_an_address_is_taken_with_its_whitespace_collapsed() -> None:
    address = parse_address({**GOOD, "apartment": " 12 "})
    assert (address.street, address.apartment, address.district) == ("Abay avenue", "12", "")


@pytest.mark.parametrize(
    "change",
    [{"street": ""}, {"building": "  "}, {"region": "x" * 101}, {"district": "a\x00b"}],
)
def test_an_incomplete_or_oversized_address_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        parse_address({**GOOD, **change})


@pytest.mark.parametrize(
    ("status", "zhol_error", "problem", "http"),
    [
        (grpc.StatusCode.FAILED_PRECONDITION, None, "refused_by_owner", 409),
        (grpc.StatusCode.ALREADY_EXISTS, None, "refused_by_owner", 409),
        (grpc.StatusCode.INVALID_ARGUMENT, None, "invalid_by_owner", 400),
        (grpc.StatusCode.PERMISSION_DENIED, "Server.ServerProxy.AccessDenied", "refused", 403),
        (grpc.StatusCode.UNAVAILABLE, "Server.ClientProxy.NetworkError", "unavailable", 503),
        (grpc.StatusCode.INTERNAL, None, "unavailable", 503),
        # the bus's own INVALID_ARGUMENT is not the owner's reason to show
        (grpc.StatusCode.INVALID_ARGUMENT, "Client.DataSubjectMismatch", "refused", 403),
    ],
)
def test_the_owners_answer_decides_the_result(
    status: grpc.StatusCode, zhol_error: str | None, problem: str, http: int
) -> None:
    outcome = _outcome("KZ/GOV/MOH/health", BusCallError("m", status, "why", zhol_error=zhol_error))
    assert outcome.problem == problem and _STATUS[problem] == http
    assert outcome.reason == ("why" if problem.endswith("_by_owner") else "")


def test_a_refusal_carries_the_owners_status_to_translate() -> None:
    refused = _outcome("o", BusCallError("m", grpc.StatusCode.ALREADY_EXISTS, "why"))
    assert refused.code == "ALREADY_EXISTS"
    down = _outcome("o", BusCallError("m", grpc.StatusCode.UNAVAILABLE, "x", zhol_error="E"))
    assert down.code == ""


@pytest.mark.parametrize(
    ("action", "code", "key"),
    [
        ("kindergarten", "ALREADY_EXISTS", "refusal_kindergarten_already_exists"),
        ("kindergarten", "FAILED_PRECONDITION", "refusal_kindergarten_failed_precondition"),
        ("school", "NOT_FOUND", "refusal_school_not_found"),
        ("school", "INVALID_ARGUMENT", "refusal_school_invalid_argument"),
        ("school", "", ""),  # no status of the owner's: nothing to translate
        ("clinic", "ALREADY_EXISTS", ""),  # no sentence for it: the owner's words only
    ],
)
def test_the_owners_refusal_has_words_in_every_language(action: str, code: str, key: str) -> None:
    assert refusal_key(action, Outcome("o", problem="refused_by_owner", code=code)) == key
    if key:
        assert all(CATALOGUES[lang][key] for lang in ("kk", "ru", "en"))


def test_a_kindergarten_is_any_or_an_id() -> None:
    assert parse_kindergarten({}) == "" and parse_kindergarten({"kindergarten": " "}) == ""
    assert parse_kindergarten({"kindergarten": " KG-004-02 "}) == "KG-004-02"
    for bad in ("KG-4-2", "SCH-004-02", "KG-004-02x", "<b>"):
        with pytest.raises(ValueError):
            parse_kindergarten({"kindergarten": bad})


def test_a_school_and_a_grade_from_1_to_11() -> None:
    assert parse_school({"school": "SCH-001-01"}) == ("SCH-001-01", 1)
    assert parse_school({"school": "SCH-001-01", "grade": "11"}) == ("SCH-001-01", 11)
    for school in ("", "KG-001-01", "SCH-1-1"):
        with pytest.raises(ValueError, match="^school$"):
            parse_school({"school": school})
    for grade in ("0", "12", "-1", "²", "1.5", "one"):  # the error names the field
        with pytest.raises(ValueError, match="^grade$"):
            parse_school({"school": "SCH-001-01", "grade": grade})


def _places(name: str) -> Places:
    school = education_pb2.School(school_id="SCH-001-01", name=name)
    return Places({"KG-001-01": education_pb2.Kindergarten(kindergarten_id="KG-001-01")},
                  {"SCH-001-01": school})  # fmt: skip


def test_a_place_is_shown_by_name_and_id_or_by_id_alone() -> None:
    places = _places("School No. 5")
    assert places.label("SCH-001-01") == "School No. 5 (SCH-001-01)"
    assert places.label("KG-001-01") == "KG-001-01"  # education gave no name
    assert places.label("SCH-009-09") == "SCH-009-09" and not NO_PLACES


async def test_the_names_are_kept_a_while_and_read_once_for_many_requests() -> None:
    now = [0.0]
    cache = PlacesCache(lambda: now[0], ttl_s=60)
    reads: list[str] = []
    answer: list[Places | None] = [_places("first")]

    async def read() -> Places | None:
        reads.append("read")
        await asyncio.sleep(0)
        return answer[0]

    first = await asyncio.gather(*(cache.get(read) for _ in range(16)))
    assert reads == ["read"] and all(p.label("SCH-001-01") == "first (SCH-001-01)" for p in first)
    now[0] = 59.0
    await cache.get(read)
    assert len(reads) == 1  # still fresh
    now[0] = 61.0
    answer[0] = None  # education not answering: the older names, and try again next time
    assert (await cache.get(read)).label("SCH-001-01") == "first (SCH-001-01)"
    answer[0] = _places("second")
    assert (await cache.get(read)).label("SCH-001-01") == "second (SCH-001-01)"
    assert len(reads) == 3


async def test_names_never_read_are_none() -> None:
    async def fails() -> Places | None:
        return None

    assert (await PlacesCache(lambda: 0.0, 60).get(fails)) is NO_PLACES


def test_every_study_level_and_form_and_attachment_basis_has_words_in_every_language() -> None:
    # The education page's studies and the health page's basis never show a raw code.
    keys = [f"level_{level.value}" for level in StudyLevel]
    keys += [f"form_{form.value}" for form in StudyForm]
    keys += [f"basis_{basis}" for basis in health_rules.ATTACHMENT.bases] + ["basis_unknown"]
    for lang in ("kk", "ru", "en"):
        missing = [key for key in keys if not CATALOGUES[lang].get(key)]
        assert not missing, (lang, missing)
