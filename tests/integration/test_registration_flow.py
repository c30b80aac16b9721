"""An operator decides: a rejected gateway hears why, and its next attempt is a new request."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import pytest

from zhol.cli.main import main as zhol
from zhol.cli.ports import free_port
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.gateway.provision import init_gateway
from zhol.registry.provision import init_registry
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings

GATEWAY = "KZ/GOV/MOH/gw1"


def pending_request_id(registry_dir: Path) -> str | None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert zhol(["registry", "requests", "--dir", str(registry_dir), "--json"]) == 0
    pending = [
        r for r in json.loads(out.getvalue())["registrations"] if r["state"] == "PENDING"
    ]
    return pending[0]["id"] if pending else None


async def decide(registry_dir: Path, *command: str) -> None:
    for _ in range(200):
        request_id = pending_request_id(registry_dir)
        if request_id:
            assert zhol(["registry", *command[:1], "--dir", str(registry_dir), request_id,
                         *command[1:]]) == 0
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no pending registration appeared")


async def test_rejection_reaches_the_requester_and_a_rerun_submits_again(tmp_path: Path) -> None:
    registry_dir = tmp_path / "registry"
    init_registry(registry_dir, "KZ", auto_approve=False)
    port = free_port()
    server, _ = await start_registry(
        load_registry_settings(registry_dir, overrides={"listen": f"127.0.0.1:{port}"})
    )
    gateway_dir = tmp_path / "moh-gw1"

    async def init() -> None:
        await init_gateway(
            gateway_dir,
            GatewayId.parse(GATEWAY),
            f"127.0.0.1:{port}",
            registry_dir / "anchor.pem",
            f"127.0.0.1:{free_port()}",
            member_name="Ministry of Health",
            timeout_s=20,
        )

    try:
        attempt = asyncio.create_task(init())
        await decide(registry_dir, "reject", "--reason", "member not yet contracted")
        with pytest.raises(ZholError) as caught:
            await attempt
        assert caught.value.full_code == "Server.Registry.RegistrationRejected"
        assert not (gateway_dir / "keys" / "auth.pem").exists()

        attempt = asyncio.create_task(init())
        await decide(registry_dir, "approve")
        await attempt
        assert (gateway_dir / "keys" / "auth.pem").exists()
        assert (gateway_dir / "keys" / "sign.pem").exists()
    finally:
        await server.stop(0)


async def test_the_wait_names_the_pending_request_and_a_rerun_waits_on_it(
    tmp_path: Path,
) -> None:
    """Before it waits, the requester is told the id an operator approves; after a
    timeout, running it again announces and waits on that same request."""
    registry_dir = tmp_path / "registry"
    init_registry(registry_dir, "KZ", auto_approve=False)
    port = free_port()
    server, _ = await start_registry(
        load_registry_settings(registry_dir, overrides={"listen": f"127.0.0.1:{port}"})
    )
    notices: list[tuple[str, float]] = []

    async def init(timeout_s: float) -> None:
        await init_gateway(
            tmp_path / "moh-gw1",
            GatewayId.parse(GATEWAY),
            f"127.0.0.1:{port}",
            registry_dir / "anchor.pem",
            f"127.0.0.1:{free_port()}",
            timeout_s=timeout_s,
            on_wait=lambda request_id, wait_s: notices.append((request_id, wait_s)),
        )

    try:
        with pytest.raises(ZholError):
            await init(0.3)  # no decision yet: the wait ends, the request stays pending
        pending = pending_request_id(registry_dir)
        assert notices == [(pending, 0.3)]
        attempt = asyncio.create_task(init(20))
        await decide(registry_dir, "approve")
        await attempt
        assert notices == [(pending, 0.3), (pending, 20)]
    finally:
        await server.stop(0)
