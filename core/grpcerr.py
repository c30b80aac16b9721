"""Carrying catalogued errors over gRPC: the zhol-error and zhol-error-id trailers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn, cast

import grpc

from zhol.bus.v1 import bus_pb2
from zhol.core.errors import CODES, Hop, ZholError, parse_full_code
from zhol.core.metadata import ERROR_ID_KEY, ERROR_KEY

# Metadata as grpc hands it over: (key, value) pairs, a binary (-bin) key's value in bytes.
Trailers = Iterable[tuple[str, str | bytes]]


def error_trailers(err: ZholError) -> tuple[tuple[str, str], ...]:
    return ((ERROR_KEY, err.full_code), (ERROR_ID_KEY, err.error_id))


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any],
    err: ZholError,
    extra_trailers: tuple[tuple[str, str | bytes], ...] = (),
) -> NoReturn:
    """Abort the call with the error's status, its code and id as trailers (never returns).

    An internal error's detail is not sent: only its code and id, which the log holds.
    """
    trailers = error_trailers(err) + extra_trailers
    await context.abort(err.status, f"{err.full_code}: {public_detail(err)}", trailers)


def public_detail(err: ZholError) -> str:
    """What another party may read: an internal error's detail stays in our log."""
    return err.code.summary if err.code.name == "InternalError" else err.detail


def error_to_detail(err: ZholError) -> bus_pb2.ErrorDetail:
    """The error as Exchange.CallStream carries it: what abort_with puts in trailers."""
    return bus_pb2.ErrorDetail(
        code=err.full_code, error_id=err.error_id, message=public_detail(err)
    )


def error_from_detail(detail: bus_pb2.ErrorDetail) -> ZholError:
    """A peer's ErrorDetail as the catalogued error it names (passed through, never
    re-attributed); an unknown code is the peer's internal error."""
    try:
        hop, code = parse_full_code(detail.code)
    except (KeyError, ValueError):
        return ZholError(
            "InternalError", f"unknown error code {detail.code!r}", hop=Hop.SERVER_PROXY,
            error_id=detail.error_id or None, remote=True,
        )  # fmt: skip
    return ZholError(
        code.name, detail.message, hop=hop, error_id=detail.error_id or None, remote=True
    )


def trailer_value(metadata: Trailers | None, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return None


def error_from_rpc(exc: grpc.RpcError) -> ZholError | None:
    """The catalogued error an RpcError carries in its trailers, or None (provider answered)."""
    # The grpcio stubs type RpcError.trailing_metadata() as _Metadatum objects (their own
    # comment doubts it); grpc returns (key, value) tuples, like all its metadata.
    trailing = (
        cast(Trailers, exc.trailing_metadata()) if hasattr(exc, "trailing_metadata") else None
    )
    full = trailer_value(trailing, ERROR_KEY)
    if not full:
        return None
    try:
        hop, code = parse_full_code(full)
    except (KeyError, ValueError):
        return None
    detail = exc.details() if hasattr(exc, "details") else ""
    prefix = f"{full}: "
    if detail and detail.startswith(prefix):
        detail = detail[len(prefix) :]
    error_id = trailer_value(trailing, ERROR_ID_KEY)
    return ZholError(code.name, detail or "", hop=hop, error_id=error_id, remote=True)


__all__ = [
    "CODES",
    "Hop",
    "abort_with",
    "error_from_detail",
    "error_from_rpc",
    "error_to_detail",
    "error_trailers",
    "public_detail",
    "trailer_value",
]
