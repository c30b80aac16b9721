"""`zhol bench`: direct calls to the population adapter against the same calls over the bus.

One run, one machine, real processes: the adapter alone, then the adapter behind
two gateways (signing, verifying and logging on). Figures are medians of
several alternating rounds, so a noisy neighbour hurts both sides alike.

The bus is measured twice per round: with the log's evidence on (signed checkpoints,
RFC 3161 timestamps from the federation's TSA, witness cosigning) and off (no
checkpoint falls due, so nothing is timestamped or cosigned); the two gateways on the
path are restarted between the two, in ABBA order. Last, ``zhol audit log``'s checks
verify both gateways' whole logs, every record the run sealed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from zhol.cli import bench_births, bench_portal
from zhol.cli.audit import CHECKPOINTS_DIR, CONF_FILE, audit_log
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY, call_metadata, start_federation
from zhol.cli.federation import (
    CORE_AGENCIES,
    PORTAL_AGENCY,
    GatewaySpec,
    Layout,
    Ports,
    gateways_of,
)
from zhol.cli.ports import free_port
from zhol.cli.processes import (
    Supervisor,
    cpu_seconds,
    machine_cpu_ticks,
    rss_peak_mb,
    wait_for_port,
)
from zhol.core.metadata import DATA_SUBJECT_KEY
from zhol.population.v1 import population_pb2

GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="measure the bus against direct calls")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--rounds", type=int, default=5, help="alternating rounds (median kept)")
    bench.add_argument("--seconds", type=float, default=3.0, help="duration of each c=64 run")
    bench.add_argument("--sequential", type=int, default=300, help="calls per c=1 run")
    bench.add_argument(
        "--concurrency", type=int, default=64, help="calls in flight (default %(default)s)"
    )
    bench.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    bench_births.add_arguments(bench)
    bench_portal.add_arguments(bench)
    bench.set_defaults(func=run_bench)


@dataclass(frozen=True)
class RunResult:
    calls: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def rps(self) -> float:
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        return bench_portal.percentile(list(self.latencies_ms), q)


class Target:
    def __init__(self, address: str, metadata: tuple[tuple[str, str], ...] | None) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.call = self.channel.unary_unary(
            GET_PERSON,
            request_serializer=population_pb2.GetPersonRequest.SerializeToString,
            response_deserializer=population_pb2.Person.FromString,
        )
        self.metadata = metadata

    async def get(self, iin: str) -> None:
        metadata = self.metadata + ((DATA_SUBJECT_KEY, iin),) if self.metadata else None
        await self.call(population_pb2.GetPersonRequest(iin=iin), metadata=metadata, timeout=10)


async def sequential(target: Target, iins: list[str], calls: int) -> RunResult:
    latencies = []
    started = time.perf_counter()
    for i in range(calls):
        t0 = time.perf_counter()
        await target.get(iins[i % len(iins)])
        latencies.append((time.perf_counter() - t0) * 1000)
    return RunResult(calls, time.perf_counter() - started, tuple(latencies))


async def concurrent(target: Target, iins: list[str], workers: int, seconds: float) -> RunResult:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await target.get(iins[i % len(iins)])
            latencies.append((time.perf_counter() - t0) * 1000)
            i += workers

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    return RunResult(len(latencies), time.perf_counter() - started, tuple(latencies))


async def pick_iins(address: str, count: int) -> list[str]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            "/zhol.population.v1.PopulationRegistry/ListPersons",
            request_serializer=population_pb2.ListPersonsRequest.SerializeToString,
            response_deserializer=population_pb2.ListPersonsResponse.FromString,
        )
        page = await call(population_pb2.ListPersonsRequest(page_size=count), timeout=10)
        return [p.iin for p in page.persons]


LOAD_GENERATOR = "load-generator"  # this process: the clients of every run


class CpuMeter:
    """CPU seconds each component process spends on a run (less noisy than wall time),
    and how busy the whole machine was: CPU left idle under load means the path waits
    on something other than CPU."""

    PATHS = ("direct", "bus", "bus_evidence_off", "bare")

    def __init__(self, names: tuple[str, ...], pid: Callable[[str], int]) -> None:
        # Looked up at each snapshot: the gateways are restarted between runs.
        self._pid = pid
        self._processes = names
        self._names = (*names, LOAD_GENERATOR)
        self.ms_per_call: dict[str, list[dict[str, float]]] = {p: [] for p in self.PATHS}
        self.busy: dict[str, list[float]] = {p: [] for p in self.PATHS}

    def snapshot(self) -> dict[str, float]:
        times = {name: cpu_seconds(self._pid(name)) for name in self._processes}
        times[LOAD_GENERATOR] = time.process_time()
        ticks = machine_cpu_ticks()
        if ticks is not None:
            times["machine_busy"], times["machine_total"] = ticks
        return times

    def record(self, path: str, before: dict[str, float], calls: int) -> None:
        after = self.snapshot()
        self.ms_per_call[path].append(
            {n: (after[n] - before[n]) * 1000 / calls for n in self._names}
        )
        if "machine_total" in after and after["machine_total"] > before["machine_total"]:
            busy = after["machine_busy"] - before["machine_busy"]
            self.busy[path].append(busy / (after["machine_total"] - before["machine_total"]))

    def medians(self, path: str) -> dict[str, float]:
        runs = self.ms_per_call[path]
        return {n: round(statistics.median(r[n] for r in runs), 3) for n in self._names}

    def busy_share(self, path: str) -> float | None:
        runs = self.busy[path]
        return round(statistics.median(runs), 3) if runs else None


# The bus with the log's evidence on: the shipped checkpoint policy (one due every 1000
# records, or 10 s: about one a second under this load), a timestamp asked for every
# second (shipped: 5 s) so that every run has some, the witness cosigning as shipped.
EVIDENCE_ON = {"ZHOL_GATEWAY_TIMESTAMP_INTERVAL_S": "1"}
# Off: no checkpoint falls due during the run, so nothing is timestamped or cosigned.
EVIDENCE_OFF = {
    "ZHOL_GATEWAY_CHECKPOINT_INTERVAL_S": "1e9",
    "ZHOL_GATEWAY_CHECKPOINT_EVERY_RECORDS": str(10**12),
}


@dataclass
class PathGateways:
    """The two gateways on the bus path, restarted with the evidence on or off."""

    supervisor: Supervisor
    ports: Ports
    layout: Layout
    evidence_on: bool = False

    def settle(self, timeout: float = 30.0) -> None:
        """Wait (bounded) until every checkpoint has its timestamp and cosignature: the
        one each gateway signed as it stopped is not work of the runs that follow."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = self.evidence_files()
            if files[".tsr"] >= files[".note"] and files[".cosig"] >= files[".note"]:
                return
            time.sleep(0.1)

    def evidence_files(self) -> Counter[str]:
        """Checkpoints (.note), timestamps (.tsr), cosignatures (.cosig) on both gateways."""
        files: Counter[str] = Counter()
        for spec in _path_gateways():
            directory = self.layout.gateway(spec.id) / CHECKPOINTS_DIR
            if directory.is_dir():
                files.update(Path(name).suffix for name in os.listdir(directory))
        return files

    def restart(self, evidence_on: bool) -> None:
        specs = _path_gateways()
        for spec in specs:  # SIGTERM: each signs its last checkpoint, then exits
            self.supervisor.stop(spec.dir_name)
        for spec in specs:
            args = self.supervisor.commands[spec.dir_name][0]
            env = EVIDENCE_ON if evidence_on else EVIDENCE_OFF
            self.supervisor.start(spec.dir_name, args, env)
        for spec in specs:
            for port in (self.ports.gateway_is[spec.id], self.ports.gateway_peer[spec.id]):
                wait_for_port("127.0.0.1", port, 30, self.supervisor)
        self.evidence_on = evidence_on
        self.settle()


