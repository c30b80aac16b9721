"""A gateway's data directory on a full disk: nothing leaves the gateway, and nothing
reaches an IS, that the gateway's message log does not hold.

Each test puts one gateway's data directory on a small real tmpfs and fills it.
Where this machine does not allow mounting, the same fault is injected at the SQLite
layer instead: an authorizer on the gateway's own SQLite connections refuses every
write while the "disk" is full. After each fault the provider's IS and both logs
must agree, and once space is freed the gateway works again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import (
    GET_PERSON,
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    start_federation,
)
from tests.integration.test_bus import some_iin
from tests.integration.test_events import PUBLISHER, SUBSCRIBER, TOPIC, Sink, birth, publish
from tests.waiting import until
from zhol.bus.v1 import bus_pb2_grpc
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION_METHODS, POPULATION_SERVICE
from zhol.cli.main import main as zhol
from zhol.core.ids import SubsystemId
from zhol.gateway.eventstore import EventStore
from zhol.gateway.messagelog import MessageLog, list_records
from zhol.population.v1 import population_pb2

POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")


@dataclass
class SmallDisk:
    """A gateway's data directory on a disk that can be filled and freed."""

    path: Path
    mounted: bool
    full: bool = False

    def fill(self) -> None:
        self.full = True
        if not self.mounted:
            return
        filler = self.path / "filler"
        chunk = b"\0" * 65536
        # The close may fail too (a partly written chunk still buffered), whatever the
        # free space left: both inside the try.
        try:
            with filler.open("wb") as out:
                while True:
                    out.write(chunk)
                    out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        # Leave not even a partial page free.
        for n in range(64):
            try:
                (self.path / f"filler-{n}").write_bytes(b"\0" * 512)
            except OSError:
                break

    def free(self) -> None:
        self.full = False
        if self.mounted:
            for filler in self.path.glob("filler*"):
                filler.unlink()


