"""Whom a request is about, read from the request (gateway/subjects.py): no sockets.

Also the walk over every method of the four registries: each request type either marks
the fields that name a citizen or says it names nobody, and no IIN field goes unmarked,
so no read of a citizen can be filed under someone else or under no one."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from zhol.bus.v1 import options_pb2
from zhol.cli.federation import SUBSYSTEMS, service_descriptor_set, service_methods
from zhol.core.errors import ZholError
from zhol.gateway.subjects import (
    SubjectReader,
    bind_subject,
    check_declared,
    file_descriptor_set,
    subject_reader,
)
from zhol.pension.v1 import pension_pb2
from zhol.population.v1 import population_pb2

POPULATION = "zhol.population.v1.PopulationRegistry"
A = "900101400013"
B = "850315300019"
C = "020202500014"
DATA_SUBJECT: Any = options_pb2.data_subject


def population(method: str) -> SubjectReader:
    return subject_reader(file_descriptor_set(population_pb2.DESCRIPTOR), POPULATION, method)


def code(err: pytest.ExceptionInfo[ZholError]) -> str:
    return err.value.code.name


def test_the_iins_used_here_are_valid() -> None:
    from zhol.core.iin import Iin

    assert [Iin.parse(v).value for v in (A, B, C)] == [A, B, C]


def test_a_get_person_names_the_citizen_in_its_iin_field() -> None:
    reader = population("GetPerson")
    assert reader.subjects(population_pb2.GetPersonRequest(iin=A).SerializeToString()) == (A,)
    assert reader.subjects(b"") == ()


def test_several_marked_fields_give_each_citizen_once_in_field_order() -> None:
    reader = population("RegisterBirth")
    body = population_pb2.RegisterBirthRequest(mother_iin=B, father_iin=A, first_name="Aru")
    assert reader.subjects(body.SerializeToString()) == (B, A)
    same = population_pb2.RegisterBirthRequest(mother_iin=A, father_iin=A)
    assert reader.subjects(same.SerializeToString()) == (A,)
    no_father = population_pb2.RegisterBirthRequest(mother_iin=B)
    assert reader.subjects(no_father.SerializeToString()) == (B,)


def test_a_value_that_is_no_iin_names_nobody() -> None:
    # The registry refuses it itself (INVALID_ARGUMENT); no citizen's data is read.
    body = population_pb2.GetPersonRequest(iin="12345").SerializeToString()
    assert population("GetPerson").subjects(body) == ()


def test_a_body_that_is_no_request_of_the_method_is_invalid() -> None:
    with pytest.raises(ZholError) as err:
        population("GetPerson").subjects(b"\x0a\xff\xff\xff\x0fnot protobuf")
    assert code(err) == "InvalidRequest"


def test_a_request_type_marked_as_about_nobody() -> None:
    reader = population("ListPersons")
    assert reader.names_no_subject and reader.marked == {}
    body = population_pb2.ListPersonsRequest(page_size=5).SerializeToString()
    assert reader.subjects(body) == ()


def test_a_method_the_descriptors_do_not_describe_fails_closed() -> None:
    with pytest.raises(ZholError) as err:
        population("GetPassport")
    assert code(err) == "DataSubjectMismatch"
    with pytest.raises(ZholError) as err:
        subject_reader(b"\xff not a descriptor set", POPULATION, "GetPerson")
    assert code(err) == "DataSubjectMismatch"
    # A set lacking a file its files import cannot be read either (only the well-known
    # files and the bus's own options are the gateway's to supply).
    fds = descriptor_pb2.FileDescriptorSet.FromString(
        file_descriptor_set(population_pb2.DESCRIPTOR)
    )
    assert [f.name for f in fds.file][0] == options_pb2.DESCRIPTOR.name
    fds.file[-1].dependency.append("agency/v1/missing.proto")
    with pytest.raises(ZholError) as err:
        subject_reader(fds.SerializeToString(), POPULATION, "GetPerson")
    assert code(err) == "DataSubjectMismatch"


def _nested_set() -> bytes:
    """An agency's own .proto: marked fields repeated, nested, in repeated messages and
    in a map's values; an unmarked IIN-like field beside them."""
    file = descriptor_pb2.FileDescriptorProto(
        name="agency/v1/case.proto",
        package="agency.v1",
        syntax="proto3",
        dependency=["zhol/bus/v1/options.proto"],
    )
    string, message = (
        descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
    )
    optional, repeated = (
        descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )

    def add_field(
        msg: descriptor_pb2.DescriptorProto,
        name: str,
        number: int,
        kind: int,
        label: int = optional,
        type_name: str = "",
        marked: bool = False,
    ) -> None:
        f = msg.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            f.type_name = type_name
        if marked:
            f.options.Extensions[DATA_SUBJECT] = True

    party = file.message_type.add(name="Party")
    add_field(party, "iin", 1, string, marked=True)
    add_field(party, "role", 2, string)
    request = file.message_type.add(name="CaseRequest")
    add_field(request, "applicants", 1, string, repeated, marked=True)
    add_field(request, "lead", 2, message, type_name=".agency.v1.Party")
    add_field(request, "others", 3, message, repeated, ".agency.v1.Party")
    add_field(request, "note", 4, string)
    entry = request.nested_type.add(name="ByRoleEntry")
    entry.options.map_entry = True
    add_field(entry, "key", 1, string)
    add_field(entry, "value", 2, message, type_name=".agency.v1.Party")
    add_field(request, "by_role", 5, message, repeated, ".agency.v1.CaseRequest.ByRoleEntry")
    file.service.add(name="Cases").method.add(
        name="Open", input_type=".agency.v1.CaseRequest", output_type=".agency.v1.Party"
    )
    fds = descriptor_pb2.FileDescriptorSet()
    fds.file.add().CopyFrom(
        descriptor_pb2.FileDescriptorProto.FromString(options_pb2.DESCRIPTOR.serialized_pb)
    )
    fds.file.append(file)
    return fds.SerializeToString()


