"""SUBSYSTEM registration requests signed the way a gateway signs them, the log key
every GATEWAY and RENEWAL request must carry, and the refusal check the registry
tests share."""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from typing import Protocol

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.pki import issue_der
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.registry.registration import Registrar
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_csr
from zhol.security.globalconf import gateway_to_pb, subsystem_to_pb
from zhol.security.keys import PrivateKey, generate_private_key
from zhol.security.logkey import prove_log_key
from zhol.security.sealing import Signer


@functools.cache
def sign_key(gateway: GatewayId) -> PrivateKey:
    """One member signing key per gateway id: its CSR and its signed requests share it."""
    return generate_private_key()


def sign_csr(gateway: GatewayId) -> bytes:
    return create_csr(sign_key(gateway), str(gateway.member))


def log_key_fields(gateway: GatewayId) -> dict[str, bytes]:
    """A fresh log key with its proof for ``gateway``, as request fields (every call a
    new key: the registry refuses a log key any gateway holds or held)."""
    public, proof = prove_log_key(ed25519.Ed25519PrivateKey.generate(), gateway)
    return {"log_public_key": public, "log_key_proof": proof}


def drop_log_key(store: Store, gateway: GatewayId) -> None:
    """Make ``gateway``'s row what a database from before log keys holds: no log key.

    The registry no longer registers a gateway without one; such rows only come from
    older databases (registry/store.py's migration to schema 3 leaves them empty). The
    change counter moves, so a running registry publishes the row as it now is."""
    with closing(sqlite3.connect(store.path)) as conn:
        conn.execute("UPDATE gateways SET log_public_key = x'' WHERE id = ?", (str(gateway),))
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'change_counter'")
        conn.commit()


def issue_sign_cert(
    ca: CertificateAuthority, key: PrivateKey, member: str, now: dt.datetime
) -> bytes:
    """A genuine CA-issued signing certificate that no registered gateway holds."""
    return issue_der(ca, key, "sign", member, now)


def gateway_signer(
    store: Store, ca: CertificateAuthority, gateway: GatewayId, now: dt.datetime
) -> Signer:
    """The gateway's key with its current signing certificate from the store; for a
    gateway not registered (or revoked), a valid certificate the store does not know."""
    found = store.get_gateway(gateway)
    if found is not None and not found.revoked:
        return Signer(sign_key(gateway), found.sign_cert_der)
    return Signer(
        sign_key(gateway), issue_sign_cert(ca, sign_key(gateway), str(gateway.member), now)
    )


def service_pb(
    subsystem: SubsystemId, grpc_service: str, methods: Sequence[str]
) -> registry_pb2.ServiceDescription:
    return registry_pb2.ServiceDescription(
        provider=subsystem_to_pb(subsystem), grpc_service=grpc_service, methods=list(methods)
    )


def subsystem_body(
    subsystem: SubsystemId,
    gateway: GatewayId,
    issued_at_ms: int,
    services: Sequence[registry_pb2.ServiceDescription] = (),
    topics: Sequence[registry_pb2.TopicDescription] = (),
) -> registry_pb2.SubsystemRegistration:
    return registry_pb2.SubsystemRegistration(
        gateway=gateway_to_pb(gateway),
        subsystem=subsystem_to_pb(subsystem),
        services=list(services),
        topics=list(topics),
        issued_at_unix_ms=issued_at_ms,
    )


class RegistryEnv(Protocol):
    """A registry under test: its store, a registrar that holds requests for approval
    and one that approves them automatically."""

    store: Store
    registrar: Registrar
    auto: Registrar


def registry_state(store: Store) -> tuple[object, ...]:
    """What a refused request must leave as it was: every table's row count, the change
    counter and the data. Not the configuration versions: a running registry publishes
    a new version of unchanged data every refresh_interval_s (60 s), whatever happens."""
    counts = {table: n for table, n in store.counts().items() if table != "conf_versions"}
    return counts, store.change_counter(), store.snapshot()


def assert_refused(
    env: RegistryEnv, code: str, request: registry_pb2.RegistrationRequest, now_ms: int
) -> None:
    """Both registrars refuse it with Server.Registry.<code>; the store is unchanged."""
    before = (env.store.counts(), env.store.change_counter(), env.store.snapshot())
    for registrar in (env.registrar, env.auto):
        with pytest.raises(ZholError) as info:
            registrar.submit(request, now_ms)
        assert info.value.full_code == f"Server.Registry.{code}"
    assert (env.store.counts(), env.store.change_counter(), env.store.snapshot()) == before
