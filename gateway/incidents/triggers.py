"""The policy's triggers, carried out: a confirmed incident recalls its release, withdraws
it from a tier, or suspends the accounts linked to it, as the policy says.

Which triggers fire is decided by the pure evaluator (policies/triggers.py) from the
incident's severity, its release's state and its linked accounts. This module takes each
action through the ordinary service (staging.recalls.recall, enforcement.enforce), so an
automatic recall is the same recall an operator makes, with `rule` saying which trigger
asked for it.

Idempotent, so that the confirmation and the scheduler's re-check may both run it, in any
order and as often as they like:
- each action taken leaves a `trigger.fired` evidence row naming the incident, the rule,
  the action and its target (tier or account). An action with such a row is never taken
  again for that incident, even when an operator has since lifted its effect (reinstated
  the release, lifted the suspension): undoing it is the operator's decision to keep;
- the row is written after the action, under a lock of the incident's row, and only if
  no other run wrote it first; an action interrupted before its row is simply taken again
  and finds its effect already in force (a recall in force is reported, not repeated; an
  account already suspended or terminated is left alone);
- only confirmed incidents fire: a resolved one has had its response.

Each read, each action and each record is a unit of work of its own (run_unit), taken
after the confirming step's unit has committed: this module is a boundary, like a job.

A tier recall withdraws the release from the tier and from every wider tier it is open
to (the policy's meaning), each as a recall of its own, since the access decision refuses
exactly the tiers under a recall.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.db.uow import UnitOfWork, run_unit
from gateway.errors import Conflict, NotFound
from gateway.incidents import repository
from gateway.runtime import Runtime
from gateway.staging.recalls import recall
from policies.schema import Reaction
from policies.triggers import IncidentConfirmed, TriggerAction, fire_triggers
from stages import evidence as ev
from stages.enforcement import AccountStatus, EnforcementStep
from stages.incidents import IncidentStatus, Severity
from stages.names import ModelRef
from stages.release import ReleaseState, StageMachine, Status

logger = logging.getLogger("gateway.incidents")

TRIGGER_ACTOR: Final = ev.TRIGGER
FIRED: Final = ev.EvidenceKind.TRIGGER_FIRED
_STOPPED: Final = frozenset({AccountStatus.SUSPENDED.value, AccountStatus.TERMINATED.value})


@dataclass(frozen=True)
class _Facts:
    """What the triggers of one confirmed incident are judged on, read in one go."""

    incident_id: str
    tracking_code: str
    category: str
    severity: Severity
    model_id: int | None
    release_id: int | None
    model: ModelRef | None
    version: str | None
    release: ReleaseState | None
    accounts: dict[str, tuple[str, AccountStatus]]  # account id -> (email, status)
    done: frozenset[tuple[str, str | None, str | None]]

    @property
    def event(self) -> IncidentConfirmed:
        return IncidentConfirmed(
            severity=self.severity, release=self.release, linked_accounts=frozenset(self.accounts)
        )

    @property
    def reason(self) -> str:
        return (
            f"a {self.category} incident ({self.tracking_code}) was confirmed at "
            f"{self.severity.value} severity"
        )


@dataclass(frozen=True)
class _Step:
    """One thing an action asks for: a recall of the release or of one tier, or the
    suspension of one account."""

    action: Reaction
    rule: str
    tier: str | None = None
    account_id: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.action.value, self.tier, self.account_id)


async def apply_triggers(rt: Runtime, incident_id: str) -> list[str]:
    """Take the actions the policy's triggers ask for on a confirmed incident, each once;
    returns a sentence for each action taken now (nothing when all were taken before)."""
    facts = await run_unit(rt, lambda uow: _facts(uow, incident_id))
    if facts is None:
        return []
    taken: list[str] = []
    for action in fire_triggers(rt.policy.triggers, facts.event, rt.stage_machine):
        for step in _steps(action, facts, rt.stage_machine):
            if step.key in facts.done:
                continue
            outcome = await _take(rt, step, facts)
            if await _record(rt, facts, step, outcome):
                taken.append(f"{step.rule}: {outcome}")
    return taken


async def recheck_triggers(rt: Runtime) -> int:
    """The scheduler's job: apply the triggers of every confirmed incident again, so that
    what a failed or interrupted run left undone is done. Returns the actions taken."""
    confirmed = await run_unit(rt, lambda uow: repository.confirmed_ids(uow.session))
    taken = 0
    failed: list[str] = []
    for incident_id in confirmed:
        try:
            taken += len(await apply_triggers(rt, incident_id))
        except Exception:
            # One incident's failure must not hold up the others; the job reports it below.
            logger.exception("the triggers of incident %s failed", incident_id)
            failed.append(incident_id)
    if failed:
        raise TriggersFailed(failed, taken)
    return taken


class TriggersFailed(Exception):
    """Some incidents' triggers could not be applied (each was logged); the rest were."""

    def __init__(self, incident_ids: list[str], taken: int) -> None:
        self.incident_ids = incident_ids
        self.taken = taken
        super().__init__(
            f"the triggers of {len(incident_ids)} incident(s) failed "
            f"({', '.join(incident_ids)}); {taken} action(s) were taken"
        )


