"""An operator decides a renewal: a rejection reaches the gateway with its reason and leaves
its keys as they were; an approval installs the new ones, and status shows their expiry."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from tests.integration.test_gateway_renewal import key_files
from tests.integration.test_registration_flow import decide
from zhol.cli.main import main as zhol
from zhol.cli.ports import free_port
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.core.settings import dump_toml
from zhol.gateway.credentials import load_credentials
from zhol.gateway.provision import init_gateway, renew_gateway
from zhol.registry.provision import init_registry
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings

GATEWAY = "KZ/GOV/MOH/gw1"
PASSPHRASE_ENV = "ZHOL_TEST_RENEWAL_KEYS"
PASSPHRASE = "renewal passphrase for tests"
REASON = "renew with keys made on the HSM"


def requests(registry_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert zhol(["registry", "requests", "--dir", str(registry_dir), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["registrations"]


async def test_an_operator_rejects_then_approves_a_renewal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    registry_dir = tmp_path / "registry"
    init_registry(registry_dir, "KZ", auto_approve=False)
    port = free_port()
    server, _ = await start_registry(
        load_registry_settings(registry_dir, overrides={"listen": f"127.0.0.1:{port}"})
    )
    gateway_dir = tmp_path / "moh-gw1"
    keys = gateway_dir / "keys"
    try:
        registration = asyncio.create_task(
            init_gateway(
                gateway_dir,
                GatewayId.parse(GATEWAY),
                f"127.0.0.1:{port}",
                registry_dir / "anchor.pem",
                f"127.0.0.1:{free_port()}",
                passphrase_env=PASSPHRASE_ENV,
                timeout_s=20,
            )
        )
        await decide(registry_dir, "approve")
        await registration
        # Certificates the operator approves from now on are valid for 100 days.
        toml = registry_dir / "registry.toml"
        settings = tomllib.loads(toml.read_text())
        toml.write_text(dump_toml({**settings, "cert_validity_days": 100}))
        before = key_files(keys)

        attempt = asyncio.create_task(renew_gateway(gateway_dir, timeout_s=20))
        await decide(registry_dir, "reject", "--reason", REASON)
        with pytest.raises(ZholError) as caught:
            await attempt
        assert caught.value.full_code == "Server.Registry.RegistrationRejected"
        assert caught.value.detail == REASON
        assert key_files(keys) == before and not (keys / "renewal").exists()

        # Not decided in time: the rerun waits on the request already submitted.
        with pytest.raises(ZholError) as caught:
            await renew_gateway(gateway_dir, ("auth",), timeout_s=0.2)
        assert caught.value.full_code == "Server.Registry.RegistrationPending"
        assert key_files(keys) == before
        new_key = keys / "renewal" / "auth.key"
        assert stat.S_IMODE(os.stat(new_key).st_mode) == 0o600
        assert new_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        pending = [r for r in requests(registry_dir, capsys) if r["state"] == "PENDING"]
        assert [(r["kind"], r["renews"]) for r in pending] == [("RENEWAL", ["auth"])]

        attempt = asyncio.create_task(renew_gateway(gateway_dir, timeout_s=20))
        await decide(registry_dir, "approve")
        done = await attempt
        assert done.roles == ("auth",)  # what the pending request asked, not the default
        after = key_files(keys)
        assert after["auth.pem"] != before["auth.pem"] and after["auth.key"] != before["auth.key"]
        assert after["sign.pem"] == before["sign.pem"] and after["sign.key"] == before["sign.key"]
        load_credentials(keys, PASSPHRASE.encode())  # the new key opens and matches
        assert [r["state"] for r in requests(registry_dir, capsys)] == [
            "APPROVED", "REJECTED", "APPROVED",
        ]  # fmt: skip

        capsys.readouterr()
        code = zhol(["gateway", "status", "--dir", str(gateway_dir), "--json"])
        status = json.loads(capsys.readouterr().out)
        assert code == 0 and status["ok"] is True, status["findings"]
        days = {c["role"]: c["days_left"] for c in status["certificates"]}
        assert days["auth"] in (99, 100) and days["sign"] >= 364
    finally:
        await server.stop(0)
