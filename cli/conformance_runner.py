"""The conformance cases' runner, the half an IS needs: case files in, verdicts out.

``zhol conformance`` runs it against a running gateway; the test suite
(tests/conformance/) runs it against the in-process federation. The format of the
case files is in tests/conformance/README.md; the cases themselves ship with the
package, next to this module (``conformance_cases/``).

Loading (``load_cases``) is pure: it reads the TOML case files with tomllib and
validates every field, raising CaseFileError that names the file, the case and the
field. Running talks to a real gateway: ``call_is`` sends an IS-facing case to a
gateway's IS port exactly as an IS in any language would, and ``judge`` compares what
came back with the case's expectation (the trailers of docs/protocol.md, 'An IS and its
own gateway', and the codes and statuses of the README's error table). The peer cases
(gateway to gateway, ``method = PEER_METHOD``) are loaded and validated here too, but
sending them needs a gateway's private keys: that half is tests/conformance/peer.py,
in a source checkout only.
"""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, message, symbol_database

from zhol.bus.v1 import bus_pb2
from zhol.core.metadata import ERROR_ID_KEY, ERROR_KEY, MESSAGE_ID_KEY
from zhol.population.v1 import population_pb2

# Package data (pyproject.toml [tool.setuptools.package-data]): in the wheel and,
# through the zhol/cli link, in a source checkout.
CASES_DIR = Path(__file__).resolve().parent / "conformance_cases"
PEER_METHOD = "/zhol.bus.v1.Exchange/Call"
OUTCOMES = frozenset({"ok", "bus-error", "provider-error", "deadline"})
MUTATIONS = frozenset(
    {
        "none",
        "flip-signature-bit",
        "drop-signature",
        "tamper-header",
        "tamper-body",
        "replay",
        "kind-response",
        "wrong-payload-type",
        "protocol-version-2",
        "issued-at-past",
        "issued-at-future",
        "deadline-passed",
        "signer-other-member",
        "malformed-data-subject",
        "sealed-per-vectors",
    }
)
OVER_LIMIT = "max_message_bytes+1"
# Placeholders a case may use; the runner fills them in before sending.
VARIABLES = frozenset({"known_iin"})
STATUS_NAMES = frozenset(s.name for s in grpc.StatusCode)

# The conformance profile (README.md): the IS under test acts as this client, which
# may read the population registry; {known_iin} is the first person it lists.
PROFILE_CLIENT = "KZ/GOV/MLSPP/pension"
LIST_PERSONS = "/zhol.population.v1.PopulationRegistry/ListPersons"

# A call with no (de)serialiser: bytes in, bytes out, as an IS in any language sends.
_RawCall = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]

_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_METHOD = re.compile(r"^/[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*$")
_FULL_CODE = re.compile(r"^(Client|Server\.ClientProxy|Server\.ServerProxy|Server\.Registry)\.\w+$")
_ASCII = re.compile(r"^[\x20-\x7e]*$")  # what gRPC allows in a text metadata value
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_CASE_KEYS = frozenset(
    {
        "id", "description", "method", "metadata", "body_type", "body", "body_size",
        "deadline_ms", "mutation", "signer_gateway", "expect",
    }
)
_EXPECT_KEYS = frozenset({"outcome", "status", "error", "response_type", "response"})
_BASE_KEYS = frozenset(
    {
        "sender_gateway", "receiver_gateway", "client", "service", "user_id", "purpose",
        "data_subject", "body_type", "body",
    }
)


class CaseFileError(ValueError):
    """A case file that does not follow the format: says which file, case and field."""


@dataclass(frozen=True, slots=True)
class Expect:
    outcome: str
    status: str = "OK"
    error: str = ""
    response_type: str = ""
    response_json: str = ""  # fields the answer must have, as protobuf JSON