async def open_bus(address: str, iins: list[str], gateways: PathGateways, on: bool) -> Target:
    """(Re)start the path's gateways with the evidence ``on`` or off; a warm channel to them."""
    gateways.restart(on)
    bus = Target(address, call_metadata("benchmark"))
    deadline = time.monotonic() + 60
    while True:  # the restarted gateways may need a moment before their first exchange
        try:
            await bus.get(iins[0])
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    await sequential(bus, iins, 50)
    return bus


async def measure(
    addresses: Addresses, args: argparse.Namespace, cpu: CpuMeter, gateways: PathGateways
) -> dict:
    iins = await pick_iins(addresses.direct, 500)
    direct = Target(addresses.direct, None)
    bare = Target(addresses.bare, call_metadata("benchmark"))
    bus = await open_bus(addresses.bus, iins, gateways, on=True)
    # Warm every path: channels, TLS sessions, certificate caches.
    for target in (direct, bare):
        await sequential(target, iins, 50)
    rounds: dict[str, list[RunResult]] = {
        "d1": [],
        "b1": [],
        "d64": [],
        "b64": [],
        "f64": [],
        "b64off": [],
    }

    # Evidence files the gateways wrote during the c=64 bus runs, with it on and off.
    made = {"on": Counter[str](), "off": Counter[str]()}

    async def bus_run(key: str, path: str) -> None:
        files = gateways.evidence_files()
        before = cpu.snapshot()
        rounds[key].append(await concurrent(bus, iins, args.concurrency, args.seconds))
        cpu.record(path, before, rounds[key][-1].calls)
        made["on" if gateways.evidence_on else "off"] += gateways.evidence_files() - files

    async def evidence_off_run() -> None:
        await bus_run("b64off", "bus_evidence_off")

    for n in range(args.rounds):
        # ABBA: on then off, then off then on; one restart of the gateways per round.
        off_first = n % 2 == 1
        if off_first:
            await evidence_off_run()
            await bus.channel.close()
            bus = await open_bus(addresses.bus, iins, gateways, on=True)
        rounds["d1"].append(await sequential(direct, iins, args.sequential))
        rounds["b1"].append(await sequential(bus, iins, args.sequential))
        for key, path, target in (("d64", "direct", direct), ("f64", "bare", bare)):
            before = cpu.snapshot()
            rounds[key].append(await concurrent(target, iins, args.concurrency, args.seconds))
            cpu.record(path, before, rounds[key][-1].calls)
            if key == "d64":
                await bus_run("b64", "bus")
        if not off_first:
            await bus.channel.close()
            bus = await open_bus(addresses.bus, iins, gateways, on=False)
            await evidence_off_run()
    for target in (direct, bus, bare):
        await target.channel.close()

    def med(key: str, f: Callable[[RunResult], float]) -> float:
        return statistics.median(f(r) for r in rounds[key])

    direct_rps = med("d64", lambda r: r.rps)
    bus_rps = med("b64", lambda r: r.rps)
    bus_off_rps = med("b64off", lambda r: r.rps)
    bare_rps = med("f64", lambda r: r.rps)
    direct_p50 = med("d1", lambda r: r.percentile(0.5))
    bus_p50 = med("b1", lambda r: r.percentile(0.5))
    return {
        "direct_rps": round(direct_rps, 1),
        "bus_rps": round(bus_rps, 1),
        "ratio": round(bus_rps / direct_rps, 3),
        # Each round's own bus/direct (run back to back): the spread behind the median.
        "ratio_rounds": [
            round(b.rps / d.rps, 3) for b, d in zip(rounds["b64"], rounds["d64"], strict=True)
        ],
        # The bus with the log's evidence on (the figures above) and off, same run.
        "bus_rps_evidence_off": round(bus_off_rps, 1),
        "ratio_evidence_on": round(bus_rps / direct_rps, 3),
        "ratio_evidence_off": round(bus_off_rps / direct_rps, 3),
        "evidence_cost_ratio": round(bus_rps / bus_off_rps, 3),  # on / off; 1.0: free
        "evidence_made_during_runs": {
            state: {
                "checkpoints": files[".note"],
                "timestamps": files[".tsr"],
                "cosignatures": files[".cosig"],
            }
            for state, files in made.items()
        },
        "evidence_cost_ratio_rounds": [
            round(on.rps / off.rps, 3)
            for on, off in zip(rounds["b64"], rounds["b64off"], strict=True)
        ],
        # The floor: two do-nothing grpc.aio proxies on the same hops (cli/bareproxy.py).
        "bare_proxy_rps": round(bare_rps, 1),
        "bare_proxy_ratio": round(bare_rps / direct_rps, 3),
        "bus_vs_bare_proxy": round(bus_rps / bare_rps, 3),
        "direct_p50_ms": round(direct_p50, 3),
        "bus_p50_ms": round(bus_p50, 3),
        "bus_p99_ms": round(med("b1", lambda r: r.percentile(0.99)), 3),
        "added_p50_ms": round(bus_p50 - direct_p50, 3),
        "bus_p50_ms_c64": round(med("b64", lambda r: r.percentile(0.5)), 3),
        "bus_p99_ms_c64": round(med("b64", lambda r: r.percentile(0.99)), 3),
        "cpu_ms_per_call_direct": cpu.medians("direct"),
        "cpu_ms_per_call_bus": cpu.medians("bus"),
        "cpu_ms_per_call_bus_evidence_off": cpu.medians("bus_evidence_off"),
        "cpu_ms_per_call_bare_proxy": cpu.medians("bare"),
        # Share of all CPUs busy during each c=64 run (the whole machine, /proc/stat).
        "machine_busy_share": {p: cpu.busy_share(p) for p in CpuMeter.PATHS},
        "concurrency": args.concurrency,
        "rounds": args.rounds,
    }


