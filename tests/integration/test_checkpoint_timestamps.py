"""A running gateway has its checkpoints timestamped by a real RFC 3161 authority
(`zhol tsa`'s aiohttp application on 127.0.0.1), that the registry approved in the
global configuration; without the authority traffic continues until the limit, then
the gateway fails closed, and it recovers by itself once the authority is back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from tests.integration.bus_federation import (
    Federation,
    error_code,
    get_person,
    start_federation,
)
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.cli.federation import CORE_AGENCIES, Layout, init_registry_dir
from zhol.cli.ports import free_port
from zhol.cli.tsa import TsaPaths, init_tsa, load_signer
from zhol.cli.tsa_server import build_app
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.health import SERVING, TIMESTAMPING_OVERDUE
from zhol.gateway.timestamping import token_path
from zhol.security.keystore import read_certificate
from zhol.security.timestamp import verify_response

pytestmark = pytest.mark.integration

OPENSSL = shutil.which("openssl")


class TsaServer:
    """The authority's real aiohttp application, stopped and started again on one port."""

    def __init__(self, paths: TsaPaths, port: int) -> None:
        self.paths = paths
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(load_signer(self.paths.root)))
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_federation_with_tsa(
    root: Path, persons: int = 20, agencies: tuple[str, ...] = CORE_AGENCIES
) -> tuple[Federation, TsaServer]:
    """A federation whose registry approves a running authority (created under root)."""
    layout = Layout(root)
    init_registry_dir(layout)
    tsa = TsaServer(init_tsa(root / "tsa", layout.registry, "KZ-tsa"), free_port())
    await tsa.start()
    try:
        fed = await start_federation(
            root,
            persons=persons,
            agencies=agencies,
            registry_overrides={"timestamp_authorities": (f"{tsa.url} {tsa.paths.cert}",)},
        )
    except BaseException:
        await tsa.stop()
        raise
    return fed, tsa


def untimestamped(store: CheckpointStore) -> list[int]:
    return [s for s in store.sizes() if not token_path(store, s).exists()]


def check_tokens(store: CheckpointStore, tsa: TsaPaths) -> None:
    """Every token is over its checkpoint note's exact bytes, for openssl and for us.

    Only checkpoints that have one: the gateway keeps signing new checkpoints while the
    test looks (the callers wait until every checkpoint had its token at one moment)."""
    ca = read_certificate(tsa.ca_cert)
    sizes = [s for s in store.sizes() if token_path(store, s).exists()]
    assert sizes
    for size in sizes:
        note, tsr = store.note_path(size), token_path(store, size)
        verify_response(tsr.read_bytes(), note.read_bytes(), [ca])
        if OPENSSL is None:
            continue
        checked = subprocess.run(
            [OPENSSL, "ts", "-verify", "-data", note, "-in", tsr, "-CAfile", tsa.ca_cert]
            + ["-untrusted", tsa.cert],
            capture_output=True,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stderr
        assert b"Verification: OK" in checked.stdout


async def test_checkpoints_are_timestamped_and_the_gateway_fails_closed_without_the_tsa(
    tmp_path: Path,
) -> None:
    fed, tsa = await start_federation_with_tsa(tmp_path)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(
            CONSUMER_GATEWAY,
            "checkpoint_interval_s = 0.3\ntimestamp_interval_s = 0.2\n"
            "timestamp_limit_s = 5\ntimestamp_timeout_s = 2\n",
        )
        store = CheckpointStore(data / "checkpoints")

        await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(store.sizes()), timeout=20, what="a checkpoint")
        await get_person(fed.is_address(), some_iin(fed))
        await until(
            lambda: len(store.sizes()) >= 2 and not untimestamped(store),
            timeout=30,
            what="timestamped checkpoints",
        )
        check_tokens(store, tsa.paths)

        # The authority is gone: traffic continues while the new checkpoint waits...
        await tsa.stop()
        await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(untimestamped(store)), timeout=20, what="a waiting checkpoint")
        await get_person(fed.is_address(), some_iin(fed))

        # ...until the limit: then every call is refused and health says why.
        def refusing() -> bool:
            current = fed.consumer.health.current
            return current is not None and TIMESTAMPING_OVERDUE in current.reasons

        await until(refusing, timeout=30, what="NOT_SERVING for timestamping")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await get_person(fed.is_address(), some_iin(fed))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_code(refused.value) == "Server.ClientProxy.TimestampingFailed"

        # The authority is back: the gateway catches up and serves again by itself.
        await tsa.start()
        await until(lambda: not untimestamped(store), timeout=30, what="catching up")
        await until(
            lambda: (
                fed.consumer.health.current is not None
                and fed.consumer.health.current.status == SERVING
            ),
            timeout=30,
            what="SERVING again",
        )
        await get_person(fed.is_address(), some_iin(fed))
        check_tokens(store, tsa.paths)
    finally:
        await fed.stop()
        await tsa.stop()
