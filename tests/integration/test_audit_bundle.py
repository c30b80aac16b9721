"""Evidence bundles from a real gateway's log: `zhol audit export` (on the live log), then
`zhol audit verify` offline on a copy with the anchor alone; every tampering with the
bundle is caught with exit 1 and its own reason; openssl checks the unpacked files.

One federation per module: the consumer gateway logs calls about two people, signs
checkpoints that the registry's witness cosigns and a real RFC 3161 authority
timestamps; the bundles are exported while it runs.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.bus_federation import get_person
from tests.integration.test_bus import some_iin
from tests.integration.test_checkpoint_timestamps import start_federation_with_tsa
from tests.pki import new_ca
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.cli.main import main
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.messagelog import tree_head


@dataclass(frozen=True)
class Exported:
    gateway: Path  # the stopped gateway's data directory
    anchor: Path
    bundle: Path  # exported for `iin` while the gateway ran
    iin: str
    other_iin: str
    message_id: str  # one exchange about `iin`


def _complete_sizes(store: CheckpointStore) -> list[int]:
    return [
        s for s in store.sizes()
        if store.note_path(s).with_suffix(".tsr").exists()
        and store.note_path(s).with_suffix(".cosig").exists()
    ]  # fmt: skip


async def _export(root: Path) -> Exported:
    fed, tsa = await start_federation_with_tsa(root)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(
            CONSUMER_GATEWAY, "checkpoint_interval_s = 0.3\ntimestamp_interval_s = 0.2\n"
        )
        store = CheckpointStore(data / "checkpoints")
        iin, other = some_iin(fed), some_iin(fed, 1)
        for _ in range(3):
            await get_person(fed.is_address(), iin)
        await get_person(fed.is_address(), other)
        logged = tree_head(data / "messagelog.db").size
        await until(lambda: any(s >= logged for s in _complete_sizes(store)), timeout=20,
                    what="a timestamped, cosigned checkpoint covering every record")  # fmt: skip
        bundle = root / "bundle.json"
        code = await asyncio.to_thread(
            main,
            [
                "audit",
                "export",
                "--gateway",
                str(data),
                "--data-subject",
                iin,
                "--out",
                str(bundle),
            ],
        )
        assert code == 0
        with sqlite3.connect(data / "messagelog.db") as db:
            (message_id,) = db.execute(
                "SELECT message_id FROM messages WHERE data_subject = ? LIMIT 1", (iin,)
            ).fetchone()
        await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    finally:
        await fed.stop()
        await tsa.stop()
    return Exported(data, fed.layout.anchor, bundle, iin, other, str(message_id))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return asyncio.run(_export(tmp_path_factory.mktemp("bundle")))


@pytest.fixture
def copy(exported: Exported, tmp_path: Path) -> Path:
    """The bundle and nothing else, elsewhere: what an auditor is handed."""
    target = tmp_path / "evidence.json"
    shutil.copyfile(exported.bundle, target)
    return target


def verify(
    capsys: pytest.CaptureFixture[str], bundle: Path, anchor: Path
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["audit", "verify", str(bundle), "--anchor", str(anchor), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def reasons(report: dict[str, Any]) -> set[str]:
    return {f["reason"] for f in report["failures"]}


def edit(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(bundle.read_text())
    change(doc)
    bundle.write_text(json.dumps(doc))


def b64_flip(text: str, at: int = -1) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def other_root(note_b64: str) -> str:
    """The checkpoint with another root hash, the gateway's signature line kept."""
    origin, size, root, rest = base64.b64decode(note_b64).decode().split("\n", 3)
    root = base64.b64encode(bytes(32)).decode()
    return base64.b64encode("\n".join((origin, size, root, rest)).encode()).decode()


def flip_line(line: str) -> str:
    """A signature line whose signature has one bit changed (name and key id kept)."""
    head, sig = line.rstrip("\n").rsplit(" ", 1)
    return f"{head} {b64_flip(sig)}\n"


