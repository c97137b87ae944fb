"""`gateway keys`: API keys of accounts, and the URL signing key."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

import click
from rich.table import Table

from gateway.cli.remote import remote
from gateway.cli.support import in_unit, out, run, run_unit
from gateway.credentials.key_encryption import (
    ROTATE_THE_SETTING,
    KeyEncryptionError,
    LocalKeyEncryptor,
)
from gateway.keys.ops_api import AccountKeyOut
from gateway.keys.service import SCOPES, create_key, key_owner, list_keys, revoke_key
from gateway.keys.url_signing import Rotation, reseal_url_signing_keys, rotate_url_signing
from gateway.runtime import Runtime, cli_actor
from gateway.web.filters import when

if TYPE_CHECKING:
    from gateway.db.models import ApiKey
    from gateway.db.uow import UnitOfWork


@click.group()
def keys() -> None:
    """API keys, and the key that signs download URLs."""


def days_option(text: str | None) -> int | None:
    """The days of an `--expires` option such as 90d (None: the policy's default)."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)d?", text.strip())
    if not match:
        raise click.BadParameter(f"expected a number of days like 90d, got {text!r}")
    return int(match.group(1))


@keys.command("create")
@click.option("--account", "email", required=True, metavar="EMAIL")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeatable.",
)
@click.option("--expires", help="Lifetime like 90d (default and maximum from the policy).")
@click.option("--name", default="", help="A label to recognise the key by.")
def keys_create(email: str, scopes: tuple[str, ...], expires: str | None, name: str) -> None:
    """Create an API key; prints the key alone on stdout (it is shown only this once)."""
    days = days_option(expires)

    async def call(uow: UnitOfWork) -> str:
        account = await key_owner(uow, email)
        created = await create_key(
            uow, account_id=account.id, scopes=scopes, days=days, name=name, actor=cli_actor()
        )
        return created.secret

    out.print(run(in_unit(call)))


@keys.command("list")
@click.option("--account", "email", required=True, metavar="EMAIL")
def keys_list(email: str) -> None:
    """An account's keys (prefixes only; secrets are never stored)."""
    api = remote()
    if api is not None:
        _print_keys(api.fetch(list[AccountKeyOut], "GET", f"{_account_path(email)}/keys"))
        return

    async def call(uow: UnitOfWork) -> list[AccountKeyOut]:
        account = await key_owner(uow, email)
        now = uow.rt.clock()
        return [AccountKeyOut.at(key, now) for key in await list_keys(uow, account)]

    _print_keys(run(in_unit(call)))


def _account_path(email: str) -> str:
    return f"/accounts/{quote(email, safe='@')}"


def _print_keys(rows: Sequence[AccountKeyOut]) -> None:
    if not rows:
        out.print("No keys.")
        return
    table = Table()
    for column in ("id", "prefix", "name", "scopes", "expires", "last used", "state"):
        table.add_column(column, overflow="fold")
    for key in rows:
        last = when(key.last_used_at) if key.last_used_at else "never"
        table.add_row(
            key.id,
            key.prefix + "…",
            key.name,
            " ".join(key.scopes),
            when(key.expires_at),
            last,
            key.state,
        )
    out.print(table)


@keys.command("revoke")
@click.option("--account", "email", required=True, metavar="EMAIL")
@click.argument("key_id")
def keys_revoke(email: str, key_id: str) -> None:
    """Revoke an account's key at once."""
    api = remote()
    if api is not None:
        path = f"{_account_path(email)}/keys/{quote(key_id, safe='')}/revoke"
        revoked = api.fetch(AccountKeyOut, "POST", path)
        out.print(f"Revoked {revoked.prefix}… ({revoked.id}).")
        return

    async def call(uow: UnitOfWork) -> ApiKey:
        account = await key_owner(uow, email)
        return await revoke_key(uow, account_id=account.id, key_id=key_id, actor=cli_actor())

    key = run(in_unit(call))
    out.print(f"Revoked {key.display_prefix}… ({key.id}).")


@keys.command("rotate-url-signing")
def keys_rotate_url_signing() -> None:
    """Start signing download URLs with a new key; URLs already issued keep working."""

    async def call(uow: UnitOfWork) -> Rotation:
        return await rotate_url_signing(uow, actor=cli_actor())

    rotation = run(in_unit(call))
    out.print(f"Signing download URLs with key {rotation.kid}.")
    for old in rotation.retired:
        out.print(f"Key {old} retired; it verifies until its last URL expires.")


@keys.command("rotate-secret-key")
def keys_rotate_secret_key() -> None:
    """Encrypt the URL signing keys with a new key-encryption key (the key file's).

    The new key goes first in GATEWAY_HOME/keys/secret-key and the old ones stay after
    it, so processes still running keep opening the keys; with GATEWAY_SECRET_KEY set,
    put the new key first there and restart instead: every start re-encrypts.
    """

    async def call(rt: Runtime) -> tuple[str, int, int]:
        encryptor = rt.key_encryptor
        if not isinstance(encryptor, LocalKeyEncryptor) or encryptor.path is None:
            raise KeyEncryptionError(ROTATE_THE_SETTING)
        # Opened first: a key file that cannot open the keys is not extended.
        await run_unit(rt, lambda uow: reseal_url_signing_keys(uow, encryptor))
        new_id = encryptor.add_key()
        changed, total = await run_unit(rt, lambda uow: reseal_url_signing_keys(uow, encryptor))
        return new_id, changed, total

    new_id, changed, total = run(call)
    out.print(f"URL signing keys now encrypted with key-encryption key {new_id}.")
    out.print(f"Re-encrypted {changed} of {total} key(s); the older key-encryption keys stay")
    out.print("in the key file after the new one, so running processes keep working.")
