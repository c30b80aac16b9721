"""`zhol gateway renew` on a real federation: exchanges go on through the changeover, peers
accept the previous auth certificate until the overlap ends, forgeries change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.bus_federation import Federation, error_code, get_person, start_federation
from tests.integration.test_bus import some_iin
from tests.registry_signing import log_key_fields, registry_state
from zhol.bus.v1 import bus_pb2
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.gateway.credentials import load_credentials
from zhol.registry import client
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import auth_dns_name, create_csr
from zhol.security.globalconf import gateway_to_pb
from zhol.security.keys import generate_private_key
from zhol.security.keystore import read_certificate, read_private_key_for_tls

pytestmark = pytest.mark.asyncio

UNTRUSTED_PEER = "Server.ServerProxy.UntrustedPeer"
MISSING_SIGNATURE = "Server.ServerProxy.MissingSignature"  # authenticated, then refused


def cert_hash(path: Path) -> bytes:
    return hashlib.sha256(read_certificate(path).public_bytes(Encoding.DER)).digest()


def key_files(keys: Path) -> dict[str, bytes]:
    return {n: (keys / n).read_bytes() for n in ("auth.key", "auth.pem", "sign.key", "sign.pem")}


async def peer_verdict(fed: Federation, key: Path, cert: Path, ca_pem: bytes) -> str | None:
    """What the provider's peer port answers a TLS client holding this key and certificate
    (an empty, unsigned message: a trusted peer gets past authentication to the signature)."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_pem,
        private_key=read_private_key_for_tls(key),
        certificate_chain=cert.read_bytes(),
    )
    options = (("grpc.ssl_target_name_override", auth_dns_name(PROVIDER_GATEWAY)),)
    target = f"127.0.0.1:{fed.provider.peer_port}"
    async with grpc.aio.secure_channel(target, credentials, options=options) as channel:
        call = channel.unary_unary("/zhol.bus.v1.Exchange/Call")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(bus_pb2.SignedMessage().SerializeToString(), timeout=10)
    return error_code(caught.value)


def renewal_request(
    gateway: str, signer_keys: Path, issued_at_ms: int
) -> registry_pb2.RegistrationRequest:
    gateway_id = GatewayId.parse(gateway)
    body = registry_pb2.RenewalRegistration(
        gateway=gateway_to_pb(gateway_id),
        auth_csr_pem=create_csr(generate_private_key(), gateway),
        issued_at_unix_ms=issued_at_ms,
        **log_key_fields(gateway_id),
    )
    return client.signed_renewal_request(body, load_credentials(signer_keys, None).signer)