@dataclass(frozen=True, slots=True)
class PeerBase:
    """The well-formed sealed request every peer case of a file starts from."""

    sender_gateway: str
    receiver_gateway: str
    client: str
    service: str
    user_id: str
    purpose: str
    data_subject: str
    body_type: str
    body_json: str


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    description: str
    area: str  # the case file's stem
    method: str
    expect: Expect
    metadata: tuple[tuple[str, str], ...] = ()
    body_type: str = ""
    body_json: str = ""
    body_size: int | str | None = None
    deadline_ms: int | None = None
    mutation: str = ""
    signer_gateway: str = ""
    base: PeerBase | None = None

    @property
    def is_peer(self) -> bool:
        return self.method == PEER_METHOD


# --- loading: pure ------------------------------------------------------------------


def load_cases(directory: Path = CASES_DIR) -> tuple[Case, ...]:
    """Every case of every *.toml in the directory, in file then case order; ids unique."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CaseFileError(f"{directory}: no *.toml case files")
    cases: list[Case] = []
    seen: dict[str, Path] = {}
    for path in files:
        for case in load_case_file(path):
            if case.id in seen:
                raise CaseFileError(f"{path}: case id {case.id!r} already used in {seen[case.id]}")
            seen[case.id] = path
            cases.append(case)
    return tuple(cases)


def load_case_file(path: Path) -> tuple[Case, ...]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CaseFileError(f"{path}: {exc}") from None
    return parse_case_document(document, path.stem, str(path))


def parse_case_document(document: Mapping[str, Any], area: str, where: str) -> tuple[Case, ...]:
    _only(document, {"case", "base"}, where)
    raw_cases = document.get("case")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise CaseFileError(f"{where}: needs at least one [[case]]")
    base = _parse_base(document["base"], f"{where} [base]") if "base" in document else None
    cases = []
    for index, raw in enumerate(raw_cases):
        label = f"{where} case #{index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label = f"{where} case {raw['id']!r}"
        cases.append(_parse_case(raw, area, base, label))
    ids = [c.id for c in cases]
    for case_id in ids:
        if ids.count(case_id) > 1:
            raise CaseFileError(f"{where}: case id {case_id!r} used twice")
    return tuple(cases)


def _only(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise CaseFileError(f"{where}: unknown key(s) {', '.join(extra)}")


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = table.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise CaseFileError(f"{where}: {key} must be a non-empty string")
    return value


def _body(table: Mapping[str, Any], where: str) -> tuple[str, str]:
    body_type = _text(table, "body_type", where)
    body = table.get("body")
    if not isinstance(body, dict):
        raise CaseFileError(f"{where}: body must be a table (protobuf JSON of {body_type})")
    _check_placeholders(body, where)
    body_json = json.dumps(body, sort_keys=True)
    try:
        json_format.Parse(fill(body_json, dict.fromkeys(VARIABLES, "")), message_class(body_type)())
    except (KeyError, json_format.ParseError) as exc:
        raise CaseFileError(f"{where}: body is not a {body_type}: {exc}") from None
    return body_type, body_json


def _parse_base(raw: Any, where: str) -> PeerBase:
    if not isinstance(raw, dict):
        raise CaseFileError(f"{where}: must be a table")
    _only(raw, _BASE_KEYS, where)
    body_type, body_json = _body(raw, where)
    fields = {k: _text(raw, k, where) for k in _BASE_KEYS - {"body_type", "body"}}
    return PeerBase(body_type=body_type, body_json=body_json, **fields)


def _parse_case(raw: Any, area: str, base: PeerBase | None, where: str) -> Case:
    if not isinstance(raw, dict):
        raise CaseFileError(f"{where}: must be a table")
    _only(raw, _CASE_KEYS, where)
    case_id = _text(raw, "id", where)
    if not _ID.fullmatch(case_id):
        raise CaseFileError(f"{where}: id must be lower case letters, digits, '.' and '-'")
    description = _text(raw, "description", where)
    if "\n" in description:
        raise CaseFileError(f"{where}: description must be one line")
    method = _text(raw, "method", where)
    if not _METHOD.fullmatch(method):
        raise CaseFileError(f"{where}: method must be a gRPC path /package.Service/Method")
    expect = _parse_expect(raw.get("expect"), f"{where} expect")
    case = Case(case_id, description, area, method, expect)
    if method == PEER_METHOD:
        return _parse_peer_fields(raw, case, base, where)
    return _parse_is_fields(raw, case, where)


def _parse_is_fields(raw: Mapping[str, Any], case: Case, where: str) -> Case:
    for key in ("mutation", "signer_gateway"):
        if key in raw:
            raise CaseFileError(f"{where}: {key} is only for {PEER_METHOD} cases")
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and k == k.lower() and isinstance(v, str) and _ASCII.fullmatch(v)
        for k, v in metadata.items()
    ):
        raise CaseFileError(
            f"{where}: metadata must be a table of lower-case keys to printable ASCII strings"
        )
    _check_placeholders(metadata, where)
    has_body, has_size = "body" in raw or "body_type" in raw, "body_size" in raw
    if has_body == has_size:
        raise CaseFileError(f"{where}: give either body_type and body, or body_size")
    body_type = body_json = ""
    size: int | str | None = None
    if has_body:
        body_type, body_json = _body(raw, where)
    else:
        size = raw["body_size"]
        if not (size == OVER_LIMIT or (type(size) is int and size >= 0)):
            raise CaseFileError(f"{where}: body_size must be a byte count or {OVER_LIMIT!r}")
    deadline = raw.get("deadline_ms")
    if deadline is not None and (type(deadline) is not int or deadline <= 0):
        raise CaseFileError(f"{where}: deadline_ms must be a positive integer")
    if case.expect.outcome == "deadline" and deadline is None:
        raise CaseFileError(f"{where}: a deadline outcome needs deadline_ms")
    return replace(
        case,
        metadata=tuple(metadata.items()),
        body_type=body_type,
        body_json=body_json,
        body_size=size,
        deadline_ms=deadline,
    )


def _parse_peer_fields(
    raw: Mapping[str, Any], case: Case, base: PeerBase | None, where: str
) -> Case:
    if base is None:
        raise CaseFileError(f"{where}: a {PEER_METHOD} case needs the file's [base] request")
    for key in ("metadata", "body", "body_type", "body_size", "deadline_ms"):
        if key in raw:
            raise CaseFileError(f"{where}: {key} does not apply to a peer case (see [base])")
    mutation = _text(raw, "mutation", where)
    if mutation not in MUTATIONS:
        raise CaseFileError(f"{where}: unknown mutation {mutation!r}")
    signer = _text(raw, "signer_gateway", where, required=mutation == "signer-other-member")
    if case.expect.outcome in ("provider-error", "deadline"):
        raise CaseFileError(f"{where}: a peer case expects ok or bus-error")
    return replace(case, mutation=mutation, signer_gateway=signer, base=base)


def _parse_expect(raw: Any, where: str) -> Expect:
    if not isinstance(raw, dict):
        raise CaseFileError(f"{where}: [case.expect] is required")
    _only(raw, _EXPECT_KEYS, where)
    outcome = _text(raw, "outcome", where)
    if outcome not in OUTCOMES:
        raise CaseFileError(f"{where}: outcome must be one of {sorted(OUTCOMES)}")
    status = raw.get("status", "OK")
    if status not in STATUS_NAMES:
        raise CaseFileError(f"{where}: status {status!r} is not a gRPC status name")
    error = raw.get("error", "")
    if outcome == "bus-error":
        if not isinstance(error, str) or not _FULL_CODE.fullmatch(error):
            raise CaseFileError(f"{where}: a bus-error needs error = '<hop>.<Code>'")
    elif error:
        raise CaseFileError(f"{where}: error is only for outcome bus-error")
    if (outcome == "ok") != (status == "OK"):
        raise CaseFileError(f"{where}: status OK if and only if outcome ok")
    if outcome == "deadline" and status != "DEADLINE_EXCEEDED":
        raise CaseFileError(f"{where}: a deadline outcome has status DEADLINE_EXCEEDED")
    response_type, response_json = "", ""
    if "response" in raw or "response_type" in raw:
        if outcome != "ok":
            raise CaseFileError(f"{where}: response is only for outcome ok")
        response_type, response_json = _body(
            {"body_type": raw.get("response_type"), "body": raw.get("response")}, where
        )
    return Expect(outcome, status, error, response_type, response_json)


def _check_placeholders(value: Any, where: str) -> None:
    for name in _PLACEHOLDER.findall(json.dumps(value)):
        if name not in VARIABLES:
            raise CaseFileError(f"{where}: unknown placeholder {{{name}}}")


def fill(text: str, variables: Mapping[str, str]) -> str:
    """Replace {name} placeholders (only the known ones) with their values."""
    return _PLACEHOLDER.sub(
        lambda m: variables[m.group(1)] if m.group(1) in VARIABLES else m.group(0), text
    )


def message_class(full_name: str) -> type[message.Message]:
    """The generated class of a message type, e.g. zhol.population.v1.GetPersonRequest."""
    package = full_name.rpartition(".")[0]
    parts = package.split(".")
    if len(parts) < 2:
        raise KeyError(full_name)
    try:
        __import__(f"{package}.{parts[1]}_pb2")
    except ImportError:
        raise KeyError(full_name) from None
    return symbol_database.Default().GetSymbol(full_name)


# --- running: talks to real servers ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """What the federation's global configuration says (tunables)."""

    max_message_bytes: int
    clock_skew_s: int


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # gRPC status name, "OK" on success
    trailers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    # Peer cases: the sealed request's message id and digest the answer must be bound to.
    request_id: str = ""
    request_digest: bytes = b""

    def trailer(self, key: str) -> str | None:
        return next((v for k, v in self.trailers if k == key), None)


