"""The stand-alone verifier: hashing and proofs against RFC 6962's recursive definitions,
Ed25519 against RFC 8032 and the `cryptography` package, checkpoints, and every message an
altered export gets."""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.evidence_log import reference_verify as rv

SOURCE = Path(rv.__file__)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1: the Merkle Tree Hash, by its recursive definition, over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return rv.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def split(n: int) -> int:
    """The largest power of two smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1: PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """RFC 6962 2.1.2: SUBPROOF(m, D[n], b)."""
    if m == len(leaves):
        return [] if complete else [mth(leaves)]
    k = split(len(leaves))
    if m <= k:
        return [*subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def consistency(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.2: PROOF(m, D[n]); empty for m = 0, which RFC 9162 leaves undefined."""
    return subproof(m, leaves, True) if m else []


LEAVES = [rv.leaf_hash(f"leaf {i}".encode()) for i in range(70)]


def flipped(value: bytes, at: int = 0) -> bytes:
    return value[:at] + bytes([value[at] ^ 1]) + value[at + 1 :]


# RFC 6962 hashing


def test_the_empty_tree_and_a_leaf_hash_have_their_known_values() -> None:
    assert rv.root_of([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert rv.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_roots_of_the_certificate_transparency_test_tree() -> None:
    # The eight leaves and roots every RFC 6962 implementation tests against.
    entries = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
    entries.append("606162636465666768696a6b6c6d6e6f")
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    leaves = [rv.leaf_hash(bytes.fromhex(e)) for e in entries]
    assert [rv.root_of(leaves[:n]).hex() for n in range(1, 9)] == roots


def test_the_streamed_root_is_the_recursive_definition_for_every_size_to_70() -> None:
    for n in range(1, 71):
        assert rv.root_of(iter(LEAVES[:n])) == mth(LEAVES[:n]), n


# Inclusion and consistency proofs, RFC 9162 2.1.3.2 and 2.1.4.2


@pytest.mark.parametrize("n", range(1, 41))
def test_inclusion_proofs_verify_and_any_change_refuses_them(n: int) -> None:
    leaves = LEAVES[:n]
    root = mth(leaves)
    for m in range(n):
        proof = path(m, leaves)
        assert rv.verify_inclusion(m, n, leaves[m], proof, root)
        assert not rv.verify_inclusion(m, n, flipped(leaves[m]), proof, root)
        assert not rv.verify_inclusion(m, n, leaves[m], proof, flipped(root, 31))
        for i in range(len(proof)):
            bad = [*proof[:i], flipped(proof[i], i), *proof[i + 1 :]]
            assert not rv.verify_inclusion(m, n, leaves[m], bad, root)
        assert not rv.verify_inclusion(m, n, leaves[m], [*proof, root], root)
        if proof:
            assert not rv.verify_inclusion(m, n, leaves[m], proof[:-1], root)
        for other in (m - 1, m + 1, n):
            assert not rv.verify_inclusion(other, n, leaves[m], proof, root)
        # A proof does not bind the tree size, so with another size and that tree's root
        # it verifies exactly when it is also that tree's proof: never, for these leaves.
        for size in (n - 1, n + 1):
            expected = m < size and path(m, LEAVES[:size]) == proof
            assert rv.verify_inclusion(m, size, leaves[m], proof, mth(LEAVES[:size])) is expected
            assert not expected


@pytest.mark.parametrize("n", range(1, 41))
def test_consistency_proofs_verify_and_any_change_refuses_them(n: int) -> None:
    root2 = mth(LEAVES[:n])
    for m in range(n + 1):
        root1 = mth(LEAVES[:m])
        proof = consistency(m, LEAVES[:n])
        assert rv.verify_consistency(m, n, root1, root2, proof)
        assert not rv.verify_consistency(m, n, flipped(root1), root2, proof)
        # The empty tree is a prefix of every tree: nothing about root2 is proven from it.
        assert rv.verify_consistency(m, n, root1, flipped(root2), proof) is (m == 0)
        for i in range(len(proof)):
            bad = [*proof[:i], flipped(proof[i], i), *proof[i + 1 :]]
            assert not rv.verify_consistency(m, n, root1, root2, bad)
        assert not rv.verify_consistency(m, n, root1, root2, [*proof, root2])
        if proof:
            assert not rv.verify_consistency(m, n, root1, root2, proof[:-1])
        for size1, size2 in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
            if not 0 <= size1 <= size2:
                assert not rv.verify_consistency(size1, size2, root1, root2, proof)
                continue
            first, second = mth(LEAVES[:size1]), mth(LEAVES[:size2])
            # As with inclusion: it verifies exactly when it is also the other pair's proof,
            # which happens only for the empty proofs of equal trees or of the empty tree.
            expected = consistency(size1, LEAVES[:size2]) == proof
            assert rv.verify_consistency(size1, size2, first, second, proof) is expected
            assert expected == (not proof and size1 in (size2, 0))


def test_consistency_refuses_a_shrinking_tree_and_a_wrong_empty_root() -> None:
    assert not rv.verify_consistency(5, 4, mth(LEAVES[:5]), mth(LEAVES[:4]), [])
    assert not rv.verify_consistency(0, 4, LEAVES[0], mth(LEAVES[:4]), [])


# Ed25519, RFC 8032


# RFC 8032 section 7.1, tests 1 to 3: (secret key, public key, message, signature).
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors_verify(secret: str, public: str, message: str, signature: str) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert raw_public(key).hex() == public
    assert rv.ed25519_verify(
        bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    )
    wrong = bytes.fromhex(message) + b"\x00"
    assert not rv.ed25519_verify(bytes.fromhex(public), wrong, bytes.fromhex(signature))


@pytest.mark.parametrize("seed", range(8))
def test_signatures_by_cryptography_verify_and_a_flipped_bit_anywhere_refuses(seed: int) -> None:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(bytes([seed])).digest())
    public, message = raw_public(key), f"checkpoint {seed}\n".encode() * (seed + 1)
    signature = key.sign(message)
    assert rv.ed25519_verify(public, message, signature)
    assert not rv.ed25519_verify(public, flipped(message, seed), signature)
    assert not rv.ed25519_verify(public, message, flipped(signature, seed))  # R
    assert not rv.ed25519_verify(public, message, flipped(signature, 32 + seed))  # S
    assert not rv.ed25519_verify(flipped(public, seed), message, signature)
    assert not rv.ed25519_verify(public, message, signature[:63])
    assert not rv.ed25519_verify(public[:31], message, signature)


def test_s_at_or_past_the_group_order_is_refused() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    public, message = raw_public(key), b"evidence"
    signature = key.sign(message)
    s = int.from_bytes(signature[32:], "little")
    # S + L satisfies the group equation just as S does; only the S < L check refuses it.
    assert s + L < 2**256
    assert not rv.ed25519_verify(public, message, signature[:32] + (s + L).to_bytes(32, "little"))
    assert not rv.ed25519_verify(public, message, signature[:32] + L.to_bytes(32, "little"))


def test_non_canonical_points_are_refused() -> None:
    identity = (1).to_bytes(32, "little")
    zero_s = bytes(32)
    # With the neutral point as key and as R, S = 0 satisfies the equation for any message
    # (RFC 8032 does not refuse small-order keys); so each refusal below comes from the
    # point's encoding alone.
    assert rv.ed25519_verify(identity, b"m", identity + zero_s)
    above_p = (P + 1).to_bytes(32, "little")  # y = p + 1, the neutral point's y plus p
    signed_zero = (1 | 1 << 255).to_bytes(32, "little")  # x = 0 with the sign bit set
    for bad in (above_p, signed_zero):
        assert not rv.ed25519_verify(bad, b"m", identity + zero_s)
        assert not rv.ed25519_verify(identity, b"m", bad + zero_s)


# Checkpoints and verifier keys, C2SP signed notes

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
NAME = "gateway.example/evidence"
ORIGIN = "gateway.example/evidence"
TIME = "2026-12-02T01:02:03Z"


def verifier_key_text(key: Ed25519PrivateKey = KEY, name: str = NAME) -> str:
    public = raw_public(key)
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    encoded = base64.b64encode(b"\x01" + public).decode()
    return f"{name}+{key_id.hex()}+{encoded}\n"


VERIFIER = rv.parse_verifier_key(verifier_key_text())


def body_text(size: int, root: bytes, origin: str = ORIGIN) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {TIME}\n"


def signature_line(body: str, key: Ed25519PrivateKey = KEY, name: str = NAME) -> str:
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + raw_public(key)).digest()[:4]
    signature = key.sign(body.encode())
    return f"\N{EM DASH} {name} {base64.b64encode(key_id + signature).decode()}\n"


