"""Recompute a published transparency report from an export of the evidence log.

Checks, in order: the report's signature (a signed note by the log's key over the
checkpoint it was computed from, naming the report's SHA-256); that the export's first
`tree_size` leaves give that checkpoint's root (each leaf hashed again from its entry);
and that folding those entries gives the report's figures, count for count. Nothing
here reads the database: an auditor needs the report, the export and the log's key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gateway.evidence_log import reference_verify as reference
from gateway.evidence_log.entries import canonical
from stages.transparency.figures import Figures, entry_time
from stages.transparency.report import published


class RecomputeError(Exception):
    """The report does not stand: its signature, the export or a figure differs."""


@dataclass(frozen=True)
class Recomputed:
    period: str
    scope: str
    leaves: int
    figures: int

    def summary(self) -> str:
        return (
            f"report of {self.period} for {self.scope}: {self.figures} figures recomputed from "
            f"{self.leaves} leaves of the export; every one matches"
        )


def _document(text: bytes) -> tuple[dict[str, Any], dict[str, Any] | None]:
    try:
        document = json.loads(text)
        report, signature = document["report"], document.get("signature")
        report["checkpoint"]["tree_size"], report["figures"], report["period"]["start"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecomputeError(
            f"not a transparency report (the JSON of /transparency): {exc}"
        ) from None
    if not isinstance(report, dict) or not isinstance(signature, dict | None):
        raise RecomputeError("not a transparency report (the JSON of /transparency)")
    return report, signature


def check_signature(
    report: dict[str, Any], signature: dict[str, Any] | None, key_text: str
) -> None:
    if signature is None:
        raise RecomputeError("the report is not signed: it is a draft, not a published report")
    try:
        key = reference.parse_verifier_key(key_text)
        note = reference.parse_checkpoint(str(signature["signed_note"]))
        reference.verify_checkpoint(note, key)
    except (reference.VerificationError, KeyError) as exc:
        raise RecomputeError(f"the report's signature does not verify: {exc}") from None
    digest = hashlib.sha256(canonical(report)).hexdigest()
    named = [line for line in note.extensions if line.startswith("transparency-report ")]
    if not named or not named[0].endswith(f" sha256:{digest}"):
        raise RecomputeError(
            "the signature names another report: the report was changed after it was signed"
        )
    checkpoint = report["checkpoint"]
    if (note.size, note.root.hex()) != (checkpoint["tree_size"], checkpoint["root_hash"]):
        raise RecomputeError("the signature is over another checkpoint than the report names")


def _entries(lines: Iterable[bytes], size: int) -> Iterator[tuple[bytes, dict[str, Any]]]:
    for number, line in enumerate(lines, 1):
        if number > size:
            return
        try:
            entry_bytes = line[len(b'{"entry":') : line.rindex(b',"leaf_hash":')]
            # A row holding a lone surrogate is sealed as its three bytes (entries.py).
            entry = json.loads(entry_bytes.decode("utf-8", "surrogatepass"))
        except ValueError:
            raise RecomputeError(f"line {number} of the export is not an export line") from None
        if entry.get("index") != number - 1:
            raise RecomputeError(
                f"line {number} of the export holds leaf {entry.get('index')}, not {number - 1}:"
                " recompute from a whole export (gateway audit export, without --since)"
            )
        yield entry_bytes, entry


def recompute(
    report_text: bytes, export_lines: Iterable[bytes], *, key_text: str | None
) -> Recomputed:
    """Check a report against an export; RecomputeError names the first difference."""
    report, signature = _document(report_text)
    if key_text is not None:
        check_signature(report, signature, key_text)
    size = int(report["checkpoint"]["tree_size"])
    scope = report["scope"]
    fold = Figures(
        entry_time(report["period"]["start"]),
        entry_time(report["period"]["end"]),
        scope.get("model_id"),
    )
    read = 0

    def hashed() -> Iterator[bytes]:
        nonlocal read
        for entry_bytes, entry in _entries(export_lines, size):
            fold.add(entry)
            read += 1
            yield reference.leaf_hash(entry_bytes)

    root = reference.root_of(hashed())
    if read < size:
        raise RecomputeError(f"the export holds {read} leaves; the report was computed from {size}")
    if root.hex() != report["checkpoint"]["root_hash"]:
        raise RecomputeError(
            f"the export's first {size} leaves do not give the checkpoint's root: the export "
            "is not of this log, or was changed (gateway audit verify names the row)"
        )
    figures = json.loads(canonical(published(fold, int(report["min_count"]))))
    difference = _first_difference(report["figures"], figures, "figures")
    if difference is not None:
        raise RecomputeError(difference)
    return Recomputed(
        period=report["period"]["name"],
        scope=scope.get("model") or "the whole gateway",
        leaves=size,
        figures=_count(figures),
    )


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return ("shown" in value) + sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 0


def _first_difference(published_value: Any, recomputed: Any, path: str) -> str | None:
    if isinstance(published_value, dict) and isinstance(recomputed, dict):
        for key in sorted(set(published_value) | set(recomputed)):
            if key not in published_value or key not in recomputed:
                where = "report" if key not in published_value else "export"
                return f"{path}.{key} is only in the {where}'s figures"
            found = _first_difference(published_value[key], recomputed[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if published_value != recomputed:
        return f"{path}: the report says {published_value!r}, the export gives {recomputed!r}"
    return None
