"""The life-events feed's inbox and sink (zhol.portal.feed): what it keeps, what it
refuses, whom an entry is shown to, retention, and how an entry reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from tests.sqlite_rows import rows
from zhol.bus.v1 import bus_pb2
from zhol.core.iin import make_iin
from zhol.education.v1 import education_pb2
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import pension_pb2, recalculation_pb2
from zhol.portal.feed import (
    FEED_SUBSCRIPTIONS,
    EntryView,
    FeedSink,
    FeedStore,
    Refused,
    describe,
)
from zhol.portal.i18n import CATALOGUES


def iin(born: dt.date, female: bool, serial: int) -> str:
    made = make_iin(born, female, serial)
    assert made is not None
    return made.value


MOTHER = iin(dt.date(1990, 4, 1), True, 1001)
FATHER = iin(dt.date(1988, 2, 3), False, 1002)
CHILD = iin(dt.date(2026, 11, 30), True, 1003)
STRANGER = iin(dt.date(1979, 7, 7), False, 1004)
DAY_MS = 24 * 3600 * 1000
NOW_MS = 1_790_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[FeedStore]:
    opened = FeedStore(tmp_path / "feed.db", retention_days=30, now_ms=clock)
    yield opened
    opened.close()


def benefit(message_id: str = "m1", event_id: str = "e1") -> bus_pb2.EventDelivery:
    event = pension_pb2.BenefitAssigned(
        benefit_id="BN-1", kind="childbirth_lump_sum", recipient_iin=MOTHER,
        subject_iin=CHILD, amount=140_000, currency="KZT", frequency="one_off",
        basis="population BirthRegistered, act A-1",
    )  # fmt: skip
    return bus_pb2.EventDelivery(
        event_id=event_id, message_id=message_id, topic="zhol.pension.v1.BenefitAssigned",
        publisher="KZ/GOV/MLSPP/pension", subscriber="KZ/GOV/MDDIAI/portal",
        data_subject=MOTHER, payload=event.SerializeToString(), occurred_at_unix_ms=NOW_MS,
    )  # fmt: skip


def clinic(message_id: str, who: str, at_ms: int = NOW_MS) -> bus_pb2.EventDelivery:
    event = health_pb2.ClinicAttached(iin=who, clinic_id="CL-7", reason="newborn")
    return bus_pb2.EventDelivery(
        event_id=message_id, message_id=message_id, topic="zhol.health.v1.ClinicAttached",
        publisher="KZ/GOV/MOH/health", payload=event.SerializeToString(),
        occurred_at_unix_ms=at_ms,
    )  # fmt: skip


def count(tmp_path: Path) -> int:
    ((n,),) = rows(tmp_path / "feed.db", "SELECT count(*) FROM feed_events")
    return int(n)


async def test_an_event_is_kept_once_under_the_iins_it_names(
    store: FeedStore, tmp_path: Path
) -> None:
    sink = FeedSink(store)
    assert await sink.handle(benefit()) is True
    # A redelivery (same message id) and the same event again (same event id): nothing.
    assert await sink.handle(benefit()) is False
    assert await sink.handle(benefit(message_id="m2")) is False
    assert count(tmp_path) == 1
    ((mother,),) = [[e.about] for e in await store.entries([MOTHER])]
    assert mother == (MOTHER,)
    assert [e.about for e in await store.entries([FATHER, CHILD])] == [(CHILD,)]
    assert await store.entries([STRANGER]) == []
    assert await store.entries([]) == []


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"message_id": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"topic": "zhol.population.v1.BirthRegistered"}, grpc.StatusCode.UNIMPLEMENTED),
        ({"publisher": "KZ/GOV/MOH/health"}, grpc.StatusCode.PERMISSION_DENIED),
        ({"payload": b"\xff\xff\xff"}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_a_bad_delivery_is_refused_and_keeps_nothing(
    store: FeedStore, tmp_path: Path, change: dict[str, object], status: grpc.StatusCode
) -> None:
    delivery = benefit()
    for field, value in change.items():
        setattr(delivery, field, value)
    with pytest.raises(Refused) as refused:
        await FeedSink(store).handle(delivery)
    assert refused.value.status == status
    assert count(tmp_path) == 0


async def test_an_event_naming_nobody_valid_is_not_kept(
    store: FeedStore, tmp_path: Path
) -> None:
    assert await FeedSink(store).handle(clinic("m1", "123456789012")) is False
    assert count(tmp_path) == 0


async def test_entries_older_than_the_retention_go(
    store: FeedStore, tmp_path: Path, clock: Clock
) -> None:
    sink = FeedSink(store)
    await sink.handle(clinic("old", CHILD, at_ms=NOW_MS - 31 * DAY_MS))
    await sink.handle(clinic("recent", CHILD, at_ms=NOW_MS - 29 * DAY_MS))
    assert [e.message_id for e in await store.entries([CHILD])] == ["recent"]
    clock.ms += 2 * DAY_MS  # the next delivery clears what is past the window
    await sink.handle(clinic("new", MOTHER))
    assert [e.message_id for e in await store.entries([CHILD, MOTHER])] == ["new"]
    assert rows(tmp_path / "feed.db", "SELECT count(*) FROM feed_subjects") == [(1,)]


async def test_how_an_entry_reads(store: FeedStore) -> None:
    sink = FeedSink(store)
    await sink.handle(benefit())
    queued = education_pb2.QueuedForKindergarten(
        iin=CHILD, district="Yesil", region="Astana", reason=education_pb2.QUEUE_REASON_NEWBORN
    )
    await sink.handle(
        bus_pb2.EventDelivery(
            message_id="q1", topic="zhol.education.v1.QueuedForKindergarten",
            publisher="KZ/GOV/MES/education", payload=queued.SerializeToString(),
            occurred_at_unix_ms=NOW_MS + 1,
        )  # fmt: skip
    )
    for_mother = [describe(e, MOTHER) for e in await store.entries([MOTHER, CHILD])]
    assert [v.what for v in for_mother] == ["feed_queued", "feed_benefit_childbirth_lump_sum"]
    queue, paid = for_mother
    assert (queue.whom, queue.why, queue.agency) == (CHILD, "feed_why_queued_newborn",
                                                     "KZ/GOV/MES/education")  # fmt: skip
    # Paid to the mother for the child: it names the child; the basis is the event's.
    assert paid.whom == CHILD and paid.basis == "population BirthRegistered, act A-1"
    assert ("feed_frequency", "feed_one_off", True) in paid.facts
    # Every text key an entry uses exists in the three languages.
    for view in for_mother:
        keys = {view.what, view.why} | {label for label, _, _ in view.facts}
        keys |= {value for _, value, is_key in view.facts if is_key}
        for lang in ("kk", "ru", "en"):
            assert keys <= CATALOGUES[lang].keys()


def test_the_portal_subscribes_to_every_decision_topic_it_shows() -> None:
    assert set(FEED_SUBSCRIPTIONS) == {
        "KZ/GOV/MLSPP/pension/zhol.pension.v1.BenefitAssigned",
        "KZ/GOV/MLSPP/pension/zhol.pension.v1.PensionAssigned",
        "KZ/GOV/MLSPP/pension/zhol.pension.v1.PaymentsStopped",
        "KZ/GOV/MLSPP/pension/zhol.pension.v1.BenefitRecalculated",
        "KZ/GOV/MOH/health/zhol.health.v1.ClinicAttached",
        "KZ/GOV/MOH/health/zhol.health.v1.DisabilityEstablished",
        "KZ/GOV/MES/education/zhol.education.v1.EnrolledInSchool",
        "KZ/GOV/MES/education/zhol.education.v1.QueuedForKindergarten",
        "KZ/GOV/MES/education/zhol.education.v1.QueueEntryMoved",
        "KZ/GOV/MES/education/zhol.education.v1.PlacedInKindergarten",
    }


async def test_a_kindergarten_place_reads_in_every_language(store: FeedStore) -> None:
    placed = education_pb2.PlacedInKindergarten(
        iin=CHILD, kindergarten_id="KG-3", district="Yesil", region="Astana",
        placed_on=education_pb2.Date(year=2029, month=9, day=1),
    )  # fmt: skip
    await FeedSink(store).handle(
        bus_pb2.EventDelivery(
            message_id="p1", topic="zhol.education.v1.PlacedInKindergarten",
            publisher="KZ/GOV/MES/education", payload=placed.SerializeToString(),
        )  # fmt: skip
    )
    (entry,) = await store.entries([FATHER, CHILD])
    view = describe(entry, FATHER)
    assert (view.what, view.why, view.whom) == ("feed_placed", "feed_why_placed", CHILD)
    assert ("feed_kindergarten", "KG-3", False) in view.facts
    assert ("feed_on", "01.09.2029", False) in view.facts
    for lang in ("kk", "ru", "en"):
        assert {view.what, view.why, *(label for label, _, _ in view.facts)} <= CATALOGUES[
            lang
        ].keys()


def delivery(message_id: str, publisher: str, event: Message, at_ms: int = NOW_MS
             ) -> bus_pb2.EventDelivery:
    return bus_pb2.EventDelivery(
        message_id=message_id, event_id=message_id, topic=event.DESCRIPTOR.full_name,
        publisher=publisher, payload=event.SerializeToString(), occurred_at_unix_ms=at_ms,
    )  # fmt: skip


def texts_exist(view: EntryView) -> None:
    keys = {view.what, view.why} | {label for label, _, _ in view.facts}
    keys |= {value for _, value, is_key in view.facts if is_key}
    for lang in ("kk", "ru", "en"):
        assert keys <= CATALOGUES[lang].keys(), lang


async def test_payments_stopped_disability_and_school_read_in_every_language(
    store: FeedStore,
) -> None:
    sink = FeedSink(store)
    stopped = pension_pb2.PaymentsStopped(
        iin=CHILD, reason="death", effective=pension_pb2.Date(year=2026, month=12, day=2),
        basis="population DeathRegistered, act D-9",
    )  # fmt: skip
    disability = health_pb2.DisabilityEstablished(
        iin=MOTHER, group=2, from_date=health_pb2.Date(year=2026, month=11, day=1),
        conclusion_id="MSE-2026-0000007",
    )  # fmt: skip
    school = education_pb2.EnrolledInSchool(
        iin=CHILD, school_id="SCH-71-004", grade=1, enrolment_id=42,
        school_year_start=education_pb2.Date(year=2033, month=9, day=1),
    )  # fmt: skip
    assert await sink.handle(delivery("s1", "KZ/GOV/MLSPP/pension", stopped, NOW_MS))
    assert await sink.handle(delivery("d1", "KZ/GOV/MOH/health", disability, NOW_MS + 1))
    assert await sink.handle(delivery("k1", "KZ/GOV/MES/education", school, NOW_MS + 2))
    views = [describe(e, MOTHER) for e in await store.entries([MOTHER, CHILD])]
    enrolled, established, payments = views
    assert (payments.what, payments.why, payments.whom, payments.agency) == (
        "feed_payments_stopped", "feed_why_stopped_death", CHILD, "KZ/GOV/MLSPP/pension")
    assert payments.basis == "population DeathRegistered, act D-9"
    assert ("feed_stopped_from", "02.12.2026", False) in payments.facts
    assert (established.what, established.why, established.whom) == (
        "feed_disability", "feed_why_disability", "")
    assert established.basis == "MSE-2026-0000007" and established.agency == "KZ/GOV/MOH/health"
    assert ("feed_disability_group", "2", False) in established.facts
    assert ("feed_until", "feed_indefinite", True) in established.facts  # no end date
    assert (enrolled.what, enrolled.why, enrolled.whom) == (
        "feed_enrolled", "feed_why_enrolled", CHILD)
    assert ("feed_school", "SCH-71-004", False) in enrolled.facts
    assert ("feed_school_year", "01.09.2033", False) in enrolled.facts
    # With education's catalogue at hand, the school is named (reference data).
    names = {"SCH-71-004": "School-lyceum No. 4 (SCH-71-004)"}
    named = describe((await store.entries([MOTHER, CHILD]))[0], MOTHER,
                     lambda i: names.get(i, i))
    assert ("feed_school", "School-lyceum No. 4 (SCH-71-004)", False) in named.facts
    for view in views:
        texts_exist(view)
    # Another reason than death still reads as a sentence the catalogues have.
    other = pension_pb2.PaymentsStopped(iin=MOTHER, reason="emigration")
    await sink.handle(delivery("s2", "KZ/GOV/MLSPP/pension", other, NOW_MS + 3))
    (latest, *_) = await store.entries([MOTHER])
    assert describe(latest, MOTHER).why == "feed_why_stopped"
    # Each comes only from the agency that owns it.
    with pytest.raises(Refused):
        await sink.handle(delivery("d2", "KZ/GOV/MLSPP/pension", disability))


async def test_marks_are_the_readers_own_and_only_on_their_feed(
    store: FeedStore, tmp_path: Path, clock: Clock
) -> None:
    sink = FeedSink(store)
    await sink.handle(clinic("child", CHILD))
    await sink.handle(clinic("mother", MOTHER, at_ms=NOW_MS + 1))
    await sink.handle(clinic("stranger", STRANGER, at_ms=NOW_MS + 2))
    mothers = (MOTHER, CHILD)
    assert await store.unread(MOTHER, mothers) == 2
    # Someone else's entry, or no entry at all: refused, nothing written.
    assert await store.mark_read(MOTHER, "stranger", mothers) is False
    assert await store.mark_read(MOTHER, "no-such", mothers) is False
    assert rows(tmp_path / "feed.db", "SELECT count(*) FROM feed_reads") == [(0,)]
    # The child's entry, marked by the mother: read for her, still new for the father.
    assert await store.mark_read(MOTHER, "child", mothers) is True
    assert await store.mark_read(MOTHER, "child", mothers) is True  # again: no change
    assert {e.message_id: e.read for e in await store.entries(mothers, reader=MOTHER)} == {
        "mother": False, "child": True}
    assert [e.read for e in await store.entries([FATHER, CHILD], reader=FATHER)] == [False]
    assert await store.unread(MOTHER, mothers) == 1
    assert rows(tmp_path / "feed.db", "SELECT iin, message_id FROM feed_reads") == [
        (MOTHER, "child")]
    # "Mark all" covers what was received by the page's moment, never the stranger's.
    clock.ms += 1000
    await sink.handle(clinic("later", MOTHER, at_ms=NOW_MS + 3))
    assert await store.mark_all_read(MOTHER, mothers, until_ms=NOW_MS) == 1
    assert {e.message_id: e.read for e in await store.entries(mothers, reader=MOTHER)} == {
        "later": False, "mother": True, "child": True}
    assert await store.mark_all_read(MOTHER, mothers, until_ms=clock.ms) == 1
    assert await store.unread(MOTHER, mothers) == 0
    assert await store.unread(STRANGER, [STRANGER]) == 1
    # Retention takes the marks with their entries.
    clock.ms += 40 * DAY_MS
    await sink.handle(clinic("new", FATHER, at_ms=clock.ms))
    assert rows(tmp_path / "feed.db", "SELECT count(*) FROM feed_reads") == [(0,)]


async def test_a_recalculation_reads_in_every_language_with_old_and_new_amounts(
    store: FeedStore,
) -> None:
    recalculated = recalculation_pb2.BenefitRecalculated(
        recalculation_id="RC-1", decision_id="BN-1", kind="child_care_allowance",
        recipient_iin=MOTHER, subject_iin=CHILD, old_amount=22648, new_amount=24912,
        currency="KZT", change_from=pension_pb2.Month(year=2026, month=6),
        arrears_total=11320, reason="child-care allowance until 1.5",
    )  # fmt: skip
    await FeedSink(store).handle(delivery("r1", "KZ/GOV/MLSPP/pension", recalculated))
    (entry,) = await store.entries([MOTHER])
    view = describe(entry, MOTHER)
    assert (view.what, view.why, view.whom) == (
        "feed_recalculated_child_care_allowance", "feed_why_recalculated", CHILD)
    assert ("feed_old_amount", "22\u00a0648 KZT", False) in view.facts
    assert ("feed_new_amount", "24\u00a0912 KZT", False) in view.facts
    assert ("feed_effective_from", "01.06.2026", False) in view.facts
    assert ("feed_arrears", "11\u00a0320 KZT", False) in view.facts
    assert view.basis == "child-care allowance until 1.5"
    texts_exist(view)
    for kind in ("disability_benefit", "carer_of_disabled_child", "survivor_pension",
                 "age_pension"):
        for lang in ("kk", "ru", "en"):
            assert f"feed_recalculated_{kind}" in CATALOGUES[lang]
