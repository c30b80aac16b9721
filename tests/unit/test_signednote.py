"""C2SP signed notes, checkpoints and cosignatures (zhol.security.signednote) against the
known answers of golang.org/x/mod/sumdb/note, the C2SP specifications and
transparency-dev/formats (tests/vectors/signednote.json names each source and licence),
and every malformed input refused with its reason."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.vectors.spec import load
from zhol.security.signednote import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Checkpoint,
    NoteError,
    NoteSignature,
    NoteSigner,
    Reason,
    Verifier,
    cosign,
    cosignature_message,
    cosignature_timestamp,
    cosigner_verifier,
    ed25519_verifier,
    format_checkpoint,
    format_skey,
    format_vkey,
    gateway_origin,
    is_valid_key_name,
    join_note,
    key_id,
    open_note,
    parse_checkpoint,
    parse_note,
    parse_skey,
    parse_vkey,
    sign_note,
    verify_cosignature,
)

V = load("signednote.json")
GO = V["x_mod_note"]
C2SP = V["c2sp"]
TD = V["transparency_dev_formats"]
REG = V["zhol_regression"]

TEXT: str = GO["text"]
PETER_SIG: str = GO["peter_sig"]
ENOCH_SIG: str = GO["enoch_sig"]
PETER_B64 = PETER_SIG.split(" ")[2][:-1]
PETER = parse_vkey(GO["peter_vkey"])
ENOCH = parse_vkey(GO["enoch_vkey"])
ROOT = hashlib.sha256(b"root").digest()


def refused(reason: Reason) -> pytest.RaisesExc[NoteError]:
    return pytest.raises(NoteError, check=lambda e: e.reason == reason)


def sig_of(line: str) -> NoteSignature:
    return parse_note(("x\n\n" + line).encode())[1][0]


# --- keys -------------------------------------------------------------------------


def test_the_x_mod_keys_parse_and_agree() -> None:
    signer = parse_skey(GO["peter_skey"])
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3 == PETER.key_id
    assert signer.verifier == PETER
    assert format_vkey(PETER) == GO["peter_vkey"]
    assert format_skey(signer) == GO["peter_skey"]
    assert ENOCH.key_id == 0xAF0CFE78


def test_key_id_is_the_spec_hash() -> None:
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + PETER.public_key).digest()[:4]
    assert key_id("PeterNeumann", SIG_TYPE_ED25519, PETER.public_key).to_bytes(4, "big") == (
        expected
    )


def test_every_mangling_of_the_vkey_is_refused() -> None:
    # x/mod's TestNewVerifier: every proper substring and every byte incremented.
    vkey = GO["peter_vkey"]
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with refused("bad-key"):
                    parse_vkey(vkey[i:j])
    for i in range(len(vkey)):
        with refused("bad-key"):
            parse_vkey(vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :])
    for bad in (GO["bad_vkey_wrong_length"], GO["bad_vkey_unknown_algorithm"]):
        with refused("bad-key"):
            parse_vkey(bad)


def test_every_mangling_of_the_skey_is_refused() -> None:
    skey = GO["peter_skey"]
    for i in range(len(skey) + 1):
        for j in range(i + 1, len(skey) + 1):
            if (i, j) != (0, len(skey)):
                with refused("bad-key"):
                    parse_skey(skey[i:j])
    for i in range(len(skey)):
        with refused("bad-key"):
            parse_skey(skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :])


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # uppercase hex
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # empty name
        "PeterNeumann+c74f20a3+",  # no key
        "PeterNeumann+c74f20a3",  # two parts
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",  # newline
    ],
)
def test_malformed_vkeys_are_refused(vkey: str) -> None:
    with refused("bad-key"):
        parse_vkey(vkey)


def test_vkeys_from_transparency_dev() -> None:
    # Base64 with a '+' in it: only the first two '+' separate the parts.
    plain = parse_vkey(TD["ed25519_vkey_with_plus_in_base64"])
    assert (plain.name, plain.sig_type) == ("TEST", SIG_TYPE_ED25519)
    assert format_vkey(plain) == TD["ed25519_vkey_with_plus_in_base64"]
    witness = parse_vkey(TD["cosigner_vkey"])
    assert witness.sig_type == SIG_TYPE_COSIGNATURE_V1
    assert format_vkey(witness) == TD["cosigner_vkey"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com/log42", True),
        ("zhol/KZ/GOV/MJ/gw1", True),
        ("", False),
        ("a+b", False),
        ("a b", False),
        ("a\u00a0b", False),
        ("a\u3000b", False),
        ("a\tb", False),
        ("a\x01b", False),
    ],
)
def test_key_names(name: str, valid: bool) -> None:
    assert is_valid_key_name(name) is valid
    key = ed25519.Ed25519PrivateKey.generate()
    if valid:
        assert parse_vkey(format_vkey(ed25519_verifier(name, key.public_key()))).name == name
    else:
        with refused("bad-key"):
            NoteSigner(name, key)


def test_a_verifier_refuses_a_wrong_key_length_or_type() -> None:
    with refused("bad-key"):
        Verifier("a", SIG_TYPE_ED25519, b"\x00" * 31)
    with refused("bad-key"):
        Verifier("a", 0x02, PETER.public_key)


# --- notes ------------------------------------------------------------------------


def test_sign_gives_the_x_mod_note_byte_for_byte() -> None:
    assert sign_note(TEXT, [parse_skey(GO["peter_skey"])]) == (TEXT + "\n" + PETER_SIG).encode()


def test_open_one_known_one_unknown() -> None:
    opened = open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [PETER])
    assert opened.text == TEXT
    assert [s.line for s in opened.verified] == [PETER_SIG]
    assert [s.line for s in opened.unverified] == [ENOCH_SIG]
    assert opened.verified[0].key_id == 0xC74F20A3


def test_open_both_known() -> None:
    opened = open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [PETER, ENOCH])
    assert [s.line for s in opened.verified] == [PETER_SIG, ENOCH_SIG]
    assert opened.unverified == ()


def test_open_with_no_known_key_is_refused() -> None:
    with refused("no-verified-signature"):
        open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [])


def test_a_key_sharing_only_the_name_or_only_the_id_is_unknown() -> None:
    # The spec: ignore signatures from unknown keys even if they share a name or an ID.
    other = ed25519_verifier("PeterNeumann", ed25519.Ed25519PrivateKey.generate().public_key())
    with refused("no-verified-signature"):
        open_note((TEXT + "\n" + PETER_SIG).encode(), [other])
    renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    with refused("no-verified-signature"):
        open_note((TEXT + "\n" + renamed).encode(), [PETER])


def test_an_ambiguous_verifier_is_refused_only_when_used() -> None:
    with refused("ambiguous-key"):
        open_note((TEXT + "\n" + ENOCH_SIG).encode(), [ENOCH, PETER, ENOCH])
    open_note((TEXT + "\n" + PETER_SIG).encode(), [ENOCH, PETER, ENOCH])


def test_a_known_key_with_a_bad_signature_is_refused() -> None:
    broken = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with refused("bad-signature"):
        open_note((TEXT + "\n" + broken).encode(), [PETER])
    # Even after a good signature by the same key (x/mod would skip the repeat unchecked).
    with refused("bad-signature"):
        open_note((TEXT + "\n" + PETER_SIG + broken).encode(), [PETER])
    # A one-byte signature is well formed, and wrong.
    with refused("bad-signature"):
        open_note((TEXT + "\n" + "\u2014 PeterNeumann x08go/Y=\n").encode(), [PETER])
    # And a changed text.
    with refused("bad-signature"):
        open_note((TEXT.replace("problem", "Problem") + "\n" + PETER_SIG).encode(), [PETER])


def test_duplicated_signatures_are_listed_once() -> None:
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    opened = open_note(note.encode(), [PETER])
    assert [s.line for s in opened.verified] == [PETER_SIG]
    assert [s.line for s in opened.unverified] == [ENOCH_SIG, enoch_abcd]


def test_too_many_signatures_are_refused() -> None:
    many = (TEXT + "\n" + PETER_SIG * 101).encode()  # x/mod refuses 101
    with refused("malformed"):
        open_note(many, [PETER])
    assert len(open_note((TEXT + "\n" + PETER_SIG * 16).encode(), [PETER]).verified) == 1


@pytest.mark.parametrize(
    "note",
    [
        # x/mod's badMsgs
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_B64,
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        # and more
        TEXT + "\n" + PETER_SIG + "\n",  # trailing blank line: the text then has no signature
        TEXT + "\n" + PETER_SIG.replace("\u2014", "-"),  # hyphen, not em dash
        TEXT + "\n" + PETER_SIG.replace("\u2014 ", "\u2014"),  # no space after the dash
        TEXT + "\n" + PETER_SIG.replace(" x08go", "  x08go"),  # two spaces
        TEXT + "\n" + PETER_SIG.replace(" x08go", "\tx08go"),  # tab
        TEXT + "\n" + PETER_SIG.replace("\n", "\r\n"),  # CRLF
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64 padding bits
        TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),  # missing padding
        TEXT + "\n" + PETER_SIG.replace("x08go/", "x08go_"),  # URL-safe alphabet
        TEXT + "\n" + "\u2014 PeterNeumann \n",  # empty signature
        TEXT + "\n" + "\u2014 PeterNeumann x08gow==\n",  # key ID and nothing else
        TEXT + "\n" + "\u2014 PeterNeumann\n",  # no signature at all
        TEXT + "\n" + "\u2014  " + PETER_B64 + "\n",  # empty name
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),  # plus in name
        TEXT + "\n" + "\x0b" + PETER_SIG,  # vertical tab
        TEXT.replace("\n", "\x00\n", 1) + "\n" + PETER_SIG,  # NUL in the text
        "",
        "\n",
        "\n\n",
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with refused("malformed"):
        open_note(note.encode(), [PETER])


def test_invalid_utf8_is_refused() -> None:
    with refused("malformed"):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [PETER])
    with refused("malformed"):
        open_note(TEXT.encode() + b"\xc3\n\n" + PETER_SIG.encode(), [PETER])


def test_the_quasimodo_note_splits_at_its_last_blank_line() -> None:
    text, sigs = parse_note(C2SP["quasimodo_note"].encode())
    assert text.endswith(":\n\ned è subito sera.\n")  # the blank line inside stays text
    assert [s.name for s in sigs] == ["quasimodo.example/salvatore"]
    with refused("no-verified-signature"):
        open_note(C2SP["quasimodo_note"].encode(), [PETER])


def test_the_signed_note_spec_example_verifies() -> None:
    vkey = parse_vkey(C2SP["example_vkey"])
    opened = open_note(C2SP["example_note"].encode(), [vkey])
    assert opened.text == "This is an example message.\n"
    assert opened.verified[0].key_id == 0x530D903A


def test_sign_round_trips_with_two_signers() -> None:
    a = NoteSigner("zhol/KZ/GOV/MJ/gw1", ed25519.Ed25519PrivateKey.generate())
    b = NoteSigner("zhol/KZ/witness", ed25519.Ed25519PrivateKey.generate())
    text = "line one\n\nline three after a blank line\n"
    note = sign_note(text, [a, b])
    opened = open_note(note, [a.verifier, b.verifier])
    assert opened.text == text
    assert [s.name for s in opened.verified] == [a.name, b.name]
    assert open_note(note, [b.verifier]).unverified[0].name == a.name


@pytest.mark.parametrize("text", ["no newline", "", "a\rb\n", "tab\there\n"])
def test_sign_refuses_a_bad_text(text: str) -> None:
    with refused("malformed"):
        sign_note(text, [parse_skey(GO["peter_skey"])])


def test_sign_needs_a_signer() -> None:
    with refused("malformed"):
        sign_note(TEXT, [])


def test_join_note_checks_its_lines() -> None:
    assert join_note(TEXT, [PETER_SIG]) == (TEXT + "\n" + PETER_SIG).encode()
    for lines in ([], [PETER_SIG[:-1]], [PETER_SIG + PETER_SIG], ["junk\n"]):
        with refused("malformed"):
            join_note(TEXT, lines)


# --- checkpoints ------------------------------------------------------------------


def test_the_spec_checkpoint_parses_and_formats_back() -> None:
    text = C2SP["cosigned_message"].split("\n", 2)[2]
    cp = parse_checkpoint(text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert base64.b64encode(cp.root_hash).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert cp.extensions == ()
    assert format_checkpoint(cp) == text


@pytest.mark.parametrize(
    "cp",
    [
        Checkpoint("zhol/KZ/GOV/MJ/gw1", 0, bytes(32)),
        Checkpoint("zhol/KZ/GOV/MJ/gw1", 2**64 - 1, ROOT),
        Checkpoint("o", 7, ROOT, ("ext one", "ext\u2014two")),
    ],
)
def test_checkpoints_round_trip(cp: Checkpoint) -> None:
    assert parse_checkpoint(format_checkpoint(cp)) == cp


R64 = base64.b64encode(ROOT).decode()
URLSAFE64 = base64.urlsafe_b64encode(b"\xff" * 32).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{R64}",  # no final newline
        "o\n1\n",  # two lines
        f"\n1\n{R64}\n",  # empty origin
        f"o\n01\n{R64}\n",  # leading zero
        f"o\n00\n{R64}\n",
        f"o\n+1\n{R64}\n",
        f"o\n-1\n{R64}\n",
        f"o\n 1\n{R64}\n",
        f"o\n1 \n{R64}\n",
        f"o\n1_0\n{R64}\n",
        f"o\n\u0661\n{R64}\n",  # an Arabic-Indic digit int() would accept
        f"o\n0x1\n{R64}\n",
        f"o\n\n{R64}\n",
        f"o\n{2**64}\n{R64}\n",  # beyond uint64
        "o\n1\n\n",
        f"o\n1\n{R64[:-1]}\n",  # bad base64
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31 bytes
        f"o\n1\n{base64.b64encode(ROOT + b'x').decode()}\n",  # 33 bytes
        f"o\n1\n{URLSAFE64}\n",  # URL-safe alphabet
        f"o\n1\n{R64}\n\n",  # empty extension line
        f"o\n1\n{R64}\next\n\nmore\n",
        f"o\x01\n1\n{R64}\n",  # control character
        f"o\r\n1\n{R64}\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with refused("malformed"):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "ext"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
    ],
)
def test_a_checkpoint_value_is_checked_when_made(
    origin: str, size: int, root: bytes, ext: tuple[str, ...]
) -> None:
    with refused("malformed"):
        Checkpoint(origin, size, root, ext)


def test_a_gateway_origin_is_a_valid_key_name() -> None:
    assert gateway_origin("KZ/GOV/MJ/gw1") == "zhol/KZ/GOV/MJ/gw1"
    for bad in ("", "KZ/GOV/MJ/gw 1", "KZ+1", "KZ\n"):
        with refused("bad-key"):
            gateway_origin(bad)


def test_a_signed_checkpoint_opens_and_parses() -> None:
    log = NoteSigner(gateway_origin("KZ/GOV/MJ/gw1"), ed25519.Ed25519PrivateKey.generate())
    cp = Checkpoint(log.name, 42, ROOT)
    opened = open_note(sign_note(format_checkpoint(cp), [log]), [log.verifier])
    assert parse_checkpoint(opened.text) == cp


# --- cosignatures -----------------------------------------------------------------


def test_the_cosigned_message_is_the_spec_example() -> None:
    text = C2SP["cosigned_message"].split("\n", 2)[2]
    assert (
        cosignature_message(text.encode(), C2SP["cosignature_time"]).decode()
        == (C2SP["cosigned_message"])
    )


def test_the_spec_cosignature_states_its_time() -> None:
    _, sigs = parse_note(C2SP["cosigned_checkpoint"].encode())
    assert sigs[1].name == "witness.example.com/w1"
    assert cosignature_timestamp(sigs[1]) == C2SP["cosignature_time"]


def test_transparency_dev_cosignature_timestamps() -> None:
    good = sig_of(f"\u2014 w {TD['cosignature_b64']}\n")
    assert cosignature_timestamp(good) == TD["cosignature_time"]
    with refused("malformed"):
        cosignature_timestamp(sig_of(f"\u2014 w {TD['plain_signature_b64']}\n"))


def test_cosign_pins_our_output_and_verifies() -> None:
    key = parse_skey(REG["witness_seed_skey"]).private_key
    line = cosign(REG["checkpoint"], key, REG["witness_name"], REG["time"])
    assert line == REG["cosignature_line"]
    witness = parse_vkey(REG["witness_vkey"])
    assert witness == cosigner_verifier(REG["witness_name"], key.public_key())
    assert verify_cosignature(REG["checkpoint"], line, witness) == REG["time"]


def test_a_cosigned_checkpoint_opens_with_log_and_witness_keys() -> None:
    log = NoteSigner("zhol/KZ/GOV/MJ/gw1", ed25519.Ed25519PrivateKey.generate())
    wkey = ed25519.Ed25519PrivateKey.generate()
    witness = cosigner_verifier("zhol/KZ/witness", wkey.public_key())
    text = format_checkpoint(Checkpoint(log.name, 3, ROOT))
    signed = sign_note(text, [log])
    _, sigs = parse_note(signed)
    cosigned = join_note(text, [*sigs, cosign(text, wkey, witness.name, 1_800_000_000)])
    opened = open_note(cosigned, [log.verifier, witness])
    assert [s.name for s in opened.verified] == [log.name, witness.name]
    assert cosignature_timestamp(opened.verified[1]) == 1_800_000_000
    # The same key as a plain Ed25519 verifier has another key ID: not a match.
    plain = ed25519_verifier(witness.name, wkey.public_key())
    assert open_note(cosigned, [log.verifier, plain]).unverified[0].name == witness.name
    # A log signature is not a cosignature, nor the reverse.
    with refused("unknown-key"):
        verify_cosignature(text, sigs[0].line, witness)


def test_a_cosignature_covers_time_and_every_line() -> None:
    wkey = ed25519.Ed25519PrivateKey.generate()
    witness = cosigner_verifier("w", wkey.public_key())
    text = format_checkpoint(Checkpoint("o", 3, ROOT, ("ext",)))
    line = cosign(text, wkey, "w", 1000)
    assert verify_cosignature(text, line, witness) == 1000
    sig = sig_of(line)
    other_time = NoteSignature(sig.name, sig.key_id, (1001).to_bytes(8, "big") + sig.signature[8:])
    with refused("bad-signature"):
        verify_cosignature(text, other_time.line, witness)
    with refused("bad-signature"):
        verify_cosignature(text.replace("ext", "exu"), line, witness)
    with refused("bad-signature"):
        verify_cosignature(text.replace("\n3\n", "\n4\n"), line, witness)
    another = cosigner_verifier("w", ed25519.Ed25519PrivateKey.generate().public_key())
    with refused("unknown-key"):
        verify_cosignature(text, line, another)


def test_a_cosignature_timestamp_beyond_2_63_is_refused() -> None:
    wkey = ed25519.Ed25519PrivateKey.generate()
    text = format_checkpoint(Checkpoint("o", 3, ROOT))
    with refused("malformed"):
        cosign(text, wkey, "w", 2**63)
    with refused("malformed"):
        cosign(text, wkey, "w", -1)
    # A signature over the out-of-range time, made by hand, is still refused.
    big = 2**63
    signed = wkey.sign(cosignature_message(text.encode(), big))
    witness = cosigner_verifier("w", wkey.public_key())
    line = NoteSignature("w", witness.key_id, big.to_bytes(8, "big") + signed).line
    with refused("malformed"):
        verify_cosignature(text, line, witness)
    with refused("bad-signature"):
        open_note(join_note(text, [line]), [witness])


@pytest.mark.parametrize(
    "line",
    ["", "\n", "junk\n", "\u2014 w AAAA\n\n", "\u2014 w AAAAAAAA"],
)
def test_a_malformed_cosignature_line_is_refused(line: str) -> None:
    witness = cosigner_verifier("w", ed25519.Ed25519PrivateKey.generate().public_key())
    with refused("malformed"):
        verify_cosignature(format_checkpoint(Checkpoint("o", 1, ROOT)), line, witness)


def test_only_a_checkpoint_is_cosigned() -> None:
    wkey = ed25519.Ed25519PrivateKey.generate()
    with refused("malformed"):
        cosign("just some text\n", wkey, "w", 1)
    with refused("bad-key"):
        cosign(format_checkpoint(Checkpoint("o", 1, ROOT)), wkey, "bad name", 1)
    with refused("bad-key"):
        verify_cosignature(
            format_checkpoint(Checkpoint("o", 1, ROOT)),
            "\u2014 w AAAAAAAA\n",
            ed25519_verifier("w", wkey.public_key()),
        )