def note_text(size: int, root: bytes) -> str:
    body = body_text(size, root)
    return f"{body}\n{signature_line(body)}"


def test_a_signed_checkpoint_parses_and_verifies() -> None:
    root = mth(LEAVES[:5])
    checkpoint = rv.parse_checkpoint(note_text(5, root).encode())
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, 5, root)
    assert (checkpoint.time, checkpoint.extensions) == (TIME, (f"time {TIME}",))
    assert checkpoint.body == body_text(5, root).encode()
    assert [(s.key_name, s.key_id) for s in checkpoint.signatures] == [(NAME, VERIFIER.key_id)]
    rv.verify_checkpoint(checkpoint, VERIFIER)


def test_unknown_signatures_are_ignored_and_a_missing_one_is_named() -> None:
    body = body_text(5, mth(LEAVES[:5]))
    both = f"{body}\n{signature_line(body, OTHER_KEY, 'witness.example')}{signature_line(body)}"
    rv.verify_checkpoint(rv.parse_checkpoint(both), VERIFIER)
    theirs = rv.parse_checkpoint(f"{body}\n{signature_line(body, OTHER_KEY, 'witness.example')}")
    with pytest.raises(rv.BadSignature) as refused:
        rv.verify_checkpoint(theirs, VERIFIER)
    assert str(refused.value) == (
        f"checkpoint 5 is not signed by the key {NAME} ({VERIFIER.key_id.hex()}); "
        "it carries signatures by witness.example"
    )
    # Another key under our key's name has another key id, so it is not taken for ours.
    impostor = rv.parse_checkpoint(f"{body}\n{signature_line(body, OTHER_KEY)}")
    with pytest.raises(rv.BadSignature, match="is not signed by the key"):
        rv.verify_checkpoint(impostor, VERIFIER)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"{ORIGIN}\n", "gateway.example/other\n"),
        ("\n5\n", "\n6\n"),
        ("\ntime ", "\ntime 2027"),
    ],
)
def test_a_changed_checkpoint_body_does_not_verify(old: str, new: str) -> None:
    text = note_text(5, mth(LEAVES[:5])).replace(old, new, 1)
    with pytest.raises(rv.BadSignature) as refused:
        rv.verify_checkpoint(rv.parse_checkpoint(text), VERIFIER)
    size = rv.parse_checkpoint(text).size
    assert str(refused.value) == (
        f"the signature by {NAME} on checkpoint {size} does not verify: "
        "the checkpoint was changed after it was signed"
    )


