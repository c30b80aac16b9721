"""Carrying catalogued errors over gRPC: the zhol-error and zhol-error-id trailers."""

from __future__ import annotations

import grpc

from core.errors import CODES, Hop, ZholError, parse_full_code

ERROR_KEY = "zhol-error"
ERROR_ID_KEY = "zhol-error-id"
MESSAGE_ID_KEY = "zhol-message-id"


def error_trailers(err: ZholError) -> tuple[tuple[str, str], ...]:
    return ((ERROR_KEY, err.full_code), (ERROR_ID_KEY, err.error_id))


async def abort_with(
    context: grpc.aio.ServicerContext,
    err: ZholError,
    extra_trailers: tuple[tuple[str, str], ...] = (),
) -> None:
    """Abort the call with the error's status, its code and id as trailers (never returns).

    An internal error's detail is not sent: only its code and id, which the log holds.
    """
    detail = err.code.summary if err.code.name == "InternalError" else err.detail
    trailers = error_trailers(err) + extra_trailers
    await context.abort(err.status, f"{err.full_code}: {detail}", trailers)


def trailer_value(metadata: object, key: str) -> str | None:
    for k, v in metadata or ():  # type: ignore[attr-defined]
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return None


def error_from_rpc(exc: grpc.RpcError) -> ZholError | None:
    """The catalogued error an RpcError carries in its trailers, or None (provider answered)."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
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
    "ERROR_ID_KEY",
    "ERROR_KEY",
    "MESSAGE_ID_KEY",
    "Hop",
    "abort_with",
    "error_from_rpc",
    "error_trailers",
    "trailer_value",
]
