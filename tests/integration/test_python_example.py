"""The Python example (examples/python/get_person.py) calls GetPerson as the client
subsystem and through the gateway given by --client and --gateway, with no
federation.json, as a member that joined after the demo would."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.integration.bus_federation import start_federation
from tests.integration.test_node_client import HEALTH_GATEWAY, MESSAGE_ID, assert_logged
from tests.sqlite_rows import one
from zhol.cli.federation import HEALTH

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "get_person.py"


async def test_python_example_calls_as_the_client_and_gateway_given(tmp_path: Path) -> None:
    fed = await start_federation(tmp_path, persons=20, agencies=("population", "pension", "health"))
    try:
        await fed.start_gateway(HEALTH_GATEWAY)
        (iin,) = one(fed.layout.population_db, "SELECT iin FROM persons LIMIT 1")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--client",
            HEALTH,
            "--gateway",
            fed.is_address(HEALTH_GATEWAY),
            "--federation",
            str(tmp_path / "no-such-federation.json"),
            "--iin",
            iin,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    finally:
        await fed.stop()

    stdout = out.decode()
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{err.decode()}"
    found = MESSAGE_ID.search(stdout)
    assert found is not None, stdout
    assert f'iin: "{iin}"' in stdout
    assert_logged(fed, HEALTH_GATEWAY, found.group(1), HEALTH, iin)
