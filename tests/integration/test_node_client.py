"""The Node.js example (examples/node) calls GetPerson through the pension gateway.

Proves that an IS in another language, given only protos/ and federation.json,
can use the bus. Needs `node` and the packages `make test` installs with `npm ci` in
examples/node; on a machine without node or npm the test is skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.integration.bus_federation import start_federation
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY
from zhol.cli.federation import write_federation_json
from zhol.gateway.messagelog import list_records

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
MESSAGE_ID = re.compile(r"^message id: ([0-9a-f-]{36})$", re.MULTILINE)


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (EXAMPLE / "node_modules").is_dir():
        pytest.skip(f"{EXAMPLE}/node_modules is absent (run `npm ci` in examples/node)")
    return node


async def test_node_example_gets_a_person_through_the_bus(tmp_path: Path) -> None:
    node = node_or_skip()
    fed = await start_federation(tmp_path, persons=20)
    try:
        write_federation_json(fed.layout, fed.ports)
        # What the example reads: the pension subsystem's gateway and its IS address,
        # which must be the gateway actually running here.
        document = json.loads(fed.layout.federation_json.read_text())
        pension_gw = next(s["gateway"] for s in document["subsystems"] if s["id"] == CLIENT)
        assert pension_gw == CONSUMER_GATEWAY
        gateway = next(g for g in document["gateways"] if g["id"] == pension_gw)
        assert gateway["is_address"] == fed.is_address(CONSUMER_GATEWAY)

        # asyncio subprocess, so this event loop keeps serving the in-process federation.
        proc = await asyncio.create_subprocess_exec(
            node,
            "get_person.js",
            "--federation",
            str(fed.layout.federation_json),
            cwd=EXAMPLE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    finally:
        await fed.stop()

    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    found = MESSAGE_ID.search(stdout)
    assert found is not None, stdout
    person = json.loads(stdout[found.end() :])
    assert re.fullmatch(r"\d{12}", person["iin"])
    assert person["last_name"]

    # The exchange the example saw is the one the pension gateway logged.
    logged = list_records(
        fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db", message_id=found.group(1)
    )
    assert sorted(r["kind"] for r in logged) == ["request", "response"]
    assert all(r["data_subject"] == person["iin"] for r in logged)
