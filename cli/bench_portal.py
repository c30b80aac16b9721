"""`zhol bench`, the citizen portal: its pages over real HTTP, read live over the bus.

The bench's federation runs the portal as its own process (``zhol portal serve``, demo
mode, as ``zhol demo`` starts it) behind its own gateway. Citizens sign in as a browser
would (the IIN, then the code from the demo's SMS outbox page), each with its own
HTTP session. Two figures:

- **the personal account** (``/me``: eight reads of the four registries over the bus,
  in parallel): ``--portal-citizens`` signed-in citizens (16) each loading it again and
  again for ``--portal-seconds``, after one warm-up load each;
- **who used my data** (``/usage``) for one citizen whose data the gateways' logs hold
  at least ``--usage-entries`` records about (10,000): the logs are filled first with
  real ``GetPerson`` exchanges about that citizen through the bus (the pension
  gateway to the population one: four message-log records each, written by the real
  gateways), then the page is loaded ``--usage-loads`` times, one after another.

A page counts as complete when every registry's part was read (``/me``) or every
gateway answered (``/usage``); the figures report how many were not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc

from zhol.adapters.runtime.store import today_in_kz
from zhol.cli.demo import DEMO_AGENCIES, call_metadata
from zhol.cli.federation import Layout, gateways_of
from zhol.cli.portal_check import PortalCheckFailed, sign_in
from zhol.cli.processes import cpu_seconds
from zhol.core.clock import SystemClock
from zhol.population.v1 import population_pb2
from zhol.portal.i18n import text
from zhol.portal.reads import is_minor

GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"
RECORDS_PER_EXCHANGE = 4  # request and response, at the consumer and the provider gateway
# What a page says when a part is missing (the portal's default language, Kazakh).
ACCOUNT_MISSING = (text("kk", "part_unavailable"), text("kk", "part_refused"))
USAGE_MISSING = text("kk", "usage_missing")
PAGE_TIMEOUT_S = 30.0


def add_arguments(bench: argparse.ArgumentParser) -> None:
    arg = bench.add_argument
    arg("--portal-seconds", type=float, default=5.0, help="the /me run (0: no portal part)")
    arg("--portal-citizens", type=int, default=16, help="signed-in citizens loading /me at once")
    arg("--usage-entries", type=int, default=10_000, help="log records about the /usage citizen")
    arg("--usage-loads", type=int, default=40, help="/usage loads, one at a time")


def percentile(latencies: list[float], q: float) -> float:
    """The bench's percentile (cli/bench.py RunResult): the value at rank q of the sorted."""
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Federation:
    """What the portal part needs of the bench's running federation."""

    portal_url: str  # http://host:port of `zhol portal serve`
    bus: str  # the pension gateway's IS address: where the logs are filled from
    layout: Layout
    pid: Callable[[str], int]  # a component's process id, by its name


async def run(fed: Federation, iins: list[str], args: argparse.Namespace) -> dict[str, Any]:
    today = today_in_kz(SystemClock())
    citizens = [iin for iin in iins if not is_minor(iin, today)][: args.portal_citizens]
    if len(citizens) < args.portal_citizens:
        raise RuntimeError(f"only {len(citizens)} adult citizens to sign in")
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=PAGE_TIMEOUT_S)
    sessions = [
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout)
        for _ in citizens
    ]
    try:
        for http, iin in zip(sessions, citizens, strict=True):
            await sign_in(http, fed.portal_url, iin)
        # Warm-up: the portal's gateway fetching its configuration, channels, TLS sessions.
        for http in sessions:
            await _until_complete(http, f"{fed.portal_url}/me", ACCOUNT_MISSING)
        idle = await _idle_cpu(fed)
        alone = await _alone(fed, sessions[0])
        account = await _account_run(fed, sessions, args.portal_seconds)
        usage = await _usage_run(fed, sessions[0], citizens[0], args)
    finally:
        for http in sessions:
            await http.close()
    # The whole portal part: sign-ins, warm-up, both runs and the filling of the logs.
    spent = round(time.perf_counter() - started, 1)
    return {**alone, **account, **usage, **idle, "portal_bench_seconds": spent}


async def _idle_cpu(fed: Federation, seconds: float = 1.0) -> dict[str, Any]:
    """CPU each process spends per second with no load (timers, polling): the part of
    ``cpu_ms_per_account_page`` that is not the pages' own work."""
    names = _process_names()
    before = {name: cpu_seconds(fed.pid(name)) for name in names}
    await asyncio.sleep(seconds)
    return {
        "cpu_ms_per_s_idle": {
            n: round((cpu_seconds(fed.pid(n)) - before[n]) * 1000 / seconds, 1) for n in names
        }
    }


async def _alone(fed: Federation, http: aiohttp.ClientSession, loads: int = 20) -> dict[str, Any]:
    """/me for one citizen alone, one load at a time: the page's own path, no queueing."""
    latencies = []
    for _ in range(loads):
        t0 = time.perf_counter()
        async with http.get(f"{fed.portal_url}/me") as page:
            await page.read()
        latencies.append((time.perf_counter() - t0) * 1000)
    return {"portal_account_p50_ms_c1": round(percentile(latencies, 0.5), 1)}


