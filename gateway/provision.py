"""Provisioning a gateway: keys made locally, certificates and membership from the registry.

The private keys never leave the data directory: only certificate signing
requests (which prove possession) go to the registry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, ServiceId, SubsystemId, parse_topic
from zhol.core.settings import dump_toml
from zhol.gateway import credentials as files
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.settings import SETTINGS_FILE, key_passphrase, load_gateway_settings
from zhol.registry.client import (
    fetch_global_conf,
    signed_renewal_request,
    signed_subsystem_request,
    submit_registration,
    wait_for_registration,
)
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import create_csr
from zhol.security.globalconf import gateway_to_pb, subsystem_to_pb, verify_global_conf
from zhol.security.keys import generate_private_key, public_key_to_pem
from zhol.security.keystore import (
    read_certificate,
    read_private_key,
    write_private_key,
    write_public_file,
)
from zhol.security.logkey import log_public_key_bytes, prove_log_key
from zhol.security.sealing import PrivateKey

REGISTRATIONS_FILE = "registrations.json"
# Told the registration request's id and the seconds it will wait, before waiting.
WaitNotice = Callable[[str, float], None]
RENEWAL_KEY = "renewal:"  # + the renewed roles, e.g. renewal:auth+sign; renewal:log for none
LOG_ONLY = "log"  # the registration key's tail of a renewal of the log key alone


@dataclass(frozen=True, slots=True)
class ServiceOffer:
    """A gRPC service our IS offers, and where the gateway reaches it."""

    grpc_service: str
    methods: tuple[str, ...]
    is_address: str
    # A FileDescriptorSet declaring the service, its request types and the files they
    # import (the zhol.bus.v1 options among them): gateways then bind each request's
    # data subject to its marked fields (gateway/subjects.py). Empty: none registered.
    descriptor_set: bytes = field(default=b"", repr=False)


def _key(path: Path, passphrase: bytes | None, algorithm: str = "ec-p256") -> PrivateKey:
    if not path.exists():
        write_private_key(path, generate_private_key(algorithm), passphrase)
    try:
        return read_private_key(path, passphrase)
    except ValueError as exc:  # a rerun with another passphrase than the first run
        raise ZholError("NotConfigured", f"{path}: {exc}") from None


def _log_key(path: Path, passphrase: bytes | None) -> ed25519.Ed25519PrivateKey:
    """The log key at path (made on first use): Ed25519, as signed-note verifiers need."""
    key = _key(path, passphrase, "ed25519")
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ZholError("NotConfigured", f"{path}: a log key must be Ed25519")
    return key


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
    on_wait: WaitNotice | None = None,
) -> None:
    """Create keys, register the gateway and store its certificates. Idempotent.

    With ``passphrase`` the private keys are stored encrypted; ``passphrase_env``
    names the environment variable the gateway reads it from when it starts
    (only the name is written to gateway.toml); without ``passphrase``, it is read
    from that variable.
    """
    if passphrase_env and passphrase is None:
        passphrase = key_passphrase(passphrase_env)
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
    log_public_key, log_key_proof = prove_log_key(
        _log_key(keys / files.LOG_KEY, passphrase), gateway_id
    )
    request = registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway_id),
        gateway_address=peer_address,
        member_name=member_name,
        auth_csr_pem=create_csr(auth_key, str(gateway_id)),
        sign_csr_pem=create_csr(sign_key, str(gateway_id.member)),
        log_public_key=log_public_key,
        log_key_proof=log_key_proof,
    )
    status = await _registered(
        data_dir, "gateway", registry_address, lambda: request, timeout_s, on_wait
    )
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
    on_wait: WaitNotice | None = None,
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
                descriptor_set=o.descriptor_set,
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
        passphrase = key_passphrase(env_name) if env_name else None
    signer = files.load_credentials(data_dir / "keys", passphrase).signer
    body.issued_at_unix_ms = SystemClock().now_ms() if now_ms is None else now_ms
    request = signed_subsystem_request(body, signer)
    await _registered(data_dir, key, registry_address, lambda: request, timeout_s, on_wait)
    local = LocalConfStore(data_dir / "local.db")
    try:
        for offer in offers:
            local.expose(subsystem, offer.grpc_service, offer.is_address, offer.methods)
    finally:
        local.close()


def _known_registrations(data_dir: Path) -> dict[str, str]:
    """Requests this gateway submitted, by what they ask (DATA_DIR/registrations.json)."""
    path = data_dir / REGISTRATIONS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _forget_registration(data_dir: Path, key: str) -> None:
    known = _known_registrations(data_dir)
    if known.pop(key, None) is not None:
        (data_dir / REGISTRATIONS_FILE).write_text(json.dumps(known, indent=2))


async def _registered(
    data_dir: Path,
    key: str,
    registry_address: str,
    make_request: Callable[[], registry_pb2.RegistrationRequest],
    timeout_s: float,
    on_wait: WaitNotice | None = None,
) -> registry_pb2.RegistrationStatus:
    """Submit once and wait for the decision; a rerun waits on the request already submitted
    (``make_request`` is called only when there is none). ``on_wait`` hears the request
    id and the wait before it starts, so an operator knows what to approve.

    A rejection is forgotten here (and raised with the operator's reason), so the
    next run submits a new request instead of waiting on the rejected one.
    """
    path = data_dir / REGISTRATIONS_FILE
    known = _known_registrations(data_dir)
    if key not in known:
        known[key] = await submit_registration(registry_address, make_request())
        path.write_text(json.dumps(known, indent=2))
    if on_wait is not None:
        on_wait(known[key], timeout_s)
    try:
        return await wait_for_registration(registry_address, known[key], timeout_s)
    except ZholError as err:
        if err.code.name == "RegistrationRejected":
            del known[key]
            path.write_text(json.dumps(known, indent=2))
        raise


def renewal_target(
    roles: Sequence[str], *, log_key_only: bool, pending: Sequence[str] = ()
) -> tuple[str, tuple[str, ...]]:
    """(registration key, certificate roles) of a renewal; every renewal brings a log key.

    A renewal already submitted (``pending``, its registrations.json key) is waited on,
    whatever it names. Otherwise ``roles`` (auth, sign) are renewed; with none,
    ``log_key_only`` asks for the log key alone (InvalidRequest when neither is given).
    """
    if pending:
        key = pending[0]
        named = key.removeprefix(RENEWAL_KEY).split("+")
        return key, tuple(r for r in files.ROLE_FILES if r in named)
    chosen = tuple(r for r in files.ROLE_FILES if r in roles)
    if chosen:
        return RENEWAL_KEY + "+".join(chosen), chosen
    if log_key_only:
        return RENEWAL_KEY + LOG_ONLY, ()
    raise ZholError("InvalidRequest", "nothing to renew: name auth, sign and/or the log key")


@dataclass(frozen=True, slots=True)
class Renewal:
    """What ``renew_gateway`` did: the roles renewed and the new certificates' expiry."""

    roles: tuple[str, ...]
    not_after: dict[str, dt.datetime]
    previous_dir: Path
    conf_refreshed: bool
    log_public_key: bytes = b""  # the new log key (raw Ed25519), b"" if not renewed
    kept_log_public_key: Path | None = None  # keys/log.<n>.pub of the replaced one, if any


def _gateway_passphrase(data_dir: Path, passphrase: bytes | None) -> bytes | None:
    if passphrase is None:
        env_name = load_gateway_settings(data_dir).key_passphrase_env
        passphrase = key_passphrase(env_name) if env_name else None
    return passphrase


async def renew_gateway(
    data_dir: Path,
    roles: Sequence[str] = ("auth", "sign"),
    *,
    timeout_s: float = 60.0,
    passphrase: bytes | None = None,
    now_ms: int | None = None,
    on_wait: WaitNotice | None = None,
    log_key_only: bool = False,
) -> Renewal:
    """Renew the gateway's authentication and/or signing certificate with new keys.

    New keys are made in keys/renewal/ (encrypted like the current ones), their CSRs
    sent in a RENEWAL request signed with the current signing key, and the decision
    awaited like ``init_gateway`` does: a rerun after a timeout waits on the request
    already submitted (whatever roles it names). Once approved, the new keys and
    certificates are installed atomically (credentials.install_renewal); every renewal
    also brings a new log key (keys/renewal/log.key), installed with them, the replaced
    one's public half kept as keys/log.<n>.pub (a gateway that had none gains one); a rejection
    (RegistrationRejected, with the operator's reason) or any failure leaves the
    current keys untouched. With ``log_key_only`` (and no roles) the request brings the
    new log key alone and no certificate changes. A running gateway uses the new keys,
    the log key among them, after a restart.
    """
    settings = load_gateway_settings(data_dir)
    gateway_id = GatewayId.parse(settings.gateway_id)
    keys = settings.keys_dir
    passphrase = _gateway_passphrase(data_dir, passphrase)
    files.finish_install(keys)  # a crash mid-install of an earlier renewal: complete it
    signer = files.load_credentials(keys, passphrase).signer  # wrong passphrase: fail now
    pending = [k for k in _known_registrations(data_dir) if k.startswith(RENEWAL_KEY)]
    key, roles = renewal_target(roles, log_key_only=log_key_only, pending=pending)
    new_dir = keys / files.RENEWAL_DIR

    def make_request() -> registry_pb2.RegistrationRequest:
        # Only now are new keys made (a rerun after a failed submission reuses them).
        csrs = {
            role: create_csr(
                _key(new_dir / files.ROLE_FILES[role][0], passphrase),
                str(gateway_id) if role == "auth" else str(gateway_id.member),
            )
            for role in roles
        }
        log_public_key, log_key_proof = prove_log_key(
            _log_key(new_dir / files.LOG_KEY, passphrase), gateway_id
        )
        body = registry_pb2.RenewalRegistration(
            gateway=gateway_to_pb(gateway_id),
            auth_csr_pem=csrs.get("auth", b""),
            sign_csr_pem=csrs.get("sign", b""),
            issued_at_unix_ms=SystemClock().now_ms() if now_ms is None else now_ms,
            log_public_key=log_public_key,
            log_key_proof=log_key_proof,
        )
        return signed_renewal_request(body, signer)

    try:
        status = await _registered(
            data_dir, key, settings.registry_address, make_request, timeout_s, on_wait
        )
    except ZholError as err:
        if err.code.name == "RegistrationRejected":
            files.discard_renewal(keys)  # the next run starts afresh, with other keys
        raise
    certs = {"auth": status.auth_cert_pem, "sign": status.sign_cert_pem}
    not_after: dict[str, dt.datetime] = {}
    for role in roles:
        key_name, cert_name = files.ROLE_FILES[role]
        if not certs[role]:
            raise ZholError("InvalidRequest", f"the approved renewal carries no {role} certificate")
        cert = x509.load_pem_x509_certificate(certs[role])
        # The registry certified our CSR: the new key must be the certificate's.
        files.check_key_matches(read_private_key(new_dir / key_name, passphrase), cert, role)
        write_public_file(new_dir / cert_name, certs[role])
        not_after[role] = cert.not_valid_after_utc
    # Made only by make_request: if it is there, the approved request carried it.
    new_log = new_dir / files.LOG_KEY
    log_public_key = b""
    kept: Path | None = None
    if new_log.exists():
        log_public_key = log_public_key_bytes(_log_key(new_log, passphrase))
        if (keys / files.LOG_KEY).exists():
            old = _log_key(keys / files.LOG_KEY, passphrase)
            kept = files.keep_log_public_key(keys, public_key_to_pem(old.public_key()))
    files.install_renewal(keys, roles, log_key=bool(log_public_key))
    _forget_registration(data_dir, key)
    refreshed = await _refresh_conf_cache(data_dir)
    return Renewal(roles, not_after, keys / files.PREVIOUS_DIR, refreshed, log_public_key, kept)


async def _refresh_conf_cache(data_dir: Path) -> bool:
    """Store the registry's newest configuration (the one naming the new certificate)
    when it verifies against the anchor and is newer than the cached one; best effort:
    a running gateway fetches it on its own within its poll interval."""
    settings = load_gateway_settings(data_dir)
    anchor_der = read_certificate(settings.anchor_path).public_bytes(Encoding.DER)
    try:
        signed = await fetch_global_conf(settings.registry_address)
        fresh = verify_global_conf(signed, anchor_der, SystemClock().now_ms())
    except ZholError:
        return False
    cache = settings.conf_cache_path
    try:
        if verify_global_conf(cache.read_bytes(), anchor_der).version >= fresh.version:
            return False
    except (OSError, ZholError):
        pass  # missing or unreadable: the fresh one replaces it
    write_public_file(cache, signed)
    return True
