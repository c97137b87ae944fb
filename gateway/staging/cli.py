"""`gateway stage`, `gateway evidence`, `gateway recall`, `gateway reinstate`, `gateway
yank` and `gateway unyank`: moving a release through its stages, stopping it, and
passing over it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from gateway.cli.remote import remote
from gateway.cli.support import in_unit, out, parse_or_fail, reported_errors, run
from gateway.identity.accounts import operator_actor
from gateway.runtime import cli_actor
from gateway.staging.api import (
    GateReportOut,
    PromotionOut,
    RecallOut,
    ReinstateOut,
    StageMovedOut,
    StageStatusOut,
)
from gateway.staging.evidence_files import EVIDENCE_FILE_LIMIT_TEXT, read_evidence_file
from gateway.staging.promotion import (
    PromotionOutcome,
    attach_evidence,
    promote,
    stage_status,
)
from gateway.staging.quarantine import lift_quarantine, quarantine
from gateway.staging.quarantine_api import QuarantineOut
from gateway.staging.recalls import RecallOutcome, ReinstateOutcome, recall, reinstate
from gateway.staging.service import StageMoved, move_release
from gateway.staging.yanks import unyank, yank
from gateway.staging.yanks_api import YankOut
from gateway.web.filters import human_size, when
from stages.actors import Actor
from stages.names import ModelRef, parse_release_ref
from stages.release import Move

if TYPE_CHECKING:
    from gateway.db.uow import UnitOfWork

as_operator = click.option(
    "--as",
    "operator",
    envvar="GATEWAY_OPERATOR",
    metavar="EMAIL",
    help="The operator account acting (else $GATEWAY_OPERATOR, else the local user). "
    "Approvals count once per operator.",
)


async def actor_for(uow: UnitOfWork, operator: str | None) -> Actor:
    """`account:<id>` of the named operator, read in the command's unit of work, or the
    local user's name."""
    if operator is None:
        return cli_actor()
    return await operator_actor(uow, operator)


def _release(ref: str) -> tuple[ModelRef, str]:
    model, version = parse_or_fail(parse_release_ref, ref)
    assert version is not None
    return model, version


@click.group()
def stage() -> None:
    """Stage of a release: status, promote, approve, roll back."""


def _release_path(ref: str) -> str:
    """The operator API's path of the release `ref` names."""
    model, version = _release(ref)
    return f"/releases/{model.org}/{model.name}/{version}"


def _print_report(report: GateReportOut | None) -> None:
    if report is None:
        return
    if not report.gates:
        out.print("  no gates for this stage")
    for gate in report.gates:
        mark = "met  " if gate.met else "UNMET"
        out.print(f"  [{mark}] {gate.detail}")


@stage.command("status")
@click.argument("ref", metavar="ORG/NAME:VERSION")
def stage_status_command(ref: str) -> None:
    """The stage, time in stage, the evidence and every gate of the next stage."""
    model, version = _release(ref)
    api = remote()
    if api is not None:
        status = api.fetch(StageStatusOut, "GET", _release_path(ref) + "/stage")
    else:
        status = StageStatusOut.of(run(in_unit(lambda uow: stage_status(uow, model, version))))
    out.print(
        f"{status.release}: {status.stage} ({status.status}) for {status.days_in_stage} "
        f"day(s), since {when(status.since)}"
    )
    out.print(
        f"  downloads in this stage: {status.grantees_downloaded} grantee(s) from "
        f"{status.organisations_downloaded} organisation(s)"
    )
    incidents = ", ".join(f"{n} {s}" for s, n in status.open_incidents.items()) or "none"
    out.print(f"  open incidents: {incidents}")
    for recalled in status.recalls:
        out.print(f"  RECALLED ({recalled.tier}) since {when(recalled.since)}: {recalled.reason}")
    if status.quarantined_at is not None:
        out.print(f"  QUARANTINED since {when(status.quarantined_at)}: {status.quarantine_reason}")
    if status.yanked_at is not None:
        out.print(f"  yanked since {when(status.yanked_at)}: {status.yanked_reason}")
    for item in status.evidence:
        attached = (
            f", {item.file_name} ({human_size(item.file_size or 0)})" if item.file_name else ""
        )
        out.print(
            f"  evidence {item.kind}/{item.name} = {item.result} "
            f"({when(item.attached_at)}{attached})"
            + (" by an external evaluator" if item.external_evaluator else "")
        )
    if status.next_stage is None:
        out.print("  at the widest stage")
        return
    out.print(f"  gates to {status.next_stage} (approvals so far: {len(status.approvals)}):")
    _print_report(status.gates)


