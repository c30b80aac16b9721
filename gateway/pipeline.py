"""The consumer and provider pipelines: explicit lists of stages, none optional.

Each side's list is assembled in one place, so what a message goes through is
read top to bottom here. There is no switch to leave a stage out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from zhol.core.clock import Clock
from zhol.core.errors import Hop, ZholError
from zhol.core.ids import GatewayId
from zhol.gateway import access as ac
from zhol.gateway import allowed as al
from zhol.gateway import consumer_stages as cs
from zhol.gateway import discovery as dy
from zhol.gateway import event_stages as ev
from zhol.gateway import granted as gr
from zhol.gateway import provider_stages as ps
from zhol.gateway import usage as us
from zhol.gateway.accessstore import AccessRequestStore
from zhol.gateway.confsource import ConfSource
from zhol.gateway.event_stages import PublishExchange
from zhol.gateway.eventstore import EventStore
from zhol.gateway.exchange import ConsumerExchange, ProviderExchange
from zhol.gateway.ispins import IsPin
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.replay import ReplayGuard
from zhol.security.sealing import Signer

log = logging.getLogger("zhol.gateway.exchange")

X = TypeVar("X")
Stage = Callable[[X], Awaitable[None]]


@dataclass(frozen=True)
class Pipeline(Generic[X]):
    hop: Hop
    stages: tuple[Stage[X], ...]
    # Adds to a refusal what it needs to be understood (ConfSource.explain: the
    # configuration version a lookup was made in); same code, same error id.
    explain: Callable[[ZholError], ZholError] | None = None

    async def run(self, exchange: X) -> None:
        """Run every stage in order; any failure becomes a catalogued error of this hop."""
        try:
            for stage in self.stages:
                await stage(exchange)
        except ZholError as err:
            if self.explain is not None:
                err = self.explain(err)
            raise self._attribute(err) from None
        except Exception:
            internal = ZholError("InternalError", hop=self.hop)
            log.exception("internal error %s", internal.error_id)
            raise internal from None

    def _attribute(self, err: ZholError) -> ZholError:
        # A gateway-detected error names the hop that found it; client mistakes and
        # errors passed through from the other gateway keep theirs.
        if err.remote or err.hop in (Hop.CLIENT, Hop.REGISTRY) or err.hop == self.hop:
            return err
        return err.at(self.hop)

    @property
    def names(self) -> Sequence[str]:
        return [type(stage).__name__ for stage in self.stages]


@dataclass(frozen=True)
class GatewayParts:
    gateway_id: GatewayId
    clock: Clock
    conf: ConfSource
    signer: Signer
    log: MessageLog
    local: LocalConfStore
    replay: ReplayGuard
    send: cs.SendFn
    invoke: ps.InvokeFn
    # How ISs connect ("plaintext", "tls", "mtls") and, for "mtls", the pinned certificates.
    is_tls: str
    is_pins: Mapping[bytes, IsPin]
    # Events: the durable outbox and inbox, and how to wake the delivery worker.
    events: EventStore
    notify_deliveries: Callable[[], None]
    # Raises while the gateway must refuse exchanges for its evidence's sake (overdue
    # timestamps: gateway/timestamping.py); None for none.
    evidence_gate: Callable[[], None] | None = None
    # The log's signed checkpoints, for Usage/GetEvidence; None: none served.
    checkpoints_dir: Path | None = None
    # Access requests received and sent (zhol.bus.v1.Access); None: none served.
    access_requests: AccessRequestStore | None = None


def consumer_pipeline(p: GatewayParts) -> Pipeline[ConsumerExchange]:
    return Pipeline(
        Hop.CLIENT_PROXY,
        (
            cs.AuthenticateIsClient(p.is_tls, p.is_pins),
            cs.LoadConfiguration(p.conf, p.evidence_gate),
            cs.ReadCallMetadata(p.gateway_id),
            cs.LimitRequestSize(),
            ac.AccessOrResolveProvider(
                al.AllowedOrResolveProvider(us.UsageOrResolveProvider(cs.ResolveProvider()))
            ),
            cs.BindDataSubject(),
            cs.SealRequest(p.signer, p.gateway_id, p.clock),
            cs.LogRequest(p.log),
            cs.Forward(p.send, p.clock),
            cs.VerifyResponse(p.clock),
            cs.LogResponse(p.log),
            ac.RememberSentAccess(p.access_requests, p.clock),
        ),
        p.conf.explain,
    )


def provider_pipeline(p: GatewayParts) -> Pipeline[ProviderExchange]:
    return Pipeline(
        Hop.SERVER_PROXY,
        (
            ps.LoadConfiguration(p.conf, p.evidence_gate),
            ps.AuthenticatePeer(),
            ps.LimitRequestSize(),
            ps.VerifyRequest(p.clock),
            ps.CheckFreshness(p.clock, p.replay),
            ac.AccessOrAuthorize(
                al.AllowedOrAuthorize(
                    us.UsageOrAuthorize(ps.Authorize(p.gateway_id, p.local), p.gateway_id, p.local),
                    p.gateway_id,
                ),
                p.gateway_id,
                p.access_requests,
            ),
            ps.CheckDataSubject(),
            ps.LogRequest(p.log),
            ac.AccessOrInvokeProvider(
                al.AllowedOrInvokeProvider(
                    us.UsageOrInvokeProvider(
                        ps.InvokeProvider(p.invoke, p.clock),
                        p.gateway_id,
                        p.log,
                        p.checkpoints_dir,
                        p.clock,
                    ),
                    p.gateway_id,
                    p.local,
                ),
                p.gateway_id,
                p.access_requests,
                p.clock,
            ),
            ps.SealResponse(p.signer, p.gateway_id, p.clock),
            ps.LogResponse(p.log),
        ),
        p.conf.explain,
    )


def publish_pipeline(p: GatewayParts) -> Pipeline[PublishExchange]:
    """An IS publishing an event: queued durably for each subscriber before we answer."""
    return Pipeline(
        Hop.CLIENT_PROXY,
        (
            cs.AuthenticateIsClient(p.is_tls, p.is_pins),
            cs.LoadConfiguration(p.conf, p.evidence_gate),
            cs.ReadCallMetadata(p.gateway_id),
            cs.LimitRequestSize(),
            ev.ParsePublication(),
            ev.QueueDeliveries(p.local, p.events, p.clock, p.notify_deliveries),
        ),
        p.conf.explain,
    )


def discovery_pipeline(
    p: GatewayParts, exchanges: Pipeline[ConsumerExchange] | None = None
) -> Pipeline[dy.DiscoveryExchange]:
    """An IS asking its own gateway about the federation: answered from the global
    configuration held here; nothing crosses the bus, nothing is logged (no evidence
    gate either: no exchange is made), except that reflection first asks the providers'
    gateways what the client may call, as ordinary exchanges through ``exchanges`` (the
    consumer pipeline; a new one if None)."""
    return Pipeline(
        Hop.CLIENT_PROXY,
        (
            cs.AuthenticateIsClient(p.is_tls, p.is_pins),
            cs.LoadConfiguration(p.conf),
            dy.IdentifyDiscoveryClient(p.gateway_id),
            cs.LimitRequestSize(),
            gr.AskAllowedMethods((exchanges or consumer_pipeline(p)).run, p.clock),
            dy.AnswerDiscovery(p.gateway_id),
        ),
        p.conf.explain,
    )


def event_pipeline(p: GatewayParts) -> Pipeline[ProviderExchange]:
    """A peer delivering an event to a subsystem we serve."""
    return Pipeline(
        Hop.SERVER_PROXY,
        (
            ps.LoadConfiguration(p.conf, p.evidence_gate),
            ps.AuthenticatePeer(),
            ps.LimitRequestSize(),
            ev.VerifyEvent(p.gateway_id, p.clock),
            ev.CheckEventFreshness(p.clock, p.events),
            ev.LogEvent(p.log),
            ev.HandToSubscriber(p.local, p.invoke, p.clock),
            ev.RememberDelivery(p.events, p.clock),
            ev.SealAck(p.signer, p.gateway_id, p.clock),
            ev.LogAck(p.log),
        ),
        p.conf.explain,
    )
