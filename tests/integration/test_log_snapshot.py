"""`zhol log snapshot` of a running gateway's log while calls are written to it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.integration.bus_federation import get_person, start_federation
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.cli.main import main
from zhol.gateway.messagelog import list_records


def some_iins(population_db: Path, n: int) -> list[str]:
    with sqlite3.connect(population_db) as db:
        rows = db.execute("SELECT iin FROM persons ORDER BY iin LIMIT ?", (n,)).fetchall()
    return [str(row[0]) for row in rows]


def records_in(path: Path) -> int | None:
    """Records `zhol log list` finds in a log file; None when it cannot read it."""
    try:
        return len(list_records(path))
    except sqlite3.Error:
        return None


async def test_a_snapshot_of_a_live_log_holds_every_committed_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "federation")
    try:
        gateway_dir = fed.layout.gateway(CONSUMER_GATEWAY)
        live = gateway_dir / "messagelog.db"
        iins = some_iins(fed.layout.population_db, 8)
        stop = asyncio.Event()

        async def keep_calling(iin: str) -> None:
            while not stop.is_set():
                await get_person(fed.is_address(), iin)

        callers = [asyncio.ensure_future(keep_calling(iin)) for iin in iins]
        try:
            await until(lambda: len(list_records(live)) >= 40, timeout=60, what="40 records")
            # Everything committed before the snapshot starts.
            committed = list_records(live)
            # What an operator's `cp messagelog.db` takes: the newest records are in -wal.
            plain = tmp_path / "plain" / "messagelog.db"
            plain.parent.mkdir()
            shutil.copyfile(live, plain)
            out = tmp_path / "evidence" / "snapshot.db"
            out.parent.mkdir()
            # In a thread, so that the gateways go on serving (and logging) calls meanwhile.
            argv = ["log", "snapshot", "--gateway", str(gateway_dir), "--out", str(out), "--json"]
            assert await asyncio.to_thread(main, argv) == 0
            n = len(committed)
            await until(lambda: len(list_records(live)) > n + 10, timeout=60, what="more calls")
        finally:
            stop.set()
            await asyncio.gather(*callers, return_exceptions=True)
    finally:
        await fed.stop()

    summary = json.loads(capsys.readouterr().out)
    # One self-contained file, private, in rollback-journal mode.
    assert sorted(p.name for p in out.parent.iterdir()) == ["snapshot.db"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_bytes()[18:20] == b"\x01\x01"  # file format versions: 1 = rollback journal

    assert main(["log", "list", "--log", str(out), "--json"]) == 0
    copied = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert summary == {"out": str(out), "records": len(copied), "last_seq": len(copied)}
    assert [r["seq"] for r in copied] == list(range(1, len(copied) + 1))
    assert all(r["mismatch"] == [] for r in copied)
    # Every record committed before the snapshot, unchanged; later ones are the live log's too.
    assert len(copied) >= len(committed)
    assert copied[: len(committed)] == committed
    assert copied == list_records(live)[: len(copied)]
    # The plain copy misses records (or cannot be read at all).
    assert (records_in(plain) or 0) < len(committed)


def test_snapshot_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gateway_dir = tmp_path / "gw"
    gateway_dir.mkdir()
    fresh = tmp_path / "fresh.db"
    # A missing log cannot be copied, and nothing is written.
    assert main(["log", "snapshot", "--gateway", str(gateway_dir), "--out", str(fresh)]) == 3
    assert not fresh.exists()
    sqlite3.connect(gateway_dir / "messagelog.db").close()
    # An existing output file is never overwritten.
    out = tmp_path / "existing.db"
    out.write_bytes(b"keep me")
    assert main(["log", "snapshot", "--gateway", str(gateway_dir), "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert "exists" in capsys.readouterr().err