def _try_mount(path: Path) -> bool:
    """A 16 MiB tmpfs on ``path``; False where this machine does not allow it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _refuse_writes_while_full(disk: SmallDisk, conn: sqlite3.Connection) -> None:
    writes = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}

    def authorize(action: int, *_: object) -> int:
        return sqlite3.SQLITE_DENY if disk.full and action in writes else sqlite3.SQLITE_OK

    conn.set_authorizer(authorize)


@pytest.fixture
def inject_at_sqlite(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SmallDisk]]:
    """Where no tmpfs can be mounted: every gateway SQLite connection opened after this
    refuses writes while a registered disk is full."""
    disks: list[SmallDisk] = []
    writer = MessageLog._connect_writer
    store = EventStore._connect

    def full_writer(self: MessageLog) -> sqlite3.Connection:
        conn = writer(self)
        for disk in disks:
            if self.path.is_relative_to(disk.path):
                _refuse_writes_while_full(disk, conn)
        return conn

    def full_store(self: EventStore) -> sqlite3.Connection:
        fresh = self._db is None
        conn = store(self)
        for disk in disks:
            if fresh and self._path.is_relative_to(disk.path):
                _refuse_writes_while_full(disk, conn)
        return conn

    monkeypatch.setattr(MessageLog, "_connect_writer", full_writer)
    monkeypatch.setattr(EventStore, "_connect", full_store)
    yield disks


async def restart_with(bed: Bed, gateway_id: str, *, call_stream: bool = True) -> None:
    """Restart ``gateway_id``, calling its peers on CallStream or on unary Call."""
    await bed.fed.restart_gateway(gateway_id, "" if call_stream else "peer_call_stream = false\n")


async def move_to_small_disk(bed: Bed, gateway_id: str, *, call_stream: bool = True) -> SmallDisk:
    """Restart ``gateway_id`` with its data directory on a small disk."""
    fed = bed.fed
    await fed.gateways.pop(gateway_id).stop(0)
    data = fed.layout.gateway(gateway_id)
    saved = data.with_name(data.name + ".saved")
    data.rename(saved)
    data.mkdir(mode=0o700)
    disk = SmallDisk(data, mounted=_try_mount(data))
    bed.disks.append(disk)
    if not disk.mounted:
        bed.injected.append(disk)
    shutil.copytree(saved, data, dirs_exist_ok=True)
    await fed.start_gateway(gateway_id)
    if not call_stream:
        await restart_with(bed, gateway_id, call_stream=False)
    return disk


@dataclass
class CountingIs:
    """The provider's IS for GetPerson: counts what reaches it (its state)."""

    calls: list[str] = field(default_factory=list)

    async def get_person(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        iin = population_pb2.GetPersonRequest.FromString(request).iin
        self.calls.append(iin)
        return population_pb2.Person(iin=iin, last_name="Test").SerializeToString()


@dataclass
class Bed:
    fed: Federation
    is_calls: CountingIs
    sink: Sink
    disks: list[SmallDisk]
    # Disks faulted at the SQLite layer (no tmpfs could be mounted).
    injected: list[SmallDisk]


@pytest_asyncio.fixture
async def bed(tmp_path: Path, inject_at_sqlite: list[SmallDisk]) -> AsyncIterator[Bed]:
    fed = await start_federation(tmp_path, persons=20)
    counting = CountingIs()
    server = grpc.aio.server()

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):  # type: ignore[no-untyped-def]
            if details.method == GET_PERSON:
                return grpc.unary_unary_rpc_method_handler(counting.get_person)
            return None

    server.add_generic_rpc_handlers((Handler(),))
    sink = Sink()
    bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    fed.provider.local.expose(
        POPULATION, POPULATION_SERVICE, f"127.0.0.1:{port}", POPULATION_METHODS
    )
    provider_dir = str(fed.layout.gateway(PROVIDER_GATEWAY))
    consumer_dir = str(fed.layout.gateway(CONSUMER_GATEWAY))
    assert zhol(["events", "subscribe", "--gateway", provider_dir, "--subscriber", SUBSCRIBER,
                 "--topic", f"{PUBLISHER}/{TOPIC}"]) == 0  # fmt: skip
    assert zhol(["events", "sink", "--gateway", consumer_dir, "--subsystem", SUBSCRIBER,
                 "--address", f"127.0.0.1:{port}"]) == 0  # fmt: skip
    bed = Bed(fed, counting, sink, [], inject_at_sqlite)
    try:
        yield bed
    finally:
        await server.stop(0)
        await fed.stop()
        for disk in bed.disks:
            if disk.mounted:
                subprocess.run(["umount", "-l", str(disk.path)], check=False)


async def get_person(fed: Federation, iin: str) -> str:
    """A call through the consumer gateway; returns its message id."""
    _, trailers = await call_raw(
        fed.is_address(),
        GET_PERSON,
        population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
        bus_metadata(data_subject=iin),
        timeout=10,
    )
    return trailers["zhol-message-id"]


def kinds_of(fed: Federation, gateway_id: str, message_id: str) -> list[str]:
    return [k for m, k, _ in logged(fed, gateway_id) if m == message_id]


def outbox(fed: Federation) -> dict[str, object]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        zhol(["events", "status", "--gateway", str(fed.layout.gateway(PROVIDER_GATEWAY)),
              "--json"])  # fmt: skip
    status: dict[str, object] = json.loads(out.getvalue())
    return status


def last_delivery_error(fed: Federation) -> str:
    events_db = fed.layout.gateway(PROVIDER_GATEWAY) / "events.db"
    with contextlib.closing(sqlite3.connect(f"{events_db.as_uri()}?mode=ro", uri=True)) as db:
        (error,) = db.execute("SELECT last_error FROM outbox").fetchone()
    return str(error)


def logged(fed: Federation, gateway_id: str) -> list[tuple[str, str, str]]:
    path = fed.layout.gateway(gateway_id) / "messagelog.db"
    return [(r["message_id"], r["kind"], r["direction"]) for r in list_records(path)]


async def until_ok(fed: Federation, iin: str, seconds: float = 15.0) -> str:
    """Calls succeed again once space is freed (no restart, no operator action)."""
    for _ in range(int(seconds / 0.2)):
        try:
            return await get_person(fed, iin)
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.2)
    raise AssertionError("the gateway did not recover once space was freed")


