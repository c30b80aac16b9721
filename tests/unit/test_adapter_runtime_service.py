"""adapters.runtime.service: what every agency's servicer shares (no sockets).

Each agency's RPCs over real ports are covered by tests/integration/test_*_service.py;
here: the status mapping (with a stand-in for grpc's ServicerContext, which is not
ours), the writer thread and its notification, the reader/writer opening and closing,
and the request parsers (the read_mask too).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from zhol.adapters.runtime.service import (
    EVERY_FIELD,
    RequestParser,
    StorePair,
    abort_with_status,
    rpc_errors,
    status_in,
)
from zhol.core.clock import Clock, FixedClock
from zhol.core.errors import ZholError
from zhol.pension.v1 import pension_pb2 as pen
from zhol.population.v1 import population_pb2 as pb

VALID_IIN = "900101300017"  # an IIN the core parser accepts (check digit right)


class AgencyError(Exception):
    pass


class Invalid(AgencyError, ValueError):
    pass


class Missing(AgencyError):
    pass


class Unmapped(AgencyError):
    pass


TABLE = ((Invalid, grpc.StatusCode.INVALID_ARGUMENT), (Missing, grpc.StatusCode.NOT_FOUND))


class Aborted(Exception):
    """What the stand-in context raises, as grpc's ``context.abort`` does."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class FakeContext:
    """Only what abort_with_status uses of grpc.aio.ServicerContext."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise Aborted(code, details)


async def aborted(exc: Exception, table: object = TABLE) -> Aborted:
    log = logging.getLogger("zhol.test.agency")
    with pytest.raises(Aborted) as caught:
        await abort_with_status(FakeContext(), exc, table, log, "agency")  # type: ignore[arg-type]
    return caught.value


# -- abort_with_status -------------------------------------------------------------------

async def test_zhol_error_keeps_its_own_status_and_detail(
        caplog: pytest.LogCaptureFixture) -> None:
    err = ZholError("InvalidIdentifier", "an IIN is exactly 12 digits")
    answer = await aborted(err)
    assert (answer.code, answer.details) == (err.status, err.detail)
    assert not caplog.records, "an expected refusal is not logged as an error"


@pytest.mark.parametrize(("exc", "code"), [
    (Invalid("iin: bad"), grpc.StatusCode.INVALID_ARGUMENT),
    (Missing("no such person"), grpc.StatusCode.NOT_FOUND),
])
async def test_agency_errors_map_by_kind_with_their_message(
        exc: Exception, code: grpc.StatusCode, caplog: pytest.LogCaptureFixture) -> None:
    answer = await aborted(exc)
    assert (answer.code, answer.details) == (code, str(exc))
    assert not caplog.records


def test_first_matching_kind_wins() -> None:
    class Both(Missing, Invalid):
        pass

    assert status_in(TABLE, Both("x")) is grpc.StatusCode.INVALID_ARGUMENT
    assert status_in(TABLE, Unmapped("x")) is None


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire: /secret/path"), Unmapped("odd")])
async def test_unexpected_errors_are_logged_and_answered_without_detail(
        exc: Exception, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="zhol.test.agency"):
        answer = await aborted(exc)
    assert (answer.code, answer.details) == (grpc.StatusCode.INTERNAL, "internal error")
    [record] = caplog.records
    assert record.getMessage() == "agency request failed"
    assert record.exc_info is not None and record.exc_info[1] is exc


async def test_a_status_function_is_used_and_internal_counts_as_unexpected(
        caplog: pytest.LogCaptureFixture) -> None:
    def status(exc: Exception) -> grpc.StatusCode | None:
        if isinstance(exc, Unmapped):
            return grpc.StatusCode.INTERNAL
        return grpc.StatusCode.UNAVAILABLE if isinstance(exc, AgencyError) else None

    answer = await aborted(Missing("population down"), status)
    assert (answer.code, answer.details) == (grpc.StatusCode.UNAVAILABLE, "population down")
    assert not caplog.records
    answer = await aborted(Unmapped("odd"), status)
    assert (answer.code, answer.details) == (grpc.StatusCode.INTERNAL, "internal error")
    assert len(caplog.records) == 1


class Agency:
    """An agency servicer's shape: RPC methods taking (request, context)."""

    @rpc_errors(TABLE, logging.getLogger("zhol.test.agency"), "agency")
    async def Double(self, request: int, context: FakeContext) -> int:
        if request < 0:
            raise Missing(f"no {request}")
        if request == 0:
            raise RuntimeError("boom")
        return request * 2


