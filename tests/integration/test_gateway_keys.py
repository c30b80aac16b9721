"""Encrypted gateway keys: `zhol gateway init --passphrase-env NAME`, then start with NAME set."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import Federation, start_federation
from zhol.cli.main import main as zhol
from zhol.cli.ports import free_port
from zhol.core.errors import ZholError
from zhol.gateway import credentials as files
from zhol.gateway.server import start_gateway
from zhol.gateway.settings import load_gateway_settings

pytestmark = pytest.mark.integration

VARIABLE = "ZHOL_TEST_GATEWAY_KEY_PASSPHRASE"
PASSPHRASE = "correct horse battery staple 17"


@pytest_asyncio.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path / "federation", persons=5)
    yield federation
    await federation.stop()


def init_args(fed: Federation, data_dir: Path, *extra: str) -> list[str]:
    return [
        "gateway",
        "init",
        "--dir",
        str(data_dir),
        "--id",
        "KZ/GOV/MJ/gw9",
        "--registry",
        fed.ports.address(fed.ports.registry),
        "--anchor",
        str(fed.layout.anchor),
        "--peer-address",
        fed.ports.address(free_port()),
        *extra,
    ]


async def test_keys_are_encrypted_and_need_the_variable_to_start(
    fed: Federation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "gw9"
    monkeypatch.setenv(VARIABLE, PASSPHRASE)
    args = init_args(fed, data_dir, "--passphrase-env", VARIABLE)
    assert await asyncio.to_thread(zhol, args) == 0

    for name in (files.AUTH_KEY, files.SIGN_KEY):
        key = data_dir / "keys" / name
        assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    settings = load_gateway_settings(data_dir)
    assert settings.key_passphrase_env == VARIABLE
    assert f'key_passphrase_env = "{VARIABLE}"' in (data_dir / "gateway.toml").read_text()

    # The IS-facing key is encrypted too; the gateway serves TLS with it decrypted in memory.
    assert await asyncio.to_thread(zhol, ["gateway", "is-cert", "--dir", str(data_dir)]) == 0
    is_key = data_dir / "keys" / "is-server.key"
    assert b"ENCRYPTED PRIVATE KEY" in is_key.read_bytes()
    assert stat.S_IMODE(is_key.stat().st_mode) == 0o600
    with (data_dir / "gateway.toml").open("a") as toml:
        toml.write('is_tls = "tls"\n')
    settings = load_gateway_settings(data_dir)
    running = await start_gateway(settings)
    try:
        assert running.conf.current().conf.version > 0
        root = (data_dir / "keys" / "is-server.pem").read_bytes()
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
        async with grpc.aio.secure_channel(f"127.0.0.1:{running.is_port}", credentials) as ch:
            await asyncio.wait_for(ch.channel_ready(), 5)  # the TLS handshake succeeded
    finally:
        await running.stop(0)

    monkeypatch.setenv(VARIABLE, "not the passphrase")
    with pytest.raises(ZholError) as wrong:
        await start_gateway(settings)
    assert wrong.value.code.name == "NotConfigured"

    monkeypatch.delenv(VARIABLE)
    with pytest.raises(ZholError) as unset:
        await start_gateway(settings)
    assert unset.value.code.name == "NotConfigured" and VARIABLE in unset.value.detail
    serve = ["gateway", "serve", "--dir", str(data_dir)]
    policy_before = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    assert await asyncio.to_thread(zhol, serve) != 0
    # A gateway that never served leaves the process's CPU policy as it was.
    if policy_before is not None:
        assert os.sched_getscheduler(0) == policy_before
    err = capsys.readouterr().err
    assert "NotConfigured" in err and VARIABLE in err

    # The passphrase is stored nowhere and never printed or logged.
    secret = PASSPHRASE.encode()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert PASSPHRASE not in caplog.text and PASSPHRASE not in err


async def test_init_refuses_an_unset_variable_before_creating_anything(
    fed: Federation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    data_dir = tmp_path / "gw9"
    args = init_args(fed, data_dir, "--passphrase-env", VARIABLE)
    assert await asyncio.to_thread(zhol, args) != 0
    err = capsys.readouterr().err
    assert "NotConfigured" in err and VARIABLE in err
    assert not data_dir.exists()

    bad_name = init_args(fed, data_dir, "--passphrase-env", "my secret!")
    assert await asyncio.to_thread(zhol, bad_name) == 2
    assert "my secret" not in capsys.readouterr().err
    assert not data_dir.exists()
