"""Every status a service path changes moves by the stages/ tables.

Each step of a walk through the services reads every status column (and the event logs
that name their moves) before and after, and checks each change against the core's
table: a row changed in place made one legal move, a new row starts where its machine
starts (or one legal move on), and each logged move is the move its log line names. The
walks end by checking they made the moves they are meant to walk, so a path that stopped
changing a status would show up here too.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.applications import deciding, submitting
from gateway.applications import service as applications
from gateway.db.models import Base, Grant
from gateway.decommission import announce as announcing
from gateway.decommission import service as decommission
from gateway.enforcement import appeals
from gateway.enforcement import service as enforcement
from gateway.errors import Conflict
from gateway.grants.lifecycle import expire_grants
from gateway.grants.service import change_grant, create_grant
from gateway.incidents import reporting
from gateway.incidents import service as incidents
from gateway.runtime import Runtime
from gateway.staging.recalls import recall, reinstate
from gateway.staging.service import move_release
from stages.applications import (
    Actor,
    ApplicationMove,
    ApplicationMoveError,
    ApplicationStatus,
    apply_application_move,
)
from stages.enforcement import (
    AccountMove,
    AccountStatus,
    AppealMove,
    AppealStatus,
    EnforcementError,
    EnforcementStep,
    apply_appeal_move,
    apply_enforcement,
)
from stages.grants import GrantMove, GrantStatus, IllegalGrantMove, apply_grant_move
from stages.incidents import IncidentMove, IncidentMoveError, IncidentStatus, apply_incident_move
from stages.release import DRAFT, Move, ReleaseState, StageMachine, Status
from tests.accounts import create_account
from tests.grantees import MODEL
from tests.sample import publish
from tests.units import within

pytestmark = pytest.mark.anyio

PUBLIC = {"intended_use": "research", "agree_acceptable_use": True}
RESEARCHER = {
    "affiliation": "Uni",
    "country": "FR",
    "research_purpose": "evaluation",
    "agree_no_redistribution": True,
}

State = tuple[Any, ...]
Next = Callable[[State], set[State]]


def _grant_next(state: State) -> set[State]:
    return {(after,) for after in _tries(lambda m: apply_grant_move(state[0], m), GrantMove)}


def _account_next(state: State) -> set[State]:
    return {(after,) for after in _tries(lambda m: apply_enforcement(state[0], m), AccountMove)}


def _appeal_next(state: State) -> set[State]:
    return {(after,) for after in _tries(lambda m: apply_appeal_move(state[0], m), AppealMove)}


def _incident_next(state: State) -> set[State]:
    return {
        (after,)
        for after in _tries(lambda m: apply_incident_move(state[0], m, "why"), IncidentMove)
    }


def _application_next(state: State) -> set[State]:
    moves = list(itertools.product(ApplicationMove, Actor))
    return {
        (after,)
        for after in _tries(lambda pair: apply_application_move(state[0], *pair, "why"), moves)
    }


def _release_next(machine: StageMachine) -> Next:
    def following(state: State) -> set[State]:
        before = ReleaseState(state[0], state[1])
        return {
            (after.stage, after.status)
            for after in (machine.apply(before, m, t) for m, t in machine.legal_moves(before))
        }

    return following


_REFUSED = (IllegalGrantMove, EnforcementError, IncidentMoveError, ApplicationMoveError)


def _tries(move: Callable[[Any], Any], moves: Iterable[Any]) -> list[Any]:
    made = []
    for each in moves:
        try:
            made.append(move(each))
        except _REFUSED:
            continue
    return made


# table -> (the columns of its state, where its machine starts)
TRACKED: dict[str, tuple[tuple[str, ...], State]] = {
    "accounts": (("status",), (AccountStatus.ACTIVE,)),
    "releases": (("stage", "status"), (DRAFT, Status.ACTIVE)),
    "grants": (("status",), (GrantStatus.ACTIVE,)),
    "applications": (("status",), (ApplicationStatus.SUBMITTED,)),
    "incidents": (("status",), (IncidentStatus.REPORTED,)),
    "appeals": (("status",), (AppealStatus.PENDING,)),
}
Snapshot = dict[tuple[str, tuple[Any, ...]], State]
Change = tuple[str, State | None, State]


async def _snapshot(rt: Runtime) -> Snapshot:
    found: Snapshot = {}
    async with rt.sessionmaker() as session:
        for name, (columns, _) in TRACKED.items():
            table = Base.metadata.tables[name]
            keys = list(table.primary_key.columns)
            rows = await session.execute(select(*keys, *(table.c[c] for c in columns)))
            for row in rows:
                found[(name, tuple(row[: len(keys)]))] = tuple(row[len(keys) :])
    return found


async def _logged_moves(rt: Runtime, after_ids: dict[str, int]) -> list[tuple[str, Any]]:
    """Lines of the three move logs with an id above `after_ids`."""
    lines: list[tuple[str, Any]] = []
    async with rt.sessionmaker() as session:
        for name in ("application_events", "incident_events", "stage_changes"):
            table = Base.metadata.tables[name]
            rows = await session.execute(select(table).where(table.c.id > after_ids.get(name, 0)))
            lines.extend((name, row) for row in rows)
    return lines


class Walk:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.next: dict[str, Next] = {
            "accounts": _account_next,
            "releases": _release_next(rt.stage_machine),
            "grants": _grant_next,
            "applications": _application_next,
            "incidents": _incident_next,
            "appeals": _appeal_next,
        }
        self.made: set[Change] = set()
        self.log_ids: dict[str, int] = {}

    @asynccontextmanager
    async def step(self, what: str) -> AsyncIterator[None]:
        before = await _snapshot(self.rt)
        yield
        after = await _snapshot(self.rt)
        assert set(before) <= set(after), f"{what}: rows went away"
        for (table, key), state in after.items():
            old = before.get((table, key))
            if old == state:
                continue
            if old is None:
                start = TRACKED[table][1]
                assert state == start or state in self.next[table](start), (what, table, state)
            else:
                assert state in self.next[table](old), f"{what}: {table} {key} {old} -> {state}"
            self.made.add((table, old, state))
        for log, line in await _logged_moves(self.rt, self.log_ids):
            self._check_line(what, log, line)
            self.log_ids[log] = max(self.log_ids.get(log, 0), line.id)

    def _check_line(self, what: str, log: str, line: Any) -> None:
        if log == "stage_changes":
            state = ReleaseState(line.from_stage, line.from_status)
            target = None if line.to_stage == line.from_stage else line.to_stage
            if Move(line.move) is Move.ROLLBACK or Move(line.move) is Move.PROMOTE:
                target = line.to_stage
            after = self.rt.stage_machine.apply(state, Move(line.move), target)
            assert (after.stage, after.status) == (line.to_stage, line.to_status), what
        elif log == "application_events":
            if line.from_status is None:
                assert (line.move, line.to_status) == ("submit", ApplicationStatus.SUBMITTED)
                return
            move = ApplicationMove(line.move)
            leads_to = _tries(
                lambda actor: apply_application_move(line.from_status, move, actor, "why"), Actor
            )
            assert line.to_status in leads_to, (what, line.move, line.from_status)
        elif line.move in set(IncidentMove):
            assert apply_incident_move(line.from_status, line.move, "why") == line.to_status
        else:  # a note or a trigger's line: no move, so no change
            assert line.from_status in (None, line.to_status), (what, line.move)


def at(rt: Runtime, moment: datetime) -> None:
    rt.clock = lambda: moment


async def _apply(
    rt: Runtime, who: str, tier: str, answers: dict[str, Any], renewal_of: str | None = None
) -> Any:
    form = await within(rt, lambda uow: applications.application_form(uow, MODEL, tier))
    return await within(
        rt,
        lambda uow: submitting.submit(
            uow,
            account_id=who,
            model=MODEL,
            tier=tier,
            answers=answers,
            license_sha256=form.license_sha256,
            address="192.0.2.1",
            renewal_of=renewal_of,
            usage_report="evaluation runs" if renewal_of else None,
        ),
    )


async def _grant(rt: Runtime, grant_id: str) -> Grant:
    async with rt.sessionmaker() as session:
        grant = await session.get(Grant, grant_id)
    assert grant is not None
    return grant


async def _published(walk: Walk, rt: Runtime, tmp_path: Path, to: str) -> None:
    async with walk.step("publish"):
        await publish(rt, tmp_path)
    for stage in rt.policy.ladder.names:
        async with walk.step(f"promote to {stage}"):
            await within(
                rt,
                lambda uow, stage=stage: move_release(
                    uow, MODEL, "1.0", Move.PROMOTE, target=stage, actor="op"
                ),
            )
        if stage == to:
            return


async def test_application_and_grant_paths_move_by_the_tables(
    runtime: Runtime, tmp_path: Path
) -> None:
    walk = Walk(runtime)
    await _published(walk, runtime, tmp_path, to="public")
    ids = {}
    for name in ("ada", "bob", "cy", "dee", "eve", "fay"):
        async with walk.step(f"sign up {name}"):
            ids[name] = (
                await create_account(runtime, f"{name}@example.com", operator=False, actor="t")
            ).id

    async with walk.step("apply, approved on acceptance"):
        public = await _apply(runtime, ids["ada"], "public", PUBLIC)
    assert public.status is ApplicationStatus.APPROVED
    async with walk.step("apply for review"):
        reviewed = await _apply(runtime, ids["bob"], "researcher", RESEARCHER)
    assert reviewed.status is ApplicationStatus.SUBMITTED
    for move, reason in [
        (ApplicationMove.START_REVIEW, None),
        (ApplicationMove.REQUEST_CHANGES, "say which lab"),
    ]:
        async with walk.step(move):
            await within(
                runtime,
                lambda uow, move=move, reason=reason: deciding.decide(
                    uow, reviewed.id, move, operator="op", reason=reason
                ),
            )
    async with walk.step("resubmit"):
        await within(
            runtime,
            lambda uow: deciding.act_as_applicant(
                uow, ids["bob"], reviewed.id, ApplicationMove.RESUBMIT, answers=RESEARCHER
            ),
        )
    async with walk.step("approve"):
        approved = await within(
            runtime,
            lambda uow: deciding.decide(
                uow, reviewed.id, ApplicationMove.APPROVE, operator="op", reason=None
            ),
        )
    for name, move in [("cy", ApplicationMove.WITHDRAW), ("dee", ApplicationMove.DENY)]:
        async with walk.step(f"apply ({name})"):
            other = await _apply(runtime, ids[name], "researcher", RESEARCHER)
        async with walk.step(move):
            if move is ApplicationMove.WITHDRAW:
                await within(
                    runtime,
                    lambda uow, who=ids[name], other=other, move=move: deciding.act_as_applicant(
                        uow, who, other.id, move
                    ),
                )
            else:
                await within(
                    runtime,
                    lambda uow, other=other, move=move: deciding.decide(
                        uow, other.id, move, operator="op", reason="no"
                    ),
                )
    async with walk.step("apply (eve)"):
        stale = await _apply(runtime, ids["eve"], "researcher", RESEARCHER)
    async with walk.step("request changes (eve)"):
        await within(
            runtime,
            lambda uow: deciding.decide(
                uow, stale.id, ApplicationMove.REQUEST_CHANGES, operator="op", reason="more"
            ),
        )

    grant_id = public.grant_id
    assert grant_id is not None
    for move in (GrantMove.SUSPEND, GrantMove.REINSTATE):
        async with walk.step(f"grant {move}"):
            await within(
                runtime,
                lambda uow, move=move: change_grant(
                    uow, grant_id, move, reason="checking", actor="op"
                ),
            )
    async with walk.step("operator grant"):
        revoked = await within(
            runtime,
            lambda uow: create_grant(
                uow, email="fay@example.com", model=MODEL, tier="public", days=None, actor="op"
            ),
        )
    async with walk.step("grant revoke"):
        await within(
            runtime,
            lambda uow: change_grant(
                uow, revoked.id, GrantMove.REVOKE, reason="misuse", actor="op"
            ),
        )

    # An active grant inside its renewal window is renewed in place: RENEW, still active.
    start = runtime.clock()
    bob_grant = await _grant(runtime, approved.grant_id or "")
    at(runtime, bob_grant.expires_at - timedelta(days=10))
    async with walk.step("renew an active grant"):
        renewing = await _apply(
            runtime, ids["bob"], "researcher", RESEARCHER, renewal_of=bob_grant.id
        )
        await within(
            runtime,
            lambda uow: deciding.decide(
                uow, renewing.id, ApplicationMove.APPROVE, operator="op", reason=None
            ),
        )
    extended = await _grant(runtime, bob_grant.id)
    assert extended.status is GrantStatus.ACTIVE
    assert extended.expires_at == bob_grant.expires_at + timedelta(days=180)

    at(runtime, start + timedelta(days=400))
    async with walk.step("expire grants"):
        report = await within(runtime, expire_grants)
    assert report.expired == 2  # ada's, and bob's even renewed; fay's was revoked
    async with walk.step("expire stale applications"):
        assert await within(runtime, deciding.expire_stale_applications) >= 1

    # An expired grant stays expired; its renewal is a new grant.
    async with walk.step("renew an expired grant"):
        renewal = await _apply(runtime, ids["ada"], "public", PUBLIC, renewal_of=grant_id)
    assert renewal.status is ApplicationStatus.APPROVED
    assert renewal.grant_id not in (None, grant_id)
    assert (await _grant(runtime, grant_id)).status is GrantStatus.EXPIRED
    follower = await _grant(runtime, renewal.grant_id or "")
    assert follower.status is GrantStatus.ACTIVE
    assert follower.expires_at == runtime.clock() + timedelta(days=365)
    # A revoked grant is not renewed, whatever the window says.
    with pytest.raises(Conflict, match="a revoked grant cannot be renewed"):
        await _apply(runtime, ids["fay"], "public", PUBLIC, renewal_of=revoked.id)

    active, suspended = (GrantStatus.ACTIVE,), (GrantStatus.SUSPENDED,)
    assert {
        ("grants", None, active),
        ("grants", active, suspended),
        ("grants", suspended, active),
        ("grants", active, (GrantStatus.REVOKED,)),
        ("grants", active, (GrantStatus.EXPIRED,)),
    } <= walk.made
    assert ("applications", None, (ApplicationStatus.APPROVED,)) in walk.made
    made = {(old, new) for table, old, new in walk.made if table == "applications"}
    assert {(s,) for s in ApplicationStatus} - {(ApplicationStatus.SUBMITTED,)} <= {
        new for _, new in made
    }


async def test_release_incident_and_enforcement_paths_move_by_the_tables(
    runtime: Runtime, tmp_path: Path
) -> None:
    walk = Walk(runtime)
    await _published(walk, runtime, tmp_path, to="public")
    async with walk.step("rollback"):
        await within(
            runtime,
            lambda uow: move_release(
                uow, MODEL, "1.0", Move.ROLLBACK, target="researcher", actor="op", reason="eval"
            ),
        )
    async with walk.step("sign up"):
        bob = await create_account(runtime, "bob@example.com", operator=False, actor="t")
        await within(
            runtime,
            lambda uow: create_grant(
                uow, email="bob@example.com", model=MODEL, tier="researcher", days=None, actor="t"
            ),
        )
    async with walk.step("recall"):
        await within(runtime, lambda uow: recall(uow, MODEL, "1.0", reason="leak", actor="op:ann"))
    for operator in ("op:ann", "op:bob"):
        async with walk.step(f"reinstate ({operator})"):
            await within(
                runtime, lambda uow, operator=operator: reinstate(uow, MODEL, "1.0", actor=operator)
            )

    for ending in (IncidentMove.RESOLVE, IncidentMove.DISMISS):
        async with walk.step("report"):
            incident = await within(
                runtime,
                lambda uow: reporting.report(
                    uow,
                    model=MODEL,
                    version="1.0",
                    category="leak",
                    description="The full weights are posted on a public file host.",
                    links=[],
                    contact=None,
                    reporter_account_id=None,
                    address="192.0.2.1",
                ),
            )
        async with walk.step("triage"):
            await within(
                runtime,
                lambda uow, incident=incident: incidents.triage(
                    uow, incident.id, severity="low", assignee=None, note=None, actor="op"
                ),
            )
        if ending is IncidentMove.RESOLVE:
            async with walk.step("confirm"):
                await within(
                    runtime,
                    lambda uow, incident=incident: incidents.confirm(
                        uow, incident.id, severity="low", note=None, actor="o"
                    ),
                )
            async with walk.step("resolve"):
                await within(
                    runtime,
                    lambda uow, incident=incident: incidents.resolve(
                        uow, incident.id, note="taken down", actor="op"
                    ),
                )
        else:
            async with walk.step("dismiss"):
                await within(
                    runtime,
                    lambda uow, incident=incident: incidents.dismiss(
                        uow, incident.id, reason="not ours", actor="op"
                    ),
                )

    steps = [EnforcementStep.WARN, EnforcementStep.SUSPEND]
    actions = []
    for step in steps:
        async with walk.step(f"enforce {step}"):
            actions.append(
                await within(
                    runtime,
                    lambda uow, step=step: enforcement.enforce(
                        uow,
                        email=bob.email,
                        step=step,
                        reason="misuse",
                        days=None,
                        incident_id=None,
                        actor="op",
                    ),
                )
            )
    async with walk.step("lift"):
        await within(runtime, lambda uow: enforcement.lift(uow, bob.email, "served", "op"))
    async with walk.step("terminate"):
        terminated = await within(
            runtime,
            lambda uow: enforcement.enforce(
                uow,
                email=bob.email,
                step=EnforcementStep.TERMINATE,
                reason="repeat",
                days=None,
                incident_id=None,
                actor="op",
            ),
        )
    async with walk.step("appeal"):
        warned_appeal = await within(
            runtime, lambda uow: appeals.appeal(uow, bob.id, actions[0].id, "not me", None)
        )
        filed = await within(
            runtime, lambda uow: appeals.appeal(uow, bob.id, terminated.id, "it was not me", None)
        )
    async with walk.step("uphold"):
        await within(
            runtime,
            lambda uow: appeals.decide_appeal(
                uow, warned_appeal.id, AppealMove.UPHOLD, "fair", "op"
            ),
        )
    async with walk.step("overturn"):
        await within(
            runtime,
            lambda uow: appeals.decide_appeal(
                uow, filed.id, AppealMove.OVERTURN, "shared IP", "op"
            ),
        )

    now = runtime.clock()
    async with walk.step("announce"):
        await within(
            runtime,
            lambda uow: announcing.announce(
                uow,
                MODEL,
                "1.0",
                at=now + timedelta(days=40),
                reason="superseded",
                successor=None,
                license_text=None,
                actor="op",
            ),
        )
    at(runtime, now + timedelta(days=41))
    async with walk.step("decommission"):
        assert await decommission.execute_due(runtime) == 1

    accounts = {(old, new) for table, old, new in walk.made if table == "accounts"}
    active, suspended = (AccountStatus.ACTIVE,), (AccountStatus.SUSPENDED,)
    terminated = (AccountStatus.TERMINATED,)
    assert {
        (active, suspended),
        (suspended, active),
        (active, terminated),
        (terminated, active),
    } <= accounts
    assert ("appeals", (AppealStatus.PENDING,), (AppealStatus.OVERTURNED,)) in walk.made
    assert ("appeals", (AppealStatus.PENDING,), (AppealStatus.UPHELD,)) in walk.made
    reached = {new for table, _, new in walk.made if table == "incidents"}
    assert {(s,) for s in IncidentStatus} - {(IncidentStatus.REPORTED,)} <= reached
    releases = {new[1] for table, _, new in walk.made if table == "releases"}
    assert releases == set(Status)
    grants = {new for table, _, new in walk.made if table == "grants"}
    assert (GrantStatus.EXPIRED,) in grants  # the decommission ended the grant
