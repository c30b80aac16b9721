"""Which checkpoints may be packed on a given day, and the archive's file handling."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tarfile
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pki import new_ca
from tests.unit.test_checkpoint_timestamping import NOW as TS_NOW
from tests.unit.test_checkpoint_timestamping import NOW_MS as TS_NOW_MS
from tests.unit.test_checkpoint_timestamping import published, tsa_signer
from zhol.core.errors import ZholError
from zhol.gateway.checkpoint_archive import (
    DAY_MS,
    ArchiveError,
    LooseCheckpoint,
    archive_checkpoints,
    checkpoint_files,
    select_for_archive,
)
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.timestamping import Timestamper, TimestampingPolicy, token_path
from zhol.gateway.witnessing import Witnessing, cosig_path
from zhol.security.globalconf import TimestampAuthority
from zhol.security.signednote import (
    Checkpoint,
    NoteSigner,
    cosign,
    cosigner_verifier,
    format_checkpoint,
    gateway_origin,
    parse_checkpoint,
    parse_note,
    sign_note,
)
from zhol.security.timestamp import respond


def ms(day: str, hour: int = 12) -> int:
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, hour, tzinfo=UTC).timestamp() * 1000)


NOW = ms("2026-12-05", 9)
D1, D2 = date(2026, 12, 3), date(2026, 12, 4)


def cp(
    size: int, day: str, *, tsr: bool = True, cosig: bool = True, hour: int = 12
) -> LooseCheckpoint:
    return LooseCheckpoint(size, ms(day, hour), tsr, cosig)


def test_closed_days_finished_checkpoints_are_chosen_by_utc_day() -> None:
    cps = [cp(1, "2026-12-03", hour=0), cp(2, "2026-12-03", hour=23), cp(3, "2026-12-04"),
           cp(4, "2026-12-05"), cp(5, "2026-12-05")]  # fmt: skip
    assert select_for_archive(cps, now_ms=NOW, before=date(2026, 12, 5)) == {D1: [1, 2], D2: [3]}
    # --before narrows; a later --before than today still never packs today.
    assert select_for_archive(cps, now_ms=NOW, before=D2) == {D1: [1, 2]}
    assert select_for_archive(cps, now_ms=NOW, before=date(2027, 1, 1)) == {D1: [1, 2], D2: [3]}


def test_the_newest_and_the_latest_token_and_cosignature_stay_loose() -> None:
    # 3 holds the largest token, 2 the largest cosignature, 4 is the newest: the
    # timestamper, the witness client and the checkpointer start from them.
    cps = [cp(1, "2026-12-01"), cp(2, "2026-12-01", tsr=False), cp(3, "2026-12-01", cosig=False),
           cp(4, "2026-12-01", tsr=False, cosig=False)]  # fmt: skip
    assert select_for_archive(cps, now_ms=NOW, before=D2, incomplete_after_ms=DAY_MS) == {
        date(2026, 12, 1): [1]
    }
    assert select_for_archive([cp(1, "2026-12-01")], now_ms=NOW, before=D2) == {}


def test_unfinished_checkpoints_wait_until_the_limit() -> None:
    cps = [cp(1, "2026-11-20", cosig=False), cp(2, "2026-12-03", cosig=False),
           cp(3, "2026-12-03", tsr=False), cp(4, "2026-12-04"), cp(5, "2026-12-05")]  # fmt: skip
    week = 7 * DAY_MS
    assert select_for_archive(cps, now_ms=NOW, before=D2, incomplete_after_ms=week) == {
        date(2026, 11, 20): [1]
    }
    assert select_for_archive(cps, now_ms=NOW, before=D2, incomplete_after_ms=DAY_MS) == {
        date(2026, 11, 20): [1], D1: [2, 3]
    }  # fmt: skip


def _checkpoint(directory: Path, size: int, day: str, *, cosig: bool = True) -> None:
    suffixes = [".note", ".proof", ".tsr"] + ([".cosig"] if cosig else [])
    for suffix in suffixes:
        path = directory / f"{size:020d}{suffix}"
        path.write_bytes(f"{suffix} of {size}\n".encode())
        os.utime(path, ns=(ms(day) * 1_000_000, ms(day) * 1_000_000))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "checkpoints"
    d.mkdir()
    for size in (1, 2, 3):
        _checkpoint(d, size, "2026-12-03")
    _checkpoint(d, 4, "2026-12-04")
    return d


def test_a_day_is_packed_into_one_plain_tar_and_readers_see_the_same(folder: Path) -> None:
    before = checkpoint_files(folder)
    packed = archive_checkpoints(folder, now_ms=NOW, before=date(2026, 12, 5))
    assert [(p.archive, p.checkpoints, p.files) for p in packed] == [
        ("checkpoints-2026-12-03.tar", 3, 12)
    ]
    archive = folder / "checkpoints-2026-12-03.tar"
    assert archive.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [
        "00000000000000000004.cosig", "00000000000000000004.note", "00000000000000000004.proof",
        "00000000000000000004.tsr", "checkpoints-2026-12-03.tar",
    ]  # fmt: skip
    with tarfile.open(archive) as tar:
        assert tar.getnames() == sorted(
            n for n in before if not n.startswith("0000000000000000000" + "4")
        )
    assert checkpoint_files(folder) == before
    # Run again: nothing left to do.
    assert archive_checkpoints(folder, now_ms=NOW, before=date(2026, 12, 5)) == []


def test_a_crash_before_removing_the_originals_is_harmless_and_finished_later(folder: Path) -> None:
    before = checkpoint_files(folder)
    archive_checkpoints(folder, now_ms=NOW, before=date(2026, 12, 5))
    # The state a crash between the rename and the unlinks leaves: archive and originals.
    for name, data in before.items():
        (folder / name).write_bytes(data)
        day = "2026-12-04" if name.startswith(f"{4:020d}") else "2026-12-03"
        os.utime(folder / name, ns=(ms(day) * 1_000_000,) * 2)
    assert checkpoint_files(folder) == before
    packed = archive_checkpoints(folder, now_ms=NOW, before=date(2026, 12, 5))
    assert [p.files for p in packed] == [12]
    assert checkpoint_files(folder) == before
    assert len(list(folder.iterdir())) == 5


def test_a_later_run_adds_to_the_days_archive(folder: Path) -> None:
    _checkpoint(folder, 5, "2026-12-04")  # keeps 4 from being the newest
    (folder / f"{2:020d}.cosig").unlink()  # 2 waits for its cosignature
    before = checkpoint_files(folder)
    archive_checkpoints(folder, now_ms=NOW, before=date(2026, 12, 5))
    assert f"{2:020d}.note" in os.listdir(folder)
    later = ms("2026-12-03") + 7 * DAY_MS  # 2 waited long enough
    archive_checkpoints(folder, now_ms=later, before=date(2026, 12, 5))
    assert f"{2:020d}.note" not in os.listdir(folder)
    assert checkpoint_files(folder) == before
    with tarfile.open(folder / "checkpoints-2026-12-03.tar") as tar:
        assert f"{2:020d}.note" in tar.getnames()


def test_a_loose_file_differing_from_its_archived_copy_stops_and_keeps_both(
    folder: Path,
) -> None:
    archive_checkpoints(folder, now_ms=NOW, before=date(2026, 12, 5))
    changed = folder / f"{1:020d}.note"
    changed.write_bytes(b"other bytes\n")
    os.utime(changed, ns=(ms("2026-12-03") * 1_000_000,) * 2)
    with pytest.raises(ArchiveError):
        checkpoint_files(folder)
    with pytest.raises(ArchiveError):  # once its wait is over, it is packed: refused
        archive_checkpoints(folder, now_ms=NOW + 7 * DAY_MS, before=date(2026, 12, 5))
    assert changed.read_bytes() == b"other bytes\n"


def test_the_witness_client_skips_a_note_archived_while_it_waited(tmp_path: Path) -> None:
    """A checkpoint left uncosigned past the limit is packed while the witness is away:
    when it is back, the client goes on with the next one instead of failing on the
    missing file for ever."""
    store = CheckpointStore(tmp_path / "checkpoints")
    signer = NoteSigner(gateway_origin("KZ/GOV/MJ/gw1"), ed25519.Ed25519PrivateKey.generate())
    for size in (3, 7):
        text = format_checkpoint(Checkpoint(signer.name, size, bytes(32)))
        store.write(size, sign_note(text, [signer]), None)
    witness_key = ed25519.Ed25519PrivateKey.generate()
    away = True
    submitted: list[tuple[int, int]] = []

    async def submit(note: bytes, old_size: int, proof: tuple[bytes, ...]) -> str:
        if away:
            raise ZholError("NetworkError", "the witness is away")
        text, _ = parse_note(note)
        submitted.append((parse_checkpoint(text).size, old_size))
        return cosign(text, witness_key, "witness", 1_700_000_000)

    verifier = cosigner_verifier("witness", witness_key.public_key())
    witnessing = Witnessing(
        store=store, log_path=tmp_path / "unused.db", submit=submit, witness=lambda: verifier
    )
    with pytest.raises(ZholError):
        asyncio.run(witnessing.witness_pending())
    store.note_path(3).unlink()  # archived
    away = False
    assert asyncio.run(witnessing.witness_pending()) == 1
    assert submitted == [(7, 0)]
    assert cosig_path(store, 7).exists()


def test_the_timestamper_skips_a_note_archived_while_it_waited(tmp_path: Path) -> None:
    """The same for a checkpoint left untimestamped past the limit: the next one gets
    its token, and nothing waits on the packed one."""
    ca = new_ca("Zhol KZ Root CA", TS_NOW - dt.timedelta(days=1))
    signer = tsa_signer(ca)
    approved = TimestampAuthority("http://tsa/", signer.cert.public_bytes(Encoding.DER))
    conf = published(ca, (approved,))
    store = CheckpointStore(tmp_path / "checkpoints")
    for size in (3, 7):
        store.write(size, f"note {size}\n".encode(), None)
    away = True

    async def post(url: str, request: bytes, timeout_s: float) -> bytes:
        if away:
            raise OSError("the authority is away")
        return respond(request, signer, gen_time=TS_NOW, serial_number=1).der

    timestamper = Timestamper(
        store=store,
        conf=SimpleNamespace(loaded=SimpleNamespace(conf=conf)),  # type: ignore[arg-type]
        policy=TimestampingPolicy(),
        now_ms=lambda: TS_NOW_MS,
        post=post,
    )
    assert asyncio.run(timestamper.run_once()) == 0
    store.note_path(3).unlink()  # archived
    away = False
    assert asyncio.run(timestamper.run_once()) == 1
    assert token_path(store, 7).exists() and not token_path(store, 3).exists()
    assert timestamper.oldest_pending_ms is None


def test_the_command_on_a_gateway_that_logged_nothing_yet_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zhol.cli.main import main

    gateway = tmp_path / "gw"
    assert main(["gateway", "archive-checkpoints", "--dir", str(gateway)]) == 3  # no gateway
    gateway.mkdir()
    (gateway / "gateway.toml").write_text("")
    capsys.readouterr()
    assert main(["gateway", "archive-checkpoints", "--dir", str(gateway)]) == 0
    assert "nothing to pack" in capsys.readouterr().out
    assert not (gateway / "checkpoints").exists()  # nothing created
    assert main(["gateway", "archive-checkpoints", "--dir", str(gateway),
                 "--before", "2026-13-01"]) == 2
