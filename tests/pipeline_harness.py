"""The gateway pipelines in memory: real stages, real trust, fake network and clock.

Two gateways of a small federation, as gateway/pipeline.py assembles them:

- a real CA (security/ca.py) issuing each gateway its authentication and signing
  certificates, and a real global configuration, signed and verified against its
  anchor, loaded by a real ConfSource;
- real local configuration (LocalConfStore), message log (MessageLog), event store
  and replay guard, on SQLite files under the test's tmp_path;
- fakes only where the network or time would be: ``send`` hands the consumer's
  sealed request straight to the provider pipeline (a bus error it raises comes back
  as the remote error a real transport delivers), ``invoke`` is a recorded stand-in
  for the provider IS, and each gateway has its own FixedClock a test can move.

No sockets and no threads of ours beyond the ones the log and stores start.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki import issue_der, new_ca
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId, new_message_id
from zhol.core.metadata import CLIENT_KEY, DATA_SUBJECT_KEY, PURPOSE_KEY, USER_ID_KEY
from zhol.gateway.accessstore import AccessRequestStore
from zhol.gateway.confsource import ConfSource
from zhol.gateway.eventstore import EventStore
from zhol.gateway.exchange import ConsumerExchange, ProviderExchange, seal_to_pb
from zhol.gateway.localconf import IsEndpoint, LocalConfStore
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.pipeline import GatewayParts, Pipeline, consumer_pipeline, provider_pipeline
from zhol.gateway.provider_stages import IsAnswer
from zhol.gateway.replay import ReplayGuard
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_root_ca
from zhol.security.globalconf import gateway_to_pb, member_to_pb, subsystem_to_pb
from zhol.security.globalconf import sign_global_conf as sign_conf
from zhol.security.keys import PrivateKey, generate_private_key
from zhol.security.sealing import REQUEST_TYPE, Signer, seal

START_MS = FixedClock().current_ms
START = dt.datetime.fromtimestamp(START_MS / 1000, tz=dt.UTC)
CLOCK_SKEW_S = 60
VALIDITY_S = 600
MAX_MESSAGE_BYTES = 64 * 1024

CONSUMER_GATEWAY = GatewayId.parse("KZ/GOV/MLSPP/gw1")
PROVIDER_GATEWAY = GatewayId.parse("KZ/GOV/MJ/gw1")
# A third member with a registered gateway of its own: a signer that is trusted, but not
# the member a message claims.
OTHER_GATEWAY = GatewayId.parse("KZ/GOV/MOH/gw1")
CLIENT = SubsystemId.parse("KZ/GOV/MLSPP/pension")
OTHER_CLIENT = SubsystemId.parse("KZ/GOV/MOH/health")
PROVIDER = SubsystemId.parse("KZ/GOV/MJ/population")
GRPC_SERVICE = "zhol.population.v1.PopulationRegistry"
METHODS = ("GetPerson", "GetAddress")
GET_PERSON = f"/{GRPC_SERVICE}/GetPerson"
GET_ADDRESS = f"/{GRPC_SERVICE}/GetAddress"
IS_ADDRESS = "127.0.0.1:9"  # never dialled: ``invoke`` is a fake
SUBJECT = "900101400013"  # a valid IIN (check digit and all)

Invoke = Callable[
    [IsEndpoint, str, bytes, tuple[tuple[str, str], ...], float | None], Awaitable[IsAnswer]
]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class GatewayKeys:
    """A gateway's CA-issued identity: TLS authentication and its member's signing key."""

    gateway_id: GatewayId
    auth_cert_der: bytes
    auth_cert_pem: bytes
    signer: Signer


@dataclass(frozen=True)
class Trust:
    """The federation CA, the configuration anchor and every gateway's keys."""

    ca: CertificateAuthority
    anchor_key: PrivateKey
    anchor_der: bytes
    gateways: dict[GatewayId, GatewayKeys]


def _gateway_keys(ca: CertificateAuthority, gateway_id: GatewayId) -> GatewayKeys:
    auth_key = generate_private_key()
    auth_der = issue_der(ca, auth_key, "auth", str(gateway_id), START)
    auth_pem = x509.load_der_x509_certificate(auth_der).public_bytes(Encoding.PEM)
    sign_key = generate_private_key()
    sign_der = issue_der(ca, sign_key, "sign", str(gateway_id.member), START)
    return GatewayKeys(gateway_id, auth_der, auth_pem, Signer(sign_key, sign_der))


@functools.cache
def federation_trust() -> Trust:
    """One CA and set of keys per test process (key generation is the slow part)."""
    ca = new_ca("Zhol test CA", START)
    anchor_key = generate_private_key()
    anchor = create_root_ca(anchor_key, "Zhol test configuration anchor", START)
    gateways = {
        g: _gateway_keys(ca, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY, OTHER_GATEWAY)
    }
    return Trust(ca, anchor_key, der(anchor), gateways)


