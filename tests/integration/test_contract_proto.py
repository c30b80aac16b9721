"""A new agency's service registered from its .proto through the real command line
(`zhol gateway add-subsystem --proto --proto-path`): the registry publishes the compiled
contract, the service is callable over the bus and the gateways bind the data subject
with it; every bad contract is refused with its catalogued code and nothing recorded."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.bus_federation import Federation, bus_metadata, call_raw, start_federation
from tests.integration.test_registry_topics import gateway_command
from tests.sqlite_rows import rows
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.core.clock import SystemClock
from zhol.core.ids import SubsystemId
from zhol.gateway.subjects import subject_reader
from zhol.registry import client
from zhol.registry.provision import load_keys, require_initialised
from zhol.security.globalconf import verify_global_conf

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

TAXES = SubsystemId.parse("KZ/GOV/MJ/taxes")
OTHER = SubsystemId.parse("KZ/GOV/MJ/revenue")
SERVICE = "zhol.taxes.v1.TaxRegistry"
# Above the demo registries' contracts (pension's, the largest, is about 6 KB); a
# contract of six hundred fields passes it: ContractTooLarge.
MAX_CONTRACT_BYTES = 16 * 1024
# Valid IINs (checksums) the taxes IS is asked about; nobody is looked up.
IIN_A, IIN_B = "900101300017", "850505400038"

TAXES_PROTO = """\
syntax = "proto3";
package zhol.taxes.v1;
import "zhol/bus/v1/options.proto";
import "taxes/v1/money.proto";

service TaxRegistry {
  rpc GetDebt(GetDebtRequest) returns (Debt);
  rpc ListPayments(ListPaymentsRequest) returns (Debt);
}
message GetDebtRequest { string iin = 1 [(zhol.bus.v1.data_subject) = true]; }
message ListPaymentsRequest { string payer_iin = 1 [(zhol.bus.v1.data_subject) = true]; }
message Debt { Money amount = 1; }
"""
MONEY_PROTO = """\
syntax = "proto3";
package zhol.taxes.v1;
message Money { int64 tiyn = 1; }
"""
# The same service name with GetDebt taking another request type.
CLASHING_PROTO = TAXES_PROTO.replace("rpc GetDebt(GetDebtRequest)", "rpc GetDebt(Debt)")
BIG_FIELDS = "".join(f"  string field_with_a_long_name_{n} = {n};\n" for n in range(1, 600))
TOO_LARGE_PROTO = f"{TAXES_PROTO}message Big {{\n{BIG_FIELDS}}}\n"


@dataclass
class TaxesIs:
    """The agency's IS: answers both methods, noting the metadata each call carried."""

    server: grpc.aio.Server
    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)


async def start_taxes_is() -> TaxesIs:
    server = grpc.aio.server()
    taxes = TaxesIs(server, server.add_insecure_port("127.0.0.1:0"))

    async def answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        taxes.seen.append(dict(context.invocation_metadata() or ()))
        return b"\x0a\x03\x08\xe8\x07"  # Debt{amount: Money{tiyn: 1000}}

    handler = grpc.unary_unary_rpc_method_handler(answer)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"GetDebt": handler, "ListPayments": handler}
            ),
        )
    )
    await server.start()
    return taxes


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    federation = await start_federation(
        tmp_path / "fed", persons=5, registry_overrides={"max_contract_bytes": MAX_CONTRACT_BYTES}
    )
    yield federation
    await federation.stop()


def write_protos(root: Path, taxes: str = TAXES_PROTO) -> Path:
    folder = root / "taxes" / "v1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "money.proto").write_text(MONEY_PROTO)
    (folder / "taxes.proto").write_text(taxes)
    return folder / "taxes.proto"


async def add_subsystem(gateway_dir: Path, subsystem: SubsystemId, *argv: str) -> tuple[int, str]:
    """`zhol gateway add-subsystem` as an operator runs it: exit code, stderr and stdout."""
    err, out = io.StringIO(), io.StringIO()
    args = ("add-subsystem", "--dir", str(gateway_dir), "--subsystem", str(subsystem))
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = await asyncio.to_thread(gateway_command, *args, "--timeout", "30", *argv)
    return code, err.getvalue() + out.getvalue()


def registry_state(fed: Federation) -> tuple[list[Any], list[Any]]:
    db = fed.layout.registry / "registry.db"
    return (
        rows(db, "SELECT id, state FROM registrations ORDER BY id"),
        rows(db, "SELECT provider, grpc_service, methods, descriptor_set FROM services"),
    )


async def test_a_service_registered_from_its_proto_is_called_with_its_subject_bound(
    fed: Federation, tmp_path: Path
) -> None:
    taxes_is = await start_taxes_is()
    try:
        await _register_and_call(fed, tmp_path, taxes_is)
    finally:
        await taxes_is.server.stop(0)


