"""A gateway's log key through the real registry: `init` registers it, the signed global
configuration publishes it, `renew` replaces it (the old one listed as previous), a
registration whose proof of possession fails, or that brings no log key, is refused and
changes nothing, and a gateway an older database holds without one is flagged until its
renewal brings one."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_public_key

from tests.integration.bus_federation import get_person, start_federation
from tests.integration.test_bus import some_iin
from tests.registry_signing import drop_log_key, registry_state
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.cli.ports import free_port
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.credentials import load_credentials
from zhol.gateway.provision import init_gateway, renew_gateway
from zhol.gateway.status import LOG_KEY_MISSING
from zhol.registry import client
from zhol.registry.cli import NO_LOG_KEY
from zhol.registry.provision import init_registry
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import create_csr
from zhol.security.globalconf import GatewayEntry, gateway_to_pb, verify_global_conf
from zhol.security.keys import generate_private_key
from zhol.security.keystore import read_certificate, read_private_key
from zhol.security.logkey import log_public_key_bytes, prove_log_key
from zhol.security.signednote import NoteError, ed25519_verifier, gateway_origin, open_note

pytestmark = pytest.mark.asyncio

GATEWAY = GatewayId.parse("KZ/GOV/MOH/gw1")
INTRUDER = GatewayId.parse("KZ/GOV/MOH/gw2")
PASSPHRASE_ENV = "ZHOL_TEST_LOG_KEY_PASSPHRASE"
PASSPHRASE = "log key passphrase for tests"


def log_key(path: Path) -> bytes:
    key = read_private_key(path, PASSPHRASE.encode())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return log_public_key_bytes(key)


async def published(registry: str, anchor: Path, gateway: GatewayId) -> GatewayEntry:
    signed = await client.fetch_global_conf(registry)
    conf = verify_global_conf(signed, read_certificate(anchor).public_bytes(Encoding.DER))
    return conf.gateways[gateway]


async def test_init_registers_the_log_key_and_renew_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    registry_dir = tmp_path / "registry"
    init_registry(registry_dir, "KZ", auto_approve=True)
    port = free_port()
    server, _ = await start_registry(
        load_registry_settings(registry_dir, overrides={"listen": f"127.0.0.1:{port}"})
    )
    registry = f"127.0.0.1:{port}"
    anchor = registry_dir / "anchor.pem"
    gateway_dir = tmp_path / "moh-gw1"
    keys = gateway_dir / "keys"
    try:
        await init_gateway(
            gateway_dir,
            GATEWAY,
            registry,
            anchor,
            f"127.0.0.1:{free_port()}",
            passphrase_env=PASSPHRASE_ENV,
            timeout_s=20,
        )
        log_file = keys / "log.key"
        assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o600
        assert log_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        first = log_key(log_file)
        entry = await published(registry, anchor, GATEWAY)
        assert entry.log_public_key == first and entry.previous_log_public_keys == ()

        done = await renew_gateway(gateway_dir, ("sign",), timeout_s=20)
        second = log_key(log_file)
        assert done.log_public_key == second != first
        entry = await published(registry, anchor, GATEWAY)
        assert entry.log_public_key == second and entry.previous_log_public_keys == (first,)
        # The replaced key's public half stays in the data directory.
        kept = load_pem_public_key((keys / "log.1.pub").read_bytes())
        assert isinstance(kept, ed25519.Ed25519PublicKey)
        assert log_public_key_bytes(kept) == first
        assert not (keys / "renewal").exists()

        # A proof that fails is refused with its code, before anything is stored.
        store = Store(registry_dir / "registry.db")
        before = registry_state(store)
        public, _ = prove_log_key(ed25519.Ed25519PrivateKey.generate(), INTRUDER)
        _, forged = prove_log_key(ed25519.Ed25519PrivateKey.generate(), INTRUDER)
        request = registry_pb2.RegistrationRequest(
            kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
            gateway=gateway_to_pb(INTRUDER),
            gateway_address=f"127.0.0.1:{free_port()}",
            auth_csr_pem=create_csr(generate_private_key(), str(INTRUDER)),
            sign_csr_pem=create_csr(generate_private_key(), str(INTRUDER.member)),
            log_public_key=public,
            log_key_proof=forged,
        )
        with pytest.raises(ZholError) as caught:
            await client.submit_registration(registry, request)
        assert caught.value.full_code == "Server.Registry.InvalidSignature"
        # The gateway's own renewal, signed by it, but proving a key for another gateway.
        body = registry_pb2.RenewalRegistration(
            gateway=gateway_to_pb(GATEWAY),
            log_public_key=public,
            log_key_proof=prove_log_key(ed25519.Ed25519PrivateKey.generate(), GATEWAY)[1],
            issued_at_unix_ms=SystemClock().now_ms(),
        )
        signer = load_credentials(keys, PASSPHRASE.encode()).signer
        with pytest.raises(ZholError) as caught:
            await client.submit_registration(registry, client.signed_renewal_request(body, signer))
        assert caught.value.full_code == "Server.Registry.InvalidSignature"
        assert registry_state(store) == before
    finally:
        await server.stop(0)


async def zhol_out(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(zhol, list(argv))  # a command may run its own loop
    return code, capsys.readouterr().out


async def test_no_log_key_is_refused_and_one_from_before_log_keys_is_flagged_until_renewed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "fed", persons=5)
    registry = fed.ports.address(fed.ports.registry)
    registry_dir = str(fed.layout.registry)
    store = Store(fed.layout.registry / "registry.db")
    provider = GatewayId.parse(PROVIDER_GATEWAY)
    provider_dir = str(fed.layout.gateway(PROVIDER_GATEWAY))
    try:
        # Fail closed: a new gateway without a log key, and the provider's own signed
        # renewal without one, are refused before anything is recorded.
        before = registry_state(store)
        registrations = store.list_registrations()
        newcomer = GatewayId.parse("KZ/GOV/MOH/gw9")
        keyless = registry_pb2.RegistrationRequest(
            kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
            gateway=gateway_to_pb(newcomer),
            gateway_address=f"127.0.0.1:{free_port()}",
            auth_csr_pem=create_csr(generate_private_key(), str(newcomer)),
            sign_csr_pem=create_csr(generate_private_key(), str(newcomer.member)),
        )
        body = registry_pb2.RenewalRegistration(
            gateway=gateway_to_pb(provider),
            auth_csr_pem=create_csr(generate_private_key(), str(provider)),
            issued_at_unix_ms=SystemClock().now_ms(),
        )
        signer = load_credentials(fed.layout.gateway(PROVIDER_GATEWAY) / "keys", None).signer
        for request in (keyless, client.signed_renewal_request(body, signer)):
            with pytest.raises(ZholError) as caught:
                await client.submit_registration(registry, request)
            assert caught.value.full_code == "Server.Registry.InvalidRequest"
        assert registry_state(store) == before
        assert store.list_registrations() == registrations

        # The provider as a database from before log keys holds it: still served, flagged.
        drop_log_key(store, provider)
        code, out = await zhol_out(capsys, "registry", "members", "--dir", registry_dir)
        flagged = [line for line in out.splitlines() if NO_LOG_KEY in line]
        assert code == 0 and len(flagged) == 1 and PROVIDER_GATEWAY in flagged[0]
        assert "WARNING 1 active gateway(s) without a log key" in out
        code, _ = await zhol_out(capsys, "gateway", "refresh", "--dir", provider_dir)
        assert code == 0
        code, out = await zhol_out(capsys, "gateway", "status", "--dir", provider_dir, "--json")
        doc = json.loads(out)
        assert code == 0 and doc["ok"] is True  # exchanges work: a warning, not an error
        assert doc["global_conf"]["log_key_registered"] is False
        assert ("warning", LOG_KEY_MISSING) in {(f["severity"], f["code"]) for f in doc["findings"]}

        # Its renewal brings one: no longer flagged anywhere.
        code, out = await zhol_out(capsys, "gateway", "renew", "--dir", provider_dir, "--json")
        assert code == 0, out
        code, out = await zhol_out(capsys, "registry", "members", "--dir", registry_dir)
        assert code == 0 and NO_LOG_KEY not in out and "WARNING" not in out
        code, out = await zhol_out(capsys, "gateway", "status", "--dir", provider_dir, "--json")
        doc = json.loads(out)
        assert doc["global_conf"]["log_key_registered"] is True
        assert LOG_KEY_MISSING not in {f["code"] for f in doc["findings"]}
    finally:
        await fed.stop()


CERTS_AND_KEYS = ("auth.key", "auth.pem", "sign.key", "sign.pem", "ca.pem")


def cert_files(keys: Path) -> dict[str, bytes]:
    return {name: (keys / name).read_bytes() for name in CERTS_AND_KEYS}


def plain_log_key(path: Path) -> bytes:
    key = read_private_key(path, None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return log_public_key_bytes(key)


async def test_log_key_alone_gives_a_gateway_from_before_log_keys_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "fed", persons=5)
    registry_dir = str(fed.layout.registry)
    store = Store(fed.layout.registry / "registry.db")
    provider = GatewayId.parse(PROVIDER_GATEWAY)
    provider_dir = fed.layout.gateway(PROVIDER_GATEWAY)
    keys = provider_dir / "keys"
    try:
        # As a gateway set up before log keys: none registered, none on disk.
        drop_log_key(store, provider)
        (keys / "log.key").unlink()
        code, out = await zhol_out(capsys, "registry", "members", "--dir", registry_dir)
        assert code == 0 and NO_LOG_KEY in out
        certs = cert_files(keys)
        registered = store.get_gateway(provider)
        assert registered is not None

        code, out = await zhol_out(
            capsys, "gateway", "renew", "--dir", str(provider_dir), "--log-key", "--json"
        )
        assert code == 0, out
        doc = json.loads(out)
        new_key = plain_log_key(keys / "log.key")
        assert doc["renewed"] == [] and doc["not_after"] == {}
        assert doc["log_public_key"] == base64.b64encode(new_key).decode()
        assert doc["previous_log_public_key_file"] is None and doc["restart_required"] is True
        assert stat.S_IMODE(os.stat(keys / "log.key").st_mode) == 0o600
        # No certificate changed, here or at the registry.
        assert cert_files(keys) == certs
        after = store.get_gateway(provider)
        assert after is not None and after.log_public_key == new_key
        assert (after.auth_cert_sha256, after.sign_cert_sha256) == (
            registered.auth_cert_sha256,
            registered.sign_cert_sha256,
        )
        assert not list(keys.glob("log.*.pub")) and not (keys / "renewal").exists()

        code, out = await zhol_out(capsys, "registry", "members", "--dir", registry_dir)
        assert code == 0 and NO_LOG_KEY not in out and "WARNING" not in out
        code, out = await zhol_out(capsys, "registry", "conf", "--dir", registry_dir)
        assert code == 0 and NO_LOG_KEY not in out
        code, out = await zhol_out(
            capsys, "gateway", "status", "--dir", str(provider_dir), "--json"
        )
        doc = json.loads(out)
        assert doc["global_conf"]["log_key_registered"] is True
        assert LOG_KEY_MISSING not in {f["code"] for f in doc["findings"]}
    finally:
        await fed.stop()


def signed_by(note: bytes, origin: str, key: bytes) -> bool:
    try:
        open_note(note, [ed25519_verifier(origin, key)])
    except NoteError:
        return False
    return True


async def test_a_log_key_rotation_keeps_the_audit_clean_across_the_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "fed", persons=5)
    data = fed.layout.gateway(CONSUMER_GATEWAY)
    keys = data / "keys"
    checkpoints = CheckpointStore(data / "checkpoints")
    origin = gateway_origin(CONSUMER_GATEWAY)
    try:
        await fed.restart_gateway(CONSUMER_GATEWAY, "checkpoint_interval_s = 0.3\n")
        for n in range(3):
            await get_person(fed.is_address(), some_iin(fed, n))
        await until(lambda: bool(checkpoints.sizes()), timeout=20, what="a checkpoint")
        old_key = plain_log_key(keys / "log.key")
        certs = cert_files(keys)

        code, out = await zhol_out(
            capsys, "gateway", "renew", "--dir", str(data), "--log-key", "--json"
        )
        assert code == 0, out
        doc = json.loads(out)
        new_key = plain_log_key(keys / "log.key")
        assert new_key != old_key and doc["renewed"] == [] and cert_files(keys) == certs
        assert plain_log_key(keys / "previous" / "log.key") == old_key
        kept = load_pem_public_key(Path(doc["previous_log_public_key_file"]).read_bytes())
        assert isinstance(kept, ed25519.Ed25519PublicKey)
        assert log_public_key_bytes(kept) == old_key
        entry = await published(
            fed.ports.address(fed.ports.registry),
            fed.layout.anchor,
            GatewayId.parse(CONSUMER_GATEWAY),
        )
        assert entry.log_public_key == new_key and old_key in entry.previous_log_public_keys

        # The running gateway signs with the key it started with until it restarts.
        await fed.restart_gateway(CONSUMER_GATEWAY)
        before = max(checkpoints.sizes())
        for n in range(3):
            await get_person(fed.is_address(), some_iin(fed, n))
        await until(lambda: max(checkpoints.sizes()) > before, timeout=20,
                    what="a checkpoint after the restart")  # fmt: skip
        await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)  # its last checkpoint
        notes = {size: checkpoints.note_path(size).read_bytes() for size in checkpoints.sizes()}
        by_old = [s for s, note in notes.items() if signed_by(note, origin, old_key)]
        by_new = [s for s, note in notes.items() if signed_by(note, origin, new_key)]
        assert by_old and by_new and max(by_old) < min(by_new)

        code, out = await zhol_out(
            capsys, "audit", "log", "--gateway", str(data), "--anchor", str(fed.layout.anchor),
            "--json",
        )  # fmt: skip
        report = json.loads(out)
        assert (code, report["failures"]) == (0, [])
        assert report["result"] == "verified" and report["counts"]["checkpoints"] == len(notes)
    finally:
        await fed.stop()
