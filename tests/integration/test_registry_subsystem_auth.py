"""Over the real registry gRPC server, with auto-approval on (the demo's setting):
only a member's own gateway can attach a subsystem to it; forgeries leave no trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry_signing import issue_sign_cert, registry_state, service_pb, subsystem_body
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.credentials import load_credentials
from zhol.gateway.provision import ServiceOffer, init_gateway, register_subsystem
from zhol.registry import client
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import datetime_from_ms
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.globalconf import gateway_to_pb, subsystem_to_pb, verify_global_conf
from zhol.security.keys import generate_private_key
from zhol.security.sealing import Signer

pytestmark = pytest.mark.integration

MJ_GW = GatewayId.parse("KZ/GOV/MJ/gw1")
MLSPP_GW = GatewayId.parse("KZ/GOV/MLSPP/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
PENSION = SubsystemId.parse("KZ/GOV/MLSPP/pension")
SERVICE = "zhol.population.v1.PopulationRegistry"
PASSPHRASE_ENV = "ZHOL_TEST_MLSPP_KEYS"
PASSPHRASE = "correct horse battery staple"


async def test_only_the_members_own_gateway_registers_its_subsystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_dir = tmp_path / "registry"
    paths = init_registry(registry_dir, "KZ", auto_approve=True)
    anchor_der = load_keys(paths).anchor_der
    settings = load_registry_settings(registry_dir, overrides={"listen": "127.0.0.1:0"}, environ={})
    server, port = await start_registry(settings, environ={})
    registry = f"127.0.0.1:{port}"
    store = Store(paths.db)
    mj_dir, mlspp_dir = tmp_path / "mj-gw1", tmp_path / "mlspp-gw1"
    # The pension ministry's keys are encrypted: signing must open them from the
    # variable gateway.toml names.
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    try:
        for gateway, data_dir, env in ((MJ_GW, mj_dir, ""), (MLSPP_GW, mlspp_dir, PASSPHRASE_ENV)):
            await init_gateway(
                data_dir,
                gateway,
                registry,
                paths.anchor,
                "127.0.0.1:7001",
                passphrase_env=env,
                timeout_s=20,
            )
        before = registry_state(store)

        # An attacker on the network, with MJ's public signing certificate.
        mj_cert = load_credentials(mj_dir / "keys", None).signer.cert_der
        attacker = load_credentials(mlspp_dir / "keys", PASSPHRASE.encode()).signer
        services = [service_pb(POPULATION, SERVICE, ["GetPerson"])]
        body = subsystem_body(POPULATION, MJ_GW, SystemClock().now_ms(), services)
        unsigned = registry_pb2.RegistrationRequest(
            kind=registry_pb2.REGISTRATION_KIND_SUBSYSTEM,
            gateway=gateway_to_pb(MJ_GW),
            subsystem=subsystem_to_pb(POPULATION),
            services=services,
        )
        attempts = (
            (unsigned, "MissingSignature"),
            # Another member's gateway, with its own genuine key and certificate.
            (client.signed_subsystem_request(body, attacker), "SignerMismatch"),
            # MJ's certificate, but not MJ's key.
            (
                client.signed_subsystem_request(body, Signer(attacker.key, mj_cert)),
                "InvalidSignature",
            ),
        )
        for request, code in attempts:
            with pytest.raises(ZholError) as caught:
                await client.submit_registration(registry, request)
            assert caught.value.full_code == f"Server.Registry.{code}"
        assert registry_state(store) == before  # no pending request, nothing

        # The gateways' own flow registers their subsystems (keys read from DATA_DIR/keys).
        offer = ServiceOffer(SERVICE, ("GetPerson",), "127.0.0.1:5000")
        await register_subsystem(mj_dir, MJ_GW, registry, POPULATION, [offer], timeout_s=20)
        await register_subsystem(mlspp_dir, MLSPP_GW, registry, PENSION, timeout_s=20)
        conf = verify_global_conf(
            await client.fetch_global_conf(registry), anchor_der, SystemClock().now_ms()
        )
        assert [g.id for g in conf.gateways_for(POPULATION)] == [MJ_GW]
        assert [g.id for g in conf.gateways_for(PENSION)] == [MLSPP_GW]
        assert conf.resolve_service(SERVICE, "GetPerson", None).subsystem == POPULATION
        kinds = [(r.kind.value, r.state.value) for r in store.list_registrations()]
        assert sorted(kinds) == [("GATEWAY", "APPROVED")] * 2 + [("SUBSYSTEM", "APPROVED")] * 2
    finally:
        await server.stop(0)


async def test_registry_toml_sets_the_skew_window(tmp_path: Path) -> None:
    paths = init_registry(tmp_path / "registry", "KZ", auto_approve=True)
    settings = load_registry_settings(
        paths.root, overrides={"listen": "127.0.0.1:0", "registration_skew_s": 1}, environ={}
    )
    server, port = await start_registry(settings, environ={})
    key = generate_private_key()
    now = SystemClock().now_ms()
    cert = issue_sign_cert(load_keys(paths).ca, key, str(MJ_GW.member), datetime_from_ms(now))
    try:
        for issued_at, code in ((now - 5_000, "ClockSkew"), (now, "NotConfigured")):
            body = subsystem_body(POPULATION, MJ_GW, issued_at)
            request = client.signed_subsystem_request(body, Signer(key, cert))
            with pytest.raises(ZholError) as caught:
                await client.submit_registration(f"127.0.0.1:{port}", request)
            assert caught.value.full_code == f"Server.Registry.{code}"
        assert Store(paths.db).counts()["registrations"] == 0
    finally:
        await server.stop(0)