async def _account_run(
    fed: Federation, sessions: list[aiohttp.ClientSession], seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    incomplete = 0
    stop_at = time.perf_counter() + seconds

    async def citizen(http: aiohttp.ClientSession) -> None:
        nonlocal incomplete
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            async with http.get(f"{fed.portal_url}/me") as page:
                body = await page.text()
            latencies.append((time.perf_counter() - t0) * 1000)
            incomplete += page.status != 200 or any(m in body for m in ACCOUNT_MISSING)

    names = _process_names()
    before = {name: cpu_seconds(fed.pid(name)) for name in names}
    load_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(citizen(http) for http in sessions))
    elapsed = time.perf_counter() - started
    pages = len(latencies)
    cpu = {name: cpu_seconds(fed.pid(name)) - before[name] for name in names}
    cpu["load-generator"] = time.process_time() - load_before
    return {
        "portal_account_p50_ms": round(percentile(latencies, 0.5), 1),
        "portal_account_p95_ms": round(percentile(latencies, 0.95), 1),
        "portal_account_pages": pages,
        "portal_account_pages_per_s": round(pages / elapsed, 1),
        "portal_account_incomplete": incomplete,
        "portal_citizens": len(sessions),
        # CPU per /me page, per process: where the page's time goes.
        "cpu_ms_per_account_page": {n: round(s * 1000 / pages, 2) for n, s in cpu.items()},
    }


async def _usage_run(
    fed: Federation, http: aiohttp.ClientSession, iin: str, args: argparse.Namespace
) -> dict[str, Any]:
    entries = _log_entries(fed.layout, iin)
    fill_started = time.perf_counter()
    while entries < args.usage_entries:  # a top-up, if a record was not counted yet
        exchanges = math.ceil((args.usage_entries - entries) / RECORDS_PER_EXCHANGE)
        await _fill(fed.bus, iin, exchanges)
        entries = _log_entries(fed.layout, iin)
    fill_s = time.perf_counter() - fill_started
    url = f"{fed.portal_url}/usage"
    await _until_complete(http, url, (USAGE_MISSING,))
    latencies: list[float] = []
    incomplete = 0
    for _ in range(args.usage_loads):
        t0 = time.perf_counter()
        async with http.get(url) as page:
            body = await page.text()
        latencies.append((time.perf_counter() - t0) * 1000)
        incomplete += page.status != 200 or USAGE_MISSING in body
    return {
        "portal_usage_p50_ms": round(percentile(latencies, 0.5), 1),
        "portal_usage_p95_ms": round(percentile(latencies, 0.95), 1),
        "portal_usage_loads": len(latencies),
        "portal_usage_incomplete": incomplete,
        # The citizen's records in every gateway's log when the loads began.
        "portal_usage_log_entries": entries,
        "portal_usage_fill_seconds": round(fill_s, 1),
    }


async def _fill(bus: str, iin: str, exchanges: int, workers: int = 64) -> None:
    """``exchanges`` real GetPerson calls about ``iin`` through the bus, ``workers`` at once."""
    metadata = call_metadata("benchmark: who used my data", iin)
    left = [exchanges]
    async with grpc.aio.insecure_channel(bus) as channel:
        get = channel.unary_unary(
            GET_PERSON,
            request_serializer=population_pb2.GetPersonRequest.SerializeToString,
            response_deserializer=population_pb2.Person.FromString,
        )

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                await get(population_pb2.GetPersonRequest(iin=iin), metadata=metadata, timeout=30)

        await asyncio.gather(*(worker() for _ in range(min(workers, exchanges))))


async def _until_complete(
    http: aiohttp.ClientSession, url: str, missing: tuple[str, ...], attempts: int = 150
) -> None:
    """Load ``url`` until it is complete (bounded): gateways may still be starting."""
    for _ in range(attempts):
        async with http.get(url) as page:
            body = await page.text()
            if page.status == 200 and not any(m in body for m in missing):
                return
        await asyncio.sleep(0.2)
    raise PortalCheckFailed(f"{url}: HTTP {page.status}, a part missing")


def _log_entries(layout: Layout, iin: str) -> int:
    """Records about ``iin`` in every gateway's message log (read-only; WAL never blocks)."""
    total = 0
    for spec in gateways_of(DEMO_AGENCIES):
        uri = f"{(layout.gateway(spec.id) / 'messagelog.db').resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT count(*) FROM messages WHERE data_subject = ?", (iin,))
            total += int(row.fetchone()[0])
    return total


def _process_names() -> tuple[str, ...]:
    """The adapters, the portal and every gateway, by their process names."""
    return (*DEMO_AGENCIES, *(spec.dir_name for spec in gateways_of(DEMO_AGENCIES)))
