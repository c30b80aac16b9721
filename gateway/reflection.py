"""gRPC server reflection on the IS port, answered from the global configuration.

The standard ``grpc.reflection.v1alpha.ServerReflection`` (and ``v1``, whose messages
are the same on the wire), so that ``grpcurl <own gateway> list``, ``describe`` and calls
without local ``.proto`` files work (docs/protocol.md, "Server reflection"). Each
request of the stream runs the discovery pipeline (the IS's pin, ``zhol-client`` naming
a subsystem this gateway serves), so an unidentified caller learns nothing.

What it lists is what this client can call through this gateway: every service the
configuration publishes with a descriptor set (services registered without one cannot
be described; ListMembers names them), the Discovery and Usage metaservices, and Events
for a client that publishes topics. Whether a provider grants the client a method is
that provider gateway's local decision, known only there: ``Discovery/AllowedMethods``
asks it, as a logged exchange, which reflection does not make on its own.

Pure: no I/O. The index of a configuration's descriptors is built once and cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2 as rpb

from zhol.bus.v1 import bus_pb2, discovery_pb2, usage_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import SubsystemId
from zhol.gateway.subjects import published_pool
from zhol.security.globalconf import GlobalConf

_METHOD = "ServerReflectionInfo"
REFLECTION_PATHS = frozenset(
    f"/grpc.reflection.{version}.ServerReflection/{_METHOD}" for version in ("v1alpha", "v1")
)
_OWN = {
    "zhol.bus.v1.Discovery": discovery_pb2.DESCRIPTOR,
    "zhol.bus.v1.Usage": usage_pb2.DESCRIPTOR,
    "zhol.bus.v1.Events": bus_pb2.DESCRIPTOR,
}
_EVENTS = "zhol.bus.v1.Events"


@dataclass(frozen=True, slots=True)
class ReflectionIndex:
    """The pools of one configuration's descriptor sets, provider services' first."""

    services: tuple[str, ...]  # provider services with descriptors, sorted
    pools: tuple[descriptor_pool.DescriptorPool, ...]

    def find(self, lookup: str, key: str) -> FileDescriptor | None:
        """The first file (in the pools' order, ours last) that ``lookup`` finds for key."""
        for pool in (*self.pools, descriptor_pool.Default()):
            try:
                if lookup == "symbol":
                    found: FileDescriptor = _containing_symbol(pool, key)
                else:
                    found = pool.FindFileByName(key)
            except KeyError:
                continue
            if pool is descriptor_pool.Default() and not _is_own(found):
                return None  # the runtime's other files are not ours to show
            return found
        return None


def _containing_symbol(pool: descriptor_pool.DescriptorPool, symbol: str) -> FileDescriptor:
    """The file declaring ``symbol``; also a method's (``pkg.Service.Method``, what
    ``grpcurl describe`` asks for), which the runtime's pool does not index."""
    try:
        return pool.FindFileContainingSymbol(symbol)
    except KeyError:
        service, _, method = symbol.rpartition(".")
        found = pool.FindServiceByName(service)  # KeyError: not a method either
        if method not in found.methods_by_name:
            raise
        return found.file


def _is_own(file: FileDescriptor) -> bool:
    """A file of the bus's own IS-facing services, or one they import."""
    return any(file.name in _closure(own) for own in _OWN.values())


@lru_cache(maxsize=16)
def _closure(file: FileDescriptor) -> frozenset[str]:
    return frozenset(f.name for f in _with_dependencies(file))


def _with_dependencies(file: FileDescriptor) -> Iterator[FileDescriptor]:
    """The file and every file it imports, each once, the file first."""
    seen: set[str] = set()
    stack = [file]
    while stack:
        current = stack.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        yield current
        stack.extend(current.dependencies)


@lru_cache(maxsize=4)
def _index(sets: tuple[tuple[str, bytes], ...]) -> ReflectionIndex:
    pools = []
    for _name, descriptor_set in sets:
        try:
            pools.append(published_pool(descriptor_set))
        except (DecodeError, KeyError, TypeError, ValueError):
            continue  # an unreadable set describes nothing (and is refused on a call)
    return ReflectionIndex(tuple(sorted({name for name, _ in sets})), tuple(pools))


def reflection_index(conf: GlobalConf) -> ReflectionIndex:
    """The configuration's services with descriptors, in provider order (cached)."""
    ordered = sorted(conf.descriptor_sets.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
    return _index(tuple((service, fds) for (_provider, service), fds in ordered))


def listed_services(conf: GlobalConf, client: SubsystemId) -> list[str]:
    """What ``list`` shows this client: the services it can call through this gateway."""
    own = [name for name in _OWN if name != _EVENTS or conf.topics.get(client)]
    return sorted({*reflection_index(conf).services, *own})


def _files(
    file: FileDescriptor, request: rpb.ServerReflectionRequest
) -> rpb.ServerReflectionResponse:
    protos = []
    for each in _with_dependencies(file):
        proto = descriptor_pb2.FileDescriptorProto()
        each.CopyToProto(proto)
        protos.append(proto.SerializeToString())
    return rpb.ServerReflectionResponse(
        file_descriptor_response=rpb.FileDescriptorResponse(file_descriptor_proto=protos),
        original_request=request,
    )


def _error(
    request: rpb.ServerReflectionRequest, code: grpc.StatusCode, text: str
) -> rpb.ServerReflectionResponse:
    return rpb.ServerReflectionResponse(
        error_response=rpb.ErrorResponse(error_code=code.value[0], error_message=text),
        original_request=request,
    )


def answer_reflection(conf: GlobalConf, client: SubsystemId, body: bytes) -> bytes:
    """One ServerReflectionResponse for one request of the stream (InvalidRequest if it
    does not decode; a symbol or file it cannot show is an in-band NOT_FOUND)."""
    try:
        request = rpb.ServerReflectionRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not a ServerReflectionRequest") from None
    index = reflection_index(conf)
    kind = request.WhichOneof("message_request")
    found: FileDescriptor | None = None
    if kind == "list_services":
        names = listed_services(conf, client)
        answer = rpb.ServerReflectionResponse(
            list_services_response=rpb.ListServiceResponse(
                service=[rpb.ServiceResponse(name=n) for n in names]
            ),
            original_request=request,
        )
    elif kind == "file_containing_symbol":
        found = index.find("symbol", request.file_containing_symbol)
    elif kind == "file_by_filename":
        found = index.find("file", request.file_by_filename)
    elif kind in ("file_containing_extension", "all_extension_numbers_of_type"):
        answer = _extensions(index, request)
    else:
        answer = _error(request, grpc.StatusCode.INVALID_ARGUMENT, "unknown request")
    if kind in ("file_containing_symbol", "file_by_filename"):
        answer = (
            _files(found, request)
            if found is not None
            else _error(request, grpc.StatusCode.NOT_FOUND, "not found")
        )
    answer.valid_host = request.host
    return answer.SerializeToString()


def _extensions(
    index: ReflectionIndex, request: rpb.ServerReflectionRequest
) -> rpb.ServerReflectionResponse:
    """Extensions of a message type, from the pool that describes it."""
    if request.HasField("file_containing_extension"):
        extendee = request.file_containing_extension.containing_type
    else:
        extendee = request.all_extension_numbers_of_type
    file = index.find("symbol", extendee)
    if file is None:
        return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
    pool = file.pool
    message = pool.FindMessageTypeByName(extendee)
    extensions = pool.FindAllExtensions(message)
    if request.HasField("all_extension_numbers_of_type"):
        return rpb.ServerReflectionResponse(
            all_extension_numbers_response=rpb.ExtensionNumberResponse(
                base_type_name=extendee,
                extension_number=sorted(e.number for e in extensions),
            ),
            original_request=request,
        )
    number = request.file_containing_extension.extension_number
    for extension in extensions:
        if extension.number == number:
            return _files(pool.FindFileContainingSymbol(extension.full_name), request)
    return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
