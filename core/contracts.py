"""Service contracts: the FileDescriptorSet a provider registers its gRPC service with.

The registry checks a registration's contract here, the CLI checks it before sending,
and gateways build their request readers from the same pool (gateway/subjects.py).
A contract is read, never trusted: it must parse, its files must build (every import
present, every type resolved) and it must declare the service.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.message import DecodeError

from zhol.bus.v1 import options_pb2
from zhol.core.errors import ZholError

# Files every gateway knows from its own runtime: a descriptor set may leave them out.
WELL_KNOWN_PREFIX = "google/protobuf/"
# The runtime's pool holds only the files imported so far: these well-known types a
# request may use (e.g. a ``google.protobuf.FieldMask read_mask``) are imported here so
# that a set leaving them out still resolves everywhere.
_RUNTIME_WELL_KNOWN = (
    any_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
# Deeper import chains than this are taken for a cycle.
_MAX_IMPORT_DEPTH = 64


@dataclass(frozen=True, slots=True)
class MethodSignature:
    """One method as its contract declares it."""

    name: str
    input_type: str
    output_type: str
    client_streaming: bool = False
    server_streaming: bool = False


@dataclass(frozen=True, slots=True)
class ServiceContract:
    """A gRPC service as its descriptor set declares it."""

    grpc_service: str
    methods: tuple[MethodSignature, ...]

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.methods)


def descriptor_pool_of(fds: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    """A pool of the set's files, dependencies first; well-known files (and the
    zhol.bus.v1 options) from our runtime when the set leaves them out.

    ValueError when an import is missing or the imports cycle; TypeError when a file
    does not build (a type that does not resolve, a name defined twice).
    """
    pool = descriptor_pool.DescriptorPool()
    files = {f.name: f for f in fds.file}
    added: set[str] = set()

    def add(name: str, depth: int = 0) -> None:
        if name in added:
            return
        if depth > _MAX_IMPORT_DEPTH:
            raise ValueError("descriptor set imports in a cycle")
        proto = files.get(name)
        if proto is None:
            if not name.startswith(WELL_KNOWN_PREFIX) and name != options_pb2.DESCRIPTOR.name:
                raise ValueError(f"descriptor set lacks {name}")
            proto = descriptor_pb2.FileDescriptorProto()
            try:
                descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
            except KeyError:  # a well-known file our runtime does not hold: send it
                raise ValueError(f"descriptor set lacks {name}") from None
        for dependency in proto.dependency:
            add(dependency, depth + 1)
        pool.Add(proto)
        added.add(name)

    for name in files:
        add(name)
    return pool


def without_runtime_files(data: bytes) -> bytes:
    """The FileDescriptorSet ``data`` without the well-known files every gateway's runtime
    holds (what descriptor_pool_of fills in): they are most of a small contract's size."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    kept = [f for f in fds.file if not _in_runtime(f.name)]
    del fds.file[:]
    fds.file.extend(kept)
    return fds.SerializeToString(deterministic=True)


def _in_runtime(name: str) -> bool:
    if not name.startswith(WELL_KNOWN_PREFIX):
        return False
    try:
        descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        return False
    return True


def read_contract(data: bytes, grpc_service: str) -> ServiceContract:
    """The service as the FileDescriptorSet ``data`` declares it.

    InvalidDescriptorSet: the bytes are not a FileDescriptorSet, or its files do not
    build. ContractMismatch: the set does not declare ``grpc_service``.
    """
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    except DecodeError:
        raise ZholError("InvalidDescriptorSet", "not a FileDescriptorSet") from None
    if not fds.file:
        raise ZholError("InvalidDescriptorSet", "the descriptor set holds no file")
    try:
        pool = descriptor_pool_of(fds)
    except (TypeError, ValueError) as exc:
        # The builder's message names files and types of the contract, never data.
        raise ZholError("InvalidDescriptorSet", str(exc)[:300]) from None
    try:
        service = pool.FindServiceByName(grpc_service)
    except KeyError:
        raise ZholError(
            "ContractMismatch", f"the contract does not declare {grpc_service}"
        ) from None
    return ServiceContract(
        grpc_service,
        tuple(
            MethodSignature(
                m.name,
                m.input_type.full_name,
                m.output_type.full_name,
                m.client_streaming,
                m.server_streaming,
            )
            for m in service.methods
        ),
    )


def registered_methods(contract: ServiceContract, listed: Iterable[str]) -> tuple[str, ...]:
    """The methods to register: the listed ones, each of which the contract must declare
    (ContractMismatch otherwise), or all the contract's when none is listed."""
    listed = tuple(listed)
    if not listed:
        if not contract.methods:
            raise ZholError("ContractMismatch", f"{contract.grpc_service} declares no method")
        return contract.method_names
    declared = set(contract.method_names)
    missing = [m for m in listed if m not in declared]
    if missing:
        raise ZholError(
            "ContractMismatch", f"{contract.grpc_service} does not declare {missing[:10]}"
        )
    return listed


def clashing_methods(a: ServiceContract, b: ServiceContract) -> tuple[str, ...]:
    """The methods both contracts declare with different request or response types (or
    streaming): what a client stub built from one could not call on the other."""
    theirs = {m.name: m for m in b.methods}
    return tuple(m.name for m in a.methods if m.name in theirs and theirs[m.name] != m)
