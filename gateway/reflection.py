"""gRPC server reflection on the IS port, answered from the global configuration.

The standard ``grpc.reflection.v1alpha.ServerReflection`` (and ``v1``, whose messages
are the same on the wire), so that ``grpcurl <own gateway> list``, ``describe`` and calls
without local ``.proto`` files work (docs/protocol.md, "Server reflection"). Each
request of the stream runs the discovery pipeline (the IS's pin, ``zhol-client`` naming
a subsystem this gateway serves), so an unidentified caller learns nothing.

What it shows is what this client may call: of the services the configuration
publishes with a descriptor set (services registered without one cannot be described;
ListMembers names them), only those in which the providers' gateways grant it a method
(``Allowed``, asked of them over the bus by gateway/granted.py), each served file
rewritten to hold only those methods; and the bus's own Discovery and Usage, and Events
for a client that publishes topics, as they are.

Pure: no I/O. The index of a configuration's descriptors is built once and cached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
# Field numbers in source_code_info paths: FileDescriptorProto.service, .method.
_SERVICE_FIELD = descriptor_pb2.FileDescriptorProto.SERVICE_FIELD_NUMBER
_METHOD_FIELD = descriptor_pb2.ServiceDescriptorProto.METHOD_FIELD_NUMBER

# What one client may call, as the providers' gateways answered AllowedMethods: per
# (provider, gRPC service) published with descriptors, the methods granted.
Allowed = Mapping[tuple[SubsystemId, str], frozenset[str]]
Key = tuple[SubsystemId, str]


def methods_by_service(allowed: Allowed) -> dict[str, frozenset[str]]:
    """The granted methods by gRPC service name (whichever provider grants them)."""
    merged: dict[str, frozenset[str]] = {}
    for (_provider, service), methods in allowed.items():
        if methods:
            merged[service] = merged.get(service, frozenset()) | methods
    return merged


@dataclass(frozen=True, slots=True)
class ReflectionIndex:
    """The pools of one configuration's descriptor sets, by (provider, service)."""

    pools: tuple[tuple[Key, descriptor_pool.DescriptorPool], ...]

    def visible(self, allowed: Allowed) -> tuple[descriptor_pool.DescriptorPool, ...]:
        """The pools of the services the client may call a method of, in index order."""
        return tuple(pool for key, pool in self.pools if allowed.get(key))

    def find(self, lookup: str, key: str, allowed: Allowed) -> FileDescriptor | None:
        """The first file (in the visible pools' order, ours last) that ``lookup`` finds
        for key; None for a service or method the client may not call."""
        granted = methods_by_service(allowed)
        for pool in (*self.visible(allowed), descriptor_pool.Default()):
            try:
                if lookup == "symbol":
                    found: FileDescriptor = _containing_symbol(pool, key)
                else:
                    found = pool.FindFileByName(key)
            except KeyError:
                continue
            if pool is descriptor_pool.Default():
                return found if _is_own(found) else None  # the runtime's others are not ours
            if lookup == "symbol" and not _symbol_shown(pool, key, granted):
                return None
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


def _symbol_shown(
    pool: descriptor_pool.DescriptorPool, symbol: str, granted: Mapping[str, frozenset[str]]
) -> bool:
    """A service is shown if a method of it is granted, a method if it is granted; any
    other symbol (a message, an enum) with the file that declares it."""
    try:
        pool.FindServiceByName(symbol)
        return bool(granted.get(symbol))
    except KeyError:
        pass
    service, _, method = symbol.rpartition(".")
    try:
        found = pool.FindServiceByName(service)
    except KeyError:
        return True
    return method not in found.methods_by_name or method in granted.get(service, ())


def filtered_file(
    file: descriptor_pb2.FileDescriptorProto, granted: Mapping[str, frozenset[str]]
) -> descriptor_pb2.FileDescriptorProto:
    """The file with only the granted methods: a service none of whose methods is
    granted is removed, and so are the others' ungranted methods. Messages, enums and
    imports stay, so the file still builds in a pool; its source comments follow their
    service or method (renumbered) or go with it."""
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(file)
    del out.service[:]
    prefix = f"{file.package}." if file.package else ""
    # Old index -> new index, for services and (per old service index) methods.
    services: dict[int, int] = {}
    methods: dict[int, dict[int, int]] = {}
    for i, service in enumerate(file.service):
        allowed = granted.get(prefix + service.name, frozenset())
        kept = [(j, m) for j, m in enumerate(service.method) if m.name in allowed]
        if not kept:
            continue
        services[i] = len(out.service)
        methods[i] = {j: n for n, (j, _m) in enumerate(kept)}
        copy = out.service.add()
        copy.CopyFrom(service)
        del copy.method[:]
        copy.method.extend(m for _j, m in kept)
    if file.HasField("source_code_info"):
        locations = []
        for location in file.source_code_info.location:
            path = _renumbered(list(location.path), services, methods)
            if path is None:
                continue
            moved = descriptor_pb2.SourceCodeInfo.Location()
            moved.CopyFrom(location)
            moved.path[:] = path
            locations.append(moved)
        del out.source_code_info.location[:]
        out.source_code_info.location.extend(locations)
    return out