async def _register_and_call(fed: Federation, tmp_path: Path, taxes_is: TaxesIs) -> None:
    provider_dir = fed.layout.gateway(PROVIDER_GATEWAY)
    proto = write_protos(tmp_path / "good")
    offer = ("--service", f"{SERVICE}=127.0.0.1:{taxes_is.port}")
    good = ("--proto", str(proto), "--proto-path", str(tmp_path / "good"))

    # Bad input: each refused with its code (by the command line before it sends, or by
    # the registry), and the registry records nothing.
    before = registry_state(fed)
    garbage = tmp_path / "garbage.binpb"
    garbage.write_bytes(b"\xff not a descriptor set")
    bad_cases = [
        (("--descriptor-set", str(garbage), *offer), "Client.InvalidDescriptorSet"),
        ((*good, "--service", f"{SERVICE}=127.0.0.1:1:GetDebt,Refund"), "Client.ContractMismatch"),
        ((*good, "--service", "zhol.taxes.v1.Elsewhere=127.0.0.1:1"), "Client.ContractMismatch"),
        ((*good, *offer, *offer), "Client.DuplicateService"),
        (  # protoc refuses it: money.proto is not under the import path given
            ("--proto", str(proto), "--proto-path", str(proto.parent), *offer),
            "Client.InvalidDescriptorSet",
        ),
        (
            (
                *("--proto", str(write_protos(tmp_path / "big", TOO_LARGE_PROTO))),
                *("--proto-path", str(tmp_path / "big"), *offer),
            ),
            "Server.Registry.ContractTooLarge",
        ),
    ]
    for argv, code in bad_cases:
        exit_code, stderr = await add_subsystem(provider_dir, TAXES, *argv)
        assert exit_code != 0 and code in stderr, (argv, stderr)
        assert registry_state(fed) == before, argv

    # The .proto, compiled with its imports; no method list: the contract's methods.
    exit_code, output = await add_subsystem(provider_dir, TAXES, *good, *offer)
    assert exit_code == 0, output
    assert f"{SERVICE}: GetDebt, ListPayments" in output  # the provider gateway's too
    conf = verify_global_conf(
        await client.fetch_global_conf(fed.ports.address(fed.ports.registry)),
        load_keys(require_initialised(fed.layout.registry)).anchor_der,
        SystemClock().now_ms(),
    )
    contract = conf.descriptor_sets[(TAXES, SERVICE)]
    methods = "SELECT methods FROM services WHERE provider = ?"
    assert rows(fed.layout.registry / "registry.db", methods, str(TAXES)) == [
        ('["GetDebt", "ListPayments"]',)
    ]
    reader = subject_reader(contract, SERVICE, "ListPayments")
    assert reader.marked == {"zhol.taxes.v1.ListPaymentsRequest": frozenset({"payer_iin"})}

    # Another provider of the same name whose GetDebt takes another type: refused.
    published = registry_state(fed)
    clash = write_protos(tmp_path / "clash", CLASHING_PROTO)
    exit_code, stderr = await add_subsystem(
        provider_dir, OTHER, "--proto", str(clash), "--proto-path", str(tmp_path / "clash"), *offer
    )
    assert exit_code != 0 and "Server.Registry.DuplicateService" in stderr, stderr
    assert registry_state(fed) == published

    # Callable once the provider grants pension and both gateways hold the new version.
    target = f"{TAXES}/{SERVICE}"
    assert (
        gateway_command(
            "allow", "--dir", str(provider_dir), "--client", CLIENT, "--service", target
        )
        == 0
    )
    # Restarted, both gateways hold the configuration with the new service at once.
    for gateway_id in (PROVIDER_GATEWAY, CONSUMER_GATEWAY):
        await fed.restart_gateway(gateway_id)
    body = subject_reader(contract, SERVICE, "GetDebt").message_class(iin=IIN_A)
    answer, _ = await call_raw(
        fed.is_address(), f"/{SERVICE}/GetDebt", body.SerializeToString(), bus_metadata()
    )
    assert answer == b"\x0a\x03\x08\xe8\x07"
    # The consumer gateway filled in the data subject from the marked field.
    assert taxes_is.seen[-1].get("zhol-data-subject") == IIN_A
    # Declaring someone the request does not name is refused before anything is sent.
    calls = len(taxes_is.seen)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(
            fed.is_address(),
            f"/{SERVICE}/GetDebt",
            body.SerializeToString(),
            bus_metadata(data_subject=IIN_B),
        )
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers.get("zhol-error") == "Client.DataSubjectMismatch"
    assert len(taxes_is.seen) == calls
