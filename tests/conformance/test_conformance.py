"""Every conformance case (the package's cli/conformance_cases/) against the in-process
federation: the IS-facing ones through zhol.cli.conformance_runner, the peer ones
through tests/conformance/peer.py.

Also checks the case data against the code's catalogue, so neither can drift: every
expected error code exists in core/errors.py, and its gRPC status is the one the
catalogue's category table gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from tests.conformance.peer import PeerSetup, call_peer
from tests.integration.bus_federation import Federation, start_federation
from tests.integration.test_bus import assert_refusal_evidence, log_count
from tests.vectors.spec import load, spec_pae, spec_signed_bytes
from zhol.cli.conformance_runner import (
    Case,
    CaseFileError,
    Limits,
    Outcome,
    call_is,
    find_known_iin,
    judge,
    load_cases,
    parse_case_document,
    sized_body,
)
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.core.errors import CODES, Hop, parse_full_code
from zhol.core.metadata import MESSAGE_ID_KEY
from zhol.gateway.messagelog import list_records

CASES = load_cases()


@dataclass(frozen=True)
class Bench:
    fed: Federation
    channel: grpc.aio.Channel
    variables: dict[str, str]
    limits: Limits
    peer: PeerSetup


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bench(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bench]:
    fed = await start_federation(tmp_path_factory.mktemp("conformance"), persons=30)
    channel = grpc.aio.insecure_channel(fed.is_address())
    tunables = fed.provider.conf.current().conf.tunables
    limits = Limits(tunables.max_message_bytes, tunables.clock_skew_s)
    peer = PeerSetup(
        keys_dirs={g: fed.layout.gateway(g) / "keys" for g in fed.gateways},
        receiver_address=f"127.0.0.1:{fed.provider.peer_port}",
        limits=limits,
    )
    try:
        variables = {"known_iin": await find_known_iin(channel)}
        yield Bench(fed, channel, variables, limits, peer)
    finally:
        await channel.close()
        await fed.stop()


def _logged(fed: Federation, gateway_id: str, message_id: str) -> set[str]:
    records = list_records(fed.layout.gateway(gateway_id) / "messagelog.db", message_id=message_id)
    return {r["kind"] for r in records}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_case(bench: Bench, case: Case) -> None:
    fed = bench.fed
    gateways = (CONSUMER_GATEWAY, PROVIDER_GATEWAY)
    before = {g: log_count(fed, g) for g in gateways}
    if case.is_peer:
        got = await call_peer(bench.peer, case, bench.variables)
    else:
        got = await call_is(bench.channel, case, bench.variables, bench.limits)
    assert judge(case, got, bench.variables) == (), f"{case.id}: {case.description}"
    _check_evidence(fed, case, got, before)


def _check_evidence(fed: Federation, case: Case, got: Outcome, before: dict[str, int]) -> None:
    """The bus never answers without a record, and a refused message leaves no answer."""
    after = {g: log_count(fed, g) for g in before}
    answered = case.expect.outcome in ("ok", "provider-error")
    if case.is_peer:
        # Only the provider gateway took part; a replay's first send was a real exchange.
        grew = 2 if answered or case.mutation == "replay" else 0
        assert after == {
            CONSUMER_GATEWAY: before[CONSUMER_GATEWAY],
            PROVIDER_GATEWAY: before[PROVIDER_GATEWAY] + grew,
        }
        if answered:
            assert _logged(fed, PROVIDER_GATEWAY, got.request_id) == {"request", "response"}
    elif answered:
        message_id = got.trailer(MESSAGE_ID_KEY) or ""
        for gateway_id in before:
            assert _logged(fed, gateway_id, message_id) == {"request", "response"}
    else:
        # A deadline case names no error: the call may have ended anywhere.
        hop = parse_full_code(case.expect.error)[0] if case.expect.error else None
        forwarded = {Hop.CLIENT: False, Hop.SERVER_PROXY: True}.get(hop) if hop else None
        assert_refusal_evidence(fed, before, forwarded=forwarded)


# --- the data cannot drift from the code ---------------------------------------------


def test_case_ids_are_unique_and_every_area_has_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert {c.area for c in CASES} >= {
        "is_metadata",
        "identifiers",
        "services",
        "sizes_deadlines",
        "peer",
    }


@pytest.mark.parametrize("case", [c for c in CASES if c.expect.error], ids=lambda c: c.id)
def test_expected_error_is_catalogued_with_its_status(case: Case) -> None:
    hop, code = parse_full_code(case.expect.error)  # raises for an unknown hop or code
    assert CODES[code.name] is code
    assert code.status.name == case.expect.status, (
        f"{case.id}: the catalogue maps {code.name} to {code.status.name}"
    )


def test_the_brief_s_contract_is_covered() -> None:
    """The cases the IS-side contract and the error table call for are all there
    (docs/protocol.md, the README's error table; none lost by an edit)."""
    errors = {c.expect.error for c in CASES}
    assert {
        "Client.MissingHeader",
        "Client.InvalidIdentifier",
        "Client.UnknownClient",
        "Client.MessageTooLarge",
        "Server.ClientProxy.UnknownService",
        "Server.ServerProxy.AccessDenied",
        "Server.ServerProxy.InvalidSignature",
        "Server.ServerProxy.MissingSignature",
        "Server.ServerProxy.ReplayedMessage",
        "Server.ServerProxy.ClockSkew",
        "Server.ServerProxy.SignerMismatch",
        "Server.ServerProxy.InvalidMessage",
    } <= errors
    outcomes = {(c.expect.outcome, c.expect.status) for c in CASES}
    assert {
        ("ok", "OK"),
        ("provider-error", "NOT_FOUND"),
        ("provider-error", "INVALID_ARGUMENT"),
        ("deadline", "DEADLINE_EXCEEDED"),
    } <= outcomes


def test_the_vector_sealed_case_seals_as_the_vectors_say() -> None:
    """peer.sealed-per-vectors seals with tests/vectors/spec.py: that encoder must
    reproduce every known-answer vector, or the case would prove nothing."""
    assert any(c.mutation == "sealed-per-vectors" and c.expect.outcome == "ok" for c in CASES)
    for case in load("pae.json")["cases"]:
        parts = [bytes.fromhex(p) for p in case["parts_hex"]]
        assert spec_pae(case["payload_type"], parts).hex() == case["pae_hex"], case["name"]
    for name in ("request_seal.json", "response_binding.json"):
        v = load(name)
        signed = spec_signed_bytes(
            v["payload_type"], bytes.fromhex(v["header_hex"]), bytes.fromhex(v["body_hex"])
        )
        assert signed.hex() == v["signed_bytes_hex"], name


# --- the loader's errors name the file, the case and the field -----------------------

GOOD = {
    "id": "x.ok",
    "description": "d",
    "method": "/zhol.population.v1.PopulationRegistry/GetPerson",
    "body_type": "zhol.population.v1.GetPersonRequest",
    "body": {"iin": "{known_iin}"},
    "metadata": {"zhol-client": "KZ/GOV/MLSPP/pension"},
    "expect": {"outcome": "ok"},
}


def test_a_good_case_loads() -> None:
    (case,) = parse_case_document({"case": [GOOD]}, "area", "f.toml")
    assert case.id == "x.ok" and case.area == "area" and not case.is_peer
    assert case.metadata == (("zhol-client", "KZ/GOV/MLSPP/pension"),)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"id": "Bad Id"}, "id must be"),
        ({"description": "two\nlines"}, "one line"),
        ({"method": "GetPerson"}, "gRPC path"),
        ({"surprise": 1}, "unknown key(s) surprise"),
        ({"body": {"no_such_field": 1}}, "not a zhol.population.v1.GetPersonRequest"),
        ({"body_type": "zhol.nothing.v1.X"}, "not a zhol.nothing.v1.X"),
        ({"body_size": 10}, "either body_type and body, or body_size"),
        ({"metadata": {"Zhol-Client": "x"}}, "lower-case keys"),
        ({"metadata": {"zhol-purpose": "\t"}}, "printable ASCII"),
        ({"metadata": {"zhol-client": "{secret}"}}, "unknown placeholder {secret}"),
        ({"deadline_ms": 0}, "deadline_ms must be"),
        ({"mutation": "none"}, "only for /zhol.bus.v1.Exchange/Call"),
        ({"expect": {"outcome": "fine"}}, "outcome must be one of"),
        ({"expect": {"outcome": "bus-error", "status": "NOT_FOUND"}}, "needs error ="),
        (
            {"expect": {"outcome": "bus-error", "error": "X.Y", "status": "NOT_FOUND"}},
            "needs error =",
        ),
        (
            {"expect": {"outcome": "provider-error", "status": "NOT_A_STATUS"}},
            "not a gRPC status name",
        ),
        ({"expect": {"outcome": "ok", "status": "NOT_FOUND"}}, "status OK if and only if"),
        ({"expect": {"outcome": "deadline", "status": "DEADLINE_EXCEEDED"}}, "needs deadline_ms"),
        ({"method": "/zhol.bus.v1.Exchange/Call", "body": None}, "needs the file's [base]"),
    ],
)
def test_a_malformed_case_is_refused_with_a_clear_error(change: dict, complaint: str) -> None:  # type: ignore[type-arg]
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(CaseFileError) as caught:
        parse_case_document({"case": [raw]}, "area", "f.toml")
    assert complaint in str(caught.value)
    assert str(caught.value).startswith("f.toml case ")


def test_a_file_without_cases_or_with_a_duplicate_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match="at least one"):
        parse_case_document({}, "area", "f.toml")
    with pytest.raises(CaseFileError, match="used twice"):
        parse_case_document({"case": [GOOD, GOOD]}, "area", "f.toml")
    (tmp_path / "a.toml").write_text('[[case]]\nid = "x.ok"\n')
    with pytest.raises(CaseFileError, match="a.toml case 'x.ok': description"):
        load_cases(tmp_path)
    (tmp_path / "a.toml").write_text("[[case]\n")
    with pytest.raises(CaseFileError, match="a.toml"):
        load_cases(tmp_path)


@pytest.mark.parametrize("size", [0, 1, 2, 127, 128, 129, 130, 16385, 65537])
def test_sized_bodies_have_exactly_the_size(size: int) -> None:
    assert len(sized_body(size)) == size
