"""The message log: group commit, atomic pairs, append-only, read side and CLI."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from zhol.bus.v1 import bus_pb2
from zhol.cli import gateway_log as logcli
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, ServiceId, SubsystemId
from zhol.gateway.messagelog import (
    SCHEMA_VERSION,
    LogRecord,
    MessageLog,
    format_ms,
    list_records,
    log_consistency_proof,
    record_inclusion_proof,
    tree_head,
)
from zhol.security import merkle
from zhol.security.globalconf import gateway_to_pb, service_to_pb, subsystem_to_pb
from zhol.security.keys import generate_private_key
from zhol.security.logleaf import LogLeaf, encode
from zhol.security.sealing import EVENT_TYPE, REQUEST_TYPE, RESPONSE_TYPE, Signer, seal

CERT_DER = b"0\x82\x01\x00 not really a certificate"
CERT_SHA256 = hashlib.sha256(CERT_DER).digest()
SUBJECT = "900101300123"
REQUIRED_KEYS = {
    "message_id", "kind", "direction", "client", "service", "data_subject", "user_id",
    "purpose", "logged_at", "logged_at_ms", "issued_at_ms", "peer", "status_code", "seq",
    "signed_digest", "signer_cert_sha256", "body_size",
}  # fmt: skip


CLIENT = SubsystemId.parse("KZ/GOV/MLSPP/pension")
SERVICE = ServiceId.of(
    SubsystemId.parse("KZ/GOV/MJ/population"), "zhol.population.v1.PopulationRegistry", "GetPerson"
)
TOPIC = "zhol.population.v1.PersonBorn"
# A real key signs every test record: the records are sealed as a gateway seals them.
SIGNER = Signer(generate_private_key("ed25519"), CERT_DER)
_KINDS = {
    "request": (bus_pb2.MESSAGE_KIND_REQUEST, REQUEST_TYPE),
    "response": (bus_pb2.MESSAGE_KIND_RESPONSE, RESPONSE_TYPE),
    "event": (bus_pb2.MESSAGE_KIND_EVENT, EVENT_TYPE),
}


def record(
    message_id: str,
    kind: str = "request",
    direction: str = "in",
    *,
    data_subject: str = SUBJECT,
    body: bytes = b"body",
) -> LogRecord:
    """A sealed message and its record, whose columns say what its signed header does."""
    issued_at_ms = 1_790_000_000_000
    kind_pb, payload_type = _KINDS[kind]
    header = bus_pb2.MessageHeader(
        message_id=message_id,
        protocol_version=1,
        kind=kind_pb,
        client=subsystem_to_pb(CLIENT),
        user_id="KZ:officer-17",
        purpose="pension case 42",
        data_subject=data_subject,
        issued_at_unix_ms=issued_at_ms,
        sender_gateway=gateway_to_pb(GatewayId.parse("KZ/GOV/MJ/gw1")),
    )
    if kind == "event":
        header.topic = TOPIC
        service = f"{CLIENT}/{TOPIC}"
    else:
        header.service.CopyFrom(service_to_pb(SERVICE))
        service = str(SERVICE)
    sealed, digest = seal(SIGNER, payload_type, header.SerializeToString(), body)
    return LogRecord(
        message_id=message_id,
        kind=kind,
        direction=direction,
        client=str(CLIENT),
        service=service,
        data_subject=data_subject,
        user_id=header.user_id,
        purpose=header.purpose,
        issued_at_ms=issued_at_ms,
        peer="KZ/GOV/MJ/gw1",
        status_code=0,
        header=sealed.header,
        body=sealed.body,
        signature=sealed.signature,
        signer_cert_sha256=sealed.signer_cert_sha256,
        signer_cert_der=sealed.signer_cert_der,
        signed_digest=digest,
    )


def exchange(message_id: str | None = None) -> tuple[LogRecord, LogRecord]:
    """A request received and the response sent for it, as the provider gateway logs them."""
    mid = message_id or str(uuid.uuid4())
    return record(mid, "request", "in"), record(mid, "response", "out")


def count_rows(path: Path, table: str = "messages") -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "gw" / "messagelog.db"


@pytest.fixture
def log(log_path: Path, clock: FixedClock) -> Iterator[MessageLog]:
    message_log = MessageLog(log_path, clock)
    message_log.open()
    yield message_log
    message_log.close()


async def test_concurrent_appends_all_land_in_few_transactions(
    log: MessageLog, log_path: Path
) -> None:
    pairs = [exchange() for _ in range(200)]
    await asyncio.gather(*(log.append(pair) for pair in pairs))
    assert count_rows(log_path) == 400
    assert log.commits < 40  # group commit, not one transaction per call
    listed = list_records(log_path)
    assert {r["message_id"] for r in listed} == {pair[0].message_id for pair in pairs}
    # Seq is dense (future Merkle leaf index) and a pair's records are adjacent.
    assert [r["seq"] for r in listed] == list(range(1, 401))
    assert all(
        a["message_id"] == b["message_id"] for a, b in zip(listed[::2], listed[1::2], strict=True)
    )
    # The certificate is stored once, not per record.
    assert count_rows(log_path, "certs") == 1


async def test_batches_respect_max_batch(log_path: Path, clock: FixedClock) -> None:
    message_log = MessageLog(log_path, clock, max_batch=4)
    message_log.open()
    try:
        await asyncio.gather(*(message_log.append(exchange()) for _ in range(20)))
        # A call larger than max_batch is still written whole, in one transaction.
        await message_log.append([record(str(uuid.uuid4())) for _ in range(10)])
    finally:
        message_log.close()
    assert count_rows(log_path) == 50
    assert message_log.commits >= 20 // 2 + 1


async def test_failed_call_leaves_nothing_and_spares_others(
    log: MessageLog, log_path: Path
) -> None:
    """A bad call shares a transaction with good ones: only the bad call fails."""
    bad_id = str(uuid.uuid4())
    bad = (record(bad_id, "request", "in"), record(bad_id, "request", "in"))  # duplicate key
    # Hold the write lock so the writer stalls on its first batch while the rest queue up
    # behind it: the next batch then certainly mixes the bad call with good ones.
    commits_before = log.commits
    blocker = sqlite3.connect(log_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(log.append(exchange()))
        await asyncio.sleep(0.05)
        goods = [exchange() for _ in range(10)]
        tasks = [asyncio.ensure_future(log.append(pair)) for pair in goods[:5]]
        tasks.append(asyncio.ensure_future(log.append(bad)))
        tasks += [asyncio.ensure_future(log.append(pair)) for pair in goods[5:]]
        await asyncio.sleep(0.01)
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    results = await asyncio.gather(first, *tasks, return_exceptions=True)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], ZholError)
    assert failures[0].code.name == "LoggingFailed"
    assert results[6] is failures[0]
    assert list_records(log_path, message_id=bad_id) == []
    for pair in goods:
        listed = list_records(log_path, message_id=pair[0].message_id)
        assert {(r["kind"], r["direction"]) for r in listed} == {
            ("request", "in"),
            ("response", "out"),
        }
    assert count_rows(log_path) == 22
    # The mixed batch failed, then each good call was committed on its own.
    assert log.commits - commits_before == 11


async def test_duplicate_of_logged_record_fails_whole_call(log: MessageLog, log_path: Path) -> None:
    request, response = exchange()
    await log.append([request])
    with pytest.raises(ZholError) as caught:
        await log.append([request, response])  # the request is already there
    assert caught.value.code.name == "LoggingFailed"
    assert [r["kind"] for r in list_records(log_path, message_id=request.message_id)] == ["request"]
    await log.append([response])  # the log still works afterwards


async def test_certificate_of_a_failed_call_is_stored_by_a_later_one(
    log: MessageLog, log_path: Path
) -> None:
    """Certificates are inserted once; one whose transaction rolled back is not taken as stored."""
    await log.append(exchange())
    other_der = b"0\x82\x01\x00 another certificate"
    other_sha = hashlib.sha256(other_der).digest()

    def signed_by_other(message_id: str, kind: str) -> LogRecord:
        r = record(message_id, kind)
        return dataclasses.replace(r, signer_cert_der=other_der, signer_cert_sha256=other_sha)

    bad_id = str(uuid.uuid4())
    with pytest.raises(ZholError):  # the same record twice: the whole call rolls back
        await log.append([signed_by_other(bad_id, "request")] * 2)
    assert count_rows(log_path, "certs") == 1
    await log.append([signed_by_other(str(uuid.uuid4()), "request")])
    await log.append([signed_by_other(str(uuid.uuid4()), "request")])
    conn = sqlite3.connect(log_path)
    try:
        stored = dict(conn.execute("SELECT sha256, der FROM certs").fetchall())
    finally:
        conn.close()
    assert stored == {CERT_SHA256: CERT_DER, other_sha: other_der}


async def test_callers_on_other_event_loops_are_woken(log: MessageLog, log_path: Path) -> None:
    """One committed batch may hold callers of several event loops (threads)."""
    pairs = [exchange() for _ in range(40)]

    def in_other_loop() -> None:
        async def run() -> None:
            await asyncio.gather(*(log.append(p) for p in pairs[20:]))

        asyncio.run(run())

    other = asyncio.get_running_loop().run_in_executor(None, in_other_loop)
    await asyncio.gather(*(log.append(p) for p in pairs[:20]))
    await asyncio.wait_for(other, 10)
    assert count_rows(log_path) == 80


async def test_update_and_delete_are_refused(log: MessageLog, log_path: Path) -> None:
    await log.append(exchange())
    conn = sqlite3.connect(log_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE messages SET purpose = 'rewritten'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM messages")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM certs")
        conn.rollback()
    finally:
        conn.close()
    assert count_rows(log_path) == 2
    assert {r["purpose"] for r in list_records(log_path)} == {"pension case 42"}


async def test_append_after_close_fails(log_path: Path, clock: FixedClock) -> None:
    message_log = MessageLog(log_path, clock)
    with pytest.raises(ZholError) as before_open:
        await message_log.append(exchange())
    assert before_open.value.code.name == "LoggingFailed"
    message_log.open()
    message_log.close()
    with pytest.raises(ZholError) as after_close:
        await message_log.append(exchange())
    assert after_close.value.code.name == "LoggingFailed"
    message_log.close()  # closing twice is harmless


async def test_close_drains_queued_writes(log_path: Path, clock: FixedClock) -> None:
    message_log = MessageLog(log_path, clock)
    message_log.open()
    tasks = [asyncio.ensure_future(message_log.append(exchange())) for _ in range(50)]
    await asyncio.sleep(0)  # every call is queued now
    message_log.close()
    await asyncio.gather(*tasks)
    assert count_rows(log_path) == 100


async def test_mismatched_certificate_hash_is_refused(log: MessageLog, log_path: Path) -> None:
    request, _ = exchange()
    forged = LogRecord(
        **{**{f: getattr(request, f) for f in LogRecord.__slots__}, "signer_cert_der": b"other"}
    )
    with pytest.raises(ZholError) as caught:
        await log.append([forged])
    assert caught.value.code.name == "LoggingFailed"
    assert count_rows(log_path) == 0


async def test_recent_request_ids(log: MessageLog, clock: FixedClock) -> None:
    old_in, _ = exchange()
    await log.append([old_in])
    clock.advance(60)
    since = clock.now_ms()
    new_in, new_out = exchange()
    sent = record(str(uuid.uuid4()), "request", "out")
    event = record(str(uuid.uuid4()), "event", "in")
    await log.append([new_in, new_out, sent, event])
    assert log.recent_request_ids(since) == {new_in.message_id}
    assert log.recent_request_ids(since - 60_000) == {old_in.message_id, new_in.message_id}
    assert log.recent_request_ids(since + 1) == set()


async def test_reopen_keeps_records(log_path: Path, clock: FixedClock) -> None:
    first = MessageLog(log_path, clock)
    first.open()
    request, response = exchange()
    await first.append([request, response])
    first.close()
    second = MessageLog(log_path, clock)
    second.open()
    try:
        assert second.recent_request_ids(0) == {request.message_id}
        await second.append(exchange())
    finally:
        second.close()
    assert [r["seq"] for r in list_records(log_path)] == [1, 2, 3, 4]


async def test_list_records_filters(log: MessageLog, log_path: Path, clock: FixedClock) -> None:
    a = exchange()
    await log.append(a)
    clock.advance(10)
    since = clock.now_ms()
    b = (record(str(uuid.uuid4()), data_subject="", body=b"x" * 7),)
    await log.append(b)
    clock.advance(10)
    c = exchange()
    await log.append(c)

    everything = list_records(log_path)
    assert len(everything) == 5
    assert set(everything[0]) >= REQUIRED_KEYS
    assert "body" not in everything[0] and "header" not in everything[0]
    first = everything[0]
    assert first["signed_digest"] == a[0].signed_digest.hex()
    assert first["signer_cert_sha256"] == CERT_SHA256.hex()
    assert first["body_size"] == len(a[0].body)
    assert first["logged_at"] == format_ms(first["logged_at_ms"])
    assert first["logged_at"].endswith("Z") and "." in first["logged_at"]

    assert [r["kind"] for r in list_records(log_path, message_id=a[0].message_id)] == [
        "request",
        "response",
    ]
    assert {r["message_id"] for r in list_records(log_path, data_subject=SUBJECT)} == {
        a[0].message_id,
        c[0].message_id,
    }
    assert {r["message_id"] for r in list_records(log_path, since_ms=since)} == {
        b[0].message_id,
        c[0].message_id,
    }
    newest = list_records(log_path, limit=2)
    assert [r["seq"] for r in newest] == [4, 5]
    assert list_records(log_path, data_subject="", since_ms=since)[0]["body_size"] == 7
    assert list_records(log_path, message_id="nope") == []


def test_list_records_without_log(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list_records(tmp_path / "messagelog.db")
    assert not (tmp_path / "messagelog.db").exists()  # read-only: never creates one


def test_format_ms() -> None:
    assert format_ms(0) == "1970-01-01T00:00:00.000Z"
    assert format_ms(1_790_000_000_123) == "2026-09-21T14:13:20.123Z"


# The command line.


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zhol")
    logcli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


async def test_cli_json_lines(
    log: MessageLog, log_path: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    now = clock.now_ms()
    pairs = [exchange() for _ in range(3)]
    for pair in pairs:
        await log.append(pair)
    args = parse(["log", "list", "--gateway", str(log_path.parent), "--json"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    objects = [json.loads(line) for line in lines]
    assert all(set(obj) >= REQUIRED_KEYS for obj in objects)
    assert objects[0]["message_id"] == pairs[0][0].message_id

    mid = pairs[1][0].message_id
    args = parse(["log", "list", "--gateway", str(log_path.parent), "--json", "--message-id", mid])
    assert args.func(args) == 0
    assert {json.loads(line)["message_id"] for line in capsys.readouterr().out.splitlines()} == {
        mid
    }

    gateway = str(log_path.parent)
    args = parse(["log", "list", "--gateway", gateway, "--json", "--since", format_ms(now)])
    assert args.func(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    args = parse(["log", "list", "--gateway", gateway, "--json", "--since", format_ms(now + 1)])
    assert args.func(args) == 0
    assert capsys.readouterr().out == ""


async def test_cli_table(
    log: MessageLog, log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request, response = exchange()
    await log.append([request, response])
    gateway = str(log_path.parent)
    args = parse(["log", "list", "--gateway", gateway, "--limit", "1", "--data-subject", SUBJECT])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SEQ")
    assert len(out) == 2 and request.message_id in out[1] and "response" in out[1]


def test_cli_without_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        gateway=tmp_path, json=True, limit=None, message_id=None, data_subject=None, since=None
    )
    assert logcli.run_list(args) == 3
    assert "no message log" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["log", "list", "--gateway", str(tmp_path), "--since", "yesterday"])
    assert args.func(args) == 2
    args = parse(["log", "list", "--gateway", str(tmp_path), "--limit", "-1"])
    assert args.func(args) == 2
    args = parse(["log"])
    assert args.func(args) == 2
    with pytest.raises(SystemExit) as exited:
        parse(["log", "list"])  # --gateway is required
    assert exited.value.code == 2
    capsys.readouterr()


async def test_holds_tells_which_records_are_committed(log: MessageLog) -> None:
    request, response = exchange()
    assert not log.holds(request.message_id, "request", "in")
    await log.append([request, response])
    assert log.holds(request.message_id, "request", "in")
    assert log.holds(request.message_id, "response", "out")
    assert not log.holds(request.message_id, "response", "in")  # other direction


async def test_appends_of_one_loop_iteration_share_one_commit(
    log_path: Path, clock: FixedClock
) -> None:
    message_log = MessageLog(log_path, clock)
    message_log.open()
    try:
        await asyncio.gather(*(message_log.append(exchange()) for _ in range(10)))
        assert message_log.commits == 1
        await message_log.append(exchange())
        assert message_log.commits == 2
    finally:
        message_log.close()
    assert count_rows(log_path) == 22


async def test_an_append_staged_when_the_log_closes_is_still_written(
    log_path: Path, clock: FixedClock
) -> None:
    message_log = MessageLog(log_path, clock)
    message_log.open()
    pending = asyncio.ensure_future(message_log.append(exchange()))
    await asyncio.sleep(0)  # staged, not yet handed to the writer
    message_log.close()
    await pending
    assert count_rows(log_path) == 2


# The schema of version 1 (0.1.0), as such a log holds it on disk.
_V1_SCHEMA = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('request', 'response', 'event')),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    client TEXT NOT NULL, service TEXT NOT NULL, data_subject TEXT NOT NULL,
    user_id TEXT NOT NULL, purpose TEXT NOT NULL, issued_at_ms INTEGER NOT NULL,
    logged_at_ms INTEGER NOT NULL, peer TEXT NOT NULL, status_code INTEGER NOT NULL,
    header BLOB NOT NULL, body BLOB NOT NULL, signature BLOB NOT NULL,
    signer_cert_sha256 BLOB NOT NULL, signed_digest BLOB NOT NULL,
    UNIQUE (message_id, kind, direction)
) STRICT;
CREATE INDEX messages_by_subject ON messages (data_subject, logged_at_ms);
CREATE INDEX messages_by_time ON messages (logged_at_ms);
CREATE TABLE certs (sha256 BLOB PRIMARY KEY, der BLOB NOT NULL) STRICT, WITHOUT ROWID;
CREATE TRIGGER messages_no_update BEFORE UPDATE ON messages
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
PRAGMA user_version = 1;
"""


