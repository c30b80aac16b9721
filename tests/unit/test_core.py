"""Identifiers, the error catalogue, replay protection and local access rights."""

from __future__ import annotations

import grpc
import pytest

from zhol.core.errors import CATALOGUE, CODES, Category, Hop, ZholError, parse_full_code
from zhol.core.ids import GatewayId, MemberId, ServiceId, SubsystemId, parse_grpc_path
from zhol.gateway.localconf import LocalConf, parse_service_target
from zhol.gateway.replay import ReplayGuard, check_clock_skew


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ZholError) as caught:
        call()
    return caught.value.code.name


def test_catalogue_codes_are_unique_and_mapped() -> None:
    names = [c.name for c in CATALOGUE]
    assert len(names) == len(set(names))
    assert set(CODES) == set(names)
    for code in CATALOGUE:
        assert isinstance(code.status, grpc.StatusCode)


# The README's error table, by kind of failure: what went wrong -> one code of that kind
# and the gRPC status the table names for it. The property checked is that the
# catalogue agrees, through whatever category the code is filed under, not that Category
# repeats this table.
DESIGN_STATUSES = {
    "bad request": ("InvalidIdentifier", grpc.StatusCode.INVALID_ARGUMENT),
    "unknown member": ("UnknownMember", grpc.StatusCode.NOT_FOUND),
    "unknown service": ("UnknownService", grpc.StatusCode.NOT_FOUND),
    "access denied": ("AccessDenied", grpc.StatusCode.PERMISSION_DENIED),
    "verification failure": ("InvalidSignature", grpc.StatusCode.UNAUTHENTICATED),
    "configuration": ("OutdatedGlobalConf", grpc.StatusCode.FAILED_PRECONDITION),
    "timeout": ("Timeout", grpc.StatusCode.DEADLINE_EXCEEDED),
    "transport": ("NetworkError", grpc.StatusCode.UNAVAILABLE),
    "bug": ("InternalError", grpc.StatusCode.INTERNAL),
}
# The README's table has these two too (limit, conflict); they are kept apart so that a
# new category must be added here, or to the table above, on purpose.
BEYOND_SECTION_5 = {Category.LIMIT, Category.CONFLICT}


def test_every_category_maps_to_the_status_design_section_5_names() -> None:
    for kind, (name, status) in DESIGN_STATUSES.items():
        assert ZholError(name).status == status, kind
    covered = {CODES[name].category for name, _ in DESIGN_STATUSES.values()}
    assert covered | BEYOND_SECTION_5 == set(Category)
    assert not covered & BEYOND_SECTION_5
    # One status per category and no two categories alike: the status names the kind.
    statuses = [category.value for category in Category]
    assert len(set(statuses)) == len(statuses)
    assert all(isinstance(status, grpc.StatusCode) for status in statuses)
    # Every code takes its status from its category, and every category is in use.
    for code in CATALOGUE:
        assert ZholError(code.name).status == code.category.value
    assert {code.category for code in CATALOGUE} == set(Category)


def test_full_code_names_the_hop() -> None:
    err = ZholError("AccessDenied")
    assert err.full_code == "Server.ServerProxy.AccessDenied"
    moved = err.at(Hop.CLIENT_PROXY)
    assert moved.full_code == "Server.ClientProxy.AccessDenied"
    assert moved.error_id == err.error_id
    assert parse_full_code("Client.MissingHeader") == (Hop.CLIENT, CODES["MissingHeader"])
    with pytest.raises(KeyError):
        ZholError("NoSuchCode")


def test_identifiers_round_trip() -> None:
    text = "KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson"
    service = ServiceId.parse(text)
    assert str(service) == text
    assert service.grpc_path == "/zhol.population.v1.PopulationRegistry/GetPerson"
    assert service.subsystem == SubsystemId.parse("KZ/GOV/MJ/population")
    assert service.subsystem.member == MemberId("KZ", "GOV", "MJ")
    assert str(GatewayId.parse("KZ/GOV/MJ/gw1")) == "KZ/GOV/MJ/gw1"


