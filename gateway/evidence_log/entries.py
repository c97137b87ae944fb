"""What a leaf of the evidence log says: a row's canonical entry.

Rules of this module:
- Pure. An entry is RFC 8785 canonical JSON (keys sorted, no whitespace, UTF-8): the
  rows hold strings, integers, booleans, null, lists and objects only (stages.evidence
  payloads have no floats), for which that is exactly what `json.dumps` below writes.
- The entry names its own leaf position, so a leaf moved elsewhere no longer matches its
  hash, and its evidence id, time, kind, actor, model, release, account and data.
- Personal fields of the data (PERSONAL) are not in the entry: it holds the SHA-256 of a
  random salt and of their canonical form instead, under "personal" (null when the row
  has none). Erasing the fields and the salt later leaves the leaf valid.
- An export line is the canonical {"entry": ..., "leaf_hash": ...}, the form the
  reference verifier (reference_verify.py) reads by slicing, without parsing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Final

ENTRY_VERSION: Final = 1
PERSONAL: Final = frozenset({"client_address", "user_agent", "email"})
SALT_BYTES: Final = 16


def canonical(value: object) -> bytes:
    # A lone surrogate cannot be UTF-8; kept as its three bytes, so that a row holding
    # one still seals (the same row always gives the same bytes) instead of stopping the
    # log for good.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "surrogatepass")


def split_personal(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the data without its personal fields, the personal fields that hold a value)."""
    kept = {key: value for key, value in data.items() if key not in PERSONAL}
    personal = {key: value for key, value in data.items() if key in PERSONAL and value is not None}
    return kept, personal


def personal_hash(personal: dict[str, Any], salt: bytes) -> bytes:
    return hashlib.sha256(salt + canonical(personal)).digest()


def entry(
    *,
    index: int,
    evidence_id: int,
    at: datetime,
    kind: str,
    actor: str,
    model_id: int | None,
    release_id: int | None,
    account_id: str | None,
    data: dict[str, Any],
    personal: bytes | None,
) -> bytes:
    """The canonical entry of one row at leaf `index`; `data` without personal fields,
    `personal` their salted hash."""
    return canonical(
        {
            "v": ENTRY_VERSION,
            "index": index,
            "id": evidence_id,
            "at": at.isoformat(),
            "kind": kind,
            "actor": actor,
            "model_id": model_id,
            "release_id": release_id,
            "account_id": account_id,
            "data": data,
            "personal": personal.hex() if personal is not None else None,
        }
    )


def export_line(entry_bytes: bytes, leaf: bytes) -> bytes:
    """One line of `gateway audit export`: canonical, so the entry is a fixed slice."""
    return b'{"entry":' + entry_bytes + b',"leaf_hash":"' + leaf.hex().encode() + b'"}\n'
