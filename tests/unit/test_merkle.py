"""zhol.security.merkle against the transparency-dev/merkle vectors (tests/vectors/merkle/),
the RFC 6962 known-answer roots, and the RFC 9162 definitions written again here."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from zhol.security.merkle import (
    EMPTY_ROOT,
    MerkleError,
    ProofError,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_from_leaves,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "merkle"
VECTOR_FILES = sorted(p.relative_to(VECTORS).as_posix() for p in VECTORS.rglob("*.json"))

# The 8-leaf tree of the certificate-transparency C++ tests (merkle_tree_test.cc), as
# carried by google/trillian testonly/compact_merkle_tree.go (Apache-2.0): the inputs
# and MTH of the first n leaves for n = 1..8.
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

MAX_PAIRS = 64  # every (index, size) and (size1, size2) pair up to this many leaves
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]


def b64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def check_vector(case: dict[str, Any]) -> None:
    proof = [b64(p) for p in case["proof"] or []]
    if "leafIdx" in case:
        verify_inclusion(
            b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, b64(case["root"])
        )
    else:
        verify_consistency(
            case["size1"], case["size2"], proof, b64(case["root1"]), b64(case["root2"])
        )


@pytest.mark.parametrize("name", VECTOR_FILES)
def test_agrees_with_the_transparency_dev_vector(name: str) -> None:
    case = json.loads((VECTORS / name).read_text())
    if case["wantErr"]:
        with pytest.raises(ProofError):
            check_vector(case)
    else:
        check_vector(case)


def test_every_vector_file_is_found() -> None:
    # The directory copied whole: a lost file would silently shrink the parametrisation.
    assert len(VECTOR_FILES) == 196


# The RFC 9162 definitions again, recursively, independent of the module's iterative code.
def mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def spec_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return spec_path(m, leaves[:k]) + [mth(leaves[k:])]
    return spec_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def spec_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return spec_subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return spec_subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def test_hashing_and_the_ct_known_answer_roots() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"L", b"R") == hashlib.sha256(b"\x01LR").digest()
    assert root([]) == EMPTY_ROOT == TreeState().root()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    hashes = [leaf_hash(x) for x in CT_INPUTS]
    state = TreeState()
    for n, want in enumerate(CT_ROOTS, start=1):
        state = state.append(hashes[n - 1])
        assert root(hashes[:n]).hex() == want
        assert state.root().hex() == want


def test_appending_one_by_one_gives_the_root_of_all_leaves() -> None:
    state = TreeState()
    for n in range(len(LEAVES) + 1):
        assert state.size == n
        assert state.root() == root(LEAVES[:n])
        if n <= 130:  # the recursive definition is slower; enough sizes to cover 2**7 + 2
            assert state.root() == mth(LEAVES[:n])
        back = TreeState.from_bytes(state.to_bytes())
        assert back == state
        assert len(state.to_bytes()) == 9 + 32 * n.bit_count()
        if n < len(LEAVES):
            state = state.append(LEAVES[n])


def test_the_serialised_state_is_pinned() -> None:
    # version 1, u64be size 3, MTH(first two CT leaves), leaf hash of the third.
    state = TreeState().extend(leaf_hash(x) for x in CT_INPUTS[:3])
    want = "01" + "0000000000000003" + CT_ROOTS[1] + hashlib.sha256(b"\x00\x10").hexdigest()
    assert state.to_bytes().hex() == want
    assert TreeState.from_bytes(bytes.fromhex(want)).root().hex() == CT_ROOTS[2]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02" + (1).to_bytes(8, "big") + b"\x00" * 32,  # unknown version
        b"\x01" + (3).to_bytes(8, "big") + b"\x00" * 32,  # one hash short
        b"\x01" + (1).to_bytes(8, "big") + b"\x00" * 33,  # trailing byte
        b"\x01" + (0).to_bytes(8, "big") + b"\x00" * 32,  # hash for an empty tree
        b"\x01" + (2).to_bytes(7, "big"),  # truncated size
    ],
)
def test_a_bad_serialised_state_is_refused(data: bytes) -> None:
    with pytest.raises(MerkleError) as caught:
        TreeState.from_bytes(data)
    assert caught.value.reason == "bad-state"


def test_a_bad_state_or_leaf_is_refused() -> None:
    with pytest.raises(MerkleError) as caught:
        TreeState(2, ())
    assert caught.value.reason == "bad-state"
    with pytest.raises(MerkleError) as caught:
        TreeState(1, (b"short",))
    assert caught.value.reason == "bad-hash-length"
    with pytest.raises(MerkleError) as caught:
        TreeState().append(b"data, not a leaf hash")
    assert caught.value.reason == "bad-hash-length"


def test_append_reports_every_perfect_subtree_it_completes() -> None:
    # A store of the reported nodes serves the same proofs as the leaves themselves.
    store: dict[tuple[int, int], bytes] = {}
    state = TreeState()
    for leaf in LEAVES[:MAX_PAIRS]:
        state, nodes = state.append_with_nodes(leaf)
        for node in nodes:
            store[(node.level, node.index)] = node.hash
    from_leaves = nodes_from_leaves(LEAVES)
    for (level, index), value in store.items():
        assert from_leaves(level, index) == value
    assert len(store) == 2 * MAX_PAIRS - 1

    def from_store(level: int, index: int) -> bytes:
        return store[(level, index)]

    for size in range(1, MAX_PAIRS + 1):
        for index in range(size):
            assert inclusion_proof(index, size, from_store) == inclusion_proof(
                index, size, from_leaves
            )
        for size1 in range(1, size + 1):
            assert consistency_proof(size1, size, from_store) == consistency_proof(
                size1, size, from_leaves
            )


READ = functools.cache(nodes_from_leaves(LEAVES))


def flips(value: bytes, every_bit: bool, salt: int) -> list[bytes]:
    """``value`` with one bit flipped: every bit, or one bit chosen by ``salt``."""
    bits = range(len(value) * 8) if every_bit else [salt * 37 % (len(value) * 8)]
    out = []
    for bit in bits:
        changed = bytearray(value)
        changed[bit // 8] ^= 1 << (bit % 8)
        out.append(bytes(changed))
    return out


def test_inclusion_proofs_verify_and_any_flipped_bit_fails() -> None:
    for size in range(1, MAX_PAIRS + 1):
        tree_root = root(LEAVES[:size])
        for index in range(size):
            proof = inclusion_proof(index, size, READ)
            assert list(proof) == spec_path(index, LEAVES[:size])
            leaf = LEAVES[index]
            verify_inclusion(leaf, index, size, proof, tree_root)
            every_bit = size <= 9 or (index, size) in {(37, 64), (62, 63)}
            salt = size * 101 + index
            for bad_root in flips(tree_root, every_bit, salt):
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, index, size, proof, bad_root)
            for bad_leaf in flips(leaf, every_bit, salt):
                with pytest.raises(ProofError):
                    verify_inclusion(bad_leaf, index, size, proof, tree_root)
            for i, component in enumerate(proof):
                for bad in flips(component, every_bit, salt + i):
                    changed = (*proof[:i], bad, *proof[i + 1 :])
                    with pytest.raises(ProofError):
                        verify_inclusion(leaf, index, size, changed, tree_root)
            for other in range(size):
                if other != index:
                    with pytest.raises(ProofError):
                        verify_inclusion(leaf, other, size, proof, tree_root)


def test_consistency_proofs_verify_and_any_flipped_bit_fails() -> None:
    roots = [root(LEAVES[:n]) for n in range(MAX_PAIRS + 1)]
    for size2 in range(1, MAX_PAIRS + 1):
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2, READ)
            assert list(proof) == spec_subproof(size1, LEAVES[:size2], True)
            root1, root2 = roots[size1], roots[size2]
            verify_consistency(size1, size2, proof, root1, root2)
            every_bit = size2 <= 9 or (size1, size2) in {(13, 64), (33, 47)}
            salt = size2 * 101 + size1
            for bad in flips(root1, every_bit, salt):
                with pytest.raises(ProofError):
                    verify_consistency(size1, size2, proof, bad, root2)
            for bad in flips(root2, every_bit, salt + 1):
                with pytest.raises(ProofError):
                    verify_consistency(size1, size2, proof, root1, bad)
            for i, component in enumerate(proof):
                for bad in flips(component, every_bit, salt + i):
                    changed = (*proof[:i], bad, *proof[i + 1 :])
                    with pytest.raises(ProofError):
                        verify_consistency(size1, size2, changed, root1, root2)
            # The same proof never vouches for another old size.
            for other in range(1, size2 + 1):
                if other != size1:
                    with pytest.raises(ProofError):
                        verify_consistency(other, size2, proof, roots[other], root2)


def reason_of(call: Any, *args: Any) -> str:
    with pytest.raises(ProofError) as caught:
        call(*args)
    return caught.value.reason


def test_each_failure_has_its_reason() -> None:
    r5, r7 = root(LEAVES[:5]), root(LEAVES[:7])
    incl = inclusion_proof(2, 5, READ)
    cons = consistency_proof(5, 7, READ)
    leaf = LEAVES[2]
    assert reason_of(verify_inclusion, leaf, 5, 5, incl, r5) == "index-out-of-range"
    assert reason_of(verify_inclusion, leaf, 0, 0, (), EMPTY_ROOT) == "index-out-of-range"
    assert reason_of(verify_inclusion, leaf, 2, 5, incl[:-1], r5) == "wrong-proof-size"
    assert reason_of(verify_inclusion, leaf, 2, 5, (*incl, r5), r5) == "wrong-proof-size"
    assert reason_of(verify_inclusion, leaf[:31], 2, 5, incl, r5) == "bad-hash-length"
    assert reason_of(verify_inclusion, leaf, 2, 5, (incl[0][:31], *incl[1:]), r5) == (
        "bad-hash-length"
    )
    assert reason_of(verify_inclusion, leaf, 2, 5, incl, r7) == "root-mismatch"
    assert reason_of(verify_consistency, 7, 5, cons, r7, r5) == "size-order"
    assert reason_of(verify_consistency, 0, 5, cons, EMPTY_ROOT, r5) == "size-zero"
    assert reason_of(verify_consistency, 0, 0, (), EMPTY_ROOT, EMPTY_ROOT) == "size-zero"
    assert reason_of(verify_consistency, 5, 5, cons, r5, r5) == "wrong-proof-size"
    assert reason_of(verify_consistency, 5, 5, (), r5, r7) == "root-mismatch"
    assert reason_of(verify_consistency, 5, 7, (), r5, r7) == "wrong-proof-size"
    assert reason_of(verify_consistency, 5, 7, cons[:-1], r5, r7) == "wrong-proof-size"
    assert reason_of(verify_consistency, 5, 7, cons, r5, r5) == "root-mismatch"
    assert reason_of(verify_consistency, 5, 7, cons, r7, r7) == "root-mismatch"
    assert reason_of(inclusion_proof, 5, 5, READ) == "index-out-of-range"
    assert reason_of(consistency_proof, 0, 5, READ) == "size-zero"
    assert reason_of(consistency_proof, 6, 5, READ) == "size-order"
    verify_consistency(5, 5, (), r5, r5)
