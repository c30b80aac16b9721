"""`zhol conformance` against the in-process federation, as a separate process.

The command gets only what an implementer has: federation.json (written by
cli/federation.py) and the case files that ship with the package. It runs from an
empty folder, so nothing of the source checkout (tests/) is importable.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.bus_federation import Federation, start_federation
from zhol.cli.conformance import DEFAULT_CASES
from zhol.cli.conformance_runner import CASES_DIR
from zhol.cli.federation import CORE_AGENCIES, write_federation_json
from zhol.cli.main import main as zhol


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path_factory.mktemp("conformance-cli"), persons=20)
    write_federation_json(federation.layout, federation.ports, CORE_AGENCIES)
    yield federation
    await federation.stop()


async def conformance(*args: str) -> tuple[int, str, str]:
    # A subprocess, so this event loop keeps serving the in-process federation; run from
    # an empty folder (`-m` puts the working folder on sys.path), so that only the
    # installed package is importable, as for an agency's developer.
    with tempfile.TemporaryDirectory(prefix="zhol-conformance-cwd-") as cwd:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zhol.cli.main", "conformance", *args, cwd=cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.asyncio(loop_scope="module")
async def test_every_is_case_passes_and_peer_cases_are_skipped(fed: Federation) -> None:
    code, out, err = await conformance("--federation", str(fed.layout.federation_json), "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["is_address"] == fed.is_address()
    verdicts = {c["id"]: c for c in report["cases"]}
    peer = {i for i in verdicts if i.startswith("peer.")}
    assert peer and all(verdicts[i]["verdict"] == "SKIP" for i in peer)
    assert all(verdicts[i]["why"] == ["skipped: needs gateway keys"] for i in peer)
    assert all(v["verdict"] == "PASS" for i, v in verdicts.items() if i not in peer)
    assert report["passed"] == len(verdicts) - len(peer) and report["failed"] == 0


@pytest.mark.asyncio(loop_scope="module")
async def test_a_failing_case_fails_the_run(fed: Federation, tmp_path: Path) -> None:
    # A case whose expectation is wrong on purpose: the gateway's right answer fails it.
    text = (DEFAULT_CASES / "services.toml").read_text()
    wrong = text.replace('error = "Server.ServerProxy.AccessDenied"',
                         'error = "Server.ClientProxy.AccessDenied"')
    assert wrong != text
    (tmp_path / "services.toml").write_text(wrong)
    code, out, _ = await conformance(
        "--federation", str(fed.layout.federation_json), "--cases", str(tmp_path)
    )
    assert code == 1
    assert "FAIL svc.access-denied (zhol-error 'Server.ServerProxy.AccessDenied'" in out
    assert "PASS svc.unknown-service" in out


@pytest.mark.asyncio(loop_scope="module")
async def test_without_the_registry_the_size_case_is_skipped(
    fed: Federation, tmp_path: Path
) -> None:
    document = json.loads(fed.layout.federation_json.read_text())
    document["registry"]["address"] = "127.0.0.1:1"
    path = tmp_path / "federation.json"
    path.write_text(json.dumps(document))
    code, out, _ = await conformance("--federation", str(path))
    assert code == 0
    skipped = "SKIP limits.request-over-max-size (skipped: needs the federation's max_message"
    assert skipped in out


def test_an_unreachable_gateway_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "federation.json"
    path.write_text(json.dumps({
        "gateways": [{"id": "KZ/GOV/MLSPP/gw1", "is_address": "127.0.0.1:1"}],
        "subsystems": [{"id": "KZ/GOV/MLSPP/pension", "gateway": "KZ/GOV/MLSPP/gw1"}],
    }))
    assert zhol(["conformance", "--federation", str(path), "--timeout", "1"]) == 3


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "federation.json"
    path.write_text(json.dumps({"gateways": [], "subsystems": []}))
    assert zhol(["conformance", "--federation", str(path), "--gateway", "KZ/GOV/X/gw1"]) == 2
    shutil.copy(DEFAULT_CASES / "peer.toml", tmp_path / "peer.toml")
    (tmp_path / "broken.toml").write_text('[[case]]\nid = "x"\n')
    assert zhol(["conformance", "--federation", str(path), "--cases", str(tmp_path)]) == 2
    assert zhol(["conformance", "--federation", str(tmp_path / "absent.json")]) == 3


def test_the_default_cases_are_the_package_s_own() -> None:
    """The cases ship in the package (package data), not in tests/: an installed zhol
    finds them without a source checkout."""
    import zhol.cli

    assert DEFAULT_CASES == CASES_DIR
    assert CASES_DIR.parent == Path(zhol.cli.__file__).resolve().parent
    assert {p.name for p in CASES_DIR.glob("*.toml")} >= {
        "is_metadata.toml", "identifiers.toml", "services.toml", "sizes_deadlines.toml",
        "peer.toml",
    }