def test_a_changed_root_does_not_verify() -> None:
    text = note_text(5, mth(LEAVES[:5]))
    changed = text.replace(body_text(5, mth(LEAVES[:5])), body_text(5, mth(LEAVES[:6])))
    with pytest.raises(rv.BadSignature, match="checkpoint 5 does not verify"):
        rv.verify_checkpoint(rv.parse_checkpoint(changed), VERIFIER)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (b"\xff\n", "the checkpoint is not UTF-8 text"),
        ("o\n1\x07\n", "the checkpoint holds a control character other than newline"),
        ("o\n5\nAAAA\n", "the checkpoint has no blank line followed by signature lines"),
        ("o\n5\n\n\N{EM DASH} k AAAAAAA=\n", "the checkpoint has fewer than three lines"),
        ("\n5\nAAAA\n\n\N{EM DASH} k AAAAAAA=\n", "the checkpoint's first line, its origin,"),
        ("o\n05\nAAAA\n\n\N{EM DASH} k AAAAAAA=\n", "the checkpoint's tree size '05' is not"),
        ("o\n5\nAAAA\n\n\N{EM DASH} k AAAAAAA=\n", "the checkpoint's third line is not a"),
        ("o\n5\nAAAA\n\n- k AAAAAAA=\n", "line 5 of the checkpoint is not a signature line"),
        ("o\n5\nAAAA\n\n\N{EM DASH} k AAAA\n", "line 5 of the checkpoint is not a signature"),
    ],
)
def test_a_bad_note_is_refused_with_what_is_wrong(note: str | bytes, message: str) -> None:
    with pytest.raises(rv.MalformedInput) as refused:
        rv.parse_checkpoint(note)
    assert str(refused.value).startswith(message)