def test_a_bundle_for_a_person_verifies_offline(
    exported: Exported, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = verify(capsys, copy, exported.anchor)
    assert (code, report["failures"]) == (0, [])
    # Every record about the person (each exchange's request and response), nothing else.
    with sqlite3.connect(exported.gateway / "messagelog.db") as db:
        query = "SELECT seq FROM messages WHERE data_subject = ? ORDER BY seq"
        expected = [r[0] for r in db.execute(query, (exported.iin,))]
    assert [r["seq"] for r in report["records"]] == expected and len(expected) == 6
    assert {r["signer"] for r in report["records"]} == {"KZ/GOV/MLSPP", "KZ/GOV/MJ"}
    assert all(r["existed_by"] for r in report["records"])
    assert report["counts"]["timestamped"] == report["counts"]["checkpoints"] >= 1
    assert report["counts"]["cosigned"] == report["counts"]["checkpoints"]
    assert main(["audit", "verify", str(copy), "--anchor", str(exported.anchor)]) == 0
    out = capsys.readouterr().out
    assert "RESULT: verified" in out and "not checked: that the bundle holds every" in out


def test_export_by_message_id_and_time_range(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_id = tmp_path / "one.json"
    assert main(["audit", "export", "--gateway", str(exported.gateway),
                 "--message-id", exported.message_id, "--out", str(by_id)]) == 0  # fmt: skip
    code, report = verify(capsys, by_id, exported.anchor)
    assert code == 0
    assert {r["message_id"] for r in report["records"]} == {exported.message_id}
    assert {r["kind"] for r in report["records"]} == {"request", "response"}
    by_time = tmp_path / "range.json"
    now = dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(hours=1)).isoformat()
    # Records after the last cosigned checkpoint (none here) would stop the export.
    assert main(["audit", "export", "--gateway", str(exported.gateway), "--since", since,
                 "--until", now.isoformat(), "--out", str(by_time)]) == 0  # fmt: skip
    code, report = verify(capsys, by_time, exported.anchor)
    assert code == 0
    subjects = {exported.iin, exported.other_iin}
    assert len(report["records"]) == 8 and subjects  # both people's exchanges


def test_export_refuses_bad_input_and_changes_nothing(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = str(exported.gateway)
    out = tmp_path / "b.json"
    assert (
        main(["audit", "export", "--gateway", gw, "--data-subject", "123", "--out", str(out)]) == 2
    )
    assert (
        main(["audit", "export", "--gateway", gw, "--since", "2026-12-01T00:00", "--out", str(out)])
        == 2
    )  # fmt: skip  (no UTC offset)
    assert main(["audit", "export", "--gateway", gw, "--message-id", "x"]) == 2  # no --out
    assert (
        main(["audit", "export", "--gateway", gw, "--message-id", "nope", "--out", str(out)]) == 3
    )
    assert not out.exists()
    out.write_text("keep")
    assert main(["audit", "export", "--gateway", gw, "--message-id", exported.message_id,
                 "--out", str(out)]) == 3  # fmt: skip
    assert out.read_text() == "keep"  # never overwritten
    assert main(["audit", "export", "--gateway", str(tmp_path / "none"), "--message-id", "x",
                 "--out", str(tmp_path / "c.json")]) == 3  # fmt: skip
    # Records in no cosigned checkpoint yet cannot be proven: nothing is written.
    uncosigned = tmp_path / "gateway"
    shutil.copytree(exported.gateway, uncosigned)
    for cosig in (uncosigned / "checkpoints").glob("*.cosig"):
        cosig.unlink()
    capsys.readouterr()
    assert main(["audit", "export", "--gateway", str(uncosigned), "--data-subject", exported.iin,
                 "--out", str(tmp_path / "d.json")]) == 3  # fmt: skip
    assert not (tmp_path / "d.json").exists()
    # A log whose stored tree cannot give a proof: could not export, no traceback.
    no_tree = tmp_path / "no-tree"
    shutil.copytree(exported.gateway, no_tree)
    with sqlite3.connect(no_tree / "messagelog.db") as db:
        db.execute("DROP TRIGGER tree_nodes_no_delete")
        db.execute("DELETE FROM tree_nodes")
    capsys.readouterr()
    assert main(["audit", "export", "--gateway", str(no_tree), "--data-subject", exported.iin,
                 "--out", str(tmp_path / "e.json")]) == 3  # fmt: skip
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["records"][0].update(body=b64_flip(d["records"][0]["body"])), "bad-signature"),
        (
            lambda d: d["records"][0].update(header=b64_flip(d["records"][0]["header"])),
            "bad-signature",
        ),
        (
            lambda d: d["records"][0].update(signature=b64_flip(d["records"][0]["signature"], 10)),
            "bad-signature",
        ),
        (lambda d: d["records"][0]["columns"].update(purpose="something else"), "column-mismatch"),
        (
            lambda d: d["records"][0].update(
                audit_path=[b64_flip(h) for h in d["records"][0]["audit_path"]]
            ),
            "inclusion-root-mismatch",
        ),
        (
            lambda d: d["records"][0].update(audit_path=d["records"][0]["audit_path"][1:]),
            "inclusion-wrong-proof-size",
        ),
        (
            lambda d: d["records"][0].update(leaf_input=b64_flip(d["records"][0]["leaf_input"])),
            "leaf-mismatch",
        ),
        (
            lambda d: d["checkpoints"][0].update(note=other_root(d["checkpoints"][0]["note"])),
            "checkpoint-bad-signature",
        ),
        (
            lambda d: d["checkpoints"][0].update(
                timestamp=b64_flip(d["checkpoints"][0]["timestamp"], -20)
            ),
            "timestamp-bad-signature",
        ),
        (lambda d: d["checkpoints"][0].update(timestamp=None), "timestamp-missing"),
        (lambda d: d["checkpoints"][0].update(cosignature=None), "cosignature-missing"),
        (
            lambda d: d["checkpoints"][0].update(
                cosignature=flip_line(d["checkpoints"][0]["cosignature"])
            ),
            "cosignature-bad-signature",
        ),
        (lambda d: d["records"].pop(), None),  # dropping a record is allowed: see below
        (lambda d: d["selection"].update(data_subject="000000000000"), "selection-mismatch"),
        (lambda d: d.update(ca_certificates=[]), "copy-mismatch"),
        (lambda d: d.update(configuration=b64_flip(d["configuration"])), "configuration-untrusted"),
    ],
)
def test_every_tampering_with_a_bundle_is_caught(
    exported: Exported,
    copy: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, Any]], None],
    reason: str | None,
) -> None:
    edit(copy, change)
    code, report = verify(capsys, copy, exported.anchor)
    if reason is None:
        # A bundle proves the records it holds; completeness is "not checked", said so.
        assert code == 0
        assert "completeness" in {n["what"] for n in report["not_checked"]}
        return
    assert code == 1
    assert reason in reasons(report)