async def test_rpc_errors_passes_answers_through_and_aborts_on_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    agency, context = Agency(), FakeContext()
    # grpc.aio runs a handler as a coroutine only if it is one: the decorator keeps that.
    assert inspect.iscoroutinefunction(agency.Double) and Agency.Double.__name__ == "Double"
    assert await agency.Double(4, context) == 8
    with pytest.raises(Aborted) as caught:
        await agency.Double(-1, context)
    assert (caught.value.code, caught.value.details) == (grpc.StatusCode.NOT_FOUND, "no -1")
    assert not caplog.records
    with pytest.raises(Aborted) as caught:
        await agency.Double(0, context)
    assert (caught.value.code, caught.value.details) == (grpc.StatusCode.INTERNAL,
                                                         "internal error")
    assert [r.getMessage() for r in caplog.records] == ["agency request failed"]


# -- StorePair ---------------------------------------------------------------------------

@dataclass
class FakeStore:
    """Stands in for an agency store: records who closed it and in what order."""

    name: str
    journal: list[str]
    writes_on: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.journal.append(f"close {self.name}")

    def write(self, value: int) -> int:
        self.writes_on.append(threading.current_thread().name)
        if value < 0:
            raise Invalid("negative")
        return value * 2


@dataclass
class Opener:
    journal: list[str]
    reader_fails: bool = False

    def __call__(self, path: Path, clock: Clock, *, read_only: bool = False) -> FakeStore:
        kind = "reader" if read_only else "writer"
        self.journal.append(f"open {kind}")
        if read_only and self.reader_fails:
            raise OSError("database is locked")
        return FakeStore(kind, self.journal)


def open_pair(journal: list[str], notified: list[str]) -> StorePair[FakeStore]:
    return StorePair.open(Opener(journal), Path("agency.db"), FixedClock(0), agency="agency",
                          on_commit=lambda: notified.append("notify"))


def test_open_opens_the_writer_first_and_close_closes_both() -> None:
    journal: list[str] = []
    pair = open_pair(journal, [])
    assert (pair.writer.name, pair.reader.name) == ("writer", "reader")
    pair.close()
    assert journal == ["open writer", "open reader", "close writer", "close reader"]


def test_open_closes_the_writer_when_the_reader_fails() -> None:
    journal: list[str] = []
    with pytest.raises(OSError, match="locked"):
        StorePair.open(Opener(journal, reader_fails=True), Path("agency.db"), FixedClock(0),
                       agency="agency")
    assert journal == ["open writer", "open reader", "close writer"]


async def test_write_runs_on_the_single_writer_thread_then_notifies() -> None:
    journal: list[str] = []
    notified: list[str] = []
    pair = open_pair(journal, notified)
    try:
        results = await asyncio.gather(*(pair.write(pair.writer.write, n) for n in range(5)))
        assert results == [0, 2, 4, 6, 8]
        assert notified == ["notify"] * 5
        threads = set(pair.writer.writes_on)
        assert len(threads) == 1, "all writes on one thread"
        [name] = threads
        assert name.startswith("agency-writer") and name != threading.current_thread().name
    finally:
        pair.close()


async def test_a_failed_write_does_not_notify() -> None:
    notified: list[str] = []
    pair = open_pair([], notified)
    try:
        with pytest.raises(Invalid, match="negative"):
            await pair.write(pair.writer.write, -1)
        assert notified == []
        assert await pair.write(pair.writer.write, 1) == 2
        assert notified == ["notify"], "the next successful write still notifies"
    finally:
        pair.close()


