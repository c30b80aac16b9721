"""`zhol faults`: the federation, the load, and the scenarios' faults (cli/faults.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from zhol.cli import bench_births
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY, call_metadata, start_federation
from zhol.cli.faults_figures import OK, CallRecord, LogView, ScenarioFigures, aggregate
from zhol.cli.federation import (
    ALL_AGENCIES,
    GATEWAYS,
    Layout,
    Ports,
    gateways_of,
    init_registry_dir,
)
from zhol.cli.health import check_health
from zhol.cli.processes import Supervisor
from zhol.core.grpcerr import trailer_value
from zhol.core.metadata import ERROR_KEY, MESSAGE_ID_KEY
from zhol.population.v1 import population_pb2 as pop
from zhol.registry.settings import SETTINGS_FILE, load_registry_settings, settings_toml

HOST = "127.0.0.1"
GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"
# The federation's global configuration: refreshed every 2 s, expired 8 s after it was
# signed, so the registry outage passes the expiry in seconds rather than 10 minutes.
REFRESH_INTERVAL_S = 2
VALIDITY_S = 8
# The consumer's and the provider's gateway directories, when tmpfs can be mounted:
# room for the whole run's message logs; the full-disk scenarios fill what is left.
TMPFS_SIZE = "64m"
CALL_DEADLINE_S = 2.0
BIRTH_DEADLINE_S = 5.0
LAST_NAME = "Faultova"

KILL_CONSUMER_GATEWAY = "kill-consumer-gateway"
KILL_PROVIDER_GATEWAY = "kill-provider-gateway"
KILL_ADAPTER = "kill-adapter"
KILL_REGISTRY = "kill-registry"
FULL_DISK_CONSUMER = "full-disk-consumer"
FULL_DISK_PROVIDER = "full-disk-provider"
REGISTRY_OUTAGE = "registry-outage"
BLACK_HOLE_PEER = "black-hole-peer"
SLOW_IS = "slow-is"
SCENARIOS = (
    KILL_CONSUMER_GATEWAY,
    KILL_PROVIDER_GATEWAY,
    KILL_ADAPTER,
    KILL_REGISTRY,
    FULL_DISK_CONSUMER,
    FULL_DISK_PROVIDER,
    BLACK_HOLE_PEER,
    SLOW_IS,
    REGISTRY_OUTAGE,
)


@dataclass(frozen=True, slots=True)
class Pace:
    """How long each phase of a scenario lasts (seconds)."""

    before: float  # load before the fault
    down: float  # a killed component stays down this long before its restart
    fault: float  # a black hole, a stopped IS, a full disk under load
    after: float  # load after the component is SERVING again
    births_every: float  # one birth registered every this often
    workers: int  # concurrent GetPerson callers
    pause: float  # each caller's pause between calls
    serving_timeout: float  # the most a component may take to be SERVING again
    decisions_timeout: float  # the most the births' decisions may take after the load
    # The registry stays down this long after every gateway failed closed: long enough
    # for the gateways' reconnection to the registry to back off as it would in a real
    # outage (gRPC's reconnect backoff grows with each failed attempt).
    outage: float


FULL_PACE = Pace(2.0, 1.0, 4.0, 3.0, 0.25, 4, 0.02, 100.0, 60.0, 30.0)
QUICK_PACE = Pace(1.0, 0.5, 3.0, 1.5, 0.4, 3, 0.03, 60.0, 40.0, 2.0)


def _dir_name(gateway_id: str) -> str:
    return next(g.dir_name for g in GATEWAYS if g.id == gateway_id)


@dataclass
class Federation:
    layout: Layout
    ports: Ports
    supervisor: Supervisor
    mounts: dict[str, Path] = field(default_factory=dict)  # gateway id -> tmpfs mount point
    mount_error: str = ""  # why no tmpfs could be mounted ("" if mounted)

    @classmethod
    @contextlib.contextmanager
    def start(cls, root: Path, persons: int) -> Iterator[Federation]:
        layout = Layout(root)
        init_registry_dir(layout)
        shorten_expiry(layout.registry)
        mounts: dict[str, Path] = {}
        error = ""
        try:
            for gateway_id in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
                path = layout.gateway(gateway_id)
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                error = mount_tmpfs(path, TMPFS_SIZE)
                if error:
                    break
                mounts[gateway_id] = path
            with Supervisor(layout.logs) as supervisor:
                ports = start_federation(layout, HOST, persons, supervisor, ALL_AGENCIES)
                yield cls(layout, ports, supervisor, mounts, error)
        finally:
            for path in mounts.values():
                unmount(path)

    def gateway_address(self, gateway_id: str) -> str:
        return self.ports.is_address(gateway_id)

    def all_addresses(self) -> list[str]:
        """Every component's health address: registry, gateways (IS side), adapters."""
        return (
            [self.ports.address(self.ports.registry)]
            + [self.ports.is_address(g.id) for g in gateways_of(ALL_AGENCIES)]
            + [self.ports.adapter_address(name) for name in ALL_AGENCIES]
        )


