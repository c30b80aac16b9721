"""A service's contract for `zhol gateway add-subsystem`: a FileDescriptorSet read from
a file (--descriptor-set) or compiled from a .proto (--proto, --proto-path), checked
before it is sent with the codes the registry would answer.

Compiling uses grpcio-tools' bundled protoc (a runtime dependency), with the imports
included (as ``protoc --include_imports``) but for the ``google/protobuf/`` files every
gateway holds; ``zhol/bus/v1/options.proto`` (the data-subject field options) and the
``google/protobuf/`` files resolve without being on the import path.
"""

from __future__ import annotations

import importlib.resources
import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

from zhol.bus.v1 import options_pb2
from zhol.core.contracts import (
    ServiceContract,
    read_contract,
    registered_methods,
    without_runtime_files,
)
from zhol.core.errors import ZholError


def read_descriptor_set(path: Path) -> bytes:
    """The file's bytes (checked by ``check_offer`` and again by the registry)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ZholError("InvalidRequest", f"--descriptor-set {path}: {exc.strerror}") from None


def compile_proto(proto: Path, proto_paths: Sequence[Path] = ()) -> bytes:
    """A FileDescriptorSet of ``proto`` and every file it imports, compiled by protoc.

    ``proto_paths`` are the import roots (protoc's -I); none given: the file's folder.
    The file must lie under one of them. InvalidRequest when the file cannot be read,
    InvalidDescriptorSet when protoc refuses it (its messages are on stderr).
    """
    from grpc_tools import protoc  # imported here: loading protoc costs ~100 ms

    proto = proto.resolve()
    if not proto.is_file():
        raise ZholError("InvalidRequest", f"--proto {proto}: no such file")
    roots = [p.resolve() for p in proto_paths] or [proto.parent]
    for root in roots:
        if not root.is_dir():
            raise ZholError("InvalidRequest", f"--proto-path {root}: no such folder")
    if not any(proto.is_relative_to(root) for root in roots):
        raise ZholError("InvalidRequest", f"--proto {proto} is under no --proto-path")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="zhol-proto-") as tmp:
        options = Path(tmp) / "options.pb"
        options.write_bytes(_options_descriptor_set())
        out = Path(tmp) / "contract.pb"
        status = protoc.main(
            [
                "protoc",
                *(f"--proto_path={root}" for root in roots),
                f"--proto_path={well_known}",
                # Resolves imports of zhol/bus/v1/options.proto from our own runtime.
                f"--descriptor_set_in={options}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                str(proto),
            ]
        )
        if status != 0 or not out.exists():
            raise ZholError(
                "InvalidDescriptorSet", f"--proto {proto} does not compile (protoc, above)"
            )
        return without_runtime_files(out.read_bytes())


def _options_descriptor_set() -> bytes:
    fds = descriptor_pb2.FileDescriptorSet()
    options_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    return fds.SerializeToString(deterministic=True)


def check_offer(descriptor_set: bytes, grpc_service: str, listed: Sequence[str]) -> tuple[str, ...]:
    """The methods to register for ``grpc_service``: the listed ones, checked against the
    contract, or the contract's when none is listed (InvalidDescriptorSet,
    ContractMismatch, as the registry would answer)."""
    contract: ServiceContract = read_contract(descriptor_set, grpc_service)
    return registered_methods(contract, listed)
