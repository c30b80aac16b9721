"""A gateway's log key at the registry: proven by its holder, one gateway's only,
published in the global configuration, replaced (and kept as previous) by a renewal.

No sockets: the Registrar over a real SQLite store and the real federation CA.
Each refused request carries its own catalogue code and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.registry_signing import assert_refused as shared_assert_refused
from tests.registry_signing import drop_log_key, sign_csr, sign_key
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.registry.client import signed_renewal_request
from zhol.registry.globalconf import build_global_conf
from zhol.registry.model import RegistrationState
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import Registrar
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import create_csr
from zhol.security.globalconf import GlobalConf, Tunables, gateway_to_pb, parse_global_conf
from zhol.security.keys import generate_private_key
from zhol.security.logkey import prove_log_key, verify_log_key_proof
from zhol.security.sealing import Signer

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
GW2 = GatewayId.parse("KZ/GOV/MJ/gw2")
TUNABLES = Tunables(refresh_interval_s=60, validity_s=600, clock_skew_s=60, max_message_bytes=1024)


# -- the proof itself (pure) --------------------------------------------------------------


def _code(gateway: GatewayId, public_key: bytes, proof: bytes) -> str:
    with pytest.raises(ZholError) as info:
        verify_log_key_proof(gateway, public_key, proof)
    return info.value.code.name


def test_a_proof_by_the_key_for_its_gateway_verifies() -> None:
    public, proof = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    assert len(public) == 32 and len(proof) == 64
    verify_log_key_proof(GW1, public, proof)


def test_a_missing_wrong_or_misdirected_proof_is_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public, proof = prove_log_key(key, GW1)
    other_public, other_proof = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    assert _code(GW1, public, b"") == "MissingSignature"
    assert _code(GW1, public, other_proof) == "InvalidSignature"  # made by another key
    assert _code(GW1, other_public, proof) == "InvalidSignature"
    assert _code(GW2, public, proof) == "InvalidSignature"  # made for another gateway
    assert _code(GW1, public, proof[:-1]) == "InvalidSignature"
    assert _code(GW1, public[:31], proof) == "InvalidRequest"  # not 32 bytes
    assert _code(GW1, public + b"\0", proof) == "InvalidRequest"


# -- at the registry ------------------------------------------------------------------------


class Env:
    def __init__(self, tmp_path: Path) -> None:
        paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
        ca = load_keys(paths).ca
        self.store = Store.open(paths.db)
        self.registrar = Registrar(self.store, ca, "KZ", auto_approve=False)
        self.auto = Registrar(self.store, ca, "KZ", auto_approve=True)

    def conf(self) -> GlobalConf:
        data = build_global_conf(
            self.store.snapshot(),
            instance="KZ",
            version=1,
            now_ms=NOW_MS,
            tunables=TUNABLES,
            ca_certs_der=(),
        )
        return parse_global_conf(data, b"")

    def signer(self, gateway: GatewayId) -> Signer:
        found = self.store.get_gateway(gateway)
        assert found is not None
        return Signer(sign_key(gateway), found.sign_cert_der)


def gateway_request(
    gateway: GatewayId, log_public_key: bytes = b"", log_key_proof: bytes = b""
) -> registry_pb2.RegistrationRequest:
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway),
        gateway_address="127.0.0.1:7001",
        auth_csr_pem=create_csr(generate_private_key(), str(gateway)),
        sign_csr_pem=sign_csr(gateway),
        log_public_key=log_public_key,
        log_key_proof=log_key_proof,
    )


def renewal_request(
    env: Env, gateway: GatewayId, log_public_key: bytes, log_key_proof: bytes
) -> registry_pb2.RegistrationRequest:
    body = registry_pb2.RenewalRegistration(
        gateway=gateway_to_pb(gateway),
        log_public_key=log_public_key,
        log_key_proof=log_key_proof,
        issued_at_unix_ms=NOW_MS,
    )
    return signed_renewal_request(body, env.signer(gateway))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_a_proven_log_key_is_registered_and_published(env: Env) -> None:
    public, proof = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    reg = env.auto.submit(gateway_request(GW1, public, proof), NOW_MS)
    assert reg.state is RegistrationState.APPROVED
    entry = env.conf().gateways[GW1]
    assert entry.log_public_key == public and entry.previous_log_public_keys == ()


def test_a_registration_without_a_log_key_is_refused_and_records_nothing(env: Env) -> None:
    # Fail closed: a gateway without a log key keeps a log nobody can verify or witness.
    shared_assert_refused(env, "InvalidRequest", gateway_request(GW1), NOW_MS)
    assert env.store.list_registrations() == ()
    assert env.store.get_gateway(GW1) is None


def test_a_renewal_without_a_log_key_is_refused_and_changes_nothing(env: Env) -> None:
    env.auto.submit(
        gateway_request(GW1, *prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)), NOW_MS
    )
    before = env.store.get_gateway(GW1)
    body = registry_pb2.RenewalRegistration(
        gateway=gateway_to_pb(GW1),
        auth_csr_pem=create_csr(generate_private_key(), str(GW1)),
        issued_at_unix_ms=NOW_MS,
    )
    request = signed_renewal_request(body, env.signer(GW1))
    shared_assert_refused(env, "InvalidRequest", request, NOW_MS)
    assert [r.kind.value for r in env.store.list_registrations()] == ["GATEWAY"]
    assert env.store.get_gateway(GW1) == before


def test_a_gateway_from_before_log_keys_is_still_served_and_a_renewal_adds_one(
    env: Env,
) -> None:
    env.auto.submit(
        gateway_request(GW1, *prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)), NOW_MS
    )
    drop_log_key(env.store, GW1)  # as an older database holds it
    assert env.conf().gateways[GW1].log_public_key == b""
    public, proof = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    reg = env.auto.submit(renewal_request(env, GW1, public, proof), NOW_MS)
    assert reg.state is RegistrationState.APPROVED
    entry = env.conf().gateways[GW1]
    assert entry.log_public_key == public and entry.previous_log_public_keys == ()


def test_a_renewal_replaces_the_log_key_and_keeps_the_old_one_as_previous(env: Env) -> None:
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(3)]
    first, proof = prove_log_key(keys[0], GW1)
    env.auto.submit(gateway_request(GW1, first, proof), NOW_MS)
    published = [first]
    for key in keys[1:]:
        public, proof = prove_log_key(key, GW1)
        env.auto.submit(renewal_request(env, GW1, public, proof), NOW_MS)
        published.append(public)
    entry = env.conf().gateways[GW1]
    assert entry.log_public_key == published[-1]
    assert entry.previous_log_public_keys == tuple(published[:-1])  # oldest first


def test_a_registration_with_a_bad_log_key_is_refused_and_changes_nothing(env: Env) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public, proof = prove_log_key(key, GW1)
    _, other_proof = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    _, gw2_proof = prove_log_key(key, GW2)
    cases = {
        "MissingSignature": gateway_request(GW1, public, b""),
        "InvalidSignature": gateway_request(GW1, public, other_proof),
        "InvalidRequest": gateway_request(GW1, public[:16], proof),
    }
    for code, request in cases.items():
        shared_assert_refused(env, code, request, NOW_MS)
    shared_assert_refused(env, "InvalidSignature", gateway_request(GW1, public, gw2_proof), NOW_MS)
    shared_assert_refused(env, "InvalidRequest", gateway_request(GW1, b"", proof), NOW_MS)


def test_a_log_key_serves_one_gateway_only_ever(env: Env) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public, proof = prove_log_key(key, GW1)
    env.auto.submit(gateway_request(GW1, public, proof), NOW_MS)
    # The same key, proven for another gateway: refused.
    shared_assert_refused(
        env, "AlreadyRegistered", gateway_request(GW2, *prove_log_key(key, GW2)), NOW_MS
    )
    # Nor may a renewal bring back the current key, or a previous one.
    shared_assert_refused(
        env, "AlreadyRegistered", renewal_request(env, GW1, public, proof), NOW_MS
    )
    env.auto.submit(
        renewal_request(env, GW1, *prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)), NOW_MS
    )
    shared_assert_refused(
        env, "AlreadyRegistered", renewal_request(env, GW1, public, proof), NOW_MS
    )


def test_a_renewal_with_a_bad_log_key_proof_is_refused_and_changes_nothing(env: Env) -> None:
    env.auto.submit(
        gateway_request(GW1, *prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)), NOW_MS
    )
    public, _ = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    _, wrong = prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1)
    shared_assert_refused(env, "InvalidSignature", renewal_request(env, GW1, public, wrong), NOW_MS)
    shared_assert_refused(env, "MissingSignature", renewal_request(env, GW1, public, b""), NOW_MS)
    # Beside the signed body, a log key is not believed.
    request = renewal_request(env, GW1, *prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW1))
    request.log_public_key = public
    shared_assert_refused(env, "InvalidRequest", request, NOW_MS)
