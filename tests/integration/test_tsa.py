"""`zhol tsa`: the real aiohttp server on 127.0.0.1, driven and checked by openssl ts."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from zhol.cli.tsa import TsaPaths, init_tsa, load_signer
from zhol.cli.tsa_server import MAX_REQUEST_BYTES, build_app
from zhol.registry.provision import init_registry
from zhol.security.keystore import read_certificate
from zhol.security.timestamp import (
    CONTENT_TYPE,
    REPLY_CONTENT_TYPE,
    build_request,
    parse_response,
    verify_response,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(
    OPENSSL is None, reason="the openssl command line is not installed"
)


@dataclass(frozen=True)
class Tsa:
    paths: TsaPaths
    url: str


@pytest.fixture
async def tsa(tmp_path: Path) -> AsyncIterator[Tsa]:
    init_registry(tmp_path / "registry", "KZ", True)
    paths = init_tsa(tmp_path / "tsa", tmp_path / "registry", "KZ-tsa")
    runner = web.AppRunner(build_app(load_signer(paths.root)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Tsa(paths, f"http://127.0.0.1:{runner.addresses[0][1]}/")
    finally:
        await runner.cleanup()


async def post(url: str, body: bytes, content_type: str = CONTENT_TYPE) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == REPLY_CONTENT_TYPE
        return await resp.read()


def openssl(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, "ts", *map(str, args)], input=stdin, capture_output=True, timeout=60
    )


@needs_openssl
@pytest.mark.parametrize(
    "query_options", [("-cert",), ("-no_nonce",)], ids=["cert-nonce", "no-cert-no-nonce"]
)
async def test_an_openssl_query_gets_a_token_openssl_verifies(
    tsa: Tsa, tmp_path: Path, query_options: tuple[str, ...]
) -> None:
    data = tmp_path / "checkpoint.txt"
    data.write_bytes(b"zhol.kz/KZ/GOV/MJ/gw1\n12\nq6o0cS1GnDXTCrQ6PjlTTwUd0j8=\n")
    query = openssl("-query", "-data", data, "-sha256", *query_options)
    assert query.returncode == 0, query.stderr
    reply = tmp_path / "resp.tsr"
    reply.write_bytes(await post(tsa.url, query.stdout))

    text = openssl("-reply", "-in", reply, "-text")
    assert text.returncode == 0, text.stderr
    assert b"Status: Granted." in text.stdout

    verify = ["-verify", "-in", reply, "-CAfile", tsa.paths.ca_cert, "-untrusted", tsa.paths.cert]
    checked = openssl(*verify, "-data", data)
    assert checked.returncode == 0, checked.stderr
    assert b"Verification: OK" in checked.stdout
    # Our own verifier agrees.
    ca = read_certificate(tsa.paths.ca_cert)
    tsa_cert = read_certificate(tsa.paths.cert)
    verify_response(reply.read_bytes(), data.read_bytes(), [ca], tsa_certs=[tsa_cert])

    data.write_bytes(data.read_bytes().replace(b"12", b"13"))
    tampered = openssl(*verify, "-data", data)
    assert tampered.returncode != 0
    assert b"Verification: OK" not in tampered.stdout


@needs_openssl
async def test_openssl_refuses_a_token_under_another_ca(tsa: Tsa, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"checkpoint")
    reply = tmp_path / "resp.tsr"
    reply.write_bytes(await post(tsa.url, build_request(b"checkpoint", nonce=9)))
    other = tmp_path / "other"
    init_registry(other, "XX", True)
    checked = openssl(
        "-verify", "-data", data, "-in", reply, "-CAfile", other / "ca" / "ca.pem"
    )
    assert checked.returncode != 0


@pytest.mark.parametrize(
    ("body", "content_type", "failure", "text"),
    [
        (b"not a request", CONTENT_TYPE, "bad_data_format", b"wrong format"),
        (build_request(b"x", nonce=1), "application/octet-stream", "bad_request", b"not permitted"),
        (b"\x30" * (MAX_REQUEST_BYTES + 1), CONTENT_TYPE, "bad_data_format", b"wrong format"),
    ],
    ids=["malformed", "content-type", "too-large"],
)
async def test_a_bad_request_gets_a_rejection_not_an_error(
    tsa: Tsa, tmp_path: Path, body: bytes, content_type: str, failure: str, text: bytes
) -> None:
    reply = await post(tsa.url, body, content_type)
    parsed = parse_response(reply)
    assert (parsed.status, parsed.failures, parsed.token) == ("rejection", (failure,), None)
    if OPENSSL is not None:
        (tmp_path / "resp.tsr").write_bytes(reply)
        shown = openssl("-reply", "-in", tmp_path / "resp.tsr", "-text")
        assert shown.returncode == 0, shown.stderr
        assert b"Status: Rejected." in shown.stdout
        assert text in shown.stdout
    # The server still answers after each refusal.
    granted = parse_response(await post(tsa.url, build_request(b"next", nonce=2)))
    assert granted.status == "granted"


async def test_serial_numbers_are_unique(tsa: Tsa) -> None:
    ca = read_certificate(tsa.paths.ca_cert)
    serials = set()
    for nonce in range(20):
        reply = await post(tsa.url, build_request(b"data", nonce=nonce))
        serials.add(verify_response(reply, b"data", [ca], nonce=nonce).serial_number)
    assert len(serials) == 20


async def test_tsa_init_and_serve_as_processes(tmp_path: Path) -> None:
    init_registry(tmp_path / "registry", "KZ", True)
    tsa_dir = tmp_path / "tsa"
    zhol = [sys.executable, "-m", "zhol.cli.main", "tsa"]
    init = subprocess.run(
        [*zhol, "init", "--dir", tsa_dir, "--registry-dir", tmp_path / "registry", "--json"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["subject"] == "CN=KZ-tsa"
    paths = TsaPaths(tsa_dir)
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    key_before = paths.key.read_bytes()
    again = subprocess.run(
        [*zhol, "init", "--dir", tsa_dir, "--registry-dir", tmp_path / "registry"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert paths.key.read_bytes() == key_before  # idempotent: the key is kept

    port_file = tmp_path / "tsa.port"
    proc = await asyncio.create_subprocess_exec(
        *zhol,
        "serve",
        "--dir",
        str(tsa_dir),
        "--listen",
        "127.0.0.1:0",
        "--port-file",
        str(port_file),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(600):
            if port_file.exists() or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert port_file.exists(), "the TSA did not write its port file"
        url = f"http://127.0.0.1:{int(port_file.read_text())}/"
        reply = await post(url, build_request(b"data", nonce=5))
        ca = read_certificate(paths.ca_cert)
        verify_response(reply, b"data", [ca], nonce=5)
        refused = parse_response(await post(url, b"junk"))
        assert refused.status == "rejection"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    assert not port_file.exists()
    events = [json.loads(line)["event"] for line in stderr.decode().splitlines()]
    assert events == ["tsa.started", "tsa.granted", "tsa.refused", "tsa.stopped"]
    assert b"PRIVATE KEY" not in stderr


async def test_serve_without_init_exits_3(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zhol.cli.main", "tsa", "serve", "--dir", tmp_path / "none"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert b"NotConfigured" in result.stderr