def test_verifier_keys_are_checked() -> None:
    assert VERIFIER.name == NAME
    assert VERIFIER.public_key == raw_public(KEY)
    good = verifier_key_text()
    name, key_id, encoded = good.strip().split("+", 2)
    with pytest.raises(rv.MalformedInput) as refused:
        rv.parse_verifier_key(f"{name}+00000000+{encoded}")
    assert str(refused.value) == (
        f"the public key {NAME} gives its id as 00000000, but the key's id is {key_id}"
    )
    not_ed25519 = base64.b64encode(b"\x02" + raw_public(KEY)).decode()
    with pytest.raises(rv.MalformedInput, match="is not an Ed25519 signed-note key"):
        rv.parse_verifier_key(f"{name}+{key_id}+{not_ed25519}")
    for bad in (f"{name}+{key_id}", f"{name}+{key_id[:7]}+{encoded}", f"a b+{key_id}+{encoded}"):
        with pytest.raises(rv.MalformedInput, match="is not of the form"):
            rv.parse_verifier_key(bad)


# Exports


def canonical(entry: dict[str, object]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_of(index: int) -> dict[str, object]:
    at = f"2026-12-02T01:{index // 60:02d}:{index % 60:02d}Z"
    return {"index": index, "id": 100 + index, "kind": "download.started", "at": at, "by": "Zoë"}


def line_of(entry: dict[str, object], sealed: bytes | None = None) -> bytes:
    text = canonical(entry)
    seal = rv.leaf_hash(text) if sealed is None else sealed
    return b'{"entry":' + text + b',"leaf_hash":"' + seal.hex().encode() + b'"}\n'


N = 40
LINES = [line_of(entry_of(i)) for i in range(N)]
HASHES = [rv.leaf_hash(canonical(entry_of(i))) for i in range(N)]


def checkpoint(size: int, leaves: list[bytes] = HASHES) -> rv.Checkpoint:
    return rv.parse_checkpoint(note_text(size, mth(leaves[:size])))


CHECKPOINTS = [checkpoint(10), checkpoint(25), checkpoint(N)]


def verify(lines: list[bytes], checkpoints: list[rv.Checkpoint] = CHECKPOINTS) -> rv.Report:
    return rv.verify_export(iter(lines), checkpoints, VERIFIER, reopen=lambda: iter(lines))


def refusal(lines: list[bytes], checkpoints: list[rv.Checkpoint] = CHECKPOINTS) -> str:
    with pytest.raises(rv.VerificationError) as refused:
        verify(lines, checkpoints)
    return str(refused.value)


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def test_a_good_export_verifies_in_one_pass() -> None:
    def never() -> Iterator[bytes]:
        raise AssertionError("a good export is read once")

    report = rv.verify_export((line for line in LINES), CHECKPOINTS, VERIFIER, reopen=never)
    assert (report.origin, report.first_leaf, report.end, report.leaves) == (ORIGIN, 0, N, N)
    assert [c.size for c in report.checked] == [10, 25, 40]
    assert report.skipped == ()
    assert report.summary() == (
        f"verified 40 leaves of {ORIGIN} (leaves 0 to 39) against signed checkpoints "
        f"10 (root {b64(mth(HASHES[:10]))}), 25 (root {b64(mth(HASHES[:25]))}), "
        f"40 (root {b64(mth(HASHES))})"
    )


def test_lines_without_newlines_and_leaves_past_the_last_checkpoint() -> None:
    report = verify([line.rstrip(b"\n") for line in LINES], [checkpoint(32)])
    assert report.summary() == (
        f"verified 40 leaves of {ORIGIN} (leaves 0 to 39) against signed checkpoint 32 "
        f"(root {b64(mth(HASHES[:32]))}); leaves 32 to 39 come after the last checkpoint "
        "and were checked only against their sealed hashes"
    )


def test_one_changed_byte_names_the_leaf_and_its_evidence() -> None:
    lines = list(LINES)
    lines[17] = lines[17].replace(b'"id":117', b'"id":118')
    assert refusal(lines) == (
        "leaf 17 (evidence 118, download.started at 2026-12-02T01:00:17Z) does not match the "
        "hash it was sealed with: the row was changed after sealing"
    )


def test_a_changed_entry_that_is_no_longer_json_is_still_named_by_leaf() -> None:
    lines = list(LINES)
    lines[3] = lines[3].replace(b'"id":103,', b'"id":103;')
    assert refusal(lines) == (
        "leaf 3 does not match the hash it was sealed with: the row was changed after sealing"
    )


def test_a_deleted_line_is_a_missing_leaf() -> None:
    lines = LINES[:12] + LINES[13:]
    assert refusal(lines) == "leaf 12 is missing: after leaf 11 comes leaf 13"
    # Also when the only checkpoint is past the shortened export's end.
    assert refusal(lines, [checkpoint(N)]) == "leaf 12 is missing: after leaf 11 comes leaf 13"
    assert refusal(LINES[1:]) == "leaf 0 is missing: the export begins with leaf 1"


def test_swapped_lines_are_a_leaf_out_of_order() -> None:
    lines = list(LINES)
    lines[12], lines[13] = lines[13], lines[12]
    assert refusal(lines) == (
        "leaf 12 is out of order: after leaf 11 comes leaf 13, and leaf 12 comes later, on line 14"
    )


def test_a_repeated_line_is_named() -> None:
    lines = [*LINES[:13], LINES[12], *LINES[13:]]
    assert refusal(lines) == "leaf 12 appears twice: line 14 holds it again where leaf 13 belongs"


def test_an_entry_altered_with_its_sealed_hash_is_found_by_the_checkpoint_after_it() -> None:
    lines = list(LINES)
    altered = {**entry_of(30), "kind": "download.refused"}
    lines[30] = line_of(altered)
    found = [*HASHES[:30], rv.leaf_hash(canonical(altered)), *HASHES[31:]]
    assert refusal(lines) == (
        f"checkpoint 40's signed root {b64(mth(HASHES))} does not match the export, whose "
        f"leaves up to 39 hash to {b64(mth(found))}; every leaf matches its sealed hash and the "
        "leaves are in order, so leaves 25 to 39 were altered together with their sealed "
        "hashes (leaves up to 24 match checkpoint 25)"
    )
    assert refusal(lines, [checkpoint(N)]).endswith(
        "so leaves 0 to 39 were altered together with their sealed hashes"
    )


def test_without_a_second_reading_the_mismatch_says_why_it_cannot_be_explained() -> None:
    lines = LINES[:12] + LINES[13:]
    with pytest.raises(rv.EvidenceMismatch) as refused:
        rv.verify_export(iter(lines), CHECKPOINTS, VERIFIER)
    assert str(refused.value) == (
        f"checkpoint 25's signed root {b64(mth(HASHES[:25]))} does not match the export, "
        f"whose leaves up to 24 hash to {b64(mth(HASHES[:12] + HASHES[13:26]))}; the export "
        "was read from standard input, so it cannot be read again to find the leaf at fault: "
        "save it to a file and verify that"
    )


def test_a_truncated_export_names_what_the_checkpoint_needs() -> None:
    assert refusal(LINES[:35]) == (
        "the export ends after leaf 34; checkpoint 40 needs leaves up to 39"
    )
    assert refusal([]) == "the export holds no leaves; checkpoint 10 needs leaves 0 to 9"


def prefix_line(size: int, leaves: list[bytes] = HASHES) -> bytes:
    subtrees, low = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            subtrees.append(mth(leaves[low : low + (1 << bit)]).hex())
            low += 1 << bit
    return json.dumps({"prefix": {"size": size, "subtrees": subtrees}}).encode() + b"\n"


def test_an_export_with_a_prefix_starts_at_its_size() -> None:
    lines = [prefix_line(21), *LINES[21:]]
    report = verify(lines, [checkpoint(10), checkpoint(21), checkpoint(30), checkpoint(N)])
    assert (report.first_leaf, report.end, report.leaves) == (21, 40, 19)
    assert [c.size for c in report.checked] == [21, 30, 40]
    assert [c.size for c in report.skipped] == [10]
    assert report.summary().endswith(
        "; checkpoints 10 end before the export's first leaf and were not checked"
    )
    swapped = [prefix_line(21), *LINES[21:24], LINES[25], LINES[24], *LINES[26:]]
    assert refusal(swapped) == (
        "leaf 24 is out of order: after leaf 23 comes leaf 25, and leaf 24 comes later, on line 6"
    )
    assert refusal([prefix_line(21), *LINES[22:]]) == (
        "leaf 21 is missing: the export begins with leaf 22"
    )


def test_a_wrong_prefix_is_blamed_with_the_leaves_after_it() -> None:
    wrong = [flipped(HASHES[0]), *HASHES[1:]]
    lines = [prefix_line(21, wrong), *LINES[21:]]
    assert refusal(lines, [checkpoint(N)]).endswith(
        "so leaves 21 to 39 were altered together with their sealed hashes (or the prefix "
        "line's subtree hashes for leaves 0 to 20 were altered)"
    )


def test_checkpoints_wholly_before_the_export_verify_nothing() -> None:
    assert refusal([prefix_line(21), *LINES[21:]], [checkpoint(10)]) == (
        "every checkpoint ends before the export's first leaf 21: "
        "nothing in the export was checked against a signed root"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"entry": {"index":3},"leaf_hash":"' + b"0" * 64 + b'"}\n', " is not of the form"),
        (b'{"leaf_hash":"' + b"0" * 64 + b'","entry":{"index":3}}\n', " is not of the form"),
        (b"\n", " is not of the form"),
        (LINES[3].replace(b'"}\n', b'"} \n'), " is not of the form"),
        (LINES[3].upper().replace(b'{"ENTRY":', b'{"entry":'), " is not of the form"),
        (LINES[3][:-67] + LINES[3][-67:].upper(), ": its leaf_hash is not 64 lowercase hex"),
        (b'{"prefix":{"size":3,"subtrees":[]}}\n', " is not of the form"),
    ],
)
def test_a_line_of_another_shape_is_named_by_its_number(line: bytes, message: str) -> None:
    lines = [*LINES[:3], line, *LINES[4:]]
    assert refusal(lines).startswith(f"line 4 of the export{message}")


