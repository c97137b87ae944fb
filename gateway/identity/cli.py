"""`gateway accounts`: create and list accounts from the command line."""

from __future__ import annotations

import click
from rich.table import Table

from gateway.cli.support import out, run_in_unit
from gateway.identity import accounts as service
from gateway.runtime import cli_actor
from gateway.web.filters import when


@click.group()
def accounts() -> None:
    """Accounts and operators."""


@accounts.command("create")
@click.argument("email")
@click.option("--operator", is_flag=True, help="Give the account the operator role.")
@click.option("--name", "display_name", default="", help="Display name.")
def accounts_create(email: str, operator: bool, display_name: str) -> None:
    """Create an account for EMAIL."""
    account = run_in_unit(
        lambda uow: service.add_account(
            uow, email, operator=operator, actor=cli_actor(), display_name=display_name
        )
    )
    role = "operator" if account.is_operator else "account"
    out.print(f"Created {role} {account.email} ({account.id})")


@accounts.command("list")
@click.option("--operators", is_flag=True, help="Only operators.")
def accounts_list(operators: bool) -> None:
    """List accounts, oldest first."""
    rows = run_in_unit(lambda uow: service.accounts(uow, operators_only=operators))
    if not rows:
        out.print("No accounts yet. Create one with `gateway accounts create EMAIL`.")
        return
    table = Table()
    for column in ("email", "role", "status", "created", "id"):
        table.add_column(column)
    for account in rows:
        role = "operator" if account.is_operator else "—"
        table.add_row(account.email, role, account.status, when(account.created_at), account.id)
    out.print(table)
