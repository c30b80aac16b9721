"""Whom a request is about, read from the request itself (DESIGN.md section 2, "The data
subject is bound to the data").

A provider marks the request fields that hold a citizen's IIN with the field option
``(zhol.bus.v1.data_subject)`` (protos/zhol/bus/v1/options.proto) and registers its
service with a FileDescriptorSet. Gateways parse a request body with the method's
request type from that set, collect the marked fields' values (also repeated ones and
ones inside nested messages) and bind the declared ``zhol-data-subject`` to them. One
exchange is filed under one citizen (the log's ``data_subject`` column, indexed): when a
request names several, the declaration must be one of them, and a missing one is filled
in with the first, in field order.

Pure: no I/O. A reader per (descriptor set, service, method) is built once and cached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import DecodeError, Message

from zhol.bus.v1 import options_pb2
from zhol.core.contracts import WELL_KNOWN_PREFIX, descriptor_pool_of
from zhol.core.errors import ZholError
from zhol.core.iin import Iin

# The options' extension handles (typed loosely: the generated stubs type them as plain
# field descriptors, which the Extensions mapping does not accept).
_DATA_SUBJECT: Any = options_pb2.data_subject
_NAMES_NO_SUBJECT: Any = options_pb2.names_no_data_subject


@dataclass(frozen=True, slots=True)
class SubjectReader:
    """How to read the data subjects of one method's requests."""

    request_type: str
    message_class: type[Message]
    # Full names of the message types whose marked fields (or nested ones) name a subject,
    # with the names of their marked string fields.
    marked: Mapping[str, frozenset[str]]
    names_no_subject: bool  # the request type is marked as about nobody

    def subjects(self, body: bytes) -> tuple[str, ...]:
        """The distinct valid IINs the body's marked fields hold, in field order.
        InvalidRequest if the body is not a request of this type. A value that is not
        a valid IIN names no citizen: the provider refuses it itself (its INVALID_ARGUMENT
        reaches the caller), so no one's data is read under it."""
        try:
            request = self.message_class.FromString(body)
        except DecodeError:
            raise ZholError("InvalidRequest", f"the body is not a {self.request_type}") from None
        return tuple(dict.fromkeys(v for v in _values(request, self.marked) if _is_iin(v)))


def _is_iin(text: str) -> bool:
    try:
        Iin.parse(text)
    except ZholError:
        return False
    return True


def _values(message: Message, marked: Mapping[str, frozenset[str]]) -> Iterator[str]:
    names = marked.get(message.DESCRIPTOR.full_name)
    if names is None:
        return
    for field in message.DESCRIPTOR.fields:
        if field.name in names:
            if field.is_repeated:
                yield from getattr(message, field.name)
            else:
                yield getattr(message, field.name)
        elif field.message_type is not None and field.message_type.full_name in marked:
            if field.is_repeated:
                items = getattr(message, field.name)
                if field.message_type.GetOptions().map_entry:  # a map: its values
                    items = items.values()
                for item in items:
                    yield from _values(item, marked)
            elif message.HasField(field.name):
                yield from _values(getattr(message, field.name), marked)


def _file_options(
    fds: descriptor_pb2.FileDescriptorSet,
) -> tuple[dict[str, bool], dict[str, set[str]]]:
    """From the set's own descriptors (so options are read with our compiled extensions):
    message full name -> marked as about nobody, and -> its marked field names."""
    nobody: dict[str, bool] = {}
    fields: dict[str, set[str]] = {}

    def visit(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{message.name}" if prefix else message.name
        nobody[name] = message.options.Extensions[_NAMES_NO_SUBJECT]
        fields[name] = {
            f.name
            for f in message.field
            if f.options.Extensions[_DATA_SUBJECT]
            and f.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING
        }
        for nested in message.nested_type:
            visit(name, nested)

    for file in fds.file:
        for message in file.message_type:
            visit(file.package, message)
    return nobody, fields


def _marked_types(root: Descriptor, fields: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """The message types reachable from root that hold marked fields, directly or nested."""
    memo: dict[str, bool] = {}

    def holds(message: Descriptor) -> bool:
        name = message.full_name
        if name in memo:
            return memo[name]
        memo[name] = False  # a recursive type holds marks only through its other fields
        result = bool(fields.get(name))
        for field in message.fields:
            if field.message_type is not None and holds(field.message_type):
                result = True
        memo[name] = result
        return result

    holds(root)
    return {name: frozenset(fields.get(name, ())) for name, held in memo.items() if held}


@lru_cache(maxsize=1024)
def subject_reader(descriptor_set: bytes, grpc_service: str, method: str) -> SubjectReader:
    """The reader for ``grpc_service``'s ``method`` from a FileDescriptorSet. Fails closed
    (DataSubjectMismatch) when the set does not describe the method: a service registered
    with descriptors is never called unchecked."""
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
        pool = descriptor_pool_of(fds)
        service = pool.FindServiceByName(grpc_service)
    except (DecodeError, KeyError, TypeError, ValueError):
        raise ZholError("DataSubjectMismatch", f"no usable descriptor for {grpc_service}") from None
    found = service.methods_by_name.get(method)
    if found is None:
        raise ZholError("DataSubjectMismatch", f"no descriptor for {grpc_service}/{method}")
    request = found.input_type
    nobody, fields = _file_options(fds)
    return SubjectReader(
        request_type=request.full_name,
        message_class=message_factory.GetMessageClass(request),
        marked=_marked_types(request, fields),
        names_no_subject=nobody.get(request.full_name, False),
    )


def check_declared(subjects: tuple[str, ...], declared: str) -> None:
    """The provider's rule: a request naming nobody declares nobody; one naming citizens
    declares one of them. DataSubjectMismatch otherwise."""
    if declared and declared not in subjects:
        raise ZholError(
            "DataSubjectMismatch",
            "the declared data subject is not named in the request"
            if subjects
            else "the request names no data subject but declares one",
        )
    if subjects and not declared:
        raise ZholError("DataSubjectMismatch", "the request names a data subject; none declared")


def bind_subject(subjects: tuple[str, ...], declared: str) -> str:
    """The consumer's rule: a missing declaration is filled in with the first subject the
    request names; a given one must pass ``check_declared``. Returns the subject to file."""
    if not declared and subjects:
        declared = subjects[0]
    check_declared(subjects, declared)
    return declared


def file_descriptor_set(*files: FileDescriptor) -> bytes:
    """A FileDescriptorSet of ``files`` and what they import, dependencies first, without
    the well-known google/protobuf files (every gateway has those): what a provider
    registers its service with (like ``protoc --include_imports --descriptor_set_out``)."""
    fds = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in seen or file.name.startswith(WELL_KNOWN_PREFIX):
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        file.CopyToProto(fds.file.add())

    for file in files:
        add(file)
    return fds.SerializeToString(deterministic=True)


@lru_cache(maxsize=64)
def published_pool(descriptor_set: bytes) -> descriptor_pool.DescriptorPool:
    """A pool of a registered FileDescriptorSet's files (well-known ones from our
    runtime), built once per set, for discovery and server reflection. Raises
    DecodeError, TypeError or ValueError for a set that does not build."""
    return descriptor_pool_of(descriptor_pb2.FileDescriptorSet.FromString(descriptor_set))
