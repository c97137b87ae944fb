"""Rendering forms with their errors: one helper so every portal form behaves alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.response import Template

from gateway.errors import GatewayError


def form_page(
    template: str,
    *,
    values: Mapping[str, Any] | None = None,
    error: GatewayError | str | None = None,
    status: int = 200,
    **context: Any,
) -> Template:
    message = error.message if isinstance(error, GatewayError) else error
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
        context={"values": shown, "error": message, **context},
        status_code=status,
        headers=headers,
    )


def field(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)
