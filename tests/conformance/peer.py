"""The conformance runner's peer half: gateway-to-gateway cases (cases/peer.toml).

A peer case is loaded and judged by the package's runner (zhol.cli.conformance_runner);
sending it needs what only a gateway's operator has: the sender gateway's private keys
(its TLS key and its member's signing key). ``call_peer`` builds a well-formed sealed
request with those real keys, applies the case's named mutation, and sends it over
mutual TLS to the provider gateway. ``seal_per_vectors`` seals with tests/vectors/spec.py,
so this half stays in the source checkout (tests/conformance/README.md).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.vectors.spec import spec_signed_bytes
from zhol.bus.v1 import bus_pb2
from zhol.cli.conformance_runner import (
    Case,
    Limits,
    Outcome,
    PeerBase,
    encode_body,
    fill,
    trailer_pairs,
)
from zhol.core.ids import GatewayId, ServiceId, SubsystemId
from zhol.gateway.credentials import load_credentials
from zhol.gateway.exchange import seal_to_pb
from zhol.gateway.transport import PeerChannels
from zhol.security.globalconf import gateway_to_pb, service_to_pb, subsystem_to_pb
from zhol.security.sealing import REQUEST_TYPE, RESPONSE_TYPE, seal


@dataclass(frozen=True, slots=True)
class PeerSetup:
    """What peer cases need: gateways' key directories and the receiver's peer address."""
    keys_dirs: Mapping[str, Path]  # gateway id -> its keys/ directory
    receiver_address: str
    limits: Limits


async def call_peer(setup: PeerSetup, case: Case, variables: Mapping[str, str]) -> Outcome:
    """Seal the base request with the sender's real keys, mutate it, send it over mTLS."""
    assert case.base is not None
    base = case.base
    sender = load_credentials(setup.keys_dirs[base.sender_gateway], None)
    signer = sender.signer
    if case.mutation == "signer-other-member":
        signer = load_credentials(setup.keys_dirs[case.signer_gateway], None).signer
    header = _base_header(base, variables)
    _mutate_header(header, case.mutation, setup.limits)
    payload_type = RESPONSE_TYPE if case.mutation == "wrong-payload-type" else REQUEST_TYPE
    body = encode_body(base.body_type, base.body_json, variables)
    if case.mutation == "sealed-per-vectors":
        msg, digest = seal_per_vectors(signer, header.SerializeToString(), body)
    else:
        sealed, digest = seal(signer, payload_type, header.SerializeToString(), body)
        msg = seal_to_pb(sealed)
    if case.mutation == "flip-signature-bit":
        msg.signature = msg.signature[:-1] + bytes([msg.signature[-1] ^ 1])
    elif case.mutation == "drop-signature":
        msg.signature = b""
    elif case.mutation == "tamper-header":
        msg.header = msg.header.replace(base.purpose.encode(), base.purpose.upper().encode())
    elif case.mutation == "tamper-body":
        msg.body = msg.body + b"\x00"
    # The cases state Exchange.Call's contract (status and trailers): unary.
    channels = PeerChannels(
        sender.ca_pem, sender.auth_key_pem, sender.auth_cert_pem, call_stream=False
    )
    receiver = GatewayId.parse(base.receiver_gateway)
    try:
        sends = 2 if case.mutation == "replay" else 1
        for attempt in range(sends):
            try:
                answer = await channels.send(setup.receiver_address, receiver, msg, 10)
            except grpc.aio.AioRpcError as exc:
                if attempt + 1 < sends:
                    raise LookupError(f"a replay's first send failed: {exc.code().name}") from None
                return Outcome(exc.code().name, trailer_pairs(exc.trailing_metadata()))
        return Outcome(
            "OK", body=answer.SerializeToString(), request_id=header.message_id,
            request_digest=digest,
        )
    finally:
        await channels.close()


def seal_per_vectors(
    signer: Any, header: bytes, body: bytes
) -> tuple[bus_pb2.SignedMessage, bytes]:
    """A request sealed with tests/vectors/spec.py, the encoding as tests/vectors/README.md
    states it, signed with the raw key: none of the gateway's own sealing code."""
    signed = spec_signed_bytes("application/vnd.zhol.request+proto", header, body)
    if isinstance(signer.key, ec.EllipticCurvePrivateKey):
        signature = signer.key.sign(signed, ec.ECDSA(hashes.SHA256()))
    else:
        signature = signer.key.sign(signed)
    message = bus_pb2.SignedMessage(
        header=header,
        body=body,
        signature=signature,
        signer_cert_sha256=hashlib.sha256(signer.cert_der).digest(),
        signer_cert_der=signer.cert_der,
    )
    return message, hashlib.sha256(signed).digest()


def _base_header(base: PeerBase, variables: Mapping[str, str]) -> bus_pb2.MessageHeader:
    return bus_pb2.MessageHeader(
        message_id=str(uuid.uuid4()),
        protocol_version=1,
        kind=bus_pb2.MESSAGE_KIND_REQUEST,
        client=subsystem_to_pb(SubsystemId.parse(base.client)),
        service=service_to_pb(ServiceId.parse(base.service)),
        user_id=fill(base.user_id, variables),
        purpose=fill(base.purpose, variables),
        data_subject=fill(base.data_subject, variables),
        issued_at_unix_ms=time.time_ns() // 1_000_000,
        sender_gateway=gateway_to_pb(GatewayId.parse(base.sender_gateway)),
    )


def _mutate_header(header: bus_pb2.MessageHeader, mutation: str, limits: Limits) -> None:
    """Mutations made before signing: the signature is right, the content is not."""
    beyond_skew_ms = (limits.clock_skew_s + 60) * 1000
    if mutation == "kind-response":
        header.kind = bus_pb2.MESSAGE_KIND_RESPONSE
    elif mutation == "protocol-version-2":
        header.protocol_version = 2
    elif mutation == "issued-at-past":
        header.issued_at_unix_ms -= beyond_skew_ms
    elif mutation == "issued-at-future":
        header.issued_at_unix_ms += beyond_skew_ms
    elif mutation == "deadline-passed":
        header.deadline_unix_ms = header.issued_at_unix_ms - 1000
    elif mutation == "malformed-data-subject":
        iin = header.data_subject
        header.data_subject = iin[:11] + str((int(iin[11]) + 1) % 10)