async def _facts(uow: UnitOfWork, incident_id: str) -> _Facts | None:
    session = uow.session
    incident = await repository.get(session, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}", code="incident_not_found")
    if incident.status != IncidentStatus.CONFIRMED.value or not incident.severity:
        return None
    model: ModelRef | None = None
    version: str | None = None
    state: ReleaseState | None = None
    if incident.release_id is not None:
        row = await repository.release_facts(session, incident.release_id)
        version, stage, status, org, name = row
        model = ModelRef(org, name)
        state = ReleaseState(stage, Status(status))
    linked = await repository.linked_standings(session, incident.id)
    accounts = {
        account_id: (email, AccountStatus(status)) for account_id, (email, status) in linked.items()
    }
    return _Facts(
        incident_id=incident.id,
        tracking_code=incident.tracking_code,
        category=incident.category,
        severity=Severity(incident.severity),
        model_id=incident.model_id,
        release_id=incident.release_id,
        model=model,
        version=version,
        release=state,
        accounts=accounts,
        done=await _done(session, incident.id, incident.release_id, accounts),
    )


async def _done(
    session: AsyncSession,
    incident_id: str,
    release_id: int | None,
    accounts: Mapping[str, object],
) -> frozenset[tuple[str, str | None, str | None]]:
    """The actions already taken for the incident, from its trigger.fired evidence."""
    rows = await repository.fired_evidence(session, release_id, accounts)
    return frozenset(
        (str(data.get("action")), data.get("tier"), data.get("account"))
        for data in rows
        if data.get("incident") == incident_id
    )


def _steps(action: TriggerAction, facts: _Facts, machine: StageMachine) -> list[_Step]:
    if action.action is Reaction.RECALL:
        return [_Step(Reaction.RECALL, action.rule)]
    if action.action is Reaction.RECALL_TIER:
        assert action.tier is not None  # a tier recall names its tier
        assert facts.release is not None  # and fires only for a release
        wider = machine.stages[machine.stages.index(action.tier) :]
        return [
            _Step(Reaction.RECALL_TIER, action.rule, tier=tier)
            for tier in wider
            if machine.reaches(facts.release.stage, tier)
        ]
    return [
        _Step(Reaction.SUSPEND_ACCOUNTS, action.rule, account_id=account_id)
        for account_id in sorted(facts.accounts)
    ]


async def _take(rt: Runtime, step: _Step, facts: _Facts) -> str:
    """Take one step; a sentence saying what it did (or that it was in force already)."""
    if step.action is Reaction.SUSPEND_ACCOUNTS:
        assert step.account_id is not None
        return await _suspend(rt, step.account_id, facts)
    assert facts.model is not None  # release actions fire only for a release
    assert facts.version is not None
    ref = f"{facts.model}:{facts.version}"
    model, version = facts.model, facts.version
    outcome = await run_unit(
        rt,
        lambda uow: recall(
            uow,
            model,
            version,
            reason=facts.reason,
            actor=TRIGGER_ACTOR,
            tier=step.tier,
            rule=step.rule,
        ),
    )
    scope = f" for the {step.tier} tier" if step.tier else ""
    if outcome.releases:
        return f"recalled {ref}{scope} ({outcome.grantees_notified} grantee(s) notified)"
    return f"{ref} was already recalled{scope}"


async def _suspend(rt: Runtime, account_id: str, facts: _Facts) -> str:
    from gateway.enforcement.service import enforce

    email, status = facts.accounts[account_id]
    if status in _STOPPED:
        return f"{email} was already {status}"
    try:
        await run_unit(
            rt,
            lambda uow: enforce(
                uow,
                email=email,
                step=EnforcementStep.SUSPEND,
                reason=f"your account is linked to {facts.reason}",
                days=None,  # the policy's suspend_days
                incident_id=facts.incident_id,
                actor=TRIGGER_ACTOR,
            ),
        )
    except Conflict:
        # Suspended or terminated since the facts were read (an operator, another run).
        now_status = await run_unit(
            rt, lambda uow: repository.account_status(uow.session, account_id)
        )
        if now_status not in _STOPPED:
            raise
        return f"{email} was already {now_status}"
    return f"suspended {email}"


async def _record(rt: Runtime, facts: _Facts, step: _Step, outcome: str) -> bool:
    """Write the step's trigger.fired evidence and timeline line, unless another run
    already did; whether this run wrote them."""
    return await run_unit(rt, lambda uow: _record_in(uow, facts, step, outcome))


async def _record_in(uow: UnitOfWork, facts: _Facts, step: _Step, outcome: str) -> bool:
    now = uow.rt.clock()
    session = await uow.write()
    incident = await repository.locked_by_id(session, facts.incident_id)
    if incident is None:
        raise NotFound(f"no incident {facts.incident_id}", code="incident_not_found")
    done = await _done(session, incident.id, incident.release_id, facts.accounts)
    if step.key in done:
        return False
    evidence.record(
        session,
        ev.TriggerFired(
            incident=incident.id,
            rule=step.rule,
            action=step.action.value,
            tier=step.tier,
            account=step.account_id,
            severity=facts.severity.value,
            outcome=outcome,
        ),
        actor=TRIGGER_ACTOR,
        at=now,
        model_id=facts.model_id,
        release_id=facts.release_id,
        account_id=step.account_id,
    )
    repository.add_event(
        session,
        incident,
        at=now,
        actor=TRIGGER_ACTOR,
        move="trigger",
        from_status=incident.status,
        note=f"{step.rule}: {outcome}",
    )
    return True