def shorten_expiry(registry_dir: Path) -> None:
    settings = load_registry_settings(registry_dir)
    shorter = dataclasses.replace(
        settings, refresh_interval_s=REFRESH_INTERVAL_S, validity_s=VALIDITY_S
    )
    (registry_dir / SETTINGS_FILE).write_text(settings_toml(shorter))


def mount_tmpfs(path: Path, size: str) -> str:
    """Mount a tmpfs of ``size`` on ``path``; "" when mounted, else why not."""
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot mount tmpfs ({type(exc).__name__})"
    if done.returncode != 0:
        return f"cannot mount tmpfs ({done.stderr.strip() or done.returncode})"
    return ""


def unmount(path: Path) -> None:
    # Lazy: a process that has not quite exited must not leave the mount behind.
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10, check=False)


def fill_disk(path: Path) -> int:
    """Write ``path`` until its file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as out:
        while len(chunk) >= 512:
            try:
                written += out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 4]
    return written


class BlackHole:
    """A TCP listener that accepts connections and never reads or answers."""

    def __init__(self, host: str, port: int) -> None:
        self._server = socket.create_server((host, port), backlog=128)
        self._server.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self._server.accept()
                self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in [*self._held, self._server]:
            conn.close()


class Load:
    """GetPerson calls through the consumer gateway until stopped; every call recorded."""

    def __init__(self, address: str, purpose: str, iins: Sequence[str], pace: Pace) -> None:
        self._address = address
        self._purpose = purpose
        self._iins = iins
        self._pace = pace
        self.calls: list[CallRecord] = []

    def failures(self) -> int:
        return sum(c.code != OK for c in self.calls)

    async def run(self, stop: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(self._address) as channel:
            get = channel.unary_unary(
                GET_PERSON,
                request_serializer=pop.GetPersonRequest.SerializeToString,
                response_deserializer=pop.Person.FromString,
            )

            async def worker(offset: int) -> None:
                i = offset
                while not stop.is_set():
                    await self._one(get, self._iins[i % len(self._iins)])
                    i += self._pace.workers
                    await asyncio.sleep(self._pace.pause)

            await asyncio.gather(*(worker(n) for n in range(self._pace.workers)))

    async def _one(self, get: grpc.aio.UnaryUnaryMultiCallable, iin: str) -> None:
        started = time.monotonic()
        call = get(
            pop.GetPersonRequest(iin=iin),
            metadata=call_metadata(self._purpose, iin),
            timeout=CALL_DEADLINE_S,
        )
        try:
            await call
            trailers = await call.trailing_metadata()
            code = OK
        except grpc.aio.AioRpcError as exc:
            trailers = exc.trailing_metadata()
            code = trailer_value(trailers, ERROR_KEY) or f"grpc.{exc.code().name}"
        message_id = trailer_value(trailers, MESSAGE_ID_KEY) or ""
        self.calls.append(
            CallRecord(code, message_id, started, time.monotonic() - started, CALL_DEADLINE_S)
        )


class Births:
    """Births registered at population (its own system calls its adapter) until stopped."""

    def __init__(self, layout: Layout, ports: Ports, tag: str, pace: Pace) -> None:
        self._layout = layout
        self._address = ports.adapter_address("population")
        self.tag = tag
        self._pace = pace
        self.sent = 0
        self.failed = 0

    async def run(self, stop: asyncio.Event, mothers: list[str], fathers: list[str]) -> None:
        async with grpc.aio.insecure_channel(self._address) as channel:
            register = channel.unary_unary(
                bench_births.REGISTER,
                request_serializer=pop.RegisterBirthRequest.SerializeToString,
                response_deserializer=pop.RegisterBirthResponse.FromString,
            )
            while not stop.is_set():
                request = bench_births.birth_request(
                    mothers[self.sent % len(mothers)], fathers[self.sent % len(fathers)]
                )
                request.last_name = LAST_NAME
                request.first_name = f"{self.tag}{uuid.uuid4().hex[:8]}"
                self.sent += 1
                try:
                    await register(request, timeout=BIRTH_DEADLINE_S)
                except grpc.aio.AioRpcError:
                    self.failed += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._pace.births_every)

    def children(self) -> list[str]:
        """Every child population holds from this run, answered or not: a registration
        whose answer was lost may still have been made, and decided on."""
        with bench_births._read_only(self._layout.population_db) as db:
            rows = db.execute(
                "SELECT iin FROM persons WHERE last_name = ? AND first_name LIKE ?",
                (LAST_NAME, f"{self.tag}%"),
            ).fetchall()
        return [r[0] for r in rows]


def log_view(path: Path, purpose: str) -> LogView:
    """What one gateway's message log holds of the calls made with this purpose."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        rows = db.execute(
            "SELECT message_id, kind, direction FROM messages WHERE purpose = ?", (purpose,)
        ).fetchall()
    return LogView(frozenset((m, k, d) for m, k, d in rows))


