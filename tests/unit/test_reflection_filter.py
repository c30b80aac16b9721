"""Server reflection shows a client only what it may call (gateway/reflection.py): the
descriptor rewriting and the answers, pure, on hand-built descriptors and the
registries' own sets; no sockets."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as rpb

from zhol.cli.federation import PENSION, POPULATION, POPULATION_SERVICE, service_descriptor_set
from zhol.core.ids import SubsystemId
from zhol.gateway.reflection import Allowed, answer_reflection, filtered_file
from zhol.security.globalconf import GlobalConf, Tunables

PENSION_SERVICE = "zhol.pension.v1.PensionRegistry"
CLIENT = SubsystemId.parse("KZ/GOV/MOH/health")
OWN = ["zhol.bus.v1.Discovery", "zhol.bus.v1.Usage"]


def things_file() -> descriptor_pb2.FileDescriptorProto:
    """acme.v1 with services A (Get, Put, Delete), B (List), C (Drop), each commented."""
    file = descriptor_pb2.FileDescriptorProto(
        name="acme/v1/things.proto", package="acme.v1", syntax="proto3"
    )
    file.message_type.add(name="Thing")
    for service, methods in (("A", ("Get", "Put", "Delete")), ("B", ("List",)), ("C", ("Drop",))):
        added = file.service.add(name=service)
        for method in methods:
            added.method.add(name=method, input_type=".acme.v1.Thing", output_type=".acme.v1.Thing")
    comments = {
        (4, 0): "Thing",
        (6, 0): "A",
        (6, 0, 2, 0): "A.Get",
        (6, 0, 2, 1): "A.Put",
        (6, 0, 2, 1, 1): "A.Put name",
        (6, 0, 2, 2): "A.Delete",
        (6, 1): "B",
        (6, 1, 2, 0): "B.List",
        (6, 2): "C",
        (6, 2, 2, 0): "C.Drop",
    }
    for path, text in comments.items():
        file.source_code_info.location.add(path=path, leading_comments=text)
    return file


def comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}


def test_only_granted_methods_remain_and_comments_follow_them() -> None:
    granted = {"acme.v1.A": frozenset({"Put", "Delete"}), "acme.v1.C": frozenset({"Drop"})}
    out = filtered_file(things_file(), granted)
    assert [(s.name, [m.name for m in s.method]) for s in out.service] == [
        ("A", ["Put", "Delete"]),
        ("C", ["Drop"]),
    ]
    assert [m.name for m in out.message_type] == ["Thing"]  # types stay
    # B and A.Get are gone with their comments; the rest are renumbered, not misplaced.
    assert comments(out) == {
        (4, 0): "Thing",
        (6, 0): "A",
        (6, 0, 2, 0): "A.Put",
        (6, 0, 2, 0, 1): "A.Put name",
        (6, 0, 2, 1): "A.Delete",
        (6, 1): "C",
        (6, 1, 2, 0): "C.Drop",
    }
    # Still a valid file: a pool builds it, as a reflection client does.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(out)
    assert sorted(pool.FindServiceByName("acme.v1.A").methods_by_name) == ["Delete", "Put"]
    with pytest.raises(KeyError):
        pool.FindServiceByName("acme.v1.B")


def test_a_service_with_no_granted_method_is_removed() -> None:
    granted = {"acme.v1.B": frozenset({"Nope"}), "other.v1.A": frozenset({"Get"})}
    out = filtered_file(things_file(), granted)
    assert list(out.service) == []
    assert comments(out) == {(4, 0): "Thing"}


def conf() -> GlobalConf:
    population, pension = SubsystemId.parse(POPULATION), SubsystemId.parse(PENSION)
    return GlobalConf(
        instance="KZ",
        version=1,
        generated_at_ms=0,
        expires_at_ms=0,
        tunables=Tunables(60, 600, 30, 1 << 20),
        members={},
        gateways={},
        subsystem_gateways={},
        providers={POPULATION_SERVICE: (population,), PENSION_SERVICE: (pension,)},
        methods={},
        ca_certs_der=(),
        tsa_certs_der=(),
        revoked_cert_sha256=frozenset(),
        signed_bytes=b"",
        descriptor_sets={
            (population, POPULATION_SERVICE): service_descriptor_set(POPULATION_SERVICE),
            (pension, PENSION_SERVICE): service_descriptor_set(PENSION_SERVICE),
        },
    )


def ask(allowed: Allowed, **request: str) -> rpb.ServerReflectionResponse:
    body = rpb.ServerReflectionRequest(**request).SerializeToString()  # type: ignore[arg-type]
    return rpb.ServerReflectionResponse.FromString(answer_reflection(conf(), CLIENT, body, allowed))


def listed(allowed: Allowed) -> list[str]:
    return [s.name for s in ask(allowed, list_services="").list_services_response.service]


def not_found(answer: rpb.ServerReflectionResponse) -> bool:
    return answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def served_pool(answer: rpb.ServerReflectionResponse) -> descriptor_pool.DescriptorPool:
    """The files of an answer built into a new pool, imports first (a client's way)."""
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    pool = descriptor_pool.DescriptorPool()
    for file in reversed(files):
        pool.Add(file)
    return pool


GRANTED: Allowed = {
    (SubsystemId.parse(POPULATION), POPULATION_SERVICE): frozenset({"GetPerson", "GetAddress"}),
    (SubsystemId.parse(PENSION), PENSION_SERVICE): frozenset(),  # asked, nothing granted
}


def test_nothing_granted_shows_only_the_bus_services() -> None:
    assert listed({}) == OWN
    for symbol in (
        POPULATION_SERVICE,
        f"{POPULATION_SERVICE}.GetPerson",
        "zhol.population.v1.GetPersonRequest",  # a type of a hidden service too
    ):
        assert not_found(ask({}, file_containing_symbol=symbol)), symbol
    assert not_found(ask({}, file_by_filename="zhol/population/v1/population.proto"))
    # The bus's own files stay described.
    assert not not_found(ask({}, file_containing_symbol="zhol.bus.v1.Discovery"))


def test_granted_methods_only_are_listed_and_described() -> None:
    assert listed(GRANTED) == sorted([*OWN, POPULATION_SERVICE])
    answer = ask(GRANTED, file_containing_symbol=f"{POPULATION_SERVICE}.GetPerson")
    service = served_pool(answer).FindServiceByName(POPULATION_SERVICE)
    assert sorted(service.methods_by_name) == ["GetAddress", "GetPerson"]
    by_name = served_pool(ask(GRANTED, file_by_filename="zhol/population/v1/population.proto"))
    assert sorted(by_name.FindServiceByName(POPULATION_SERVICE).methods_by_name) == [
        "GetAddress",
        "GetPerson",
    ]
    # A method not granted, a service with nothing granted, and its types: not found.
    for symbol in (
        f"{POPULATION_SERVICE}.RegisterBirth",
        PENSION_SERVICE,
        f"{PENSION_SERVICE}.GetContributions",
        "zhol.pension.v1.GetContributionsRequest",
    ):
        assert not_found(ask(GRANTED, file_containing_symbol=symbol)), symbol
    assert not_found(ask(GRANTED, file_by_filename="zhol/pension/v1/pension.proto"))
