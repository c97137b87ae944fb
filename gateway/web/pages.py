"""What every portal page shares: paging, the public base URL, the client's address, the
notice shown after a form was sent, and the check that free text is plain text."""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, TypeAlias

from litestar import Request
from litestar.params import QueryParameter

from gateway.errors import InvalidInput
from gateway.runtime import Runtime

PAGE_SIZE = 20
Done: TypeAlias = Annotated[
    str | None, QueryParameter(description="Which confirmation to show after a form was sent")
]


def client_address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def public_base(rt: Runtime) -> str:
    return rt.settings.public_url.rstrip("/")


def tier_title(rt: Runtime, tier: str) -> str:
    return rt.policy.ladder.get(tier).title if tier in rt.policy.ladder else tier


def page_count(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def page_numbers(page: int, pages: int) -> list[int | None]:
    """The page links to show: the first, the last and two either side; None is a gap."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


def control_character(text: str, *, lines: bool) -> str | None:
    """The first control character a person would not type (tabs, and line breaks where
    `lines`, are fine), as U+XXXX; None if there is none. PostgreSQL cannot store NUL, so
    free text the services store unchecked is checked here first."""
    for char in text:
        if char == "\t" or (lines and char in "\r\n"):
            continue
        if unicodedata.category(char) == "Cc":
            return f"U+{ord(char):04X}"
    return None


def plain_text(text: str, what: str, *, lines: bool) -> str:
    """`text` unchanged, or InvalidInput if it holds a control character."""
    found = control_character(text, lines=lines)
    if found is not None:
        raise InvalidInput(f"{what} contains a control character ({found}); remove it")
    return text