def test_a_record_moved_to_another_place_is_caught(
    exported: Exported, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def swap(d: dict[str, Any]) -> None:
        first, second = d["records"][0], d["records"][1]
        for key in ("header", "body", "signature", "signer_cert_sha256", "leaf_input"):
            first[key], second[key] = second[key], first[key]

    edit(copy, swap)
    code, report = verify(capsys, copy, exported.anchor)
    assert code == 1 and reasons(report) & {"column-mismatch", "signed-digest-mismatch"}


def test_a_truncated_or_garbage_bundle_is_refused(
    exported: Exported, copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    code, report = verify(capsys, copy, exported.anchor)
    assert (code, reasons(report)) == (1, {"bundle-malformed"})
    copy.write_bytes(b"\x00\xff garbage")
    assert verify(capsys, copy, exported.anchor)[0] == 1
    copy.write_text(json.dumps({"format": "zhol-evidence-bundle/v1", "records": "x"}))
    assert verify(capsys, copy, exported.anchor)[0] == 1
    assert main(["audit", "verify", str(tmp_path / "missing.json"), "--anchor",
                 str(exported.anchor)]) == 3  # fmt: skip
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_the_wrong_anchor_is_evidence_invalid(
    exported: Exported, copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(new_ca("Another CA", dt.datetime.now(dt.UTC)).cert.public_bytes(Encoding.PEM))
    code, report = verify(capsys, copy, other)
    assert (code, reasons(report)) == (1, {"configuration-untrusted"})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    assert verify(capsys, copy, garbage)[0] == 3


def test_the_unpacked_evidence_passes_openssl(
    exported: Exported, copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "unpacked"
    assert main(["audit", "unpack", str(copy), str(out)]) == 0
    assert main(["audit", "unpack", str(copy), str(out)]) == 3  # never overwritten
    (out / "README.txt").read_text()
    notes = sorted((out / "checkpoints").glob("*.tsr"))
    assert notes
    for tsr in notes:
        note = tsr.with_suffix(".note")
        run = subprocess.run(
            ["openssl", "ts", "-verify", "-data", str(note), "-in", str(tsr), "-CAfile",
             str(out / "certs" / "ca.pem"), "-untrusted", str(out / "certs" / "tsa.pem")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0 and "Verification: OK" in run.stdout, run.stderr
    for record in sorted((out / "records").glob("*.json")):
        doc = json.loads(record.read_text())
        cert = out / doc["signer_certificate"]
        run = subprocess.run(
            ["openssl", "verify", "-CAfile", str(out / "certs" / "ca.pem"), str(cert)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        stem = record.with_suffix("")
        run = subprocess.run(
            ["openssl", "dgst", "-sha256", "-verify", str(cert.with_suffix(".pubkey.pem")),
             "-signature", f"{stem}.sig", f"{stem}.signed"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0 and "Verified OK" in run.stdout, run.stderr
    # A changed byte in the signed bytes: openssl refuses it too.
    signed = sorted((out / "records").glob("*.signed"))[0]
    signed.write_bytes(signed.read_bytes()[:-1] + b"\x00")
    cert = out / json.loads(signed.with_suffix(".json").read_text())["signer_certificate"]
    run = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(cert.with_suffix(".pubkey.pem")),
         "-signature", str(signed.with_suffix(".sig")), str(signed)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode != 0


def test_export_unpack_writes_the_same_files(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    direct = tmp_path / "direct"
    assert main(["audit", "export", "--gateway", str(exported.gateway), "--data-subject",
                 exported.iin, "--unpack", str(direct)]) == 0  # fmt: skip
    names = sorted(p.relative_to(direct).as_posix() for p in direct.rglob("*") if p.is_file())
    assert "bundle.json" in names and any(n.endswith(".tsr") for n in names)
    assert all((p.stat().st_mode & 0o077) == 0 for p in direct.rglob("*") if p.is_file())
