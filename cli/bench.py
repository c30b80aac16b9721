"""`zhol bench`: direct calls to the population adapter against the same calls over the bus.

One run, one machine, real processes: the adapter alone, then the adapter behind
two gateways (signing, verifying and logging on). Figures are medians of
several alternating rounds, so a noisy neighbour hurts both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from zhol.cli import bench_births
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY, call_metadata, start_federation
from zhol.cli.federation import CORE_AGENCIES, GatewaySpec, Layout, Ports, gateways_of
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
    bench.add_argument("--concurrency", type=int, default=64)
    bench.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    bench_births.add_arguments(bench)
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
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._names = (*pids, LOAD_GENERATOR)
        self.ms_per_call: dict[str, list[dict[str, float]]] = {
            "direct": [], "bus": [], "bare": []
        }
        self.busy: dict[str, list[float]] = {"direct": [], "bus": [], "bare": []}

    def snapshot(self) -> dict[str, float]:
        times = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
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


async def measure(
    addresses: Addresses, args: argparse.Namespace, cpu: CpuMeter
) -> dict:
    iins = await pick_iins(addresses.direct, 500)
    direct = Target(addresses.direct, None)
    bus = Target(addresses.bus, call_metadata("benchmark"))
    bare = Target(addresses.bare, call_metadata("benchmark"))
    # Warm every path: channels, TLS sessions, certificate caches.
    for target in (direct, bus, bare):
        await sequential(target, iins, 50)
    rounds: dict[str, list[RunResult]] = {
        "d1": [], "b1": [], "d64": [], "b64": [], "f64": []
    }
    for _ in range(args.rounds):
        rounds["d1"].append(await sequential(direct, iins, args.sequential))
        rounds["b1"].append(await sequential(bus, iins, args.sequential))
        for key, path, target in (("d64", "direct", direct), ("b64", "bus", bus),
                                  ("f64", "bare", bare)):
            before = cpu.snapshot()
            rounds[key].append(await concurrent(target, iins, args.concurrency, args.seconds))
            cpu.record(path, before, rounds[key][-1].calls)
    for target in (direct, bus, bare):
        await target.channel.close()

    def med(key: str, f: Callable[[RunResult], float]) -> float:
        return statistics.median(f(r) for r in rounds[key])

    direct_rps = med("d64", lambda r: r.rps)
    bus_rps = med("b64", lambda r: r.rps)
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
        "cpu_ms_per_call_bare_proxy": cpu.medians("bare"),
        # Share of all CPUs busy during each c=64 run (the whole machine, /proc/stat).
        "machine_busy_share": {p: cpu.busy_share(p) for p in ("direct", "bus", "bare")},
        "concurrency": args.concurrency,
        "rounds": args.rounds,
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
            names = ("population", *_gateway_names(), *BARE_PROXIES)
            cpu = CpuMeter({name: supervisor.pid(name) for name in names})
            result = asyncio.run(measure(addresses, args, cpu))
            result["gateway_peak_rss_mb"] = {
                spec.id: round(rss_peak_mb(supervisor.pid(spec.dir_name)), 1)
                for spec in _path_gateways()
            }
            result["machine"] = _machine()
    return bench_births.report(args, result)


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
    import os
    import platform

    return f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}"
