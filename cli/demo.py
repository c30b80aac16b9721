"""`zhol demo`: a whole federation on this machine, each component its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import grpc

from zhol.cli import scenario
from zhol.cli.federation import (
    ALL_AGENCIES,
    PORTAL_AGENCY,
    PORTAL_EVENTS,
    Layout,
    Ports,
    approve_tsa,
    gateways_of,
    init_registry_dir,
    provision_gateways,
    subsystems_of,
    write_federation_json,
)
from zhol.cli.portal_check import check_portal
from zhol.cli.processes import ComponentGaveUp, Keeper, Supervisor, wait_for_port
from zhol.core.metadata import (
    CLIENT_KEY,
    DATA_SUBJECT_KEY,
    MESSAGE_ID_KEY,
    PURPOSE_KEY,
    USER_ID_KEY,
)
from zhol.gateway.messagelog import list_records
from zhol.population.v1 import population_pb2

# The agencies `zhol demo` runs, and the citizen portal.
DEMO_AGENCIES = (*ALL_AGENCIES, PORTAL_AGENCY)
CLIENT = "KZ/GOV/MLSPP/pension"
CONSUMER_GATEWAY = "KZ/GOV/MLSPP/gw1"
PROVIDER_GATEWAY = "KZ/GOV/MJ/gw1"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run a whole federation locally")
    demo.add_argument("--data-dir", type=Path, help="default ./demo-data (a temp dir with --check)")
    demo.add_argument("--host", default="127.0.0.1", help="address every component listens on")
    demo.add_argument("--persons", type=int, default=10_000, help="synthetic citizens to seed")
    demo.add_argument("--check", action="store_true", help="start, make a real call, stop")
    demo.set_defaults(func=run_demo)


def seed_command(name: str, layout: Layout, persons: int) -> list[str]:
    """Population is seeded with synthetic citizens; the other agencies' seeds build on it."""
    db = str(layout.adapter_db(name))
    if name == "population":
        return ["adapter", name, "seed", "--db", db, "--count", str(persons)]
    return ["adapter", name, "seed", "--db", db, "--population-db", str(layout.population_db)]


def start_federation(
    layout: Layout,
    host: str,
    persons: int,
    supervisor: Supervisor,
    agencies: Sequence[str] = DEMO_AGENCIES,
) -> Ports:
    """Provision (or reuse) everything in layout and start each component as a process."""
    init_registry_dir(layout)
    ports = Ports.load_or_choose(layout.ports_file, host)
    approve_tsa(layout, ports)
    supervisor.start("tsa", ["tsa", "serve", "--dir", str(layout.tsa),
                             "--listen", ports.address(ports.tsa)])  # fmt: skip
    registry_args = ["registry", "serve", "--dir", str(layout.registry)]
    supervisor.start("registry", [*registry_args, "--listen", ports.address(ports.registry)])
    for name in agencies:  # population first: the others' seeds read it
        if name != PORTAL_AGENCY and not layout.adapter_db(name).exists():
            layout.adapter_db(name).parent.mkdir(parents=True, exist_ok=True)
            supervisor.start(f"{name}-seed", seed_command(name, layout, persons))
            if supervisor.processes.pop(f"{name}-seed").wait() != 0:
                raise RuntimeError(f"seeding failed; see {layout.logs}/{name}-seed.log")
    wait_for_port(host, ports.registry, 30, supervisor)
    asyncio.run(provision_gateways(layout, ports, agencies))
    gateways = gateways_of(agencies)
    for spec in gateways:
        supervisor.start(spec.dir_name, ["gateway", "serve", "--dir", str(layout.gateway(spec.id))])
    for sub in subsystems_of(agencies):
        if sub.adapter == PORTAL_AGENCY:
            supervisor.start(sub.adapter, portal_command(ports, sub.gateway, layout))
            continue
        # Each adapter reaches the bus only through its own agency's gateway.
        supervisor.start(
            sub.adapter,
            ["adapter", sub.adapter, "serve", "--db", str(layout.adapter_db(sub.adapter)),
             "--listen", ports.adapter_address(sub.adapter),
             "--gateway", ports.is_address(sub.gateway)],
        )  # fmt: skip
    listening = [ports.tsa, *(ports.adapters[name] for name in agencies)]
    if PORTAL_AGENCY in agencies:
        listening.append(ports.adapters[PORTAL_EVENTS])
    listening += [ports.gateway_is[g.id] for g in gateways]
    listening += [ports.gateway_peer[g.id] for g in gateways]
    for port in listening:
        wait_for_port(host, port, 30, supervisor)
    write_federation_json(layout, ports, agencies)
    return ports