async def run_zhol(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(zhol, list(argv))  # the command runs its own event loop
    return code, capsys.readouterr().out


async def test_renewal_through_a_running_federation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "fed", persons=5)
    registry = fed.ports.address(fed.ports.registry)
    store = Store(fed.layout.registry / "registry.db")
    provider_dir = fed.layout.gateway(PROVIDER_GATEWAY)
    consumer_dir = fed.layout.gateway(CONSUMER_GATEWAY)
    provider_keys, consumer_keys = provider_dir / "keys", consumer_dir / "keys"
    try:
        iin = some_iin(fed)
        await get_person(fed.is_address(), iin)

        # Forged, unsigned and stale renewals are refused and change nothing.
        now = SystemClock().now_ms()
        unsigned = renewal_request(PROVIDER_GATEWAY, provider_keys, now)
        unsigned.ClearField("signature")
        attempts = (
            (renewal_request(PROVIDER_GATEWAY, consumer_keys, now), "SignerMismatch"),
            (unsigned, "MissingSignature"),
            (renewal_request(PROVIDER_GATEWAY, provider_keys, now - 3_600_000), "ClockSkew"),
        )
        before = registry_state(store)
        for request, code in attempts:
            with pytest.raises(ZholError) as caught:
                await client.submit_registration(registry, request)
            assert caught.value.full_code == f"Server.Registry.{code}"
        assert registry_state(store) == before

        # The provider renews both certificates (approved automatically), keeps serving
        # with the old ones until it restarts, then with the new ones.
        old_provider = key_files(provider_keys)
        code, out = await run_zhol(capsys, "gateway", "renew", "--dir", str(provider_dir), "--json")
        assert code == 0, out
        doc = json.loads(out)
        assert doc["renewed"] == ["auth", "sign"] and doc["restart_required"] is True
        new_provider = key_files(provider_keys)
        assert all(new_provider[n] != old_provider[n] for n in old_provider)
        previous = provider_keys / "previous"
        assert key_files(previous) == old_provider
        for name in ("auth.key", "sign.key"):
            assert stat.S_IMODE(os.stat(provider_keys / name).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(previous / name).st_mode) == 0o600
        assert not (provider_keys / "renewal").exists()
        await get_person(fed.is_address(), iin)
        await fed.provider.stop(0)
        await fed.start_gateway(PROVIDER_GATEWAY)
        await get_person(fed.is_address(), iin)
        code, out = await run_zhol(
            capsys, "gateway", "status", "--dir", str(provider_dir), "--json"
        )
        status = json.loads(out)
        assert code == 0 and status["ok"] is True, status["findings"]
        hashes = {c["role"]: c["sha256"] for c in status["certificates"]}
        assert hashes == {
            "auth": cert_hash(provider_keys / "auth.pem").hex(),
            "sign": cert_hash(provider_keys / "sign.pem").hex(),
        }

        # The consumer renews its auth certificate only and is not restarted: the
        # provider, with the new configuration, accepts both auth certificates.
        old_auth = consumer_keys / "previous" / "auth.pem"
        ca_pem = (consumer_keys / "ca.pem").read_bytes()
        old_sign = key_files(consumer_keys)["sign.pem"]
        code, out = await run_zhol(capsys, "gateway", "renew", "--dir", str(consumer_dir), "--auth")
        assert code == 0 and "restart" in out
        assert key_files(consumer_keys)["sign.pem"] == old_sign
        await fed.provider.conf.refresh()  # pushed already, or fetched now
        conf = fed.provider.conf.current().conf
        for path in (old_auth, consumer_keys / "auth.pem"):
            entry = conf.gateway_by_auth_hash(cert_hash(path))
            assert entry is not None and str(entry.id) == CONSUMER_GATEWAY
        await get_person(fed.is_address(), iin)  # through the consumer's previous certificate
        for key, cert in (
            (consumer_keys / "previous" / "auth.key", old_auth),
            (consumer_keys / "auth.key", consumer_keys / "auth.pem"),
        ):
            assert await peer_verdict(fed, key, cert, ca_pem) == MISSING_SIGNATURE
        await fed.consumer.stop(0)
        await fed.start_gateway(CONSUMER_GATEWAY)
        await get_person(fed.is_address(), iin)

        # The operator ends the overlap: the previous certificate is refused from then on.
        code, out = await run_zhol(
            capsys, "registry", "end-overlap", "--dir", str(fed.layout.registry),
            "--gateway", CONSUMER_GATEWAY,
        )  # fmt: skip
        assert code == 0 and "1 previous" in out
        await fed.provider.conf.refresh()  # pushed already, or fetched now
        old_key = consumer_keys / "previous" / "auth.key"
        assert await peer_verdict(fed, old_key, old_auth, ca_pem) == UNTRUSTED_PEER
        await get_person(fed.is_address(), iin)

        # A revoked gateway cannot renew, even with its genuine current key.
        code, _ = await run_zhol(
            capsys, "registry", "revoke", "--dir", str(fed.layout.registry),
            "--gateway", CONSUMER_GATEWAY,
        )  # fmt: skip
        assert code == 0
        before = registry_state(store)
        with pytest.raises(ZholError) as caught:
            now = SystemClock().now_ms()
            await client.submit_registration(
                registry, renewal_request(CONSUMER_GATEWAY, consumer_keys, now)
            )
        assert caught.value.full_code == "Server.Registry.RevokedCertificate"
        assert registry_state(store) == before
    finally:
        await fed.stop()