def global_configuration(
    trust: Trust, *, version: int = 1, revoked: tuple[bytes, ...] = ()
) -> bytes:
    """The federation's signed global configuration (SignedGlobalConfiguration bytes)."""
    subsystems = {CLIENT: CONSUMER_GATEWAY, PROVIDER: PROVIDER_GATEWAY, OTHER_CLIENT: OTHER_GATEWAY}
    conf = registry_pb2.GlobalConfiguration(
        instance="KZ",
        version=version,
        generated_at_unix_ms=START_MS,
        expires_at_unix_ms=START_MS + VALIDITY_S * 1000,
        members=[
            registry_pb2.Member(id=member_to_pb(g.member), name=str(g.member))
            for g in trust.gateways
        ],
        subsystems=[
            registry_pb2.Subsystem(id=subsystem_to_pb(s), gateways=[gateway_to_pb(g)])
            for s, g in subsystems.items()
        ],
        gateways=[
            registry_pb2.Gateway(
                id=gateway_to_pb(g),
                address=f"{g.server_code}.{g.member.member_code.lower()}.test:443",
                auth_cert_sha256=hashlib.sha256(keys.auth_cert_der).digest(),
                auth_cert_der=keys.auth_cert_der,
            )
            for g, keys in trust.gateways.items()
        ],
        services=[
            registry_pb2.ServiceDescription(
                provider=subsystem_to_pb(PROVIDER), grpc_service=GRPC_SERVICE, methods=METHODS
            )
        ],
        ca_certs_der=[der(trust.ca.cert)],
        revoked_cert_sha256=list(revoked),
        tunables=registry_pb2.Tunables(
            refresh_interval_s=60,
            validity_s=VALIDITY_S,
            clock_skew_s=CLOCK_SKEW_S,
            max_message_bytes=MAX_MESSAGE_BYTES,
        ),
    )
    return sign_conf(trust.anchor_key, trust.anchor_der, conf.SerializeToString())


@dataclass
class FakeIs:
    """The provider IS: records each invocation and answers with ``answer``."""

    answer: IsAnswer = field(default_factory=lambda: IsAnswer(b"\x0a\x05hello", 0, ""))
    calls: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    # Runs on each call, before the answer (a fault that strikes while the IS works).
    on_call: Callable[[], None] | None = None

    async def invoke(
        self,
        endpoint: IsEndpoint,
        grpc_path: str,
        body: bytes,
        metadata: tuple[tuple[str, str], ...],
        timeout: float | None,
    ) -> IsAnswer:
        self.calls.append((grpc_path, body, dict(metadata)))
        if self.on_call is not None:
            self.on_call()
        return self.answer


@dataclass
class Side:
    """One gateway: its parts, its clock, and its pipelines."""

    keys: GatewayKeys
    clock: FixedClock
    parts: GatewayParts
    consumer: Pipeline[ConsumerExchange]
    provider: Pipeline[ProviderExchange]

    @property
    def log(self) -> MessageLog:
        return self.parts.log

    @property
    def local(self) -> LocalConfStore:
        return self.parts.local


async def _not_sending(
    address: str, gateway: GatewayId, message: bus_pb2.SignedMessage, timeout: float | None
) -> bus_pb2.SignedMessage:
    raise AssertionError("this gateway's consumer side is not used here")


def _open_side(
    stack: ExitStack,
    directory: Path,
    keys: GatewayKeys,
    trust: Trust,
    send: Callable[..., Awaitable[bus_pb2.SignedMessage]],
    invoke: Invoke,
) -> Side:
    directory.mkdir(parents=True, exist_ok=True)
    clock = FixedClock(START_MS)
    conf_path = directory / "globalconf.bin"
    conf_path.write_bytes(global_configuration(trust))
    conf = ConfSource(trust.anchor_der, conf_path, clock, _no_fetch)
    conf.load_cached()
    message_log = MessageLog(directory / "messagelog.db", clock)
    message_log.open()
    stack.callback(message_log.close)
    local = LocalConfStore(directory / "local.db")
    stack.callback(local.close)
    events = EventStore(directory / "events.db")
    events.open()
    stack.callback(events.close)
    access_requests = AccessRequestStore(directory / "access_requests.db")
    stack.callback(access_requests.close)
    parts = GatewayParts(
        gateway_id=keys.gateway_id,
        clock=clock,
        conf=conf,
        signer=keys.signer,
        log=message_log,
        local=local,
        replay=ReplayGuard(message_log.recent_request_ids),
        send=send,
        invoke=invoke,
        is_tls="plaintext",
        is_pins={},
        events=events,
        notify_deliveries=lambda: None,
        access_requests=access_requests,
    )
    return Side(keys, clock, parts, consumer_pipeline(parts), provider_pipeline(parts))


async def _no_fetch() -> bytes:
    raise ConnectionError("no registry in memory")


