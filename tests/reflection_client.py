"""gRPC server reflection asked with grpcio-reflection's client (not ours), carrying
the zhol-* metadata a gateway's IS port requires, as grpcurl's -H does."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class WithMetadata(grpc.StreamStreamClientInterceptor):  # type: ignore[misc]
    """Adds the zhol-* metadata to the reflection client's stream (grpcurl's -H)."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Iterator[Any]
    ) -> Any:
        with_metadata = _Details(
            details.method, details.timeout, (*(details.metadata or ()), *self._metadata),
            details.credentials, details.wait_for_ready, details.compression,
        )  # fmt: skip
        return continuation(with_metadata, requests)


def ask_reflection(
    address: str, metadata: tuple[tuple[str, str], ...], ask: Callable[[Any], Any]
) -> Any:
    """``ask`` a reflection database on a plaintext IS port, sending ``metadata``
    (blocking: run it in a thread from async code)."""
    with grpc.insecure_channel(address) as plain:
        channel = grpc.intercept_channel(plain, WithMetadata(metadata))
        return ask(ProtoReflectionDescriptorDatabase(channel))