@pytest.mark.parametrize(
    "line",
    [
        b'{"prefix":{"size":3,"subtrees":[]}}\n',
        b'{"prefix":{"size":2,"subtrees":["' + b"0" * 64 + b'","' + b"0" * 64 + b'"]}}\n',
        b'{"prefix":{"size":-1,"subtrees":[]}}\n',
        b'{"prefix":[]}\n',
        b'{"prefix":\n',
    ],
)
def test_a_bad_prefix_line_is_refused(line: bytes) -> None:
    assert refusal([line, *LINES]).startswith('line 1 of the export is not of the form {"prefix"')


def test_checkpoints_are_verified_before_the_export_is_read() -> None:
    forged = rv.parse_checkpoint(note_text(10, HASHES[0]).replace(b64(HASHES[0]), b64(HASHES[1])))
    assert refusal(LINES, [forged]) == (
        f"the signature by {NAME} on checkpoint 10 does not verify: "
        "the checkpoint was changed after it was signed"
    )
    other_root = rv.parse_checkpoint(note_text(10, HASHES[0]))
    assert refusal(LINES, [checkpoint(10), other_root]) == (
        f"two checkpoints of size 10, both signed by {NAME}, have different roots: "
        "the log has shown two different histories"
    )
    body = body_text(10, mth(HASHES[:10]), origin="other.example/log")
    other_log = rv.parse_checkpoint(f"{body}\n{signature_line(body)}")
    assert refusal(LINES, [checkpoint(10), other_log]) == (
        f"the checkpoints come from different logs: {ORIGIN}, other.example/log"
    )
    assert refusal(LINES, []) == "an export is verified against at least one checkpoint"


