"""`gateway grants`: operators create and change access grants, on the database or
through a gateway's operator API (`gateway --server URL grants ...`)."""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.table import Table

from gateway.cli.remote import Remote, remote
from gateway.cli.support import in_unit, out, parse_or_fail, run
from gateway.grants.ops_api import GrantOut, GrantPage
from gateway.grants.service import GrantFilter, change_grant, create_grant, list_grants
from gateway.runtime import cli_actor
from gateway.web.filters import when
from stages.grants import GrantMove
from stages.names import parse_model_ref


@click.group()
def grants() -> None:
    """Access grants: who may download which model at which tier."""


@grants.command("create")
@click.option("--account", "email", required=True, metavar="EMAIL")
@click.option("--model", required=True, metavar="ORG/NAME")
@click.option("--tier", required=True, metavar="TIER")
@click.option("--days", type=int, help="Length of the grant (default: the tier's grant_days).")
def grants_create(email: str, model: str, tier: str, days: int | None) -> None:
    """Grant an account access to a model at a tier; prints the grant id."""
    ref = parse_or_fail(parse_model_ref, model)
    api = remote()
    if api is not None:
        body = {"email": email, "model": str(ref), "tier": tier, "days": days}
        out.print(api.fetch(GrantOut, "POST", "/grants", body=body).id)
        return
    grant = run(
        in_unit(
            lambda uow: create_grant(
                uow, email=email, model=ref, tier=tier, days=days, actor=cli_actor()
            )
        )
    )
    out.print(grant.id)


@grants.command("list")
@click.option("--account", "email", metavar="EMAIL")
@click.option("--model", metavar="ORG/NAME")
def grants_list(email: str | None, model: str | None) -> None:
    """List grants, newest first."""
    ref = parse_or_fail(parse_model_ref, model) if model else None
    api = remote()
    if api is not None:
        _print_grants(_remote_grants(api, email or "", str(ref) if ref else ""))
        return
    rows = run(in_unit(lambda uow: list_grants(uow, GrantFilter(email=email, model=ref))))
    _print_grants([GrantOut.of(grant) for grant in rows])


def _remote_grants(api: Remote, email: str, model: str) -> list[GrantOut]:
    """Every grant the filter finds."""
    params: dict[str, str | int | bool] = {"email": email, "model": model, "limit": 200}
    return [grant for page in api.pages(GrantPage, "/grants", params) for grant in page.items]


def _print_grants(rows: list[GrantOut]) -> None:
    if not rows:
        out.print("No grants.")
        return
    table = Table()
    for column in ("id", "account", "model", "tier", "status", "expires"):
        table.add_column(column, overflow="fold")
    for grant in rows:
        table.add_row(
            grant.id, grant.account, grant.model, grant.tier, grant.status, when(grant.expires_at)
        )
    out.print(table)


def _change(move: GrantMove, grant_id: str, reason: str) -> None:
    api = remote()
    if api is not None:
        path = f"/grants/{quote(grant_id, safe='')}/{move.value}"
        moved = api.fetch(GrantOut, "POST", path, body={"reason": reason})
        out.print(f"Grant {moved.id} is now {moved.status}.")
        return
    grant = run(
        in_unit(lambda uow: change_grant(uow, grant_id, move, reason=reason, actor=cli_actor()))
    )
    out.print(f"Grant {grant.id} is now {grant.status}.")


@grants.command("revoke")
@click.argument("grant_id")
@click.option("--reason", required=True)
def grants_revoke(grant_id: str, reason: str) -> None:
    """Revoke a grant for good; its URLs stop working at once."""
    _change(GrantMove.REVOKE, grant_id, reason)


@grants.command("suspend")
@click.argument("grant_id")
@click.option("--reason", required=True)
def grants_suspend(grant_id: str, reason: str) -> None:
    """Suspend a grant; its URLs stop working at once."""
    _change(GrantMove.SUSPEND, grant_id, reason)


@grants.command("reinstate")
@click.argument("grant_id")
@click.option("--reason", required=True)
def grants_reinstate(grant_id: str, reason: str) -> None:
    """Lift a suspension."""
    _change(GrantMove.REINSTATE, grant_id, reason)
