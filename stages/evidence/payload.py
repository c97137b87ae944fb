# The payload type every evidence kind carries.
#
# Rules:
# - Each kind has exactly one frozen payload type, and the payload's type names its kind:
#   a row's kind and the shape of its data cannot disagree.
# - Every row of a kind has the same keys: a value not known is stored as null.
# - A field named `from_` is stored as `from`; datetimes as ISO text, tuples as lists.

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from stages.evidence.kinds import EvidenceKind


def _plain(value: object) -> object:
    """A payload value as JSON data: datetimes as ISO text, tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in fields(value)}
    return value


PAYLOADS: dict[EvidenceKind, type[Payload]] = {}


@dataclass(frozen=True)
class Payload:
    """What one piece of evidence says. A class that sets `KIND` is that kind's payload;
    one without it only shares fields with its subclasses."""

    KIND: ClassVar[EvidenceKind]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("KIND")
        if kind is None:
            return
        if kind in PAYLOADS:
            raise TypeError(f"{kind} already has a payload type: {PAYLOADS[kind].__name__}")
        PAYLOADS[kind] = cls

    def data(self) -> dict[str, Any]:
        """The stored `data` column. A field named `from_` is stored as `from`."""
        return {f.name.rstrip("_"): _plain(getattr(self, f.name)) for f in fields(self)}