# The command line


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "export.jsonl").write_bytes(b"".join(LINES))
    (tmp_path / "key.pub").write_text(verifier_key_text())
    (tmp_path / "cp25").write_text(note_text(25, mth(HASHES[:25])))
    (tmp_path / "cp40").write_text(note_text(40, mth(HASHES)))
    return {name: str(tmp_path / name) for name in ("export.jsonl", "key.pub", "cp25", "cp40")}


def run(files: dict[str, str], *extra: str) -> int:
    return rv.main(
        [
            files["export.jsonl"],
            "--checkpoint",
            files["cp25"],
            "--checkpoint",
            files["cp40"],
            "--public-key",
            files["key.pub"],
            *extra,
        ]
    )


def test_main_prints_the_summary_and_exits_0(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(files) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"verified 40 leaves of {ORIGIN} (leaves 0 to 39) against signed checkpoints "
        f"25 (root {b64(mth(HASHES[:25]))}), 40 (root {b64(mth(HASHES))})\n"
    )
    assert err == ""


def test_main_names_the_problem_and_exits_1(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    Path(files["export.jsonl"]).write_bytes(b"".join(LINES[:12] + LINES[13:]))
    assert run(files) == 1
    assert capsys.readouterr() == (
        "",
        "reference_verify.py: leaf 12 is missing: after leaf 11 comes leaf 13\n",
    )
    Path(files["cp40"]).write_text("not a checkpoint\n")
    assert run(files) == 1
    assert capsys.readouterr().err == (
        f"reference_verify.py: {files['cp40']}: the checkpoint has no blank line followed by "
        "signature lines\n"
    )
    Path(files["key.pub"]).write_text("nonsense")
    assert run(files) == 1
    assert capsys.readouterr().err == (
        f"reference_verify.py: {files['key.pub']}: the public key is not of the form "
        "<key name>+<8 hex digits>+<base64 key>\n"
    )


def test_main_reads_standard_input_once(
    files: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"".join(LINES))))
    files["export.jsonl"] = "-"
    assert run(files) == 0
    assert capsys.readouterr().out.startswith("verified 40 leaves")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"".join(LINES[1:]))))
    assert run(files) == 1
    assert capsys.readouterr().err.endswith(
        "the export was read from standard input, so it cannot be read again to find the leaf "
        "at fault: save it to a file and verify that\n"
    )


