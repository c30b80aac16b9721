"""The publisher gateway's delivery worker: drain the durable outbox, at least once.

Each due delivery is sealed as an event for its subscriber, sent to the
subscriber's gateways in failover order, and counts as delivered only when a
signed acknowledgement bound to it has been verified and logged. The event is
logged before it is sent: an outbox whose log cannot be written sends nothing.
Failures back off (gateway/eventstore.py) and end as dead letters. An
acknowledgement that states the receiving IS's refusal (its gRPC code and message)
is logged like any other and fails the attempt with ReceiverRefused; a refusal that
retrying cannot change (gateway/refusal.py) is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import error_from_rpc, public_detail
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.confsource import ConfSource, now_datetime
from zhol.gateway.consumer_stages import SendFn
from zhol.gateway.eventstore import AttemptFailure, Delivery, EventStore
from zhol.gateway.exchange import (
    ExchangeParties,
    LoggedMessage,
    log_record,
    seal_from_pb,
    seal_to_pb,
)
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.refusal import Refusal, clean_message, status_name
from zhol.gateway.verify import open_verified
from zhol.security.globalconf import gateway_to_pb, subsystem_to_pb
from zhol.security.sealing import EVENT_TYPE, RESPONSE_TYPE, Signer, seal

log = logging.getLogger("zhol.gateway.delivery")


class RefusedByReceiver(Exception):
    """The subscriber's gateway acknowledged, signed, that its IS refused the event."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class DeliveryWorker:
    BATCH = 64
    CONCURRENCY = 16
    TIMEOUT_S = 15.0
    IDLE_POLL_S = 1.0

    def __init__(
        self,
        *,
        gateway_id: GatewayId,
        store: EventStore,
        conf: ConfSource,
        signer: Signer,
        deliver: SendFn,
        message_log: MessageLog,
        clock: Clock,
        max_attempts: int = 12,
    ) -> None:
        self._gateway_id = gateway_id
        self._gateway_pb = gateway_to_pb(gateway_id)
        self._store = store
        self._conf = conf
        self._signer = signer
        self._deliver = deliver
        self._log = message_log
        self._clock = clock
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(self.CONCURRENCY)

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception:  # the worker must outlive any one bad pass
                log.exception("delivery pass failed")
                done = 0
            if done:
                continue  # there may be more due right away
            timeout = self.IDLE_POLL_S
            next_due = await self._store.next_due_ms()
            if next_due is not None:
                timeout = min(timeout, max(0.0, (next_due - self._clock.now_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    async def run_once(self) -> int:
        """Attempt every delivery now due; returns how many were attempted."""
        due = await self._store.due(self._clock.now_ms(), self.BATCH)
        await asyncio.gather(*(self._attempt(d) for d in due))
        return len(due)

    async def _attempt(self, d: Delivery) -> None:
        async with self._slots:
            try:
                # A stuck attempt must never hold up the whole outbox.
                await asyncio.wait_for(self._send(d), self.TIMEOUT_S * 2)
            except TimeoutError:
                failure = _failure(ZholError("Timeout", hop=Hop.CLIENT_PROXY))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the worker itself is stopping
                # A call cancelled under us (its channel closed): just a failed attempt.
                failure = _failure(ZholError("NetworkError", hop=Hop.CLIENT_PROXY))
            except RefusedByReceiver as refused:
                r = refused.refusal
                code = ZholError("ReceiverRefused").full_code
                failure = AttemptFailure(code, r.message, r.status_code, r.permanent)
            except ZholError as err:
                failure = _failure(err)
            except Exception:
                log.exception("delivery %s failed unexpectedly", d.delivery_id)
                failure = _failure(ZholError("InternalError", hop=Hop.CLIENT_PROXY))
            else:
                await self._store.mark_delivered(d.delivery_id, self._clock.now_ms())
                return
            dead = await self._store.mark_failed(
                d.delivery_id, failure, self._clock.now_ms(), self._max_attempts
            )
            said = f"{status_name(failure.receiver_status)}: " if failure.receiver_status else ""
            log.warning(
                "delivery %s to %s failed on attempt %d: %s (%s%s)%s",
                d.delivery_id, d.subscriber, d.attempts + 1, failure.code, said, failure.message,
                " dead letter" if dead else "",
            )  # fmt: skip

    async def _send(self, d: Delivery) -> None:
        trusted = self._conf.current()
        publisher = SubsystemId.parse(d.publisher)
        subscriber = SubsystemId.parse(d.subscriber)
        targets = trusted.conf.gateways_for(subscriber)
        if not targets:
            # Named with the configuration held, as other lookup refusals are: a
            # subscriber registered moments ago may not have reached this gateway yet.
            raise self._conf.explain(
                ZholError("UnknownSubsystem", f"no gateway serves {subscriber}")
            )
        issued_at = self._clock.now_ms()
        header = bus_pb2.MessageHeader(
            message_id=d.delivery_id,
            protocol_version=1,
            kind=bus_pb2.MESSAGE_KIND_EVENT,
            client=subsystem_to_pb(publisher),
            user_id=d.user_id,
            purpose=d.purpose,
            data_subject=d.data_subject,
            issued_at_unix_ms=issued_at,
            sender_gateway=self._gateway_pb,
            topic=d.topic,
            event_id=d.event_id,
            recipient=subsystem_to_pb(subscriber),
            attempt=d.attempts,
        )
        sealed, digest = seal(self._signer, EVENT_TYPE, header.SerializeToString(), d.payload)
        parties = ExchangeParties(
            message_id=d.delivery_id,
            client=publisher,
            service=f"{publisher}/{d.topic}",
            data_subject=d.data_subject,
            user_id=d.user_id,
            purpose=d.purpose,
        )
        # Each attempt is sealed afresh, so each is its own record; none leaves unlogged.
        await self._log.append(
            (log_record(parties, "event", "out", None, LoggedMessage(sealed, digest, issued_at)),)
        )
        message = seal_to_pb(sealed)
        answer = None
        for target in targets:
            try:
                answer = await self._deliver(target.address, target.id, message, self.TIMEOUT_S)
                peer = target.id
                break
            except grpc.RpcError as exc:
                remote = error_from_rpc(exc)
                if remote is not None:
                    raise remote from None
        if answer is None:
            raise ZholError("NetworkError", f"no gateway of {subscriber} reachable")
        ack = seal_from_pb(answer)
        signer, ack_header, ack_digest = open_verified(
            ack, RESPONSE_TYPE, trusted, now_datetime(self._clock)
        )
        if (
            signer != subscriber.member
            or ack_header.message_id != d.delivery_id
            or ack_header.request_digest != digest
        ):
            raise ZholError("ResponseMismatch", "acknowledgement not bound to this delivery")
        logged_ack = LoggedMessage(
            ack, ack_digest, ack_header.issued_at_unix_ms, ack_header.status_code
        )
        await self._log.append((log_record(parties, "response", "in", peer, logged_ack),))
        if ack_header.status_code != 0:
            # A peer's text is cleaned here too: it reaches our status output and logs.
            said = clean_message(ack_header.status_message)
            raise RefusedByReceiver(Refusal(ack_header.status_code, said))


def _failure(err: ZholError) -> AttemptFailure:
    """A bus failure of an attempt (not the receiver's refusal): its code and detail."""
    return AttemptFailure(err.full_code, clean_message(public_detail(err)))