def audit_figures(layout: Layout) -> dict[str, Any]:
    """``zhol audit log`` (the same function) over both path gateways' whole logs, once
    they stopped: every record the run sealed. The rate counts everything the audit
    does (reading the file, the checks, the tree, the checkpoints and timestamps)."""
    records = checkpoints = timestamped = cosigned = 0
    seconds = 0.0
    check_rates: list[float] = []
    failures: list[str] = []
    for spec in _path_gateways():
        directory = layout.gateway(spec.id)
        started = time.perf_counter()
        report = audit_log(directory, layout.anchor, directory / CONF_FILE, spec.id)
        seconds += time.perf_counter() - started
        records += report.counts.get("records", 0)
        checkpoints += report.counts.get("checkpoints", 0)
        timestamped += report.counts.get("timestamped", 0)
        cosigned += report.counts.get("cosigned", 0)
        if report.records_per_s:
            check_rates.append(report.records_per_s)
        failures += [f"{spec.id}: {f.reason}" for f in report.failures]
    return {
        "audit_records": records,
        "audit_records_per_s": round(records / seconds) if records and seconds > 0 else 0,
        # Only the per-record checks (signatures in threads), as `zhol audit log` reports.
        "audit_check_records_per_s": round(statistics.median(check_rates)) if check_rates else 0,
        "audit_checkpoints": checkpoints,
        "audit_timestamped": timestamped,
        "audit_cosigned": cosigned,
        "audit_failures": failures[:10],
    }