@dataclass
class Bus:
    """A consumer and a provider gateway wired together in memory."""

    trust: Trust
    consumer: Side
    provider: Side
    provider_is: FakeIs
    # Every message the consumer's fake send handed to the provider, in order.
    sent: list[bus_pb2.SignedMessage] = field(default_factory=list)
    # Replaces the provider's answer on its way back (tampering tests); None: as is.
    tamper_response: Callable[[bus_pb2.SignedMessage], bus_pb2.SignedMessage] | None = None

    async def send(
        self,
        address: str,
        gateway: GatewayId,
        message: bus_pb2.SignedMessage,
        timeout: float | None,
    ) -> bus_pb2.SignedMessage:
        """The consumer's transport: the provider pipeline, called directly."""
        assert gateway == PROVIDER_GATEWAY
        self.sent.append(message)
        x = await self.serve(message)
        assert x.response is not None
        answer = seal_to_pb(x.response)
        return self.tamper_response(answer) if self.tamper_response else answer

    async def serve(
        self, message: bus_pb2.SignedMessage, peer: GatewayId = CONSUMER_GATEWAY
    ) -> ProviderExchange:
        """Run the provider pipeline on a message arriving over ``peer``'s TLS connection.

        A bus error comes back as a real transport delivers it: remote, with its hop.
        """
        x = ProviderExchange(message, self.trust.gateways[peer].auth_cert_pem)
        try:
            await self.provider.provider.run(x)
        except ZholError as err:
            raise ZholError(
                err.code.name, err.detail, hop=err.hop, error_id=err.error_id, remote=True
            ) from None
        return x

    async def call(
        self,
        grpc_path: str = GET_PERSON,
        body: bytes = b"\x0a\x0c" + SUBJECT.encode(),
        metadata: Mapping[str, str] | None = None,
    ) -> ConsumerExchange:
        """Our IS calls ``grpc_path`` through the consumer gateway; returns the exchange."""
        x = consumer_exchange(grpc_path, body, metadata)
        await self.consumer.consumer.run(x)
        return x

    def grant(
        self, target: str = f"{PROVIDER}/{GRPC_SERVICE}/GetPerson", client: SubsystemId = CLIENT
    ) -> None:
        self.provider.local.allow(client, target, START_MS)


def consumer_exchange(
    grpc_path: str = GET_PERSON,
    body: bytes = b"",
    metadata: Mapping[str, str] | None = None,
    deadline_ms: int | None = None,
) -> ConsumerExchange:
    """A call from our IS: the zhol-* metadata of a pension officer, with ``metadata``
    added or replacing keys (an empty value leaves a key out)."""
    md = {
        CLIENT_KEY: str(CLIENT),
        USER_ID_KEY: "KZ:officer-7",
        PURPOSE_KEY: "pension case 17",
        DATA_SUBJECT_KEY: SUBJECT,
    }
    md.update(metadata or {})
    return ConsumerExchange(grpc_path, body, {k: v for k, v in md.items() if v}, deadline_ms)


@contextmanager
def in_memory_bus(tmp_path: Path) -> Iterator[Bus]:
    """Both gateways, the provider exposing GetPerson and GetAddress (no rights granted)."""
    trust = federation_trust()
    provider_is = FakeIs()
    with ExitStack() as stack:
        holder: list[Bus] = []

        async def send(
            address: str,
            gateway: GatewayId,
            message: bus_pb2.SignedMessage,
            timeout: float | None,
        ) -> bus_pb2.SignedMessage:
            return await holder[0].send(address, gateway, message, timeout)

        consumer = _open_side(
            stack,
            tmp_path / "consumer",
            trust.gateways[CONSUMER_GATEWAY],
            trust,
            send,
            FakeIs().invoke,
        )
        provider = _open_side(
            stack,
            tmp_path / "provider",
            trust.gateways[PROVIDER_GATEWAY],
            trust,
            _not_sending,
            provider_is.invoke,
        )
        provider.local.expose(PROVIDER, GRPC_SERVICE, IS_ADDRESS, METHODS)
        bus = Bus(trust, consumer, provider, provider_is)
        holder.append(bus)
        yield bus


def header(**fields: object) -> bus_pb2.MessageHeader:
    """A request header as the consumer gateway writes one, with ``fields`` changed."""
    values: dict[str, object] = {
        "message_id": new_message_id(START_MS, os.urandom(10)),
        "protocol_version": 1,
        "kind": bus_pb2.MESSAGE_KIND_REQUEST,
        "client": subsystem_to_pb(CLIENT),
        "service": bus_pb2.ServiceId(
            subsystem=subsystem_to_pb(PROVIDER), grpc_service=GRPC_SERVICE, method="GetPerson"
        ),
        "user_id": "KZ:officer-7",
        "purpose": "pension case 17",
        "data_subject": SUBJECT,
        "issued_at_unix_ms": START_MS,
        "sender_gateway": gateway_to_pb(CONSUMER_GATEWAY),
    }
    values.update(fields)
    return bus_pb2.MessageHeader(**values)  # type: ignore[arg-type]


def sealed_request(
    signer: Signer, head: bus_pb2.MessageHeader | None = None, body: bytes = b"request-body"
) -> bus_pb2.SignedMessage:
    """A request sealed exactly as SealRequest seals one."""
    sealed, _ = seal(signer, REQUEST_TYPE, (head or header()).SerializeToString(), body)
    return seal_to_pb(sealed)