def test_repeated_nested_and_map_values_are_read() -> None:
    reader = subject_reader(_nested_set(), "agency.v1.Cases", "Open")
    request: Any = reader.message_class()
    request.applicants.extend([A, "not an iin", B])
    request.lead.iin = C
    request.others.add(iin=A, role="witness")
    request.by_role["guardian"].iin = "040404600012"
    request.note = B  # unmarked: names nobody even if it looks like an IIN
    subjects = reader.subjects(request.SerializeToString())
    assert subjects == (A, B, C, "040404600012")
    assert reader.subjects(b"") == ()


@pytest.mark.parametrize(
    ("subjects", "declared", "outcome"),
    [
        ((), "", ""),  # about nobody, declared so
        ((A,), A, A),
        ((A, B), B, B),  # several: any one of them
        ((A,), B, "DataSubjectMismatch"),  # names A, declared B
        ((), A, "DataSubjectMismatch"),  # names nobody, declares A
        ((A,), "", "DataSubjectMismatch"),  # names A, declares nobody
    ],
)
def test_the_provider_rule(subjects: tuple[str, ...], declared: str, outcome: str) -> None:
    if outcome == "DataSubjectMismatch":
        with pytest.raises(ZholError) as err:
            check_declared(subjects, declared)
        assert code(err) == outcome
    else:
        check_declared(subjects, declared)


@pytest.mark.parametrize(
    ("subjects", "declared", "outcome"),
    [
        ((), "", ""),
        ((A,), "", A),  # filled in
        ((B, A), "", B),  # the first, in field order
        ((B, A), A, A),
        ((A,), B, "DataSubjectMismatch"),
        ((), A, "DataSubjectMismatch"),
    ],
)
def test_the_consumer_rule(subjects: tuple[str, ...], declared: str, outcome: str) -> None:
    if outcome == "DataSubjectMismatch":
        with pytest.raises(ZholError) as err:
            bind_subject(subjects, declared)
        assert code(err) == outcome
    else:
        assert bind_subject(subjects, declared) == outcome


