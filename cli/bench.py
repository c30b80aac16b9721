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
from dataclasses import dataclass
from pathlib import Path

import grpc

from cli import bench_births
from cli.demo import CONSUMER_GATEWAY, call_metadata, start_federation
from cli.federation import CORE_AGENCIES, GatewaySpec, Layout, gateways_of
from cli.processes import Supervisor, cpu_seconds, rss_peak_mb
from zhol.population.v1 import population_pb2

GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="measure the bus against direct calls")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--rounds", type=int, default=3, help="alternating rounds (median kept)")
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
        metadata = self.metadata + (("zhol-data-subject", iin),) if self.metadata else None
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


class CpuMeter:
    """CPU seconds each component process spends on a run (less noisy than wall time)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self.ms_per_call: dict[str, list[dict[str, float]]] = {"direct": [], "bus": []}

    def snapshot(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def record(self, path: str, before: dict[str, float], calls: int) -> None:
        after = self.snapshot()
        self.ms_per_call[path].append(
            {n: (after[n] - before[n]) * 1000 / calls for n in self._pids}
        )

    def medians(self, path: str) -> dict[str, float]:
        runs = self.ms_per_call[path]
        return {n: round(statistics.median(r[n] for r in runs), 3) for n in self._pids}


async def measure(
    direct_address: str, bus_address: str, args: argparse.Namespace, cpu: CpuMeter
) -> dict:
    iins = await pick_iins(direct_address, 500)
    direct = Target(direct_address, None)
    bus = Target(bus_address, call_metadata("benchmark"))
    # Warm both paths: channels, TLS sessions, certificate caches.
    await sequential(direct, iins, 50)
    await sequential(bus, iins, 50)
    rounds: dict[str, list[RunResult]] = {"d1": [], "b1": [], "d64": [], "b64": []}
    for _ in range(args.rounds):
        rounds["d1"].append(await sequential(direct, iins, args.sequential))
        rounds["b1"].append(await sequential(bus, iins, args.sequential))
        before = cpu.snapshot()
        rounds["d64"].append(await concurrent(direct, iins, args.concurrency, args.seconds))
        cpu.record("direct", before, rounds["d64"][-1].calls)
        before = cpu.snapshot()
        rounds["b64"].append(await concurrent(bus, iins, args.concurrency, args.seconds))
        cpu.record("bus", before, rounds["b64"][-1].calls)
    await direct.channel.close()
    await bus.channel.close()

    def med(key: str, f) -> float:  # type: ignore[no-untyped-def]
        return statistics.median(f(r) for r in rounds[key])

    direct_rps = med("d64", lambda r: r.rps)
    bus_rps = med("b64", lambda r: r.rps)
    direct_p50 = med("d1", lambda r: r.percentile(0.5))
    bus_p50 = med("b1", lambda r: r.percentile(0.5))
    return {
        "direct_rps": round(direct_rps, 1),
        "bus_rps": round(bus_rps, 1),
        "ratio": round(bus_rps / direct_rps, 3),
        "direct_p50_ms": round(direct_p50, 3),
        "bus_p50_ms": round(bus_p50, 3),
        "bus_p99_ms": round(med("b1", lambda r: r.percentile(0.99)), 3),
        "added_p50_ms": round(bus_p50 - direct_p50, 3),
        "bus_p50_ms_c64": round(med("b64", lambda r: r.percentile(0.5)), 3),
        "bus_p99_ms_c64": round(med("b64", lambda r: r.percentile(0.99)), 3),
        "cpu_ms_per_call_direct": cpu.medians("direct"),
        "cpu_ms_per_call_bus": cpu.medians("bus"),
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
            direct_address = ports.address(ports.population)
            bus_address = ports.address(ports.gateway_is[CONSUMER_GATEWAY])
            pids = {name: supervisor.pid(name) for name in ("population", *_gateway_names())}
            cpu = CpuMeter(pids)
            result = asyncio.run(measure(direct_address, bus_address, args, cpu))
            result["gateway_peak_rss_mb"] = {
                spec.id: round(rss_peak_mb(supervisor.pid(spec.dir_name)), 1)
                for spec in _path_gateways()
            }
            result["machine"] = _machine()
    return bench_births.report(args, result)


def _gateway_names() -> list[str]:
    return [spec.dir_name for spec in _path_gateways()]


def _path_gateways() -> tuple[GatewaySpec, ...]:
    """The two gateways a GetPerson call crosses: the pension and the population one."""
    return gateways_of(CORE_AGENCIES)


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}"
