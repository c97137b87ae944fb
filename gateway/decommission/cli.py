"""`gateway decommission` and `gateway purge`: end a release's hosting with notice, and
delete its stored files once the retention period is over."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.cli.support import fail, in_unit, out, parse_or_fail, reported_errors, run
from gateway.decommission import announce
from gateway.decommission import purge as purging
from gateway.decommission.announce import parse_when
from gateway.input_files import read_input_text
from gateway.runtime import cli_actor
from gateway.web.filters import human_size, when
from stages.names import parse_release_ref


def _read_license(path: Path) -> str:
    return read_input_text(path, what="license")


@click.command()
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option(
    "--at",
    "at_text",
    required=True,
    metavar="DATE",
    help="When hosting ends: YYYY-MM-DD (midnight UTC) or an ISO date and time.",
)
@click.option("--reason", required=True, help="Why; told to every grantee and recorded.")
@click.option("--successor", metavar="VERSION", help="The release of the model that replaces it.")
@click.option(
    "--license",
    "license_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A new license that applies from the date.",
)
def decommission(
    ref: str, at_text: str, reason: str, successor: str | None, license_file: Path | None
) -> None:
    """Announce the end of a release's hosting to every grantee of its model.

    Grantees are reminded before the date as the policy says; at the date downloads stop,
    and if no other release of the model is open, grants end and close-outs are asked for.
    """
    model, version = parse_or_fail(parse_release_ref, ref)
    assert version is not None
    at = parse_or_fail(parse_when, at_text)
    license_text = None
    if license_file is not None:
        with reported_errors():
            license_text = _read_license(license_file)

    shown = run(
        in_unit(
            lambda uow: announce.announce_with_status(
                uow,
                model,
                version,
                at=at,
                reason=reason,
                successor=successor,
                license_text=license_text,
                actor=cli_actor(),
            )
        )
    )
    out.print(f"{shown.ref}: hosting ends {when(shown.effective_at)}")
    out.print(f"  grantees notified: {shown.grantees_notified}")
    if shown.reminders:
        out.print(f"  reminders: {', '.join(when(moment) for moment in shown.reminders)}")
    if shown.successor:
        out.print(f"  successor: {model}:{shown.successor}")
    if shown.new_license_sha256:
        out.print(f"  new license from that date: sha256 {shown.new_license_sha256}")
    out.print(f"  stored files can be purged from {when(shown.purge_at)} (gateway purge)")


@click.command()
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def purge(ref: str, yes: bool) -> None:
    """Delete the stored files of a decommissioned release, after its retention period.

    Files another release still uses are kept. This cannot be undone.
    """
    model, version = parse_or_fail(parse_release_ref, ref)
    assert version is not None
    plan = run(in_unit(lambda uow: purging.plan_purge(uow, model, version)))
    out.print(
        f"{plan.ref}: {len(plan.delete)} stored file(s), {human_size(plan.delete_bytes)}, "
        f"will be deleted for good; {plan.kept} shared with other releases will be kept."
    )
    if not yes:
        if not sys.stdin.isatty():
            fail("purging cannot be undone; run it again with --yes to confirm", 2)
        click.confirm("Delete them?", abort=True)
    purged = run(in_unit(lambda uow: purging.purge(uow, model, version, actor=cli_actor())))
    out.print(
        f"{purged.ref}: purged; {purged.deleted} file(s) deleted "
        f"({human_size(purged.deleted_bytes)}), {purged.kept} kept"
    )
