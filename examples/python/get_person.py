"""An agency IS calling the population registry through its own gateway.

Everything it needs: the provider's .proto (protos/zhol/population/v1), the client
subsystem it calls as and its own gateway's IS address. The IS talks plain gRPC to
that gateway and names itself with zhol-* metadata; the gateways do the signing,
verifying and logging. Run it against `make demo`:

    .venv/bin/python examples/python/get_person.py --federation demo-data/federation.json

or as any member's subsystem, through its own gateway (no federation.json needed):

    .venv/bin/python examples/python/get_person.py --client KZ/GOV/SRC/taxes \
        --gateway 127.0.0.1:PORT --iin IIN
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc

from zhol.population.v1 import population_pb2, population_pb2_grpc

DEFAULT_CLIENT = "KZ/GOV/MLSPP/pension"


def gateway_address(federation_path: Path, client: str) -> str:
    """The IS address of the gateway serving ``client``, from the demo's federation.json."""
    federation = json.loads(federation_path.read_text())
    subsystem = next((s for s in federation["subsystems"] if s["id"] == client), None)
    if subsystem is None:
        sys.exit(f"{federation_path}: no subsystem {client} (give its gateway with --gateway)")
    gateway = next(g for g in federation["gateways"] if g["id"] == subsystem["gateway"])
    return str(gateway["is_address"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--client",
        default=DEFAULT_CLIENT,
        metavar="SUBSYSTEM",
        help="the subsystem this IS calls as (default %(default)s)",
    )
    parser.add_argument(
        "--gateway",
        metavar="HOST:PORT",
        help="the IS address of the gateway serving --client (default: from --federation)",
    )
    parser.add_argument(
        "--federation",
        type=Path,
        default=Path("demo-data/federation.json"),
        help="the demo's federation.json, read only without --gateway (default %(default)s)",
    )
    parser.add_argument("--iin", help="whom to look up (default: the first citizen listed)")
    args = parser.parse_args()
    address = args.gateway or gateway_address(args.federation, args.client)

    metadata = [
        ("zhol-client", args.client),
        ("zhol-user-id", "EE:officer-17"),
        ("zhol-purpose", "pension application 2026-0042"),
    ]
    with grpc.insecure_channel(address) as channel:
        registry = population_pb2_grpc.PopulationRegistryStub(channel)
        iin = args.iin
        if not iin:
            page = registry.ListPersons(
                population_pb2.ListPersonsRequest(page_size=1), metadata=metadata, timeout=5
            )
            iin = page.persons[0].iin
        try:
            person, call = registry.GetPerson.with_call(
                population_pb2.GetPersonRequest(iin=iin),
                metadata=[*metadata, ("zhol-data-subject", iin)],
                timeout=5,
            )
        except grpc.RpcError as exc:
            trailers = dict(exc.trailing_metadata() or ())
            # zhol-error present: the bus refused; absent: the registry itself answered.
            print(
                f"{exc.code().name}: {exc.details()} "
                f"[zhol-error={trailers.get('zhol-error', '-')}, "
                f"zhol-error-id={trailers.get('zhol-error-id', '-')}]",
                file=sys.stderr,
            )
            return 1
        trailers = dict(call.trailing_metadata())
        print(f"message id: {trailers['zhol-message-id']}")
        print(person)
    return 0


if __name__ == "__main__":
    sys.exit(main())
