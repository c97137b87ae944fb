"""`gateway keys`: API keys of accounts, and the URL signing key."""

from __future__ import annotations

import re
from collections.abc import Sequence

import click
from rich.table import Table

from gateway.accounts.service import find_account, normalise_email
from gateway.cli.support import out, run
from gateway.credentials import url_tokens
from gateway.credentials.key_encryption import (
    ROTATE_THE_SETTING,
    KeyEncryptionError,
    LocalKeyEncryptor,
)
from gateway.db.models import Account, ApiKey
from gateway.errors import NotFound
from gateway.keys.service import SCOPES, create_key, list_keys, revoke_key
from gateway.runtime import Runtime, cli_actor
from gateway.web.filters import when


@click.group()
def keys() -> None:
    """API keys, and the key that signs download URLs."""


def _days(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)d?", text.strip())
    if not match:
        raise click.BadParameter(f"expected a number of days like 90d, got {text!r}")
    return int(match.group(1))


async def _account(rt: Runtime, email: str) -> Account:
    async with rt.sessionmaker() as session:
        account = await find_account(session, normalise_email(email))
    if account is None:
        raise NotFound(f"no account {email}", code="account_not_found")
    return account


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
    days = _days(expires)

    async def call(rt: Runtime) -> str:
        account = await _account(rt, email)
        created = await create_key(
            rt, account_id=account.id, scopes=scopes, days=days, name=name, actor=cli_actor()
        )
        return created.secret

    out.print(run(call))


@keys.command("list")
@click.option("--account", "email", required=True, metavar="EMAIL")
def keys_list(email: str) -> None:
    """An account's keys (prefixes only; secrets are never stored)."""

    async def call(rt: Runtime) -> Sequence[ApiKey]:
        account = await _account(rt, email)
        async with rt.sessionmaker() as session:
            return await list_keys(session, account)

    rows = run(call)
    if not rows:
        out.print("No keys.")
        return
    table = Table()
    for column in ("id", "prefix", "name", "scopes", "expires", "last used", "state"):
        table.add_column(column, overflow="fold")
    for key in rows:
        state = "revoked" if key.revoked_at else "active"
        last = when(key.last_used_at) if key.last_used_at else "never"
        table.add_row(
            key.id,
            key.display_prefix + "…",
            key.name,
            key.scopes,
            when(key.expires_at),
            last,
            state,
        )
    out.print(table)


@keys.command("revoke")
@click.option("--account", "email", required=True, metavar="EMAIL")
@click.argument("key_id")
def keys_revoke(email: str, key_id: str) -> None:
    """Revoke an account's key at once."""

    async def call(rt: Runtime) -> ApiKey:
        account = await _account(rt, email)
        return await revoke_key(rt, account_id=account.id, key_id=key_id, actor=cli_actor())

    key = run(call)
    out.print(f"Revoked {key.display_prefix}… ({key.id}).")


@keys.command("rotate-url-signing")
def keys_rotate_url_signing() -> None:
    """Start signing download URLs with a new key; URLs already issued keep working."""

    async def call(rt: Runtime) -> tuple[str, list[str]]:
        longest = max(tier.url_ttl_seconds for tier in rt.policy.ladder)
        async with rt.transaction() as session:
            return await url_tokens.rotate(session, rt.key_encryptor, rt.clock(), longest)

    kid, retired = run(call)
    out.print(f"Signing download URLs with key {kid}.")
    for old in retired:
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
        async with rt.transaction() as session:
            await url_tokens.reseal_keys(session, encryptor)
        new_id = encryptor.add_key()
        async with rt.transaction() as session:
            changed, total = await url_tokens.reseal_keys(session, encryptor)
        return new_id, changed, total

    new_id, changed, total = run(call)
    out.print(f"URL signing keys now encrypted with key-encryption key {new_id}.")
    out.print(f"Re-encrypted {changed} of {total} key(s); the older key-encryption keys stay")
    out.print("in the key file after the new one, so running processes keep working.")