def test_a_version_1_log_is_upgraded_in_place_keeping_every_record_and_seq(
    tmp_path: Path,
) -> None:
    path = tmp_path / "messagelog.db"
    conn = sqlite3.connect(path)
    conn.executescript(_V1_SCHEMA)
    old = [record("m1", "request", "out"), record("m1", "response", "in")]
    for seq, r in zip((1, 2), old, strict=True):
        conn.execute(
            "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (seq, r.message_id, r.kind, r.direction, r.client, r.service, r.data_subject,
             r.user_id, r.purpose, r.issued_at_ms, 1_790_000_000_500, r.peer, r.status_code,
             r.header, r.body, r.signature, r.signer_cert_sha256, r.signed_digest),
        )  # fmt: skip
    conn.commit()
    conn.close()
    before = list_records(path)

    log = MessageLog(path, FixedClock(1_790_000_001_000))
    log.open()
    try:
        # A second event attempt of the same message id is a record of its own now.
        again = dataclasses.replace(
            record("m1", "event", "out"), signed_digest=hashlib.sha256(b"attempt 2").digest()
        )
        asyncio.run(log.append([record("m1", "event", "out"), again]))
    finally:
        log.close()

    after = list_records(path)
    assert after[:2] == before
    assert [r["seq"] for r in after] == [1, 2, 3, 4]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM messages WHERE seq = 1")
    finally:
        conn.close()