# --- Every method of the four registries ---

REGISTRY_SERVICES = sorted({s for sub in SUBSYSTEMS for s in sub.services})
METHODS = [(svc, m) for svc in REGISTRY_SERVICES for m in service_methods(svc)]


def test_the_walk_covers_the_four_registries() -> None:
    agencies = {svc.split(".")[1] for svc in REGISTRY_SERVICES}
    assert agencies >= {"population", "pension", "health", "education"}
    assert len(METHODS) >= 30


def _iin_fields(message: Any, seen: set[str]) -> list[tuple[str, str]]:
    """(message, field) of every string field named like an IIN, nested ones too."""
    if message.full_name in seen:
        return []
    seen.add(message.full_name)
    found = []
    for f in message.fields:
        if f.type == f.TYPE_STRING and (f.name == "iin" or f.name.endswith("_iin")):
            found.append((message.full_name, f.name))
        if f.message_type is not None:
            found.extend(_iin_fields(f.message_type, seen))
    return found


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[f"{s}/{m}" for s, m in METHODS])
def test_every_registry_method_says_whom_its_requests_are_about(service: str, method: str) -> None:
    # The very set the demo registers (cli/federation.py), read as a gateway reads it.
    reader = subject_reader(service_descriptor_set(service), service, method)
    marked_fields = {(t, f) for t, names in reader.marked.items() for f in names}
    # Either it marks fields naming a citizen, or it is explicitly about nobody; not both.
    assert bool(marked_fields) != reader.names_no_subject, reader.request_type
    # And no field holding an IIN is left unmarked: a read of that citizen would
    # otherwise be filed under no one (or under whomever the caller chose).
    request = reader.message_class.DESCRIPTOR
    unmarked = set(_iin_fields(request, set())) - marked_fields
    assert not unmarked, f"{reader.request_type}: unmarked IIN fields {sorted(unmarked)}"


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[f"{s}/{m}" for s, m in METHODS])
def test_no_request_of_a_registry_can_be_filed_under_another_citizen(
    service: str, method: str
) -> None:
    """Each marked field, set to A, is refused when B is declared and filled in as A."""
    reader = subject_reader(service_descriptor_set(service), service, method)
    request_type = reader.message_class.DESCRIPTOR.full_name
    for name in reader.marked.get(request_type, ()):
        request = reader.message_class()
        field = request.DESCRIPTOR.fields_by_name[name]
        if field.is_repeated:
            getattr(request, name).append(A)
        else:
            setattr(request, name, A)
        subjects = reader.subjects(request.SerializeToString())
        assert subjects == (A,)
        assert bind_subject(subjects, "") == A
        with pytest.raises(ZholError) as err:
            check_declared(subjects, B)
        assert code(err) == "DataSubjectMismatch"


def test_a_request_using_a_well_known_type_is_read_by_a_gateway_that_imports_no_agency(
) -> None:
    """A gateway process imports no registry's protos and the registered descriptor set
    leaves google/protobuf files out: a request's ``google.protobuf.FieldMask read_mask``
    still resolves (else every such read would fail closed as DataSubjectMismatch)."""
    service = "zhol.pension.v1.PensionRegistry"
    request = pension_pb2.GetPensionStatusRequest(iin=A)
    request.read_mask.paths[:] = ["receives_pension"]
    script = (
        "import sys\n"
        "from zhol.gateway.subjects import subject_reader\n"
        "descriptors, body = sys.stdin.buffer.read().split(b'\\0\\0\\0', 1)\n"
        f"reader = subject_reader(descriptors, {service!r}, 'GetPensionStatus')\n"
        "print(','.join(reader.subjects(body)))\n"
    )
    given = service_descriptor_set(service) + b"\0\0\0" + request.SerializeToString()
    done = subprocess.run([sys.executable, "-c", script], input=given, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-400:]
    assert done.stdout.decode().strip() == A