async def serving_after(addresses: Sequence[str], since: float, timeout: float) -> float | None:
    """Seconds from ``since`` until every address answers SERVING; None if not in time."""
    pending = list(addresses)
    while pending:
        results = await asyncio.gather(
            *(asyncio.to_thread(check_health, a, "", None, 1.0) for a in pending)
        )
        pending = [r.address for r in results if r.status != "SERVING"]
        if not pending:
            break
        if time.monotonic() - since > timeout:
            return None
        await asyncio.sleep(0.1)
    return round(time.monotonic() - since, 2)


async def not_serving(addresses: Sequence[str], timeout: float) -> float | None:
    """Seconds until every address answers something other than SERVING."""
    since = time.monotonic()
    while time.monotonic() - since < timeout:
        results = await asyncio.gather(
            *(asyncio.to_thread(check_health, a, "", None, 1.0) for a in addresses)
        )
        if all(r.status != "SERVING" for r in results):
            return round(time.monotonic() - since, 2)
        await asyncio.sleep(0.2)
    return None


@dataclass
class Run:
    """One scenario in progress: what the fault needs, what it reports back."""

    federation: Federation
    pace: Pace
    load: Load
    serving_again_s: float | None = None
    lifted_at: float | None = None  # when the fault ended (monotonic)
    notes: list[str] = field(default_factory=list)
    not_run: str = ""


Fault = Callable[[Run], Awaitable[None]]


async def _kill_and_restart(run: Run, name: str, health: Sequence[str]) -> None:
    supervisor = run.federation.supervisor
    await asyncio.to_thread(supervisor.kill, name)
    await asyncio.sleep(run.pace.down)
    run.lifted_at = time.monotonic()
    await asyncio.to_thread(supervisor.restart, name)
    run.serving_again_s = await serving_after(health, run.lifted_at, run.pace.serving_timeout)


async def kill_consumer_gateway(run: Run) -> None:
    address = run.federation.gateway_address(CONSUMER_GATEWAY)
    await _kill_and_restart(run, _dir_name(CONSUMER_GATEWAY), [address])


async def kill_provider_gateway(run: Run) -> None:
    address = run.federation.gateway_address(PROVIDER_GATEWAY)
    await _kill_and_restart(run, _dir_name(PROVIDER_GATEWAY), [address])


async def kill_adapter(run: Run) -> None:
    """The provider's IS on the load's path, which also registers the births."""
    await _kill_and_restart(run, "population", [run.federation.ports.adapter_address("population")])


async def kill_registry(run: Run) -> None:
    ports = run.federation.ports
    await _kill_and_restart(run, "registry", [ports.address(ports.registry)])


async def registry_outage(run: Run) -> None:
    """Registry stopped until every gateway fails closed; restarted; all SERVING again?"""
    federation = run.federation
    gateways = [federation.gateway_address(g.id) for g in gateways_of(ALL_AGENCIES)]
    await asyncio.to_thread(federation.supervisor.stop, "registry")
    closed = await not_serving(gateways, VALIDITY_S + 30)
    run.notes.append(
        "gateways still SERVING past the configuration's expiry"
        if closed is None
        else f"every gateway NOT_SERVING {closed:.1f} s after the registry stopped"
    )
    await asyncio.sleep(run.pace.outage)  # calls meet the expired configuration
    run.lifted_at = time.monotonic()
    await asyncio.to_thread(federation.supervisor.restart, "registry")
    run.serving_again_s = await serving_after(gateways, run.lifted_at, run.pace.serving_timeout)


async def black_hole_peer(run: Run) -> None:
    """The provider gateway's peer port taken by a listener that accepts and never answers."""
    federation = run.federation
    name = _dir_name(PROVIDER_GATEWAY)
    await asyncio.to_thread(federation.supervisor.stop, name)
    hole = BlackHole(HOST, federation.ports.gateway_peer[PROVIDER_GATEWAY])
    try:
        await asyncio.sleep(run.pace.fault)
    finally:
        hole.close()
    run.notes.append(f"the black hole accepted {hole.accepted} connection(s)")
    run.lifted_at = time.monotonic()
    await asyncio.to_thread(federation.supervisor.restart, name)
    run.serving_again_s = await serving_after(
        [federation.gateway_address(PROVIDER_GATEWAY)], run.lifted_at, run.pace.serving_timeout
    )


