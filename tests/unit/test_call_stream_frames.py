"""Exchange.CallStream's pure parts: framing, the outbox, errors as ErrorDetail."""

from __future__ import annotations

import asyncio
from collections import deque

import grpc
import pytest

from zhol.bus.v1 import bus_pb2
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import error_from_detail, error_to_detail
from zhol.gateway.callstream import (
    LINGER_FROM_PENDING,
    LINGER_S,
    FrameOutbox,
    linger_for,
    status_lost_to_a_write,
)
from zhol.gateway.framing import take_frame


def call(call_id: int, body_bytes: int = 10) -> bus_pb2.StreamedCall:
    return bus_pb2.StreamedCall(
        call_id=call_id, message=bus_pb2.SignedMessage(body=b"x" * body_bytes)
    )


def test_a_frame_takes_everything_ready_in_order() -> None:
    ready = deque(call(i) for i in range(1, 6))
    frame = take_frame(ready)
    assert [c.call_id for c in frame.calls] == [1, 2, 3, 4, 5]
    assert not ready


def test_a_frame_stops_at_its_call_limit() -> None:
    ready = deque(call(i) for i in range(1, 6))
    assert [c.call_id for c in take_frame(ready, max_calls=2).calls] == [1, 2]
    assert [c.call_id for c in ready] == [3, 4, 5]


def test_a_frame_stops_before_its_byte_limit_but_a_large_call_goes_alone() -> None:
    ready = deque([call(1, 400), call(2, 400), call(3, 5000), call(4, 10)])
    assert [c.call_id for c in take_frame(ready, max_bytes=1000).calls] == [1, 2]
    assert [c.call_id for c in take_frame(ready, max_bytes=1000).calls] == [3]
    assert [c.call_id for c in take_frame(ready, max_bytes=1000).calls] == [4]


def test_nothing_ready_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        take_frame(deque())


async def test_the_outbox_batches_what_is_ready_and_ends_when_closed() -> None:
    outbox = FrameOutbox()
    for i in (1, 2, 3):
        outbox.put(call(i))
    outbox.close()
    frames = [frame async for frame in outbox.frames()]
    assert [[c.call_id for c in f.calls] for f in frames] == [[1, 2, 3]]


def test_an_error_detail_carries_the_code_id_and_public_text() -> None:
    err = ZholError("AccessDenied", "client has no right", hop=Hop.SERVER_PROXY)
    detail = error_to_detail(err)
    assert (detail.code, detail.error_id) == ("Server.ServerProxy.AccessDenied", err.error_id)
    back = error_from_detail(detail)
    assert back.remote and back.full_code == err.full_code and back.error_id == err.error_id
    assert back.status == err.status and back.detail == "client has no right"


def test_an_internal_error_detail_stays_in_our_log() -> None:
    err = ZholError("InternalError", "stack trace with secrets", hop=Hop.SERVER_PROXY)
    assert "secrets" not in error_to_detail(err).message


def test_an_unknown_error_code_from_a_peer_is_its_internal_error() -> None:
    back = error_from_detail(bus_pb2.ErrorDetail(code="Server.ServerProxy.Nope", error_id="e1"))
    assert back.full_code == "Server.ServerProxy.InternalError"
    assert back.remote and back.error_id == "e1"


def test_a_busy_stream_lingers_and_a_quiet_one_does_not() -> None:
    assert linger_for(1) == 0.0
    assert linger_for(LINGER_FROM_PENDING - 1) == 0.0
    assert linger_for(LINGER_FROM_PENDING) == LINGER_S > 0


async def test_calls_ready_while_the_outbox_lingers_share_the_frame() -> None:
    outbox = FrameOutbox(lambda: 0.05)
    frames = outbox.frames()
    outbox.put(call(1))
    first = asyncio.ensure_future(anext(frames))
    await asyncio.sleep(0.01)  # the outbox is lingering over call 1
    outbox.put(call(2))
    outbox.put(call(3))
    assert [c.call_id for c in (await first).calls] == [1, 2, 3]
    outbox.close()
    assert [f async for f in frames] == []


def rpc_error(code: grpc.StatusCode, details: str, debug: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, debug)


def test_a_status_lost_to_a_failed_write_is_recognised() -> None:
    # What grpcio 1.85 reports when a peer refused the stream while a frame was being
    # sent (grpc/grpc#36066): seen in the federation against a gateway without CallStream.
    lost = rpc_error(
        grpc.StatusCode.INTERNAL,
        "Internal error from Core",
        'Failed "execute_batch": (<grpc._cython.cygrpc.SendMessageOperation object>,)',
    )
    assert status_lost_to_a_write(lost)
    # A peer's own INTERNAL, or a stream the peer closed, is what it says.
    peers = rpc_error(grpc.StatusCode.INTERNAL, "boom", "INTERNAL:boom {grpc_status:13}")
    closed = rpc_error(
        grpc.StatusCode.UNAVAILABLE,
        "Cancelling all calls",
        'Failed "execute_batch": (<grpc._cython.cygrpc.SendMessageOperation object>,)',
    )
    assert not status_lost_to_a_write(peers) and not status_lost_to_a_write(closed)
