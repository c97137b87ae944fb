"""`gateway --server URL`: which gateway operator commands act through. Kept apart from
gateway/cli/support.py and remote.py so that listing the commands loads neither."""

from __future__ import annotations

from typing import Any

import click

SERVER_ENV = "GATEWAY_OPS_SERVER"
ADMIN_KEY_ENV = "GATEWAY_ADMIN_KEY"

# Where the top-level `--server URL` keeps its URL in the root context's `obj` (see
# gateway/cli/remote.py).
SERVER_KEY = "server"


def chosen_server() -> str | None:
    """The URL given with `gateway --server`, or None when commands act locally."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get(SERVER_KEY) if isinstance(obj, dict) else None


def server_option(function: Any) -> Any:
    """The top-level `--server URL` option; it keeps the URL for `remote()`."""

    def keep(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"expected an http(s) URL, got {value!r}")
        ctx.ensure_object(dict)[SERVER_KEY] = value.rstrip("/") if value else None
        return value

    return click.option(
        "--server",
        envvar=SERVER_ENV,
        metavar="URL",
        expose_value=False,
        is_eager=True,
        callback=keep,
        help=f"Run the command through this gateway's operator API (else ${SERVER_ENV}), "
        f"with the admin key in ${ADMIN_KEY_ENV}.",
    )(function)
