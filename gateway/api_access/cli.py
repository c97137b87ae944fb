"""`gateway services`: the accounts of inference services, which verify grantees' keys
and report their use."""

from __future__ import annotations

import click
from rich.table import Table

from gateway.api_access.service_accounts import (
    ServiceAccount,
    create_service,
    new_service_key,
    services,
)
from gateway.cli.support import UnitOfWork, in_unit, out, run
from gateway.keys.cli import days_option
from gateway.runtime import cli_actor


@click.group()
def services_group() -> None:
    """Service accounts: inference services that verify keys and report API use."""


@services_group.command("create")
@click.argument("name")
@click.option(
    "--expires", help="The key's lifetime like 90d (default and maximum from the policy)."
)
def services_create(name: str, expires: str | None) -> None:
    """Make the service account NAME and print its first `verify` key, alone on stdout
    (it is shown only this once)."""
    days = days_option(expires)

    async def call(uow: UnitOfWork) -> str:
        _, key = await create_service(uow, name, days=days, actor=cli_actor())
        return key.secret

    out.print(run(in_unit(call)))


@services_group.command("key")
@click.argument("name")
@click.option(
    "--expires", help="The key's lifetime like 90d (default and maximum from the policy)."
)
def services_key(name: str, expires: str | None) -> None:
    """Print a new `verify` key for the service NAME (revoke the old one with
    `gateway keys revoke`)."""
    days = days_option(expires)

    async def call(uow: UnitOfWork) -> str:
        return (await new_service_key(uow, name, days=days, actor=cli_actor())).secret

    out.print(run(in_unit(call)))


@services_group.command("list")
def services_list() -> None:
    """The service accounts, with the address their keys are listed under."""

    async def call(uow: UnitOfWork) -> list[ServiceAccount]:
        return list(await services(uow))

    found = run(in_unit(call))
    if not found:
        out.print("no service accounts; make one with `gateway services create NAME`")
        return
    table = Table("name", "account", "status", "created")
    for service in found:
        account = service.account
        table.add_row(service.name, account.email, account.status, f"{account.created_at:%Y-%m-%d}")
    out.print(table)