def sized_body(size: int) -> bytes:
    """A body of exactly ``size`` bytes: field 1 as a string of filler (valid protobuf)."""
    for width in range(1, 6):
        n = size - 1 - width
        if n >= 0 and len(_varint(n)) == width:
            return b"\x0a" + _varint(n) + b"x" * n
    return b"\x00" * size  # 0 or 1 byte: no room for a field


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_body(body_type: str, body_json: str, variables: Mapping[str, str]) -> bytes:
    msg = json_format.Parse(fill(body_json, variables), message_class(body_type)())
    return msg.SerializeToString()


def request_body(case: Case, variables: Mapping[str, str], limits: Limits | None) -> bytes:
    if case.body_size is None:
        return encode_body(case.body_type, case.body_json, variables)
    if case.body_size == OVER_LIMIT:
        if limits is None:
            raise LookupError("needs the federation's max_message_bytes")
        return sized_body(limits.max_message_bytes + 1)
    assert isinstance(case.body_size, int)
    return sized_body(case.body_size)


def trailer_pairs(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata (str or bytes values; None when there was none) as (key, text) pairs."""
    return tuple(
        (k, v if isinstance(v, str) else v.decode(errors="replace")) for k, v in metadata or ()
    )


async def call_is(
    channel: grpc.aio.Channel,
    case: Case,
    variables: Mapping[str, str],
    limits: Limits | None,
    timeout_s: float = 10.0,
) -> Outcome:
    """Send an IS-facing case to a gateway's IS port (raw bytes, as any IS would)."""
    body = request_body(case, variables, limits)
    metadata = tuple((k, fill(v, variables)) for k, v in case.metadata)
    timeout = case.deadline_ms / 1000 if case.deadline_ms else timeout_s
    method: _RawCall = channel.unary_unary(case.method)
    call = method(body, metadata=metadata, timeout=timeout)
    try:
        answer = await call
    except grpc.aio.AioRpcError as exc:
        return Outcome(exc.code().name, trailer_pairs(exc.trailing_metadata()))
    return Outcome("OK", trailer_pairs(await call.trailing_metadata()), answer)


async def find_known_iin(channel: grpc.aio.Channel, timeout_s: float = 10.0) -> str:
    """The first person the profile client can list through the bus: {known_iin}.

    Raises grpc.aio.AioRpcError when the gateway cannot be reached or refuses.
    """
    request = population_pb2.ListPersonsRequest(page_size=1)
    metadata = (
        ("zhol-client", PROFILE_CLIENT),
        ("zhol-user-id", "EE:conformance"),
        ("zhol-purpose", "conformance suite: find a known person"),
    )
    method: _RawCall = channel.unary_unary(LIST_PERSONS)
    answer = await method(request.SerializeToString(), metadata=metadata, timeout=timeout_s)
    persons = population_pb2.ListPersonsResponse.FromString(answer)
    if not persons.persons:
        raise LookupError("the population registry lists nobody")
    return persons.persons[0].iin


def _is_uuid(text: str | None) -> bool:
    try:
        return text is not None and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def judge(case: Case, got: Outcome, variables: Mapping[str, str]) -> tuple[str, ...]:
    """What is wrong with the outcome against the case's expectation (empty: it passed)."""
    e = case.expect
    problems: list[str] = []
    error, error_id = got.trailer(ERROR_KEY), got.trailer(ERROR_ID_KEY)
    if got.status != e.status:
        problems.append(f"status {got.status}, expected {e.status}")
    if e.outcome == "bus-error":
        if error != e.error:
            problems.append(f"{ERROR_KEY} {error!r}, expected {e.error!r}")
        if not _is_uuid(error_id):
            problems.append(f"{ERROR_ID_KEY} {error_id!r} is not a UUID")
    elif e.outcome == "deadline":
        # The IS's own gRPC library may give up first: then no trailers at all.
        if error is not None and (not error.endswith(".Timeout") or not _is_uuid(error_id)):
            problems.append(f"{ERROR_KEY} {error!r} / {ERROR_ID_KEY} {error_id!r}: not a Timeout")
    else:
        if error is not None or error_id is not None:
            problems.append(f"unexpected {ERROR_KEY} {error!r} (the provider answered)")
        if case.is_peer:
            problems.extend(_judge_peer_answer(got))
        elif not _is_uuid(got.trailer(MESSAGE_ID_KEY)):
            problems.append(f"{MESSAGE_ID_KEY} {got.trailer(MESSAGE_ID_KEY)!r} is not a UUID")
    if not problems and e.response_type:
        problems.extend(_judge_response(e, got.body, variables))
    return tuple(problems)


def _judge_response(e: Expect, body: bytes, variables: Mapping[str, str]) -> list[str]:
    try:
        answer = message_class(e.response_type).FromString(body)
    except message.DecodeError:
        return [f"the answer is not a {e.response_type}"]
    have = json_format.MessageToDict(answer, preserving_proto_field_name=True)
    want = json.loads(fill(e.response_json, variables))
    return [
        f"response {key} = {have.get(key)!r}, expected {value!r}"
        for key, value in want.items()
        if have.get(key) != value
    ]


def _judge_peer_answer(got: Outcome) -> list[str]:
    if got.status != "OK":
        return []
    answer = bus_pb2.SignedMessage.FromString(got.body)
    header = bus_pb2.MessageHeader.FromString(answer.header)
    problems = []
    if not answer.signature:
        problems.append("the answer carries no signature")
    if header.kind != bus_pb2.MESSAGE_KIND_RESPONSE or header.message_id != got.request_id:
        problems.append("the answer is not a response to the request's message id")
    if header.request_digest != got.request_digest:
        problems.append("the answer is not bound to the request's signed bytes")
    return problems