def _promotion(ref: str, target: str | None, operator: str | None, override: str | None) -> None:
    model, version = _release(ref)
    api = remote(operator=operator)
    if api is not None:
        if target is None:
            outcome = api.fetch(PromotionOut, "POST", _release_path(ref) + "/stage/approve")
        else:
            body = {"to": target, "override_reason": override}
            outcome = api.fetch(
                PromotionOut, "POST", _release_path(ref) + "/stage/promote", body=body
            )
    else:

        async def call(uow: UnitOfWork) -> PromotionOutcome:
            return await promote(
                uow,
                model,
                version,
                target=target,
                actor=await actor_for(uow, operator),
                override_reason=override,
            )

        outcome = PromotionOut.of(run(in_unit(call)))
    if outcome.moved:
        how = " (gates overridden)" if outcome.overridden else ""
        out.print(f"{outcome.release}: {outcome.from_stage} → {outcome.target}{how}")
        _print_report(outcome.gates)
        return
    report = outcome.gates
    if outcome.approval_recorded and all(g.met for g in report.gates if g.name != "approvals"):
        out.print(
            f"{outcome.release}: approval recorded ({report.approvals_have} of "
            f"{report.approvals_needed}); another operator completes it with "
            f"`gateway stage approve {outcome.release}`"
        )
    else:
        out.print(f"{outcome.release}: {outcome.message}")
    _print_report(report)
    raise SystemExit(4)


@stage.command("promote")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--to", "target", required=True, metavar="TIER", help="The next, wider stage.")
@click.option("--override", is_flag=True, help="Promote even with unmet gates (needs --reason).")
@click.option("--reason", help="Why the gates are overridden; recorded.")
@as_operator
def stage_promote(
    ref: str, target: str, override: bool, reason: str | None, operator: str | None
) -> None:
    """Promote when the gates are met; otherwise list what is unmet (exit 4)."""
    if override and not (reason and reason.strip()):
        raise click.UsageError("--override needs --reason")
    _promotion(ref, target, operator, reason if override else None)


@stage.command("approve")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@as_operator
def stage_approve(ref: str, operator: str | None) -> None:
    """Approve the pending promotion as another operator; promotes once every gate is met."""
    _promotion(ref, None, operator, None)


@stage.command("rollback")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--to", "target", required=True, metavar="STAGE", help="A narrower stage.")
@click.option("--reason", required=True, help="Why, recorded in the evidence.")
@as_operator
def stage_rollback(ref: str, target: str, reason: str, operator: str | None) -> None:
    """Narrow a release back to an earlier stage; wider tiers lose access at once."""
    model, version = _release(ref)
    api = remote(operator=operator)
    if api is not None:
        body = {"to": target, "reason": reason}
        moved = api.fetch(StageMovedOut, "POST", _release_path(ref) + "/stage/rollback", body=body)
    else:

        async def call(uow: UnitOfWork) -> StageMoved:
            return await move_release(
                uow,
                model,
                version,
                Move.ROLLBACK,
                target=target,
                actor=await actor_for(uow, operator),
                reason=reason,
            )

        moved = StageMovedOut.of(run(in_unit(call)))
    out.print(f"{moved.release}: {moved.from_stage} → {moved.to_stage} (rolled back)")


@click.group()
def evidence() -> None:
    """Evidence attached to releases for promotion gates."""


@evidence.command("attach")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--kind", required=True, help="e.g. evaluation")
@click.option("--name", required=True, help="e.g. red-team")
@click.option("--result", required=True, help="e.g. pass")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"The report (a regular file of at most {EVIDENCE_FILE_LIMIT_TEXT}).",
)
@click.option("--note", help="A short note.")
@as_operator
def evidence_attach(
    ref: str,
    kind: str,
    name: str,
    result: str,
    file: Path | None,
    note: str | None,
    operator: str | None,
) -> None:
    """Attach an evaluation report or other evidence to a release."""
    model, version = _release(ref)
    attached = None
    if file is not None:
        with reported_errors():
            attached = read_evidence_file(file)
    api = remote(operator=operator)
    if api is not None:
        fields = {"kind": kind, "name": name, "result": result, "note": note or ""}
        files = {"file": (attached.name, attached.content)} if attached else None
        api.call("POST", _release_path(ref) + "/evidence", form=fields, files=files)
        stored = f" with {file.name}" if file else ""
        out.print(f"Attached {kind}/{name} = {result} to {ref}{stored}.")
        return

    async def call(uow: UnitOfWork) -> object:
        return await attach_evidence(
            uow,
            model,
            version,
            kind=kind,
            name=name,
            result=result,
            file=attached,
            note=note,
            actor=await actor_for(uow, operator),
        )

    run(in_unit(call))
    stored = f" with {file.name}" if file else ""
    out.print(f"Attached {kind}/{name} = {result} to {ref}{stored}.")


