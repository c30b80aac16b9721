"""`zhol registry serve` as a process: port file, structured start line, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from zhol.registry import client
from zhol.registry.provision import init_registry
from zhol.security.globalconf import verify_global_conf
from zhol.security.keystore import read_certificate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def test_serve_writes_the_port_and_stops_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    paths = init_registry(data_dir, "KZ", True)
    port_file = tmp_path / "registry.port"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "zhol.registry.cli",
        "registry",
        "serve",
        "--dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--port-file",
        str(port_file),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(200):
            if port_file.exists() or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert port_file.exists(), "registry did not write its port file"
        port = int(port_file.read_text())
        signed = await client.fetch_global_conf(f"127.0.0.1:{port}")
        anchor = read_certificate(paths.anchor).public_bytes(serialization.Encoding.DER)
        assert verify_global_conf(signed, anchor).version >= 1
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0
    assert not port_file.exists()
    events = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    started = [e for e in events if e["event"] == "registry.started"]
    assert len(started) == 1
    assert started[0]["address"] == f"127.0.0.1:{port}"
    assert b"PRIVATE KEY" not in stderr
