"""The pure parts of evidence bundles that the gateway and `zhol audit export` share: which
checkpoint proves a record, whose records a bundle may hold, a record's leaf; and the
GetEvidence request's and the portal's checks of a message id."""

from __future__ import annotations

import uuid

import pytest

from zhol.bus.v1 import usage_pb2
from zhol.core.errors import ZholError
from zhol.gateway.usage import parse_evidence_query, parse_message_id
from zhol.portal.evidence import attachment_name, is_message_id
from zhol.security.evidence_build import (
    CheckpointFiles,
    NotCoveredYet,
    Row,
    all_about,
    bundle_record,
    covering,
)
from zhol.security.logleaf import LogLeaf, encode

A, B = "900101300126", "900101300136"  # valid IINs


def row(seq: int, subject: str = A) -> Row:
    columns = {
        "seq": seq, "message_id": "m", "kind": "request", "direction": "in",
        "data_subject": subject, "logged_at_ms": 1_000 + seq, "peer": "KZ/GOV/MJ/gw1",
    }  # fmt: skip
    return Row(columns, b"header", b"body", b"sig", bytes(32))


def checkpoint(size: int, *, stamped: bool = True, cosigned: bool = True) -> CheckpointFiles:
    return CheckpointFiles(
        size, b"note", None, "cosig" if cosigned else None, b"tsr" if stamped else None
    )


def test_each_record_is_proven_in_the_smallest_complete_checkpoint_covering_it() -> None:
    checkpoints = [
        checkpoint(2),
        checkpoint(4, stamped=False),  # not timestamped: no time vouched for
        checkpoint(5, cosigned=False),  # not cosigned: no witness's word
        checkpoint(7),
        checkpoint(9),
    ]
    assert covering([row(1), row(2), row(3), row(7), row(8)], checkpoints) == {
        1: 2, 2: 2, 3: 7, 7: 7, 8: 9,
    }  # fmt: skip


@pytest.mark.parametrize(
    "checkpoints",
    [
        [],
        [checkpoint(3)],
        [checkpoint(3), checkpoint(5, stamped=False)],
        [checkpoint(9, cosigned=False)],
    ],
)
def test_a_record_no_complete_checkpoint_covers_is_not_covered_yet(
    checkpoints: list[CheckpointFiles],
) -> None:
    with pytest.raises(NotCoveredYet):
        covering([row(1), row(4)], checkpoints)


def test_records_are_all_about_the_subject_or_none_are_given() -> None:
    assert all_about([row(1), row(2)], A)
    assert not all_about([], A)  # nothing at all: refused like another's
    assert not all_about([row(1), row(2, B)], A)
    assert not all_about([row(1, "")], A)  # a record about nobody is not the citizen's


def test_a_bundle_record_carries_its_exact_leaf_and_proof() -> None:
    r = row(3)
    record = bundle_record(r, 7, (b"\x01" * 32,))
    expected = LogLeaf.of(
        kind="request", direction="in", logged_at_ms=1_003, peer="KZ/GOV/MJ/gw1",
        header=b"header", body=b"body", signature=b"sig", signer_cert_sha256=bytes(32),
    )  # fmt: skip
    assert record.leaf_input == encode(expected)
    assert (record.seq, record.tree_size, record.audit_path) == (3, 7, (b"\x01" * 32,))
    assert record.columns == r.columns


def test_a_get_evidence_request_is_checked_field_by_field() -> None:
    message_id = str(uuid.uuid4())
    good = usage_pb2.GetEvidenceRequest(data_subject=A, message_id=message_id)
    query = parse_evidence_query(good.SerializeToString())
    assert (query.data_subject, query.message_id, query.gateway) == (A, message_id, None)
    pinned = usage_pb2.GetEvidenceRequest(
        data_subject=A, message_id=message_id, gateway="KZ/GOV/MJ/gw1"
    )
    assert str(parse_evidence_query(pinned.SerializeToString()).gateway) == "KZ/GOV/MJ/gw1"
    request = usage_pb2.GetEvidenceRequest
    for bad, code in [
        (request(data_subject="123", message_id=message_id), "InvalidIdentifier"),
        (request(data_subject=A), "InvalidRequest"),
        (request(data_subject=A, message_id=message_id, gateway="x"), "InvalidIdentifier"),
    ]:
        with pytest.raises(ZholError) as err:
            parse_evidence_query(bad.SerializeToString())
        assert err.value.code.name == code
    with pytest.raises(ZholError) as err:
        parse_evidence_query(b"\xff\xff")
    assert err.value.code.name == "InvalidRequest"


@pytest.mark.parametrize(
    "text",
    ["", "x", "0", "not-a-uuid-at-all-but-36-characters!", "{" + "0" * 32 + "}"],
)
def test_a_message_id_that_is_not_a_lowercase_uuid_is_refused(text: str) -> None:
    with pytest.raises(ZholError):
        parse_message_id(text)
    assert not is_message_id(text)


def test_message_ids_the_gateway_and_the_portal_accept_alike() -> None:
    good = str(uuid.uuid4())
    for text in (good, good.upper(), good.replace("-", ""), good + "0", f"urn:uuid:{good}"):
        accepted = text == good
        assert is_message_id(text) is accepted
        if accepted:
            assert parse_message_id(text) == text
        else:
            with pytest.raises(ZholError):
                parse_message_id(text)


def test_the_attachment_is_named_by_message_and_gateway() -> None:
    message_id = str(uuid.uuid4())
    name = attachment_name("KZ/GOV/MJ/gw1", message_id)
    assert name == f"evidence-{message_id}-KZ_GOV_MJ_gw1.json"