def test_a_log_of_a_newer_schema_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "messagelog.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ZholError) as caught:
        MessageLog(path, FixedClock(0)).open()
    assert caught.value.code.name == "LoggingFailed"


# -- the Merkle tree ---------------------------------------------------------------------


def leaves_from_rows(path: Path) -> list[bytes]:
    """Every record's leaf hash, recomputed from its stored fields (as an auditor would)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT kind, direction, logged_at_ms, peer, header, body, signature,"
            " signer_cert_sha256 FROM messages ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [
        merkle.leaf_hash(encode(LogLeaf.of(
            kind=k, direction=d, logged_at_ms=t, peer=p, header=h, body=b, signature=s,
            signer_cert_sha256=c,
        )))  # fmt: skip
        for k, d, t, p, h, b, s, c in rows
    ]


def test_the_log_is_a_merkle_tree_of_its_records_with_proofs_for_each(tmp_path: Path) -> None:
    path = tmp_path / "messagelog.db"
    log = MessageLog(path, FixedClock(1_790_000_000_000))
    log.open()
    try:

        async def fill() -> None:
            for _ in range(9):  # separate commits, and one group below
                await log.append(exchange())
            await asyncio.gather(*(log.append(exchange()) for _ in range(6)))

        asyncio.run(fill())
    finally:
        log.close()
    leaves = leaves_from_rows(path)
    head = tree_head(path)
    assert head.size == len(leaves) == 30
    assert head.root_hash == merkle.root(leaves)
    for seq in range(1, head.size + 1):
        proof = record_inclusion_proof(path, seq, head.size)
        merkle.verify_inclusion(leaves[seq - 1], seq - 1, head.size, proof, head.root_hash)
    for size1 in (1, 7, 16, 29):
        proof = log_consistency_proof(path, size1, head.size)
        merkle.verify_consistency(
            size1, head.size, proof, merkle.root(leaves[:size1]), head.root_hash
        )


def test_the_tree_resumes_after_a_restart_and_skips_a_failed_commit(tmp_path: Path) -> None:
    path = tmp_path / "messagelog.db"
    first = exchange()
    for attempt in range(2):
        log = MessageLog(path, FixedClock(1_790_000_000_000 + attempt))
        log.open()
        try:
            asyncio.run(log.append(exchange()))
            if attempt == 0:
                asyncio.run(log.append(first))
            else:
                with pytest.raises(ZholError):  # the same sealed messages again
                    asyncio.run(log.append(first))
            asyncio.run(log.append(exchange()))
        finally:
            log.close()
    leaves = leaves_from_rows(path)
    assert len(leaves) == 10
    assert tree_head(path).size == 10
    assert tree_head(path).root_hash == merkle.root(leaves)


def test_a_log_from_before_the_tree_gets_its_tree_built_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "messagelog.db"
    log = MessageLog(path, FixedClock(1_790_000_000_000))
    log.open()
    asyncio.run(log.append(exchange()))
    log.close()
    conn = sqlite3.connect(path)  # back to a version 2 log: no tree tables
    conn.executescript(
        "DROP TABLE tree_nodes; DROP TABLE tree_state; PRAGMA user_version = 2;"
    )
    conn.close()
    log = MessageLog(path, FixedClock(1_790_000_001_000))
    log.open()
    asyncio.run(log.append(exchange()))
    log.close()
    leaves = leaves_from_rows(path)
    assert tree_head(path).size == 4
    assert tree_head(path).root_hash == merkle.root(leaves)


def test_a_log_whose_tree_state_is_gone_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "messagelog.db"
    log = MessageLog(path, FixedClock(1_790_000_000_000))
    log.open()
    asyncio.run(log.append(exchange()))
    log.close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM tree_state")
    conn.commit()
    conn.close()
    with pytest.raises(ZholError) as caught:
        MessageLog(path, FixedClock(1_790_000_001_000)).open()
    assert caught.value.code.name == "LoggingFailed"
# What `zhol log list` checks: each record's columns against its signed header.


def tamper(log_path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """Change the log behind the gateway's back, as its operator could."""
    conn = sqlite3.connect(log_path)
    try:
        conn.execute("DROP TRIGGER IF EXISTS messages_no_update")
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