def test_main_exits_2_for_usage_and_unreadable_files(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rv.main([files["export.jsonl"], "--public-key", files["key.pub"]]) == 2
    assert "the following arguments are required: --checkpoint" in capsys.readouterr().err
    missing = files["cp40"] + ".missing"
    files["cp40"] = missing
    assert run(files) == 2
    assert capsys.readouterr().err == (
        f"reference_verify.py: error: cannot read the checkpoint {missing}: "
        "No such file or directory\n"
    )
    files["export.jsonl"] = str(Path(missing).parent)
    files["cp40"] = files["cp25"]
    assert run(files) == 2
    assert capsys.readouterr().err == (
        "reference_verify.py: error: cannot read the export: Is a directory\n"
    )


def test_the_file_runs_alone_without_site_packages(files: dict[str, str]) -> None:
    # -I -S: no site-packages and no project on the path, as on an auditor's machine.
    args = [files["export.jsonl"], "--checkpoint", files["cp40"], "--public-key", files["key.pub"]]
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(SOURCE), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"verified 40 leaves of {ORIGIN}")


# The stand-alone rule


def non_stdlib_imports(source: str) -> list[str]:
    """The top-level modules `source` imports that are not in the standard library."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # A relative import reaches into a package, which an auditor does not have.
            names = [node.module or ""] if node.level == 0 else ["." * node.level]
        else:
            continue
        found += [n for n in names if n.split(".")[0] not in sys.stdlib_module_names]
    return found


def test_the_verifier_imports_only_the_standard_library() -> None:
    assert non_stdlib_imports(SOURCE.read_text()) == []
    assert non_stdlib_imports("import hashlib\nfrom json import loads\n") == []
    sneaky = "def f():\n    from cryptography.hazmat import x\n    import gateway.text\n"
    assert non_stdlib_imports(sneaky) == ["cryptography.hazmat", "gateway.text"]
    assert non_stdlib_imports("from . import reference_verify\n") == ["."]
