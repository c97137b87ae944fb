"""Verify an evidence-log export against signed checkpoints, with the standard library alone.

An auditor runs this one file without trusting the gateway and without installing anything:

    python reference_verify.py EXPORT.jsonl --checkpoint FILE [--checkpoint FILE ...] \\
        --public-key FILE

so it imports nothing outside the standard library, Ed25519 included (RFC 8032, written out
here). The gateway's `gateway audit verify` and its tests call the same functions.

The rules it holds to:
- Hashes are RFC 6962's: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right).
- A checkpoint is a C2SP signed note (c2sp.org/tlog-checkpoint); nothing in it is believed
  before its Ed25519 signature by the given key verifies.
- The export is read once, in order, holding only a stack of O(log n) subtree hashes; each
  checkpoint inside the export is checked when the pass reaches its size.
- An entry is hashed as the bytes it is written in, never re-serialised: the export is
  canonical JSON, so those bytes are the ones that were sealed. JSON is parsed only to explain
  a failure, and the export is read a second time only then.
- The first problem ends the verification, named by leaf index (or line, for a bad line).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final, TypeAlias

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

# An export line is `{"entry":<canonical JSON object>,"leaf_hash":"<64 lowercase hex>"}`.
# Its fixed head and tail let the entry be sliced out by offsets alone.
_LINE_HEAD: Final = b'{"entry":{'
_HASH_HEAD: Final = b'},"leaf_hash":"'  # from 81 to 66 bytes before the line's end
_LINE_TAIL: Final = b'"}'
_SHORTEST_LINE: Final = len(b'{"entry":{},"leaf_hash":""}') + 64
_PREFIX_HEAD: Final = b'{"prefix":'
_LOWER_HEX: Final = b"0123456789abcdef"
# Evidence entries are a few hundred bytes; the cap keeps one runaway line from being read
# into memory whole.
MAX_LINE_BYTES: Final = 1 << 20
# Checkpoints and keys are a few hundred bytes; anything near this is not one.
MAX_NOTE_BYTES: Final = 1 << 16


class VerificationError(Exception):
    """A problem found while verifying; the message is a sentence for the auditor."""


class MalformedInput(VerificationError):
    """An export line, checkpoint or public key that is not in its format."""


class BadSignature(VerificationError):
    """A checkpoint that the given key did not sign."""


class EvidenceMismatch(VerificationError):
    """Evidence that does not match what was sealed or signed."""


def leaf_hash(entry: bytes) -> bytes:
    """The RFC 6962 hash of the leaf whose entry bytes are `entry`."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an inner node over its two children's hashes."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _fold(subtrees: Sequence[bytes]) -> bytes:
    """The root over the compact range [0, n) given as its perfect subtrees, largest first."""
    if not subtrees:
        return EMPTY_ROOT
    root = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        root = node_hash(left, root)
    return root


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """The RFC 6962 root over `leaf_hashes`, streamed through a stack of perfect subtrees."""
    stack: list[bytes] = []
    for size, leaf in enumerate(leaf_hashes, start=1):
        stack.append(leaf)
        # Each trailing zero bit of the new size is a pair of equal subtrees to join.
        joined = size
        while not joined & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            joined >>= 1
    return _fold(stack)


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` puts the leaf hash `leaf` at `leaf_index` under `root` (RFC 9162 2.1.3.2)."""
    if not 0 <= leaf_index < tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree (`size1`, `root1`) is a prefix of (`size2`, `root2`).

    RFC 9162 2.1.4.2, with the cases it leaves to the caller: equal sizes need an empty proof
    and equal roots; the empty tree is a prefix of every tree, with an empty proof.
    """
    if not 0 <= size1 <= size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# Ed25519 verification, RFC 8032 section 5.1.7. Points are in extended coordinates
# (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z, so no step needs a field inversion.
_Point: TypeAlias = tuple[int, int, int, int]
_P: Final = 2**255 - 19
_L: Final = 2**252 + 27742317777372353535851937790883648493
_D: Final = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1: Final = pow(2, (_P - 1) // 4, _P)
_NEUTRAL: Final[_Point] = (0, 1, 1, 0)


def _add(p: _Point, q: _Point) -> _Point:
    """p + q (RFC 8032 5.1.4; the formula is complete, so it also doubles and adds zero)."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p: _Point) -> _Point:
    """2p, by RFC 8032 5.1.4's doubling formula, cheaper than adding p to itself."""
    a = p[0] * p[0] % _P
    b = p[1] * p[1] % _P
    c = 2 * p[2] * p[2] % _P
    h = a + b
    e = h - (p[0] + p[1]) * (p[0] + p[1])
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _recover_x(y: int, sign: int) -> int | None:
    """The x with the given low bit on the curve at y, or None (RFC 8032 5.1.3)."""
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        # x = 0 has only one encoding; the sign bit set on it is a second one.
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if x & 1 != sign else x


def _decode_point(encoded: bytes) -> _Point | None:
    """The point a 32-byte encoding names, or None when it is not a canonical encoding."""
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_BASE_Y: Final = 4 * pow(5, _P - 2, _P) % _P
_BASE_X: Final = _recover_x(_BASE_Y, 0) or 0
_BASE: Final[_Point] = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % _P)


def _sum_of_multiples(s: int, p: _Point, k: int, q: _Point) -> _Point:
    """[s]p + [k]q in one pass over the bits (Straus), sharing the doublings."""
    both = _add(p, q)
    r = _NEUTRAL
    for i in range(max(s.bit_length(), k.bit_length()) - 1, -1, -1):
        r = _double(r)
        if s >> i & 1:
            r = _add(r, both if k >> i & 1 else p)
        elif k >> i & 1:
            r = _add(r, q)
    return r


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s Ed25519 signature of `message` (RFC 8032 5.1.7)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    r = _decode_point(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    # S >= L would give a second valid signature for the same message.
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little")
    minus_a = (-a[0] % _P, a[1], a[2], -a[3] % _P)
    # The cofactorless equation [S]B = R + [k]A, as [S]B - [k]A = R, compared projectively.
    x, y, z, _ = _sum_of_multiples(s, _BASE, k % _L, minus_a)
    return (x * r[2] - r[0] * z) % _P == 0 and (y * r[2] - r[1] * z) % _P == 0


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note."""

    key_name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Checkpoint:
    """A parsed, not yet verified, checkpoint: `body` is the signed note text."""

    origin: str
    size: int
    root: bytes
    time: str | None
    extensions: tuple[str, ...]
    body: bytes
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True)
class VerifierKey:
    """A signed-note verifier key: its name, its 4-byte id and its Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes


_KEY_NAME = re.compile(r"[^\s+]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")


def _canonical_base64(text: str) -> bytes | None:
    """The bytes `text` encodes in standard base64, or None unless it is their one encoding."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def key_id(name: str, public_key: bytes) -> bytes:
    """The signed-note key id of an Ed25519 key: SHA-256(name || LF || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]


def parse_verifier_key(text: str) -> VerifierKey:
    """The verifier key `<name>+<key id hex>+<base64 of 0x01 || key>`, its id checked."""
    # The base64 key may itself hold "+"; the name and the id never do.
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not _KEY_NAME.fullmatch(parts[0]):
        raise MalformedInput(
            "the public key is not of the form <key name>+<8 hex digits>+<base64 key>"
        )
    name, id_hex, encoded = parts
    raw = _canonical_base64(encoded)
    if not _KEY_ID_HEX.fullmatch(id_hex) or raw is None:
        raise MalformedInput(
            "the public key is not of the form <key name>+<8 hex digits>+<base64 key>"
        )
    if len(raw) != 33 or raw[0] != 1:
        raise MalformedInput(f"the public key {name} is not an Ed25519 signed-note key")
    public_key = raw[1:]
    computed = key_id(name, public_key)
    if computed != bytes.fromhex(id_hex):
        raise MalformedInput(
            f"the public key {name} gives its id as {id_hex.lower()}, "
            f"but the key's id is {computed.hex()}"
        )
    return VerifierKey(name=name, key_id=computed, public_key=public_key)


def _note_text(note: str | bytes) -> str:
    if isinstance(note, str):
        text = note
    else:
        try:
            text = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput("the checkpoint is not UTF-8 text") from None
    if any(char < " " and char != "\n" for char in text):
        raise MalformedInput("the checkpoint holds a control character other than newline")
    return text


def _signature_line(line: str, number: int) -> NoteSignature:
    name, _, encoded = line.removeprefix("\N{EM DASH} ").partition(" ")
    raw = _canonical_base64(encoded)
    if (
        not line.startswith("\N{EM DASH} ")
        or not _KEY_NAME.fullmatch(name)
        or raw is None
        or len(raw) < 5
    ):
        raise MalformedInput(
            f"line {number} of the checkpoint is not a signature line "
            "(\N{EM DASH} <key name> <base64 of key id and signature>)"
        )
    return NoteSignature(key_name=name, key_id=raw[:4], signature=raw[4:])


def parse_checkpoint(note: str | bytes) -> Checkpoint:
    """The checkpoint in a C2SP signed note: origin, size, root, extension lines, signatures."""
    text = _note_text(note)
    end = text.find("\n\n")
    if end < 0 or not text.endswith("\n"):
        raise MalformedInput("the checkpoint has no blank line followed by signature lines")
    body = text[: end + 1]
    lines = body[:-1].split("\n")
    signatures = tuple(
        _signature_line(line, number)
        for number, line in enumerate(text[end + 2 : -1].split("\n"), start=len(lines) + 2)
    )
    if len(lines) < 3:
        raise MalformedInput("the checkpoint has fewer than three lines before its signatures")
    origin, size, encoded_root, *extensions = lines
    if not origin:
        raise MalformedInput("the checkpoint's first line, its origin, is empty")
    if not _DECIMAL.fullmatch(size):
        raise MalformedInput(f"the checkpoint's tree size {size!r} is not a decimal number")
    root = _canonical_base64(encoded_root)
    if root is None or len(root) != 32:
        raise MalformedInput("the checkpoint's third line is not a base64 SHA-256 root hash")
    time = next((line[5:] for line in extensions if line.startswith("time ")), None)
    return Checkpoint(
        origin=origin,
        size=int(size),
        root=root,
        time=time,
        extensions=tuple(extensions),
        body=body.encode(),
        signatures=signatures,
    )


def verify_checkpoint(checkpoint: Checkpoint, key: VerifierKey) -> None:
    """Raise BadSignature unless every signature line of `key` on `checkpoint` verifies."""
    mine = [
        signature
        for signature in checkpoint.signatures
        if signature.key_name == key.name and signature.key_id == key.key_id
    ]
    if not mine:
        names = ", ".join(sorted({s.key_name for s in checkpoint.signatures}))
        raise BadSignature(
            f"checkpoint {checkpoint.size} is not signed by the key {key.name} "
            f"({key.key_id.hex()}); it carries signatures by {names}"
        )
    for signature in mine:
        if not ed25519_verify(key.public_key, checkpoint.body, signature.signature):
            raise BadSignature(
                f"the signature by {key.name} on checkpoint {checkpoint.size} does not "
                "verify: the checkpoint was changed after it was signed"
            )


@dataclass(frozen=True)
class Report:
    """What a successful verification covered."""

    origin: str
    first_leaf: int
    end: int
    checked: tuple[Checkpoint, ...]
    skipped: tuple[Checkpoint, ...]

    @property
    def leaves(self) -> int:
        """How many leaf lines the export held, each checked against its sealed hash."""
        return self.end - self.first_leaf

    def summary(self) -> str:
        """One line for the auditor."""
        against = ", ".join(
            f"{c.size} (root {base64.b64encode(c.root).decode()})" for c in self.checked
        )
        plural = "s" if len(self.checked) > 1 else ""
        line = (
            f"verified {self.leaves} leaves of {self.origin} (leaves {self.first_leaf} to "
            f"{self.end - 1}) against signed checkpoint{plural} {against}"
        )
        last = self.checked[-1].size
        if last < self.end:
            line += (
                f"; leaves {last} to {self.end - 1} come after the last checkpoint and were "
                "checked only against their sealed hashes"
            )
        if self.skipped:
            sizes = ", ".join(str(c.size) for c in self.skipped)
            line += f"; checkpoints {sizes} end before the export's first leaf and were not checked"
        return line


def _signed_checkpoints(checkpoints: Sequence[Checkpoint], key: VerifierKey) -> list[Checkpoint]:
    """The checkpoints, verified, one per size, smallest first."""
    if not checkpoints:
        raise VerificationError("an export is verified against at least one checkpoint")
    for checkpoint in checkpoints:
        verify_checkpoint(checkpoint, key)
    origins = sorted({c.origin for c in checkpoints})
    if len(origins) > 1:
        raise MalformedInput(f"the checkpoints come from different logs: {', '.join(origins)}")
    by_size: dict[int, Checkpoint] = {}
    for checkpoint in sorted(checkpoints, key=lambda c: c.size):
        seen = by_size.setdefault(checkpoint.size, checkpoint)
        if seen.root != checkpoint.root:
            raise EvidenceMismatch(
                f"two checkpoints of size {checkpoint.size}, both signed by {key.name}, have "
                "different roots: the log has shown two different histories"
            )
    return list(by_size.values())


def _printable(value: object) -> str:
    # Entries come from the export; keep terminal control sequences out of the message.
    text = str(value)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _entry(line: bytes) -> dict[str, object] | None:
    """The entry object of a well-shaped line, or None when it is not a JSON object."""
    end = len(line) - line.endswith(b"\n")
    try:
        value = json.loads(line[len(_LINE_HEAD) - 1 : end - 80])
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _bad_line(line: bytes, number: int) -> MalformedInput:
    if len(line) > MAX_LINE_BYTES:
        return MalformedInput(f"line {number} of the export is longer than {MAX_LINE_BYTES} bytes")
    return MalformedInput(
        f'line {number} of the export is not of the form {{"entry":{{...}},"leaf_hash":"<64 '
        'lowercase hex digits>"}'
    )


def _unsealed(line: bytes, number: int, index: int) -> VerificationError:
    """The error for a well-shaped line whose entry does not hash to its leaf_hash."""
    end = len(line) - line.endswith(b"\n")
    if line[end - 66 : end - 2].translate(None, _LOWER_HEX):
        return MalformedInput(
            f"line {number} of the export: its leaf_hash is not 64 lowercase hex digits"
        )
    entry = _entry(line)
    about = ""
    if entry is not None:
        parts = []
        if "id" in entry:
            parts.append(f"evidence {_printable(entry['id'])}")
        if "kind" in entry:
            at = f" at {_printable(entry['at'])}" if "at" in entry else ""
            parts.append(f"{_printable(entry['kind'])}{at}")
        about = f" ({', '.join(parts)})" if parts else ""
    return EvidenceMismatch(
        f"leaf {index}{about} does not match the hash it was sealed with: "
        "the row was changed after sealing"
    )


def _prefix(line: bytes) -> tuple[int, list[bytes]]:
    """The first leaf and the compact range [0, first) of an export's prefix line."""
    try:
        value = json.loads(line)
        prefix = value["prefix"]
        size, subtrees = prefix["size"], prefix["subtrees"]
        well_formed = (
            set(value) == {"prefix"}
            and set(prefix) == {"size", "subtrees"}
            and type(size) is int
            and size >= 0
            and isinstance(subtrees, list)
            and len(subtrees) == size.bit_count()
            and all(isinstance(h, str) and re.fullmatch("[0-9a-f]{64}", h) for h in subtrees)
        )
    except (ValueError, RecursionError, TypeError, KeyError):
        well_formed = False
    if not well_formed:
        raise MalformedInput(
            'line 1 of the export is not of the form {"prefix":{"size":M,"subtrees":[...]}} '
            "with one 64-hex-digit subtree hash per set bit of M"
        )
    return size, [bytes.fromhex(h) for h in subtrees]


def _closing(lines: Iterable[bytes]) -> None:
    close = getattr(lines, "close", None)
    if callable(close):
        close()


def _order_fault(reopen: Callable[[], Iterable[bytes]], start: int, upto: int | None) -> str | None:
    """The first leaf out of its place below `upto`, by each entry's `index`, or None.

    The slow pass: it parses every entry, and reads on past the fault to tell a missing leaf
    from one that comes later.
    """
    lines = reopen()
    try:
        expected = start
        fault: tuple[int, int] | None = None  # (the leaf expected, the leaf found instead)
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.startswith(_PREFIX_HEAD):
                continue
            entry = _entry(line)
            index = entry.get("index") if entry is not None else None
            if fault is None and upto is not None and expected >= upto:
                return None
            if type(index) is not int:
                return f"line {number} of the export (leaf {expected}) has no integer index"
            if fault is None:
                if index == expected:
                    expected += 1
                    continue
                if index < expected:
                    return (
                        f"leaf {index} appears twice: line {number} holds it again where "
                        f"leaf {expected} belongs"
                    )
                fault = (expected, index)
            elif index == fault[0]:
                return (
                    f"leaf {fault[0]} is out of order: {_comes_first(start, *fault)}, "
                    f"and leaf {fault[0]} comes later, on line {number}"
                )
        if fault is None:
            return None
        return f"leaf {fault[0]} is missing: {_comes_first(start, *fault)}"
    finally:
        _closing(lines)


def _comes_first(start: int, expected: int, found: int) -> str:
    if expected == start:
        return f"the export begins with leaf {found}"
    return f"after leaf {expected - 1} comes leaf {found}"


class _Checks:
    """The checkpoints still ahead of the pass, and what to say when one does not match."""

    def __init__(
        self,
        pending: list[Checkpoint],
        start: int,
        reopen: Callable[[], Iterable[bytes]] | None,
    ) -> None:
        self.pending = pending
        self.start = start
        self.reopen = reopen
        self.checked: list[Checkpoint] = []

    @property
    def target(self) -> int:
        """The size at which the pass must stop and check, or -1 when none is left."""
        return self.pending[0].size if self.pending else -1

    def reached(self, stack: Sequence[bytes]) -> int:
        """Check the next checkpoint against the compact range `stack`; the next target."""
        checkpoint = self.pending.pop(0)
        root = _fold(stack)
        if root != checkpoint.root:
            raise self._mismatch(checkpoint, root)
        self.checked.append(checkpoint)
        return self.target

    def _mismatch(self, checkpoint: Checkpoint, root: bytes) -> EvidenceMismatch:
        low = self.checked[-1].size if self.checked else self.start
        signed, found = (base64.b64encode(h).decode() for h in (checkpoint.root, root))
        head = (
            f"checkpoint {checkpoint.size}'s signed root {signed} does not match the export, "
            f"whose leaves up to {checkpoint.size - 1} hash to {found}"
        )
        if self.reopen is None:
            return EvidenceMismatch(
                f"{head}; the export was read from standard input, so it cannot be read again "
                "to find the leaf at fault: save it to a file and verify that"
            )
        fault = _order_fault(self.reopen, self.start, checkpoint.size)
        if fault is not None:
            return EvidenceMismatch(fault)
        if self.checked:
            before = f" (leaves up to {low - 1} match checkpoint {low})"
        elif self.start:
            before = (
                f" (or the prefix line's subtree hashes for leaves 0 to {self.start - 1} "
                "were altered)"
            )
        else:
            before = ""
        return EvidenceMismatch(
            f"{head}; every leaf matches its sealed hash and the leaves are in order, so "
            f"leaves {low} to {checkpoint.size - 1} were altered together with their sealed "
            f"hashes{before}"
        )

    def short(self, end: int) -> EvidenceMismatch:
        """The error for an export that ends at `end` before the next checkpoint's size."""
        size = self.target
        if self.reopen is not None:
            fault = _order_fault(self.reopen, self.start, None)
            if fault is not None:
                return EvidenceMismatch(fault)
        if end == 0:
            return EvidenceMismatch(
                f"the export holds no leaves; checkpoint {size} needs leaves 0 to {size - 1}"
            )
        return EvidenceMismatch(
            f"the export ends after leaf {end - 1}; checkpoint {size} needs leaves up to {size - 1}"
        )


def verify_export(
    lines: Iterable[bytes],
    checkpoints: Sequence[Checkpoint],
    key: VerifierKey,
    *,
    reopen: Callable[[], Iterable[bytes]] | None = None,
) -> Report:
    """Verify an export against signed checkpoints in one pass; raise on the first problem.

    `reopen` gives the export's lines again, for the slow pass that explains a checkpoint
    whose root does not match; without it (standard input) the error says it cannot.
    """
    signed = _signed_checkpoints(checkpoints, key)
    it = iter(lines)
    first = next(it, None)
    number = 0
    start = 0
    stack: list[bytes] = []
    if first is not None and first.startswith(_PREFIX_HEAD):
        start, stack = _prefix(first)
        number = 1
    elif first is not None:
        it = itertools.chain((first,), it)
    checks = _Checks([c for c in signed if c.size >= start], start, reopen)
    target = checks.target
    if target == start:
        target = checks.reached(stack)

    # The hot loop: names bound locally, the entry and hash found by offsets, and nothing
    # parsed; everything that only a failure needs is in the functions it raises from.
    # Copying a hasher already fed its 0x00 or 0x01 costs about two thirds of making a new
    # one, which with OpenSSL 3 looks the algorithm up again each time.
    new_leaf = hashlib.sha256(b"\x00").copy
    new_node = hashlib.sha256(b"\x01").copy
    hexlify = binascii.b2a_hex
    push, pop = stack.append, stack.pop
    head, hash_head, tail = _LINE_HEAD, _HASH_HEAD, _LINE_TAIL
    shortest = _SHORTEST_LINE
    size = start
    # No length check here: readers cut lines at MAX_LINE_BYTES + 1, and a cut piece is
    # either refused for its shape (and _bad_line names its length) or hashes correctly,
    # in which case it is a well-formed leaf like any other.
    for line in it:
        number += 1
        n = len(line)
        if line[-1:] == b"\n":
            n -= 1
        if (
            n < shortest
            or line[:10] != head
            or line[n - 81 : n - 66] != hash_head
            or line[n - 2 : n] != tail
        ):
            raise _bad_line(line, number)
        hasher = new_leaf()
        hasher.update(line[9 : n - 80])
        digest = hasher.digest()
        if hexlify(digest) != line[n - 66 : n - 2]:
            raise _unsealed(line, number, size)
        push(digest)
        size += 1
        joined = size
        while not joined & 1:
            right = pop()
            hasher = new_node()
            hasher.update(stack[-1] + right)
            stack[-1] = hasher.digest()
            joined >>= 1
        if size == target:
            target = checks.reached(stack)
    if target >= 0:
        raise checks.short(size)
    if not checks.checked:
        raise VerificationError(
            f"every checkpoint ends before the export's first leaf {start}: "
            "nothing in the export was checked against a signed root"
        )
    return Report(
        origin=signed[0].origin,
        first_leaf=start,
        end=size,
        checked=tuple(checks.checked),
        skipped=tuple(c for c in signed if c.size < start),
    )


def _read_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    # readline with a limit, driven by iter(), keeps the per-line work in C.
    with open(path, "rb") as export:
        yield from iter(partial(export.readline, MAX_LINE_BYTES + 1), b"")


def verify_export_file(
    path: str | os.PathLike[str], checkpoints: Sequence[Checkpoint], key: VerifierKey
) -> Report:
    """verify_export over the export file at `path`, which it re-reads for the slow pass."""
    with open(path, "rb") as export:
        lines = iter(partial(export.readline, MAX_LINE_BYTES + 1), b"")
        return verify_export(lines, checkpoints, key, reopen=partial(_read_lines, path))


class _Unreadable(Exception):
    """A file named on the command line that cannot be read."""


def _read_note(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as note:
            data = note.read(MAX_NOTE_BYTES + 1)
    except OSError as error:
        raise _Unreadable(f"cannot read the {what} {path}: {error.strerror}") from None
    if len(data) > MAX_NOTE_BYTES:
        raise MalformedInput(f"{path}: larger than {MAX_NOTE_BYTES} bytes, not a {what}")
    return data


def _inputs(key_path: str, checkpoint_paths: Sequence[str]) -> tuple[VerifierKey, list[Checkpoint]]:
    """The key and checkpoints named on the command line; a bad one is named by its path."""
    path = key_path
    try:
        key = parse_verifier_key(_read_note(path, "public key").decode("utf-8", "replace"))
        checkpoints = []
        for path in checkpoint_paths:
            checkpoints.append(parse_checkpoint(_read_note(path, "checkpoint")))
    except MalformedInput as error:
        raise MalformedInput(f"{path}: {error}") from None
    return key, checkpoints


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 when the export verifies, 1 with the problem, 2 for bad usage."""
    parser = argparse.ArgumentParser(
        prog="reference_verify.py",
        description="Verify an evidence-log export against checkpoints signed by the gateway.",
    )
    parser.add_argument("export", metavar="EXPORT.jsonl", help="the export, or - for stdin")
    parser.add_argument(
        "--checkpoint", action="append", required=True, metavar="FILE", help="a signed checkpoint"
    )
    parser.add_argument("--public-key", required=True, metavar="FILE", help="the verifier key")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # --help ends with 0 and a usage error with 2; either way main returns, not exits.
        return stop.code if isinstance(stop.code, int) else 2
    try:
        key, checkpoints = _inputs(args.public_key, args.checkpoint)
        if args.export == "-":
            stdin = sys.stdin.buffer
            lines = iter(partial(stdin.readline, MAX_LINE_BYTES + 1), b"")
            report = verify_export(lines, checkpoints, key)
        else:
            report = verify_export_file(args.export, checkpoints, key)
    except _Unreadable as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{parser.prog}: error: cannot read the export: {error.strerror}", file=sys.stderr)
        return 2
    except VerificationError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