async def test_a_quiet_write_does_not_notify_until_told() -> None:
    notified: list[str] = []
    pair = open_pair([], notified)
    try:
        assert await pair.write(pair.writer.write, 3, notify=False) == 6
        assert notified == []
        pair.committed()
        assert notified == ["notify"]
    finally:
        pair.close()


async def test_no_listener_is_fine() -> None:
    pair = StorePair.open(Opener([]), Path("agency.db"), FixedClock(0), agency="agency")
    try:
        assert await pair.write(pair.writer.write, 2) == 4
        pair.committed()
    finally:
        pair.close()


async def test_close_waits_for_the_running_write() -> None:
    journal: list[str] = []
    pair = open_pair(journal, [])
    started = threading.Event()

    def slow() -> None:
        started.set()
        threading.Event().wait(0.05)
        journal.append("write done")

    running = asyncio.ensure_future(pair.write(slow))
    await asyncio.to_thread(started.wait)
    await asyncio.to_thread(pair.close)
    await running
    assert journal[-3:] == ["write done", "close writer", "close reader"]


# -- RequestParser -----------------------------------------------------------------------

PARSE = RequestParser(Invalid)


def test_iin_parses_or_raises_the_agency_error_naming_the_field() -> None:
    assert PARSE.iin(VALID_IIN, "iin").value == VALID_IIN
    with pytest.raises(Invalid, match=r"^mother_iin: an IIN is exactly 12 digits$"):
        PARSE.iin("123", "mother_iin")


def test_dates() -> None:
    assert PARSE.optional_date(pb.Date(), "to_date") is None
    assert str(PARSE.date(pb.Date(year=2024, month=2, day=29), "from_date")) == "2024-02-29"
    with pytest.raises(Invalid, match=r"^from_date is required$"):
        PARSE.date(pb.Date(), "from_date")
    for bad in (pb.Date(year=2023, month=2, day=29), pb.Date(year=0, month=1, day=1),
                pb.Date(year=2024, month=13, day=1)):
        with pytest.raises(Invalid, match=r"^to_date is not a valid date$"):
            PARSE.optional_date(bad, "to_date")


def test_read_mask_unset_empty_or_star_is_every_field_and_paths_narrow_the_answer() -> None:
    request = pen.GetPensionStatusRequest(iin=VALID_IIN)
    assert PARSE.read_mask(request, pen.PensionStatus) == EVERY_FIELD
    request.read_mask.SetInParent()  # set, but empty (AIP-157: every field)
    assert PARSE.read_mask(request, pen.PensionStatus) == EVERY_FIELD
    request.read_mask.paths[:] = ["*"]
    assert PARSE.read_mask(request, pen.PensionStatus) == EVERY_FIELD
    answer = pen.PensionStatus(iin=VALID_IIN, receives_pension=True, person_status=1,
                               person=pen.PersonView(last_name="Abaev", first_name="Arman"))
    assert EVERY_FIELD.apply(answer) is answer and EVERY_FIELD.wants_any("person")

    request.read_mask.paths[:] = ["receives_pension", "person.last_name"]
    mask = PARSE.read_mask(request, pen.PensionStatus)
    assert mask.wants_any("person") and not mask.wants_any("person_status", "iin")
    assert mask.apply(answer) == pen.PensionStatus(
        receives_pension=True, person=pen.PersonView(last_name="Abaev"))


@pytest.mark.parametrize("paths", [["persn"], ["*", "iin"], [""], ["iin.x"],
                                   ["assignments.kind"], ["person.street"]])
def test_a_read_mask_path_that_is_no_field_of_the_answer_is_the_agencys_invalid_input(
    paths: list[str],
) -> None:
    request = pen.GetPensionStatusRequest(iin=VALID_IIN)
    request.read_mask.paths[:] = paths
    with pytest.raises(Invalid, match=r"^read_mask: .* is not a field of PensionStatus$"):
        PARSE.read_mask(request, pen.PensionStatus)