async def slow_is(run: Run) -> None:
    """The provider's IS stopped (SIGSTOP) longer than a call's deadline, then resumed."""
    pid = run.federation.supervisor.pid("population")
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(max(run.pace.fault, CALL_DEADLINE_S * 2))
    finally:
        os.kill(pid, signal.SIGCONT)
    run.lifted_at = time.monotonic()
    run.serving_again_s = await serving_after(
        [run.federation.ports.adapter_address("population")], run.lifted_at,
        run.pace.serving_timeout,
    )  # fmt: skip


def _full_disk(gateway_id: str) -> Fault:
    async def fault(run: Run) -> None:
        mount = run.federation.mounts.get(gateway_id)
        if mount is None:
            run.not_run = run.federation.mount_error or "cannot mount tmpfs"
            return
        filler = mount / "filler"
        written = await asyncio.to_thread(fill_disk, filler)
        failed_before = run.load.failures()
        # The log's WAL may still have room for a while: run until calls fail, bounded.
        deadline = time.monotonic() + run.pace.fault * 2
        while time.monotonic() < deadline:
            if run.load.failures() - failed_before >= 5:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(run.pace.down)
        address = run.federation.gateway_address(gateway_id)
        health = await asyncio.to_thread(check_health, address, "", None, 2.0)
        filler.unlink()
        run.notes.append(
            f"filled the disk with {written >> 10} KiB (health then: "
            f"{health.status or health.error}), then freed it"
        )
        run.lifted_at = time.monotonic()
        run.serving_again_s = await serving_after(
            [run.federation.gateway_address(gateway_id)], run.lifted_at, run.pace.serving_timeout
        )

    return fault


FAULTS: dict[str, Fault] = {
    KILL_CONSUMER_GATEWAY: kill_consumer_gateway,
    KILL_PROVIDER_GATEWAY: kill_provider_gateway,
    KILL_ADAPTER: kill_adapter,
    KILL_REGISTRY: kill_registry,
    FULL_DISK_CONSUMER: _full_disk(CONSUMER_GATEWAY),
    FULL_DISK_PROVIDER: _full_disk(PROVIDER_GATEWAY),
    REGISTRY_OUTAGE: registry_outage,
    BLACK_HOLE_PEER: black_hole_peer,
    SLOW_IS: slow_is,
}


async def run_scenarios(
    federation: Federation, names: Sequence[str], pace: Pace, run_id: str
) -> list[ScenarioFigures]:
    population = federation.ports.adapter_address("population")
    async with grpc.aio.insecure_channel(population) as channel:
        mothers, fathers = await bench_births.parents(channel)
    iins = mothers[:200] + fathers[:200]
    figures = []
    for index, name in enumerate(names):
        figures.append(
            await run_scenario(federation, name, pace, f"Fault{run_id}{index:02d}x", iins,
                               (mothers, fathers))
        )  # fmt: skip
    return figures


async def run_scenario(
    federation: Federation,
    name: str,
    pace: Pace,
    tag: str,
    iins: Sequence[str],
    parents: tuple[list[str], list[str]],
) -> ScenarioFigures:
    if name.startswith("full-disk") and not federation.mounts:
        return ScenarioFigures(name, not_run=federation.mount_error or "cannot mount tmpfs")
    notes = []
    ready = await serving_after(federation.all_addresses(), time.monotonic(), 60.0)
    if ready is None:
        notes.append("not every component was SERVING before the fault (waited 60 s)")
    purpose = f"faults {name} {tag}"
    load = Load(federation.gateway_address(CONSUMER_GATEWAY), purpose, iins, pace)
    births = Births(federation.layout, federation.ports, tag, pace)
    run = Run(federation, pace, load)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(load.run(stop)),
        asyncio.create_task(births.run(stop, *parents)),
    ]
    try:
        await asyncio.sleep(pace.before)
        await FAULTS[name](run)
        await asyncio.sleep(pace.after)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    if run.not_run:
        return ScenarioFigures(name, not_run=run.not_run)
    federation.supervisor.check_alive()
    children = births.children()
    decisions = bench_births.Decisions(federation.layout)
    if not await decisions.wait(children, pace.decisions_timeout):
        notes.append(f"not every birth decided within {pace.decisions_timeout:.0f} s")
    await bench_births.settle(federation.layout, timeout=10.0)
    if births.failed:
        notes.append(f"{births.failed} of {births.sent} birth registrations failed at population")
    layout = federation.layout
    return aggregate(
        name,
        load.calls,
        log_view(layout.gateway(CONSUMER_GATEWAY) / "messagelog.db", purpose),
        log_view(layout.gateway(PROVIDER_GATEWAY) / "messagelog.db", purpose),
        decisions.counts(children),
        children,
        bench_births.DECISIONS,
        run.serving_again_s,
        run.lifted_at,
        notes + run.notes,
    )