def _renumbered(
    path: list[int], services: Mapping[int, int], methods: Mapping[int, Mapping[int, int]]
) -> list[int] | None:
    """A source location's path after the removals; None if what it points at is gone."""
    if len(path) < 2 or path[0] != _SERVICE_FIELD:
        return path
    service = services.get(path[1])
    if service is None:
        return None
    if len(path) < 4 or path[2] != _METHOD_FIELD:
        return [path[0], service, *path[2:]]
    method = methods[path[1]].get(path[3])
    if method is None:
        return None
    return [path[0], service, path[2], method, *path[4:]]


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
def _index(sets: tuple[tuple[Key, bytes], ...]) -> ReflectionIndex:
    pools = []
    for key, descriptor_set in sets:
        try:
            pools.append((key, published_pool(descriptor_set)))
        except (DecodeError, KeyError, TypeError, ValueError):
            continue  # an unreadable set describes nothing (and is refused on a call)
    return ReflectionIndex(tuple(pools))


def reflection_index(conf: GlobalConf) -> ReflectionIndex:
    """The configuration's services with descriptors, in provider order (cached)."""
    ordered = sorted(conf.descriptor_sets.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
    return _index(tuple(ordered))


def listed_services(conf: GlobalConf, client: SubsystemId, allowed: Allowed) -> list[str]:
    """What ``list`` shows this client: the services with descriptors in which it may
    call a method, and the bus's own."""
    own = [name for name in _OWN if name != _EVENTS or conf.topics.get(client)]
    described = {
        service
        for (provider, service), methods in allowed.items()
        if methods and (provider, service) in conf.descriptor_sets
    }
    return sorted({*described, *own})


def _files(
    file: FileDescriptor, request: rpb.ServerReflectionRequest, allowed: Allowed
) -> rpb.ServerReflectionResponse:
    granted = methods_by_service(allowed)
    own = file.pool is descriptor_pool.Default()
    protos = []
    for each in _with_dependencies(file):
        proto = descriptor_pb2.FileDescriptorProto()
        each.CopyToProto(proto)
        if not own:
            proto = filtered_file(proto, granted)
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


def parse_reflection_request(body: bytes) -> rpb.ServerReflectionRequest:
    """One request of the stream (InvalidRequest if it does not decode)."""
    try:
        return rpb.ServerReflectionRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not a ServerReflectionRequest") from None


def answer_reflection(
    conf: GlobalConf, client: SubsystemId, body: bytes, allowed: Allowed
) -> bytes:
    """One ServerReflectionResponse for one request of the stream, showing only what
    ``allowed`` grants of the providers' services (InvalidRequest if it does not
    decode; a symbol or file it cannot show is an in-band NOT_FOUND)."""
    request = parse_reflection_request(body)
    index = reflection_index(conf)
    kind = request.WhichOneof("message_request")
    found: FileDescriptor | None = None
    if kind == "list_services":
        names = listed_services(conf, client, allowed)
        answer = rpb.ServerReflectionResponse(
            list_services_response=rpb.ListServiceResponse(
                service=[rpb.ServiceResponse(name=n) for n in names]
            ),
            original_request=request,
        )
    elif kind == "file_containing_symbol":
        found = index.find("symbol", request.file_containing_symbol, allowed)
    elif kind == "file_by_filename":
        found = index.find("file", request.file_by_filename, allowed)
    elif kind in ("file_containing_extension", "all_extension_numbers_of_type"):
        answer = _extensions(index, request, allowed)
    else:
        answer = _error(request, grpc.StatusCode.INVALID_ARGUMENT, "unknown request")
    if kind in ("file_containing_symbol", "file_by_filename"):
        answer = (
            _files(found, request, allowed)
            if found is not None
            else _error(request, grpc.StatusCode.NOT_FOUND, "not found")
        )
    answer.valid_host = request.host
    return answer.SerializeToString()


def _extensions(
    index: ReflectionIndex, request: rpb.ServerReflectionRequest, allowed: Allowed
) -> rpb.ServerReflectionResponse:
    """Extensions of a message type, from the (visible) pool that describes it."""
    if request.HasField("file_containing_extension"):
        extendee = request.file_containing_extension.containing_type
    else:
        extendee = request.all_extension_numbers_of_type
    file = index.find("symbol", extendee, allowed)
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
            return _files(pool.FindFileContainingSymbol(extension.full_name), request, allowed)
    return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
