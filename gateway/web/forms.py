"""Rendering forms with their errors: one helper so every portal form behaves alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.params import URLEncodedBody
from litestar.response import Template

from gateway.errors import FieldsInvalid, GatewayError, InvalidInput

# A posted form, as every form handler receives it.
Form = URLEncodedBody[dict[str, Any]]

# More digits than any count a form asks for has; longer answers are refused unread
# (int() refuses thousands of digits with an error of its own, and is slow on them).
_MAX_DIGITS = 9


def form_page(
    template: str,
    *,
    values: Mapping[str, Any] | None = None,
    error: GatewayError | str | None = None,
    status: int = 200,
    **context: Any,
) -> Template:
    """A form's page; a refusal's message, and each refused field's own (`problems`, for
    the field's error beside it), with the values kept."""
    message = error.message if isinstance(error, GatewayError) else error
    problems = error.by_field if isinstance(error, FieldsInvalid) else {}
    headers: dict[str, str] = {}
    if isinstance(error, GatewayError):
        status = error.status
        # A refusal that says when to come back says it to browsers and scripts alike.
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
    # Passwords are never echoed back into a form.
    shown = {k: v for k, v in (values or {}).items() if "password" not in k}
    return Template(
        template,
        context={"values": shown, "error": message, "problems": problems, **context},
        status_code=status,
        headers=headers,
    )


def field(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)


def whole_number(text: str, *, what: str, code: str) -> int | None:
    """A form's non-negative whole number, None when left empty; InvalidInput otherwise.

    Only ASCII digits count: str.isdigit() also accepts "²", which int() refuses.
    """
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > _MAX_DIGITS:
        raise InvalidInput(
            f"{what} must be a whole number of at most {_MAX_DIGITS} digits", code=code
        )
    return int(text)