def run_bench(args: argparse.Namespace) -> int:
    if args.births_only:
        return bench_births.report(args)
    with tempfile.TemporaryDirectory(prefix="zhol-bench-") as tmp:
        layout = Layout((args.data_dir or Path(tmp)).resolve())
        with Supervisor(layout.logs) as supervisor:
            ports = start_federation(layout, "127.0.0.1", 10_000, supervisor)
            addresses = Addresses(
                direct=ports.address(ports.population),
                bus=ports.address(ports.gateway_is[CONSUMER_GATEWAY]),
                bare=start_bare_proxies(layout, ports, supervisor),
            )
            # The registry (the witness) and the TSA: where the evidence's other work runs.
            names = ("population", *_gateway_names(), *BARE_PROXIES, "registry", "tsa")
            cpu = CpuMeter(names, supervisor.pid)
            gateways = PathGateways(supervisor, ports, layout)
            portal = run_portal(layout, ports, supervisor, addresses, args)
            result = asyncio.run(measure(addresses, args, cpu, gateways))
            result.update(portal)
            # The gateways running last (restarted once a round): their own peaks.
            result["gateway_peak_rss_mb"] = {
                spec.id: round(rss_peak_mb(supervisor.pid(spec.dir_name)), 1)
                for spec in _path_gateways()
            }
            for spec in _path_gateways():  # the logs as final: last checkpoints signed
                supervisor.stop(spec.dir_name)
            result.update(audit_figures(layout))
            result["machine"] = _machine()
    return bench_births.report(args, result)


def run_portal(
    layout: Layout,
    ports: Ports,
    supervisor: Supervisor,
    addresses: Addresses,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The portal's figures (cli/bench_portal.py), first: every gateway as started, with
    the shipped evidence policy. Its records are in the logs the audit checks last."""
    if args.portal_seconds <= 0:
        return {}
    fed = bench_portal.Federation(
        portal_url=f"http://{ports.adapter_address(PORTAL_AGENCY)}",
        bus=addresses.bus,
        layout=layout,
        pid=supervisor.pid,
    )

    async def go() -> dict[str, Any]:
        return await bench_portal.run(fed, await pick_iins(addresses.direct, 500), args)

    return asyncio.run(go())


@dataclass(frozen=True)
class Addresses:
    direct: str  # the population adapter itself
    bus: str  # the pension gateway's IS side
    bare: str  # the first of two do-nothing proxies (the floor)


BARE_PROXIES = ("bare-consumer", "bare-provider")


def start_bare_proxies(layout: Layout, ports: Ports, supervisor: Supervisor) -> str:
    """Two plain forwarding proxies on the bus's hops, with the gateways' TLS keys;
    returns the address an IS would call."""
    host = "127.0.0.1"
    consumer, provider = free_port(), free_port()
    supervisor.start(
        "bare-provider",
        ["--listen", f"{host}:{provider}",
         "--listen-keys", str(layout.gateway(PROVIDER_GATEWAY) / "keys"),
         "--upstream", ports.address(ports.population)],
        module="zhol.cli.bareproxy",
    )  # fmt: skip
    supervisor.start(
        "bare-consumer",
        ["--listen", f"{host}:{consumer}",
         "--upstream", f"{host}:{provider}",
         "--upstream-keys", str(layout.gateway(CONSUMER_GATEWAY) / "keys"),
         "--upstream-gateway", PROVIDER_GATEWAY],
        module="zhol.cli.bareproxy",
    )  # fmt: skip
    for port in (provider, consumer):
        wait_for_port(host, port, 30, supervisor)
    return f"{host}:{consumer}"


def _gateway_names() -> list[str]:
    return [spec.dir_name for spec in _path_gateways()]


def _path_gateways() -> tuple[GatewaySpec, ...]:
    """The two gateways a GetPerson call crosses: the pension and the population one."""
    return gateways_of(CORE_AGENCIES)


def _machine() -> str:
    import platform

    return f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}"