async def test_cli_shows_an_untouched_log_as_signed(
    log: MessageLog, log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = record(str(uuid.uuid4()), "event", "out")
    await log.append([*exchange(), event])
    gateway = str(log_path.parent)
    args = parse(["log", "list", "--gateway", gateway, "--json"])
    assert args.func(args) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [obj["mismatch"] for obj in objects] == [[], [], []]
    assert objects[2]["signed"]["service"] == f"{CLIENT}/{TOPIC}"
    assert objects[0]["signed"]["purpose"] == "pension case 42"
    args = parse(["log", "list", "--gateway", gateway])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].rstrip().endswith("CHECK")
    assert all(line.rstrip().endswith("ok") for line in out[1:])


async def test_cli_flags_a_purpose_changed_in_the_database(
    log: MessageLog, log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await log.append(exchange())
    await log.append(exchange())
    tamper(log_path, "UPDATE messages SET purpose = ? WHERE seq = 3", ("fraud check",))
    gateway = str(log_path.parent)
    args = parse(["log", "list", "--gateway", gateway, "--json"])
    assert args.func(args) == logcli.EXIT_MISMATCH == 1
    captured = capsys.readouterr()
    objects = [json.loads(line) for line in captured.out.splitlines()]
    assert [obj["mismatch"] for obj in objects] == [[], [], ["purpose"], []]
    assert objects[2]["purpose"] == "fraud check"  # the column, as stored
    assert objects[2]["signed"]["purpose"] == "pension case 42"  # what was signed
    assert "seq 3" in captured.err

    args = parse(["log", "list", "--gateway", gateway])
    assert args.func(args) == 1
    rows = capsys.readouterr().out.splitlines()[1:]
    assert rows[2].rstrip().endswith("MISMATCH:purpose")
    assert "fraud check" not in rows[2] and "pension case 42" in rows[2]  # the signed value
    assert all(row.rstrip().endswith("ok") for row in rows[:2] + rows[3:])


async def test_cli_flags_changed_bytes_and_other_columns(
    log: MessageLog, log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(4):
        await log.append((record(str(uuid.uuid4())),))
    # A body byte flipped: the readable columns agree, the signed digest does not.
    tamper(log_path, "UPDATE messages SET body = ? WHERE seq = 1", (b"bodz",))
    tamper(log_path, "UPDATE messages SET data_subject = '', kind = 'event' WHERE seq = 2")
    tamper(log_path, "UPDATE messages SET header = ? WHERE seq = 3", (b"\xff\xff not protobuf",))
    args = parse(["log", "list", "--gateway", str(log_path.parent), "--json"])
    assert args.func(args) == 1
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [obj["mismatch"] for obj in objects] == [
        ["signed_digest"],
        ["kind", "data_subject"],
        ["header"],
        [],
    ]
    assert objects[2]["signed"] is None
