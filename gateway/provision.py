"""Provisioning a gateway: keys made locally, certificates and membership from the registry.

The private keys never leave the data directory: only certificate signing
requests (which prove possession) go to the registry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.clock import SystemClock
from core.errors import ZholError
from core.globalconf import gateway_to_pb, subsystem_to_pb
from core.ids import GatewayId, ServiceId, SubsystemId, parse_topic
from core.settings import dump_toml
from gateway import credentials as files
from gateway.localconf import LocalConfStore
from gateway.settings import SETTINGS_FILE, load_gateway_settings
from registry.client import signed_subsystem_request, submit_registration, wait_for_registration
from security.ca import create_csr
from security.keys import generate_private_key
from security.keystore import read_private_key, write_private_key, write_public_file
from zhol.registry.v1 import registry_pb2


@dataclass(frozen=True, slots=True)
class ServiceOffer:
    """A gRPC service our IS offers, and where the gateway reaches it."""

    grpc_service: str
    methods: tuple[str, ...]
    is_address: str


def _key(path: Path, passphrase: bytes | None):  # type: ignore[no-untyped-def]
    if not path.exists():
        write_private_key(path, generate_private_key(), passphrase)
    try:
        return read_private_key(path, passphrase)
    except ValueError as exc:  # a rerun with another passphrase than the first run
        raise ZholError("NotConfigured", f"{path}: {exc}") from None


async def init_gateway(
    data_dir: Path,
    gateway_id: GatewayId,
    registry_address: str,
    anchor_pem_path: Path,
    peer_address: str,
    *,
    member_name: str = "",
    is_listen: str = "127.0.0.1:0",
    peer_listen: str | None = None,
    passphrase: bytes | None = None,
    passphrase_env: str = "",
    timeout_s: float = 60.0,
) -> None:
    """Create keys, register the gateway and store its certificates. Idempotent.

    With ``passphrase`` the private keys are stored encrypted; ``passphrase_env``
    names the environment variable the gateway reads it from when it starts
    (only the name is written to gateway.toml); without ``passphrase``, it is read
    from that variable.
    """
    if passphrase_env and passphrase is None:
        passphrase = files.key_passphrase(passphrase_env)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = data_dir / "keys"
    keys.mkdir(exist_ok=True, mode=0o700)
    if not (data_dir / "anchor.pem").exists():
        shutil.copyfile(anchor_pem_path, data_dir / "anchor.pem")
    settings_path = data_dir / SETTINGS_FILE
    if not settings_path.exists():
        settings_path.write_text(
            dump_toml(
                {
                    "gateway_id": str(gateway_id),
                    "registry_address": registry_address,
                    "is_listen": is_listen,
                    "peer_listen": peer_listen or peer_address,
                    **({"key_passphrase_env": passphrase_env} if passphrase_env else {}),
                }
            )
        )
    if (keys / files.AUTH_CERT).exists() and (keys / files.SIGN_CERT).exists():
        return
    auth_key = _key(keys / files.AUTH_KEY, passphrase)
    sign_key = _key(keys / files.SIGN_KEY, passphrase)
    request = registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway_id),
        gateway_address=peer_address,
        member_name=member_name,
        auth_csr_pem=create_csr(auth_key, str(gateway_id)),
        sign_csr_pem=create_csr(sign_key, str(gateway_id.member)),
    )
    status = await _registered(data_dir, "gateway", registry_address, request, timeout_s)
    write_public_file(keys / files.CA_CERT, status.ca_cert_pem)
    write_public_file(keys / files.SIGN_CERT, status.sign_cert_pem)
    write_public_file(keys / files.AUTH_CERT, status.auth_cert_pem)


async def register_subsystem(
    data_dir: Path,
    gateway_id: GatewayId,
    registry_address: str,
    subsystem: SubsystemId,
    offers: Sequence[ServiceOffer] = (),
    *,
    topics: Sequence[str] = (),
    timeout_s: float = 60.0,
    passphrase: bytes | None = None,
    now_ms: int | None = None,
) -> None:
    """Register a subsystem served by this gateway, with the services its IS offers
    and the event topics (fully qualified event message names) it publishes.

    The request is signed with the gateway's member signing key (keys/sign.key):
    the registry accepts a subsystem only from its member's own gateway. Encrypted
    keys are opened with ``passphrase``, else with the variable gateway.toml names.
    """
    for offer in offers:
        for method in offer.methods:
            ServiceId.of(subsystem, offer.grpc_service, method)  # validate before sending
    topic_names = [parse_topic(t) for t in topics]  # validate before sending
    body = registry_pb2.SubsystemRegistration(
        gateway=gateway_to_pb(gateway_id),
        subsystem=subsystem_to_pb(subsystem),
        services=[
            registry_pb2.ServiceDescription(
                provider=subsystem_to_pb(subsystem),
                grpc_service=o.grpc_service,
                methods=list(o.methods),
            )
            for o in offers
        ],
        topics=[
            registry_pb2.TopicDescription(publisher=subsystem_to_pb(subsystem), topic=t)
            for t in dict.fromkeys(topic_names)
        ],
    )
    # Keyed by content (before the time and signature, which differ on each run): the
    # same request is not submitted twice, a changed one (a service or topic added) is.
    digest = hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()[:16]
    key = f"subsystem:{subsystem}:{digest}"
    if passphrase is None:
        env_name = load_gateway_settings(data_dir).key_passphrase_env
        passphrase = files.key_passphrase(env_name) if env_name else None
    signer = files.load_credentials(data_dir / "keys", passphrase).signer
    body.issued_at_unix_ms = SystemClock().now_ms() if now_ms is None else now_ms
    request = signed_subsystem_request(body, signer)
    await _registered(data_dir, key, registry_address, request, timeout_s)
    local = LocalConfStore(data_dir / "local.db")
    try:
        for offer in offers:
            local.expose(subsystem, offer.grpc_service, offer.is_address, offer.methods)
    finally:
        local.close()


async def _registered(
    data_dir: Path,
    key: str,
    registry_address: str,
    request: registry_pb2.RegistrationRequest,
    timeout_s: float,
) -> registry_pb2.RegistrationStatus:
    """Submit once and wait for the decision; a rerun waits on the request already submitted.

    A rejection is forgotten here (and raised with the operator's reason), so the
    next run submits a new request instead of waiting on the rejected one.
    """
    path = data_dir / "registrations.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if key not in known:
        known[key] = await submit_registration(registry_address, request)
        path.write_text(json.dumps(known, indent=2))
    try:
        return await wait_for_registration(registry_address, known[key], timeout_s)
    except ZholError as err:
        if err.code.name == "RegistrationRejected":
            del known[key]
            path.write_text(json.dumps(known, indent=2))
        raise
