"""Exchange.CallStream: many exchanges with one peer gateway on one long-lived stream.

A unary Call costs the gRPC layer a whole HTTP/2 stream on both gateways; on a
stream, calls travel in frames that batch whatever is ready (gateway/framing.py),
so under load the per-exchange cost of the gateway-to-gateway hop falls to a
fraction (measured: `zhol bench`). Each streamed call carries exactly what Call
carries, and comes back as the sealed response or the ErrorDetail Call would
have put in its trailers, so the pipelines are the same on both transports.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable

import grpc

from zhol.bus.v1 import bus_pb2
from zhol.core.grpcerr import error_from_detail
from zhol.gateway.framing import take_frame

EXCHANGE_CALL_STREAM = "/zhol.bus.v1.Exchange/CallStream"

# With this many calls in flight on a stream it is busy: a ready call waits LINGER_S
# for others to share its frame (measured with `zhol bench`: frames of 2-5 calls
# instead of 1-2, about a sixth more exchanges per second). Below it (a lone call,
# light load) a call goes at once, so latency at low load is untouched.
LINGER_FROM_PENDING = 16
LINGER_S = 0.002
# A lingering frame goes as soon as this many calls are ready.
FULL_FRAME_CALLS = 8


def linger_for(calls_in_flight: int) -> float:
    """How long a ready call waits for company, given the calls in flight on its stream."""
    return LINGER_S if calls_in_flight >= LINGER_FROM_PENDING else 0.0


class FrameOutbox:
    """Calls waiting to be written; ``frames()`` yields them batched until closed.

    ``linger`` says how long to wait for company once a call is ready (seconds; 0 to
    send at once). It lets a busy sender fill frames: each frame costs the gRPC layer
    about what one unary call does, whatever it holds.
    """

    def __init__(self, linger: Callable[[], float] = lambda: 0.0) -> None:
        self._ready: deque[bus_pb2.StreamedCall] = deque()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closed = False
        self._linger = linger

    def put(self, call: bus_pb2.StreamedCall) -> None:
        self._ready.append(call)
        self._wake.set()
        if len(self._ready) >= FULL_FRAME_CALLS:
            self._full.set()

    def close(self) -> None:
        """No more calls: ``frames()`` ends once what is ready has gone out."""
        self._closed = True
        self._wake.set()
        self._full.set()

    async def frames(self) -> AsyncIterator[bus_pb2.CallFrame]:
        while True:
            while not self._ready:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
            delay = self._linger()
            if delay > 0 and len(self._ready) < FULL_FRAME_CALLS and not self._closed:
                self._full.clear()
                timer = asyncio.get_running_loop().call_later(delay, self._full.set)
                await self._full.wait()
                timer.cancel()
            yield take_frame(self._ready)


class StreamUnsupported(Exception):
    """The peer does not serve CallStream (UNIMPLEMENTED): nothing was processed."""


def transport_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A transport failure in the form a unary Call reports it, so Forward treats both
    transports alike (fail over, or Timeout)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class CallStream:
    """The consumer side of one CallStream to one peer gateway.

    ``call`` sends one sealed request and waits for its answer. When the stream
    breaks, every call waiting on it fails as a unary call would have (UNAVAILABLE,
    so Forward fails over) and ``broken`` is set: the owner opens a new stream for
    later calls. A peer answering UNIMPLEMENTED fails them with StreamUnsupported.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        method = channel.stream_stream(
            EXCHANGE_CALL_STREAM,
            request_serializer=bus_pb2.CallFrame.SerializeToString,
            response_deserializer=bus_pb2.CallFrame.FromString,
        )
        self._pending: dict[int, asyncio.Future[bus_pb2.SignedMessage]] = {}
        self._outbox = FrameOutbox(self._linger)
        self._ids = itertools.count(1)
        self.broken = False
        self._call = method(self._outbox.frames())
        self._failure: BaseException | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def _linger(self) -> float:
        return linger_for(len(self._pending))

    async def call(
        self, message: bus_pb2.SignedMessage, timeout: float | None
    ) -> bus_pb2.SignedMessage:
        if self.broken:
            raise self._failure or transport_error(grpc.StatusCode.UNAVAILABLE, "stream closed")
        loop = asyncio.get_running_loop()
        call_id = next(self._ids)
        answer: asyncio.Future[bus_pb2.SignedMessage] = loop.create_future()
        self._pending[call_id] = answer
        self._outbox.put(bus_pb2.StreamedCall(call_id=call_id, message=message))
        timer = None if timeout is None else loop.call_later(timeout, _expire, answer)
        try:
            return await answer
        finally:
            self._pending.pop(call_id, None)
            if timer is not None:
                timer.cancel()

    async def _read(self) -> None:
        failure: BaseException = transport_error(
            grpc.StatusCode.UNAVAILABLE, "the peer ended the call stream"
        )
        answered = False
        try:
            async for frame in self._call:
                answered = True
                for streamed in frame.calls:
                    answer = self._pending.get(streamed.call_id)
                    if answer is None or answer.done():
                        continue  # timed out or cancelled meanwhile
                    if streamed.WhichOneof("outcome") == "message":
                        answer.set_result(streamed.message)
                    else:
                        answer.set_exception(error_from_detail(streamed.error))
        except grpc.aio.AioRpcError as exc:
            failure = exc
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED or (
                not answered and status_lost_to_a_write(exc)
            ):
                failure = StreamUnsupported(exc.details() or "")
        except asyncio.CancelledError:
            failure = transport_error(grpc.StatusCode.CANCELLED, "call stream closed")
            raise
        finally:
            self._fail_all(failure)

    def _fail_all(self, failure: BaseException) -> None:
        self.broken = True
        self._failure = failure
        self._outbox.close()
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(failure)
        self._pending.clear()

    async def close(self) -> None:
        self._call.cancel()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def status_lost_to_a_write(exc: grpc.aio.AioRpcError) -> bool:
    """grpcio's asyncio client replaces the status a server ended the stream with by
    INTERNAL when a frame it was sending meanwhile fails (grpc/grpc#36066, open in
    grpcio 1.85). On a stream that never answered, that is a peer refusing it at once,
    as one without CallStream does (UNIMPLEMENTED, lost so now and then): Call is
    tried. Were it a peer going away instead, Call fails too, and Forward fails over."""
    return exc.code() == grpc.StatusCode.INTERNAL and 'Failed "execute_batch"' in (
        exc.debug_error_string() or ""
    )


def _expire(answer: asyncio.Future[bus_pb2.SignedMessage]) -> None:
    if not answer.done():
        answer.set_exception(
            transport_error(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer on the call stream")
        )