def portal_command(ports: Ports, gateway_id: str, layout: Layout) -> list[str]:
    """The portal in demo mode: codes in the SMS outbox page, and cookies without the
    Secure flag, since the demo serves plain http://127.0.0.1 (docs/portal.md); its
    gateway delivers the decision events of its life-events feed to --events-listen."""
    return [
        "portal", "serve", "--demo", "--insecure-cookies",
        "--listen", ports.adapter_address(PORTAL_AGENCY),
        "--gateway", ports.is_address(gateway_id),
        "--feed-db", str(layout.adapter_db(PORTAL_AGENCY).with_name("feed.db")),
        "--events-listen", ports.adapter_address(PORTAL_EVENTS),
    ]  # fmt: skip


def call_metadata(purpose: str, data_subject: str = "") -> tuple[tuple[str, str], ...]:
    metadata = [
        (CLIENT_KEY, CLIENT),
        (USER_ID_KEY, "EE:demo-officer"),
        (PURPOSE_KEY, purpose),
    ]
    if data_subject:
        metadata.append((DATA_SUBJECT_KEY, data_subject))
    return tuple(metadata)


async def example_exchange(is_address: str) -> tuple[str, str, str]:
    """ListPersons then GetPerson through the pension gateway; returns (iin, message id,
    last name)."""
    async with grpc.aio.insecure_channel(is_address) as channel:
        list_persons = channel.unary_unary(
            "/zhol.population.v1.PopulationRegistry/ListPersons",
            request_serializer=population_pb2.ListPersonsRequest.SerializeToString,
            response_deserializer=population_pb2.ListPersonsResponse.FromString,
        )
        get_person = channel.unary_unary(
            "/zhol.population.v1.PopulationRegistry/GetPerson",
            request_serializer=population_pb2.GetPersonRequest.SerializeToString,
            response_deserializer=population_pb2.Person.FromString,
        )
        # The gateway may still be fetching its first configuration: retry briefly.
        for attempt in range(50):
            try:
                page = await list_persons(
                    population_pb2.ListPersonsRequest(page_size=1),
                    metadata=call_metadata("demo: pick a citizen"),
                    timeout=5,
                )
                break
            except grpc.aio.AioRpcError as exc:
                if attempt == 49 or exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                await asyncio.sleep(0.2)
        iin = page.persons[0].iin
        call = get_person(
            population_pb2.GetPersonRequest(iin=iin),
            metadata=call_metadata("demo: pension eligibility check", iin),
            timeout=5,
        )
        person = await call
        trailers = dict(await call.trailing_metadata() or ())
        print(
            f"GetPerson({iin}) -> {person.last_name} {person.first_name}, "
            f"{person.address.region}, {person.address.district}"
        )
        return iin, str(trailers.get(MESSAGE_ID_KEY, "")), person.last_name


def print_exchange(layout: Layout, message_id: str) -> bool:
    """Print what both gateways logged for one exchange; True if both hold both messages."""
    complete = True
    for gateway_id in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        records = list_records(layout.gateway(gateway_id) / "messagelog.db", message_id=message_id)
        kinds = sorted((r["kind"], r["direction"]) for r in records)
        complete &= len(kinds) == 2 and {k for k, _ in kinds} == {"request", "response"}
        for r in records:
            print(
                f"  {gateway_id:<18} {r['direction']:<3} {r['kind']:<8} client={r['client']} "
                f"service={r['service']} subject={r['data_subject'] or '-'} "
                f"purpose={r['purpose']!r}"
            )
    return complete


