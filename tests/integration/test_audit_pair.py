"""`zhol audit pair` and `zhol audit consistency` on real logs: the consumer's and the
provider's gateways after a few get_person calls, both stopped.

One federation per module; each test that tampers works on its own copies.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bus_federation import get_person, start_federation
from tests.integration.test_audit import edit_blob, flip_last
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main
from zhol.gateway.checkpoints import CheckpointStore


@dataclass(frozen=True)
class Logs:
    consumer: Path
    provider: Path
    anchor: Path


async def _write_logs(root: Path) -> Logs:
    fed = await start_federation(root, persons=20)
    try:
        consumer = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(CONSUMER_GATEWAY, "checkpoint_interval_s = 0.3\n")
        store = CheckpointStore(consumer / "checkpoints")
        for _ in range(3):
            await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(store.sizes()), timeout=15, what="a periodic checkpoint")
        for _ in range(3):
            await get_person(fed.is_address(), some_iin(fed))
        for gateway_id in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
            await fed.gateways.pop(gateway_id).stop(0)  # each signs its last checkpoint
    finally:
        await fed.stop()
    return Logs(consumer, fed.layout.gateway(PROVIDER_GATEWAY), fed.layout.anchor)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Logs:
    return asyncio.run(_write_logs(tmp_path_factory.mktemp("pair")))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["audit", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def pair(
    capsys: pytest.CaptureFixture[str], logs: Logs, consumer: Path
) -> tuple[int, dict[str, Any]]:
    return run(capsys, "pair", "--gateway", str(consumer), "--gateway", str(logs.provider),
               "--anchor", str(logs.anchor))  # fmt: skip


def reasons(report: dict[str, Any]) -> list[str]:
    return [f["reason"] for f in report["failures"]]


def checkpoints(gateway: Path) -> list[Path]:
    store = CheckpointStore(gateway / "checkpoints")
    return [store.note_path(size) for size in store.sizes()]


def consistency(
    capsys: pytest.CaptureFixture[str], logs: Logs, old: Path, new: Path
) -> tuple[int, dict[str, Any]]:
    return run(capsys, "consistency", str(old), str(new), "--gateway", str(logs.consumer),
               "--anchor", str(logs.anchor))  # fmt: skip


def test_untouched_logs_pair(logs: Logs, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = pair(capsys, logs, logs.consumer)
    assert (code, report["failures"]) == (0, [])
    # 6 calls, each a request and a response crossing: both ends of each matched.
    assert report["counts"]["matched"] == 12
    # The consumer's requests name no peer: counted through their responses.
    assert report["counts"][f"only_{CONSUMER_GATEWAY}"] == 0
    assert report["counts"][f"only_{PROVIDER_GATEWAY}"] == 0
    # The people's report says the same.
    argv = ["audit", "pair", "--gateway", str(logs.consumer), "--gateway", str(logs.provider)]
    assert main([*argv, "--anchor", str(logs.anchor)]) == 0
    assert "RESULT: verified" in capsys.readouterr().out


def test_a_body_byte_changed_at_one_end_is_a_pair_mismatch(
    logs: Logs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    consumer = tmp_path / "consumer"
    shutil.copytree(logs.consumer, consumer)
    edit_blob(consumer, "body", 2, flip_last)  # drops the append-only triggers first
    code, report = pair(capsys, logs, consumer)
    assert code == 1
    assert reasons(report) == ["pair-mismatch"]
    assert report["failures"][0]["seq"] == 2
    assert "body" in report["failures"][0]["detail"]


def test_only_the_two_gateways_directories(logs: Logs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "pair", "--gateway", str(logs.consumer), "--anchor",
                 str(logs.anchor)]) == 2  # fmt: skip


def test_the_first_and_last_checkpoints_are_consistent(
    logs: Logs, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = checkpoints(logs.consumer)
    assert len(notes) >= 2
    code, report = consistency(capsys, logs, notes[0], notes[-1])
    assert (code, report["failures"]) == (0, [])
    assert report["counts"]["old_size"] < report["counts"]["new_size"]


def test_swapped_checkpoints_are_refused(logs: Logs, capsys: pytest.CaptureFixture[str]) -> None:
    notes = checkpoints(logs.consumer)
    code, report = consistency(capsys, logs, notes[-1], notes[0])
    assert (code, reasons(report)) == (1, ["checkpoint-order"])


def test_a_checkpoint_of_another_gateway_is_refused(
    logs: Logs, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = checkpoints(logs.consumer)
    other = checkpoints(logs.provider)[-1]
    code, report = consistency(capsys, logs, notes[0], other)
    assert code == 1
    assert reasons(report) == ["checkpoint-no-verified-signature"]


def test_a_changed_stored_tree_is_not_consistent(
    logs: Logs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_audit import tamper

    consumer = tmp_path / "consumer"
    shutil.copytree(logs.consumer, consumer)
    tamper(consumer, "UPDATE tree_nodes SET hash = zeroblob(32)")
    notes = checkpoints(consumer)
    code, report = run(capsys, "consistency", str(notes[0]), str(notes[-1]), "--gateway",
                       str(consumer), "--anchor", str(logs.anchor))  # fmt: skip
    assert code == 1
    assert "not-consistent" in reasons(report)
