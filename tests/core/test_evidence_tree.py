"""The log's tree against RFC 6962's own recursive definitions: roots, audit paths and
consistency proofs built from stored perfect subtrees equal the ones the RFC defines,
for every size and position up to 70 leaves."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from gateway.evidence_log.entries import canonical, entry, export_line, split_personal
from gateway.evidence_log.tree import (
    EMPTY_ROOT,
    Appender,
    Coordinates,
    consistency_ranges,
    hashes_of,
    inclusion_ranges,
    leaf_hash,
    needed,
    node_hash,
    range_hash,
    subtrees,
)

LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(70)]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, as written."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1, PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 6962 section 2.1.2, SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def stored(size: int) -> dict[Coordinates, bytes]:
    """Every subtree an appender stores for the first `size` leaves, with the leaves."""
    appender = Appender.over(0, {})
    nodes: dict[Coordinates, bytes] = {}
    for index, leaf in enumerate(LEAVES[:size]):
        nodes[0, index] = leaf
        nodes.update(((level, pos), hashed) for level, pos, hashed in appender.append(leaf))
    return nodes


ALL = stored(len(LEAVES))


def test_the_empty_tree_and_the_hash_prefixes_are_rfc_6962s() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@pytest.mark.parametrize("size", range(71))
def test_appending_one_leaf_at_a_time_gives_rfc_6962_roots(size: int) -> None:
    appender = Appender.over(0, {})
    for leaf in LEAVES[:size]:
        appender.append(leaf)
    assert appender.size == size
    assert appender.root == mth(LEAVES[:size])
    assert range_hash(0, size, ALL) == mth(LEAVES[:size])


@pytest.mark.parametrize("start", [0, 1, 2, 5, 8, 13, 32, 33])
def test_an_appender_resumed_from_stored_subtrees_goes_on_where_it_was(start: int) -> None:
    nodes = stored(start)
    appender = Appender.over(start, {c: nodes[c] for c in subtrees(0, start)})
    completed = []
    for leaf in LEAVES[start:]:
        completed.extend(appender.append(leaf))
    assert appender.root == mth(LEAVES)
    assert {(level, pos): hashed for level, pos, hashed in completed} == {
        c: hashed for c, hashed in ALL.items() if c[0] > 0 and c not in nodes
    }


def test_a_stored_subtree_is_the_hash_of_exactly_its_leaves() -> None:
    for (level, pos), hashed in ALL.items():
        assert hashed == mth(LEAVES[pos << level : (pos + 1) << level])
    assert subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert subtrees(12, 16) == [(2, 3)]
    assert subtrees(0, 0) == []


def test_audit_paths_are_rfc_6962s_for_every_leaf_of_every_size() -> None:
    for size in range(1, 71):
        for index in range(size):
            ranges = inclusion_ranges(index, size)
            assert needed(ranges) <= ALL.keys()
            assert hashes_of(ranges, ALL) == path(index, LEAVES[:size]), (index, size)


def test_consistency_proofs_are_rfc_6962s_for_every_pair_of_sizes() -> None:
    for new in range(71):
        for old in range(new + 1):
            expected = [] if old == 0 else subproof(old, LEAVES[:new], True)
            assert hashes_of(consistency_ranges(old, new), ALL) == expected, (old, new)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 3)])
def test_a_leaf_outside_the_tree_has_no_path(index: int, size: int) -> None:
    with pytest.raises(ValueError, match=f"leaf {index} is not in a tree of {size}"):
        inclusion_ranges(index, size)


def test_no_consistency_proof_goes_backwards() -> None:
    with pytest.raises(ValueError, match="no consistency proof from 5 to 4"):
        consistency_ranges(5, 4)


def test_an_entry_is_canonical_and_keeps_personal_fields_out() -> None:
    data = {"grant": "g1", "client_address": "192.0.2.7", "user_agent": None, "b": [1, "é"]}
    kept, personal = split_personal(data)
    assert kept == {"grant": "g1", "b": [1, "é"]}
    assert personal == {"client_address": "192.0.2.7"}
    written = entry(
        index=3,
        evidence_id=9,
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        kind="download.started",
        actor="account:a1",
        model_id=1,
        release_id=None,
        account_id="a1",
        data=kept,
        personal=b"\xab" * 32,
    )
    assert (
        written
        == (
            '{"account_id":"a1","actor":"account:a1","at":"2026-01-02T03:04:05+00:00",'
            '"data":{"b":[1,"é"],"grant":"g1"},"id":9,"index":3,"kind":"download.started",'
            f'"model_id":1,"personal":"{"ab" * 32}","release_id":null,"v":1}}'
        ).encode()
    )
    line = export_line(written, leaf_hash(written))
    assert (
        line
        == canonical({"entry": canonical_value(written), "leaf_hash": leaf_hash(written).hex()})
        + b"\n"
    )


def canonical_value(encoded: bytes) -> object:

    return json.loads(encoded)
