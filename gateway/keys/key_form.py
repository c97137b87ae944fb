"""The key creation form, read field by field: every refused field is named at once.

The keys service checks the same rules again when the key is made; this is so that a
person who got two fields wrong hears of both in one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import FieldChecks, InvalidInput
from gateway.keys.service import parse_scopes
from gateway.web.forms import field
from policies.schema import KeyRules


@dataclass(frozen=True)
class KeyForm:
    name: str
    scopes: list[str]
    days: int | None


def read_key_form(
    data: Mapping[str, Any],
    rules: KeyRules,
    *,
    operator: bool,
    plain_name: Callable[[str], str],
) -> KeyForm:
    """The form's name (as `plain_name` lets it through), scopes and lifetime;
    FieldsInvalid naming each refused field."""
    checks = FieldChecks()
    name = checks.check("name", lambda: _name(plain_name(field(data, "name"))))
    raw = data.get("scopes", [])
    scopes = [raw] if isinstance(raw, str) else [str(scope) for scope in raw]
    chosen = checks.check("scopes", lambda: parse_scopes(scopes))
    if chosen is not None and "admin" in chosen.split() and not operator:
        refusal = "only operators may hold keys with the 'admin' scope"
        checks.refuse("scopes", InvalidInput(refusal, code="invalid_scope"))
    days = checks.check("days", lambda: _days(field(data, "days"), rules.max_days))
    checks.done()
    return KeyForm(name=name or "", scopes=scopes, days=days)


def _name(text: str) -> str:
    if len(text.strip()) > 200:
        raise InvalidInput("the key's name is at most 200 characters", code="text_too_long")
    return text.strip()


def _days(text: str, most: int) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise InvalidInput(
            f"expiry: a whole number of days is needed, not {text[:20]!r}", code="invalid_expiry"
        )
    days = int(text)
    if not 1 <= days <= most:
        raise InvalidInput(
            f"a key may live 1 to {most} days (the policy's limit), not {days}",
            code="invalid_expiry",
        )
    return days