@pytest.mark.parametrize("stream", [True, False], ids=["call-stream", "unary-call"])
async def test_a_consumer_on_a_full_disk_sends_nothing(bed: Bed, stream: bool) -> None:
    fed = bed.fed
    disk = await move_to_small_disk(bed, CONSUMER_GATEWAY, call_stream=stream)
    provider_before = logged(fed, PROVIDER_GATEWAY)
    consumer_before = logged(fed, CONSUMER_GATEWAY)
    iin = some_iin(fed)
    disk.fill()
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await get_person(fed, iin)
        assert error_code(caught.value) == "Server.ClientProxy.LoggingFailed"
    assert bed.is_calls.calls == []
    assert logged(fed, PROVIDER_GATEWAY) == provider_before
    assert logged(fed, CONSUMER_GATEWAY) == consumer_before
    disk.free()
    message_id = await until_ok(fed, iin)
    assert bed.is_calls.calls == [iin]
    for gateway_id in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        assert kinds_of(fed, gateway_id, message_id) == ["request", "response"]


@pytest.mark.parametrize("stream", [True, False], ids=["call-stream", "unary-call"])
async def test_a_provider_on_a_full_disk_hands_nothing_to_its_is(bed: Bed, stream: bool) -> None:
    fed = bed.fed
    if not stream:
        await restart_with(bed, CONSUMER_GATEWAY, call_stream=False)
    disk = await move_to_small_disk(bed, PROVIDER_GATEWAY)
    provider_before = logged(fed, PROVIDER_GATEWAY)
    consumer_before = logged(fed, CONSUMER_GATEWAY)
    iin = some_iin(fed)
    disk.fill()
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await get_person(fed, iin)
        assert error_code(caught.value) == "Server.ServerProxy.LoggingFailed"
    assert bed.is_calls.calls == []
    assert logged(fed, PROVIDER_GATEWAY) == provider_before
    # The consumer logged each request it sent, and no answer.
    sent = logged(fed, CONSUMER_GATEWAY)[len(consumer_before) :]
    assert [(k, d) for _, k, d in sent] == [("request", "out")] * 3
    disk.free()
    message_id = await until_ok(fed, iin)
    assert bed.is_calls.calls == [iin]
    for gateway_id in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        assert kinds_of(fed, gateway_id, message_id) == ["request", "response"]


async def test_a_subscriber_on_a_full_disk_takes_no_event_until_it_can_log_it(bed: Bed) -> None:
    fed = bed.fed
    disk = await move_to_small_disk(bed, CONSUMER_GATEWAY)
    consumer_before = logged(fed, CONSUMER_GATEWAY)
    disk.fill()
    event = birth()
    await publish(fed, event)
    fed.provider.deliveries.notify()
    await until(lambda: outbox(fed)["retrying"] == 1)
    assert last_delivery_error(fed) == "Server.ServerProxy.LoggingFailed"
    assert bed.sink.received == []
    assert logged(fed, CONSUMER_GATEWAY) == consumer_before
    disk.free()
    fed.provider.deliveries.notify()
    await until(lambda: outbox(fed)["delivered"] == 1, timeout=30)
    assert [d.event_id for d in bed.sink.received] == [event.event_id]
    delivery_id = bed.sink.received[0].message_id
    # Every attempt that got through is on record on both sides, each with its answer.
    subscriber = kinds_of(fed, CONSUMER_GATEWAY, delivery_id)
    publisher = kinds_of(fed, PROVIDER_GATEWAY, delivery_id)
    assert subscriber == ["event", "response"]
    assert publisher.count("response") == 1 and set(publisher) == {"event", "response"}


async def test_a_publisher_on_a_full_disk_accepts_no_event(bed: Bed) -> None:
    fed = bed.fed
    disk = await move_to_small_disk(bed, PROVIDER_GATEWAY)
    disk.fill()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await publish(fed, birth())
    assert error_code(caught.value) == "Server.ClientProxy.LoggingFailed"
    disk.free()
    event = birth()
    await publish(fed, event)
    fed.provider.deliveries.notify()
    await until(lambda: outbox(fed)["delivered"] == 1)
    assert [d.event_id for d in bed.sink.received] == [event.event_id]