@pytest.mark.parametrize(
    "parse,text",
    [
        (MemberId.parse, "KZ/GOV"),
        (MemberId.parse, "KZ/XXX/MJ"),
        (MemberId.parse, "KZ/GOV/M J"),
        (SubsystemId.parse, "KZ/GOV/MJ"),
        (SubsystemId.parse, "KZ/GOV/MJ/pop/extra"),
        (SubsystemId.parse, "KZ/GOV/MJ/"),
        (GatewayId.parse, "KZ/GOV//gw1"),
        (ServiceId.parse, "KZ/GOV/MJ/population/NoPackage/GetPerson"),
        (ServiceId.parse, "KZ/GOV/MJ/population/zhol.p.v1.S/Get-Person"),
        (parse_grpc_path, "zhol.p.v1.S/Get"),
        (parse_grpc_path, "/zhol.p.v1.S/Get/extra"),
    ],
)
def test_malformed_identifiers(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    assert code_of(lambda: parse(text)) == "InvalidIdentifier"


def test_replay_guard_rejects_a_second_use_within_the_window() -> None:
    guard = ReplayGuard(lambda since: ())
    guard.check_and_remember("a", 0, 500)  # skew 500 ms: a window of 1000 ms
    assert code_of(lambda: guard.check_and_remember("a", 500, 500)) == "ReplayedMessage"
    guard.check_and_remember("b", 2000, 500)  # prunes "a"
    assert len(guard) == 1


def test_clock_skew() -> None:
    check_clock_skew(1000, 1500, 500)
    assert code_of(lambda: check_clock_skew(1000, 1501, 500)) == "ClockSkew"
    assert code_of(lambda: check_clock_skew(2001, 1500, 500)) == "ClockSkew"


def test_access_rights_deny_by_default() -> None:
    pension = SubsystemId.parse("KZ/GOV/MLSPP/pension")
    get = ServiceId.parse("KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson")
    death = ServiceId.of(get.subsystem, get.grpc_service, "RegisterDeath")
    method_right = (pension, get.subsystem, get.grpc_service, "GetPerson")
    conf = LocalConf({}, frozenset({method_right}))
    conf.authorize(pension, get)
    assert code_of(lambda: conf.authorize(pension, death)) == "AccessDenied"
    whole = LocalConf({}, frozenset({(pension, get.subsystem, get.grpc_service, "")}))
    whole.authorize(pension, death)
    other = SubsystemId.parse("KZ/GOV/MOH/health")
    assert code_of(lambda: whole.authorize(other, get)) == "AccessDenied"
    assert code_of(lambda: conf.exposed(get)) == "UnknownService"


def test_service_target_parsing() -> None:
    provider, service, method = parse_service_target(
        "KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry"
    )
    assert (str(provider), service, method) == (
        "KZ/GOV/MJ/population",
        "zhol.population.v1.PopulationRegistry",
        "",
    )
    assert parse_service_target(
        "KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson"
    )[2] == "GetPerson"
    assert code_of(lambda: parse_service_target("KZ/GOV/MJ")) == "InvalidIdentifier"



def test_grpc_experiments_apply_unless_the_environment_sets_them() -> None:
    from zhol.core.grpcruntime import ENV_KEY, experiments_to_apply

    assert experiments_to_apply("-event_engine_client", {}) == "-event_engine_client"
    assert experiments_to_apply("-event_engine_client", {ENV_KEY: ""}) is None
    assert experiments_to_apply("-event_engine_client", {ENV_KEY: "-x"}) is None
    assert experiments_to_apply("", {}) is None


def test_message_ids_are_uuid7_ordered_by_time() -> None:
    import uuid

    from zhol.core.ids import new_message_id

    now = 1_796_000_000_000
    first = uuid.UUID(new_message_id(now, bytes(10)))
    assert (first.version, first.variant) == (7, uuid.RFC_4122)
    assert first.int >> 80 == now
    later = new_message_id(now + 1, bytes(10))
    same_ms = [new_message_id(now, bytes([i]) * 10) for i in range(1, 4)]
    assert all(str(first) < m < later for m in same_ms)
    assert len(set(same_ms)) == 3
    full = uuid.UUID(new_message_id(now, b"\xff" * 10))
    assert (full.version, full.variant) == (7, uuid.RFC_4122)
    with pytest.raises(ValueError):
        new_message_id(now, bytes(9))
    with pytest.raises(ValueError):
        new_message_id(-1, bytes(10))
