"""The Node.js example (examples/node) calls GetPerson through the bus.

Proves that an IS in another language, given only protos/, its client subsystem and
its own gateway's address, can use the bus. Needs `node` and the packages `make test`
installs with `npm ci` in examples/node; on a machine without node or npm the test is
skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.integration.bus_federation import Federation, start_federation
from tests.sqlite_rows import one
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY
from zhol.cli.federation import HEALTH, write_federation_json
from zhol.gateway.messagelog import list_records

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
MESSAGE_ID = re.compile(r"^message id: ([0-9a-f-]{36})$", re.MULTILINE)
HEALTH_GATEWAY = "KZ/GOV/MOH/gw1"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (EXAMPLE / "node_modules").is_dir():
        pytest.skip(f"{EXAMPLE}/node_modules is absent (run `npm ci` in examples/node)")
    return node


async def run_example(node: str, *args: str) -> tuple[int, str, str]:
    # asyncio subprocess, so this event loop keeps serving the in-process federation.
    proc = await asyncio.create_subprocess_exec(
        node,
        "get_person.js",
        *args,
        cwd=EXAMPLE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def person_and_message_id(code: int, stdout: str, stderr: str) -> tuple[dict[str, str], str]:
    assert code == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    found = MESSAGE_ID.search(stdout)
    assert found is not None, stdout
    person = json.loads(stdout[found.end() :])
    assert re.fullmatch(r"\d{12}", person["iin"])
    assert person["last_name"]
    return person, found.group(1)


def assert_logged(fed: Federation, gateway_id: str, message_id: str, client: str, iin: str) -> None:
    """The exchange the example saw is the one its own gateway logged, as ``client``."""
    logged = list_records(fed.layout.gateway(gateway_id) / "messagelog.db", message_id=message_id)
    assert sorted(r["kind"] for r in logged) == ["request", "response"]
    assert all(r["data_subject"] == iin for r in logged)
    assert all(r["client"] == client for r in logged), logged


async def test_node_example_gets_a_person_through_the_bus(tmp_path: Path) -> None:
    node = node_or_skip()
    fed = await start_federation(tmp_path, persons=20)
    try:
        write_federation_json(fed.layout, fed.ports)
        # The default source of the gateway's address: the demo's federation.json, which
        # must name the pension gateway actually running here.
        document = json.loads(fed.layout.federation_json.read_text())
        pension_gw = next(s["gateway"] for s in document["subsystems"] if s["id"] == CLIENT)
        assert pension_gw == CONSUMER_GATEWAY
        gateway = next(g for g in document["gateways"] if g["id"] == pension_gw)
        assert gateway["is_address"] == fed.is_address(CONSUMER_GATEWAY)

        result = await run_example(node, "--federation", str(fed.layout.federation_json))
    finally:
        await fed.stop()

    person, message_id = person_and_message_id(*result)
    assert_logged(fed, CONSUMER_GATEWAY, message_id, CLIENT, person["iin"])


async def test_node_example_calls_as_the_client_and_gateway_given(tmp_path: Path) -> None:
    """--client and --gateway name any member's subsystem and gateway (here health's),
    and federation.json is not needed at all (a member that joined later is not in it)."""
    node = node_or_skip()
    fed = await start_federation(tmp_path, persons=20, agencies=("population", "pension", "health"))
    try:
        await fed.start_gateway(HEALTH_GATEWAY)
        (iin,) = one(fed.layout.population_db, "SELECT iin FROM persons LIMIT 1")
        missing = tmp_path / "no-such-federation.json"
        result = await run_example(
            node,
            "--client",
            HEALTH,
            f"--gateway={fed.is_address(HEALTH_GATEWAY)}",
            "--federation",
            str(missing),
            "--iin",
            iin,
        )
    finally:
        await fed.stop()

    person, message_id = person_and_message_id(*result)
    assert person["iin"] == iin
    assert_logged(fed, HEALTH_GATEWAY, message_id, HEALTH, iin)
