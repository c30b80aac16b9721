"""A gateway registers a subsystem with the event topics it publishes; gateways see them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
from pathlib import Path

import pytest

from zhol.cli import gateway as gateway_cli
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.provision import init_gateway, register_subsystem
from zhol.registry import client
from zhol.registry.cli import main as registry_cli
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings
from zhol.security.globalconf import verify_global_conf

pytestmark = pytest.mark.integration

GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
CIVIL = SubsystemId.parse("KZ/GOV/MJ/civil")
BIRTH = "zhol.population.v1.BirthRegistered"
DEATH = "zhol.population.v1.DeathRegistered"
MARRIAGE = "zhol.civil.v1.MarriageRegistered"


def gateway_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zhol")
    gateway_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gateway", *argv])
    return int(args.func(args))


async def test_registered_topics_reach_the_global_configuration(tmp_path: Path) -> None:
    registry_dir = tmp_path / "registry"
    paths = init_registry(registry_dir, "KZ", auto_approve=True)
    anchor_der = load_keys(paths).anchor_der
    settings = load_registry_settings(registry_dir, overrides={"listen": "127.0.0.1:0"}, environ={})
    server, port = await start_registry(settings, environ={})
    registry = f"127.0.0.1:{port}"
    gateway_dir = tmp_path / "mj-gw1"
    try:
        await init_gateway(
            gateway_dir,
            GW1,
            registry,
            paths.anchor,
            "127.0.0.1:7001",
            member_name="Ministry of Justice",
            timeout_s=20,
        )
        await register_subsystem(
            gateway_dir, GW1, registry, POPULATION, (), topics=[DEATH, BIRTH], timeout_s=20
        )

        # A malformed topic is refused before anything is sent.
        with pytest.raises(ZholError) as caught:
            await register_subsystem(
                gateway_dir, GW1, registry, CIVIL, (), topics=["Marriage"], timeout_s=20
            )
        assert caught.value.code.name == "InvalidIdentifier"
        # ... and by the command line, with the usage exit code.
        args = ("add-subsystem", "--dir", str(gateway_dir), "--subsystem", str(CIVIL))
        assert await asyncio.to_thread(gateway_command, *args, "--topic", "Marriage") == 2

        # The command line registers a second subsystem with its --topic.
        assert await asyncio.to_thread(gateway_command, *args, "--topic", MARRIAGE) == 0

        conf = verify_global_conf(
            await client.fetch_global_conf(registry), anchor_der, SystemClock().now_ms()
        )
        assert conf.topics == {
            POPULATION: frozenset({BIRTH, DEATH}),
            CIVIL: frozenset({MARRIAGE}),
        }
        assert conf.publishes(POPULATION, BIRTH)
        assert not conf.publishes(CIVIL, BIRTH)

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = registry_cli(["registry", "requests", "--dir", str(registry_dir), "--json"])
        assert code == 0
        subsystem_requests = [
            r for r in json.loads(out.getvalue())["registrations"] if r["kind"] == "SUBSYSTEM"
        ]
        assert [r["state"] for r in subsystem_requests] == ["APPROVED", "APPROVED"]
        assert sorted(sorted(r["topics"]) for r in subsystem_requests) == [
            [MARRIAGE],
            [BIRTH, DEATH],
        ]
    finally:
        await server.stop(0)