def first_iin(layout: Layout) -> str:
    """A seeded citizen to put in the example call (read-only look at the demo's own file)."""
    uri = f"{layout.population_db.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        row = db.execute("SELECT iin FROM persons ORDER BY iin LIMIT 1").fetchone()
    return str(row[0]) if row else "<IIN>"


def example_commands(layout: Layout, ports: Ports) -> str:
    iin = first_iin(layout)
    is_address = ports.address(ports.gateway_is[CONSUMER_GATEWAY])
    return "\n".join(
        (
            f"  .venv/bin/python examples/python/get_person.py --federation "
            f"{layout.federation_json} --iin {iin}",
            # No local .proto: grpcurl reads the contract by reflection from the gateway.
            "  grpcurl -plaintext "
            "-H 'zhol-client: KZ/GOV/MLSPP/pension' -H 'zhol-user-id: EE:officer-1' "
            f"-H 'zhol-purpose: eligibility check' -H 'zhol-data-subject: {iin}' "
            f'-d \'{{"iin": "{iin}"}}\' {is_address} '
            "zhol.population.v1.PopulationRegistry/GetPerson",
            f"  .venv/bin/zhol log list --gateway {layout.gateway(CONSUMER_GATEWAY)} --json",
        )
    )


def run_demo(args: argparse.Namespace) -> int:
    if args.check:
        with tempfile.TemporaryDirectory(prefix="zhol-demo-check-") as tmp:
            return _check(Layout(args.data_dir or Path(tmp)), args)
    layout = Layout((args.data_dir or Path("demo-data")).resolve())
    with Supervisor(layout.logs) as supervisor:
        started = time.monotonic()
        try:
            ports = start_federation(layout, args.host, args.persons, supervisor)
        except (RuntimeError, TimeoutError) as exc:
            print(f"demo failed to start: {exc}", file=sys.stderr)
            return 1
        pids = ", ".join(f"{n}={supervisor.pid(n)}" for n in supervisor.processes)
        print(
            f"zhol demo ready in {time.monotonic() - started:.1f}s: "
            f"{layout.federation_json}, citizen portal "
            f"http://{ports.adapter_address(PORTAL_AGENCY)}/ (pids: {pids})"
        )
        print("try:\n" + example_commands(layout, ports))
        print("A component that exits is restarted; Ctrl-C stops every process.")
        stop = {"now": False}

        def request_stop(*_: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        keeper = Keeper(supervisor, say=lambda line: print(line, flush=True))
        while not stop["now"]:
            try:
                keeper.tick()
            except ComponentGaveUp as exc:
                print(f"demo stopping: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    print("zhol demo stopped")
    return 0


def _check(layout: Layout, args: argparse.Namespace) -> int:
    with Supervisor(layout.logs) as supervisor:
        try:
            ports = start_federation(layout, args.host, min(args.persons, 2000), supervisor)
            address = ports.address(ports.gateway_is[CONSUMER_GATEWAY])
            iin, message_id, last_name = asyncio.run(example_exchange(address))
            portal = f"http://{ports.adapter_address(PORTAL_AGENCY)}/"
            asyncio.run(check_portal(portal, iin, last_name))
            print(f"citizen portal {portal}: signed in through the SMS outbox, 'me' read")
        except (RuntimeError, TimeoutError, grpc.RpcError, aiohttp.ClientError) as exc:
            print(f"demo check FAILED: {exc}", file=sys.stderr)
            return 1
        print(f"exchange {message_id} crossed the bus:")
        time.sleep(0.1)
        if not message_id or not print_exchange(layout, message_id):
            print("demo check FAILED: the exchange is missing from a message log", file=sys.stderr)
            return 1
        # Then every life scenario, through all four agencies, against this federation.
        scenarios = scenario.run(
            argparse.Namespace(name="all", federation=layout.federation_json, timeout=30.0)
        )
        if scenarios != 0:
            print("demo check FAILED: zhol scenario all did not pass", file=sys.stderr)
            return 1
    print(json.dumps({"check": "ok", "message_id": message_id, "data_subject": iin}))
    return 0