@click.command("recall")
@click.argument("ref", metavar="ORG/NAME[:VERSION]")
@click.option("--reason", required=True)
@click.option("--tier", help="Only this tier (default: every tier).")
@as_operator
def recall_command(ref: str, reason: str, tier: str | None, operator: str | None) -> None:
    """Stop every download in scope at once, including URLs already handed out."""
    model, version = parse_or_fail(lambda t: parse_release_ref(t, version_required=False), ref)
    api = remote(operator=operator)
    if api is not None:
        path = f"/models/{model.org}/{model.name}" if version is None else _release_path(ref)
        body = {"reason": reason, "tier": tier}
        outcome = api.fetch(RecallOut, "POST", path + "/recall", body=body)
    else:

        async def call(uow: UnitOfWork) -> RecallOutcome:
            return await recall(
                uow, model, version, reason=reason, tier=tier, actor=await actor_for(uow, operator)
            )

        outcome = RecallOut.of(run(in_unit(call)))
    for done in outcome.recalled:
        out.print(f"Recalled {done}" + (f" for the {tier} tier" if tier else ""))
    for same in outcome.already_recalled:
        out.print(f"{same}: already recalled")
    out.print(f"{outcome.grantees_notified} grantee(s) notified.")


@click.command("reinstate")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--tier", help="Lift the recall of this tier only.")
@as_operator
def reinstate_command(ref: str, tier: str | None, operator: str | None) -> None:
    """Approve lifting a recall; lifts it once enough operators agree (policy)."""
    model, version = _release(ref)
    api = remote(operator=operator)
    if api is not None:
        path = _release_path(ref) + "/reinstate"
        outcome = api.fetch(ReinstateOut, "POST", path, body={"tier": tier})
    else:

        async def call(uow: UnitOfWork) -> ReinstateOutcome:
            return await reinstate(
                uow, model, version, tier=tier, actor=await actor_for(uow, operator)
            )

        outcome = ReinstateOut.of(run(in_unit(call)))
    if outcome.lifted:
        out.print(f"{ref}: recall lifted.")
        return
    out.print(
        f"{ref}: approval recorded ({outcome.approvals_have} of {outcome.approvals_needed}); "
        "another operator completes it with the same command."
    )
    raise SystemExit(4)


S = TypeVar("S")
Shape = TypeVar("Shape")


def _release_step(
    ref: str,
    operator: str | None,
    path: str,
    body: dict[str, str] | None,
    shape: type[Shape],
    answer: Callable[[S], Shape],
    step: Callable[[UnitOfWork, ModelRef, str, str], Awaitable[S]],
) -> Shape:
    """One step on a release: through the operator API under --server (at `path` below
    the release), else `step` here as the named operator; the answer in `shape`."""
    model, version = _release(ref)
    api = remote(operator=operator)
    if api is not None:
        return api.fetch(shape, "POST", _release_path(ref) + path, body=body)

    async def call(uow: UnitOfWork) -> S:
        return await step(uow, model, version, await actor_for(uow, operator))

    return answer(run(in_unit(call)))


@click.command("yank")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option(
    "--reason", required=True, help="Why: shown in the catalog, the manifest and the client."
)
@as_operator
def yank_command(ref: str, reason: str, operator: str | None) -> None:
    """Yank a release: no longer latest, still downloadable by its exact version."""
    state = _release_step(
        ref,
        operator,
        "/yank",
        {"reason": reason},
        YankOut,
        YankOut.of,
        lambda uow, model, version, actor: yank(uow, model, version, reason=reason, actor=actor),
    )
    out.print(f"Yanked {state.release}: {state.reason}")
    out.print(f"{state.grantees_notified} grantee(s) notified.")


@click.command("unyank")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@as_operator
def unyank_command(ref: str, operator: str | None) -> None:
    """Take a yank back: the release is again what it was before."""
    state = _release_step(
        ref,
        operator,
        "/unyank",
        None,
        YankOut,
        YankOut.of,
        lambda uow, model, version, actor: unyank(uow, model, version, actor=actor),
    )
    out.print(f"{state.release} is no longer yanked.")
    out.print(f"{state.grantees_notified} grantee(s) notified.")


@click.group("quarantine")
def quarantine_group() -> None:
    """Quarantine: hold a release (no new links, no API use) until an operator decides."""


@quarantine_group.command("put")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--reason", required=True, help="Why: recorded as evidence, told to operators.")
@as_operator
def quarantine_put(ref: str, reason: str, operator: str | None) -> None:
    """Quarantine a release by hand."""
    state = _release_step(
        ref,
        operator,
        "/quarantine",
        {"reason": reason},
        QuarantineOut,
        QuarantineOut.of,
        lambda uow, model, version, actor: quarantine(
            uow, model, version, reason=reason, actor=actor
        ),
    )
    out.print(f"{state.release} is quarantined: {state.reason}")


@quarantine_group.command("lift")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--reason", required=True, help="The decision: recorded as evidence.")
@as_operator
def quarantine_lift(ref: str, reason: str, operator: str | None) -> None:
    """Lift a quarantine, by hand or by the trusted reporters: the operator's decision."""
    state = _release_step(
        ref,
        operator,
        "/quarantine/lift",
        {"reason": reason},
        QuarantineOut,
        QuarantineOut.of,
        lambda uow, model, version, actor: lift_quarantine(
            uow, model, version, reason=reason, actor=actor
        ),
    )
    out.print(f"{state.release} is no longer quarantined.")
