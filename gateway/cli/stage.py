"""`gateway stage`: move a release through its stages."""

from __future__ import annotations

import click

from gateway.cli.support import out, parse_or_fail, run
from gateway.runtime import cli_actor
from gateway.staging.service import move_release
from stages.names import parse_release_ref
from stages.release import Move


@click.group()
def stage() -> None:
    """Promote or roll back a release."""


@stage.command("promote")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--to", "target", required=True, metavar="TIER", help="The next, wider stage.")
@click.option("--reason", help="Why, recorded in the evidence.")
def stage_promote(ref: str, target: str, reason: str | None) -> None:
    """Open a release to the next, wider tier."""
    model, version = parse_or_fail(parse_release_ref, ref)
    assert version is not None
    moved = run(
        lambda rt: move_release(
            rt, model, version, Move.PROMOTE, target=target, actor=cli_actor(), reason=reason
        )
    )
    out.print(f"{moved.ref}: {moved.from_stage} → {moved.to_stage}")


@stage.command("rollback")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--to", "target", required=True, metavar="STAGE", help="A narrower stage.")
@click.option("--reason", required=True, help="Why, recorded in the evidence.")
def stage_rollback(ref: str, target: str, reason: str) -> None:
    """Narrow a release back to an earlier stage; wider tiers lose access at once."""
    model, version = parse_or_fail(parse_release_ref, ref)
    assert version is not None
    moved = run(
        lambda rt: move_release(
            rt, model, version, Move.ROLLBACK, target=target, actor=cli_actor(), reason=reason
        )
    )
    out.print(f"{moved.ref}: {moved.from_stage} → {moved.to_stage} (rolled back)")
