"""Applications: the same functions serve the portal, the JSON API and the CLI.

An application records the applicant's answers and their acceptance of a license (which
text, by hash, when, from where). The policy decides its route: approved at once, or the
operators' review queue. Every move goes through the machine in stages/applications.py,
is written as an ApplicationEvent and as evidence in the same transaction, and notifies
the applicant.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway import evidence
from gateway.applications.operator_notices import tell_operators
from gateway.db.models import Account, Application, ApplicationEvent, Grant, Model, Release
from gateway.errors import Conflict, GatewayError, InvalidInput, NotFound
from gateway.grants.service import add_grant
from gateway.identity.accounts import ensure_active
from gateway.notify.service import notify
from gateway.runtime import Runtime
from gateway.text import clean_text
from policies.answers import FieldProblem, clean_answers, validate_answers
from policies.applications import AutoApprove, CoolingDown, approval_route, cooldown, review_clock
from policies.countries import ISO_COUNTRIES
from policies.schema import ApplicationRules
from stages import evidence as ev
from stages.applications import (
    Actor,
    ApplicationMove,
    ApplicationMoveError,
    ApplicationStatus,
    apply_application_move,
    is_open,
)
from stages.grants import (
    GrantMove,
    IllegalGrantMove,
    Renewal,
    RenewalRefusal,
    apply_grant_move,
    renewal,
    renewal_refusal,
)
from stages.names import ModelRef
from stages.tiers import UnknownTier


class AnswersInvalid(InvalidInput):
    """The form was not filled in right; `problems` says which field and why."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.message}" for p in problems), code="answers_invalid")
        self.problems = list(problems)


@dataclass(frozen=True)
class ApplicationForm:
    """What an applicant sees before applying: the questions and the license to accept."""

    model: str
    tier: str
    tier_title: str
    components: list[str]
    grant_days: int
    approval: str
    rules: ApplicationRules
    license_sha256: str
    license_text: str
    guidance: str | None
    release: str


async def application_form(
    session: AsyncSession, rt: Runtime, model: ModelRef, tier: str
) -> ApplicationForm:
    """The form for a tier of a model, with the license of its newest release."""
    rules = _rules(rt, tier)
    _, release = await _model_and_release(session, model)
    terms = rt.policy.ladder.get(tier)
    return ApplicationForm(
        model=str(model),
        tier=tier,
        tier_title=terms.title,
        components=sorted(terms.components),
        grant_days=terms.grant_days,
        approval=rules.approval.value,
        rules=rules,
        license_sha256=release.license.sha256,
        license_text=release.license.text,
        guidance=release.guidance,
        release=f"{model}:{release.version}",
    )


def _rules(rt: Runtime, tier: str) -> ApplicationRules:
    try:
        return rt.policy.application_rules(tier)
    except UnknownTier as exc:
        raise InvalidInput(str(exc), code="unknown_tier") from exc


async def _model_and_release(session: AsyncSession, model: ModelRef) -> tuple[Model, Release]:
    model_row = await session.scalar(
        select(Model).where(Model.org == model.org, Model.name == model.name)
    )
    if model_row is None:
        raise NotFound(f"no model {model}", code="model_not_found")
    release = await session.scalar(
        select(Release)
        .options(selectinload(Release.license))
        .where(Release.model_id == model_row.id)
        .order_by(Release.published_at.desc())
        .limit(1)
    )
    if release is None:
        raise NotFound(f"{model} has no release to apply for yet", code="release_not_found")
    return model_row, release


async def submit(
    rt: Runtime,
    *,
    account_id: str,
    model: ModelRef,
    tier: str,
    answers: Mapping[str, object],
    license_sha256: str,
    address: str | None,
    renewal_of: str | None = None,
    usage_report: str | None = None,
) -> Application:
    """Apply for a tier of a model. Approved at once where the policy says so."""
    rules = _rules(rt, tier)
    usage_report = clean_text(usage_report, field="the usage report", max_length=10000)
    if renewal_of is not None and usage_report is None:
        raise InvalidInput(
            "a renewal needs a short report of how the access was used",
            code="usage_report_required",
        )
    now = rt.clock()
    async with rt.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise NotFound("no such account", code="account_not_found")
        # A stopped account is told so first: no answers would change it.
        ensure_active(account, "apply")
        problems = validate_answers(rules.fields, answers, ISO_COUNTRIES)
        if problems:
            raise AnswersInvalid(problems)
        model_row, release = await _model_and_release(session, model)
        if license_sha256 != release.license.sha256:
            raise Conflict(
                "the license you accepted is not the current one; read it again and accept it",
                code="license_changed",
            )
        if renewal_of is not None:
            await _check_renewal(rt, session, account, model_row, tier, renewal_of, now)
        await _check_may_apply(session, rules, account, model_row, tier, now, renewal_of)
        application = Application(
            id=str(uuid.uuid4()),
            account_id=account.id,
            model_id=model_row.id,
            tier=tier,
            status=ApplicationStatus.SUBMITTED,
            answers=clean_answers(rules.fields, answers),
            license_sha256=license_sha256,
            accepted_at=now,
            accepted_from=address,
            submitted_at=now,
            updated_at=now,
            renewal_of=renewal_of,
            usage_report=usage_report,
        )
        session.add(application)
        await session.flush()
        actor = ev.Actor.account(account.id)
        _event(session, application, now, actor, "submit", None, ApplicationStatus.SUBMITTED, None)
        evidence.record(
            session,
            ev.LicenseAccepted(
                license_sha256=license_sha256, application=application.id, client_address=address
            ),
            actor=actor,
            at=now,
            model_id=model_row.id,
            release_id=release.id,
            account_id=account.id,
        )
        evidence.record(
            session,
            ev.ApplicationSubmitted(application=application.id, tier=tier, renewal_of=renewal_of),
            actor=actor,
            at=now,
            model_id=model_row.id,
            account_id=account.id,
        )
        route = approval_route(
            rules, email=account.email, email_verified=account.email_verified_at is not None
        )
        if isinstance(route, AutoApprove):
            await _move(
                rt,
                session,
                application,
                account,
                model_row,
                ApplicationMove.APPROVE,
                Actor.SYSTEM,
                ev.GATEWAY,
                route.reason,
            )
        else:
            _notify(
                rt,
                session,
                application,
                account,
                model_row,
                "application.received",
                "We received your application",
                f"Your application for the {tier} tier of {model_row.ref} is in the review "
                f"queue ({route.reason}). Reviews take up to {rules.review_days} days.",
            )
            due_at = review_clock(rules, now, now).due_at
            await tell_operators(rt, session, application, account, model_row, due_at)
    return application


async def _check_renewal(
    rt: Runtime,
    session: AsyncSession,
    account: Account,
    model: Model,
    tier: str,
    grant_id: str,
    now: datetime,
) -> None:
    from policies.lifecycle import renewal_open

    grant = await session.get(Grant, grant_id)
    if grant is None or grant.account_id != account.id:
        raise NotFound(f"no grant {grant_id}", code="grant_not_found")
    if grant.model_id != model.id or grant.tier != tier:
        raise InvalidInput(
            "a renewal is for the same model and tier as its grant", code="renewal_mismatch"
        )
    window = renewal_open(rt.policy.lifecycle, grant.expires_at, now)
    refusal = renewal_refusal(grant.status, window_open=window.open)
    if refusal is RenewalRefusal.STATUS:
        raise Conflict(f"a {grant.status} grant cannot be renewed", code="renewal_refused")
    if refusal is RenewalRefusal.NOT_OPEN:
        raise Conflict(f"renewal opens on {window.opens_at:%Y-%m-%d}", code="renewal_not_open")


async def _check_may_apply(
    session: AsyncSession,
    rules: ApplicationRules,
    account: Account,
    model: Model,
    tier: str,
    now: datetime,
    renewal_of: str | None,
) -> None:
    same = select(Application).where(
        Application.account_id == account.id,
        Application.model_id == model.id,
        Application.tier == tier,
    )
    for existing in (await session.scalars(same)).all():
        if is_open(ApplicationStatus(existing.status)):
            raise Conflict(
                f"you already have an open application for this tier ({existing.id})",
                code="application_open",
            )
    withdrawn = await session.scalar(
        select(Grant.status)
        .where(
            Grant.account_id == account.id,
            Grant.model_id == model.id,
            Grant.tier == tier,
            Grant.status.in_(["revoked", "suspended"]),
        )
        .limit(1)
    )
    if withdrawn is not None:
        # Applying again must not undo what an operator took away.
        raise Conflict(
            f"your access at this tier was {withdrawn}; contact the operators instead of "
            "applying again",
            code=f"grant_{withdrawn}",
        )
    if renewal_of is None:
        active = await session.scalar(
            select(Grant.id).where(
                Grant.account_id == account.id,
                Grant.model_id == model.id,
                Grant.tier == tier,
                Grant.status == "active",
                Grant.expires_at > now,
            )
        )
        if active is not None:
            raise Conflict(
                "you already have access at this tier; renew it from your grants page instead",
                code="grant_active",
            )
    last_denied = await session.scalar(
        same.with_only_columns(func.max(Application.decided_at)).where(
            Application.status == ApplicationStatus.DENIED.value
        )
    )
    wait = cooldown(rules, last_denied, now)
    if isinstance(wait, CoolingDown):
        raise Conflict(wait.message, code="cooling_down")


def _event(
    session: AsyncSession,
    application: Application,
    now: datetime,
    actor: str,
    move: str,
    before: ApplicationStatus | None,
    after: ApplicationStatus,
    reason: str | None,
) -> None:
    session.add(
        ApplicationEvent(
            application_id=application.id,
            at=now,
            actor=actor,
            move=move,
            from_status=before.value if before else None,
            to_status=after.value,
            reason=reason,
        )
    )


def _notify(
    rt: Runtime,
    session: AsyncSession,
    application: Application,
    account: Account,
    model: Model,
    kind: str,
    subject: str,
    body: str,
) -> None:
    notify(
        session,
        rt.settings,
        account_id=account.id,
        kind=kind,
        subject=subject,
        body=body,
        link=f"{rt.settings.public_url}/applications/{application.id}",
        now=rt.clock(),
        email=account.email,
        data={
            "application": application.id,
            "model": model.ref,
            "tier": application.tier,
            "status": application.status,
        },
    )


_MESSAGES = {
    ApplicationMove.APPROVE: ("application.decided", "Your application was approved"),
    ApplicationMove.DENY: ("application.decided", "Your application was denied"),
    ApplicationMove.REQUEST_CHANGES: (
        "application.changes_requested",
        "Changes requested to your application",
    ),
    ApplicationMove.EXPIRE: ("application.decided", "Your application expired"),
}


async def _move(
    rt: Runtime,
    session: AsyncSession,
    application: Application,
    account: Account,
    model: Model,
    move: ApplicationMove,
    actor_kind: Actor,
    actor: str,
    reason: str | None,
) -> None:
    before = ApplicationStatus(application.status)
    try:
        after = apply_application_move(before, move, actor_kind, reason)
    except ApplicationMoveError as exc:
        raise Conflict(str(exc), code="illegal_application_move") from exc
    now = rt.clock()
    application.status = after
    application.updated_at = now
    if after in (ApplicationStatus.APPROVED, ApplicationStatus.DENIED, ApplicationStatus.EXPIRED):
        application.decided_at = now
        application.decided_by = actor
        application.decision_reason = reason
    if move is ApplicationMove.RESUBMIT:
        application.submitted_at = now  # the review clock starts again
    if move is ApplicationMove.APPROVE:
        await _grant_for(rt, session, application, account, model, actor)
    _event(session, application, now, actor, move.value, before, after, reason)
    evidence.record(
        session,
        ev.APPLICATION_MOVES[move](
            application=application.id,
            tier=application.tier,
            from_=before.value,
            to=after.value,
            reason=reason,
            grant=application.grant_id,
        ),
        actor=ev.Actor.parse(actor),
        at=now,
        model_id=model.id,
        account_id=account.id,
    )
    if move in _MESSAGES:
        kind, subject = _MESSAGES[move]
        status = after.value.replace("_", " ")
        body = f"Your application for the {application.tier} tier of {model.ref} is now {status}."
        if reason:
            body += f"\nReason: {reason}"
        if move is ApplicationMove.DENY:
            rules = rt.policy.application_rules(application.tier)
            body += (
                f"\nYou may apply again after {rules.cooldown_days} days."
                if rules.cooldown_days
                else "\nYou may apply again at once."
            )
        _notify(rt, session, application, account, model, kind, subject, body)


async def _grant_to_extend(
    session: AsyncSession, application: Application, account: Account
) -> Grant | None:
    """The grant an approved renewal extends, or None when the approval issues a grant."""
    if not application.renewal_of:
        return None
    grant = await session.get(Grant, application.renewal_of)
    if grant is None or grant.account_id != account.id:
        raise NotFound("the grant to renew is gone", code="grant_not_found")
    try:
        how = renewal(grant.status)
    except IllegalGrantMove as exc:  # suspended or revoked since the application
        raise Conflict(str(exc), code="renewal_refused") from exc
    return grant if how is Renewal.EXTEND else None


async def _grant_for(
    rt: Runtime,
    session: AsyncSession,
    application: Application,
    account: Account,
    model: Model,
    actor: str,
) -> None:
    grant = await _grant_to_extend(session, application, account)
    if grant is not None:
        terms = rt.policy.ladder.get(grant.tier)
        start = max(grant.expires_at, rt.clock())
        grant.expires_at = start + timedelta(days=terms.grant_days)
        grant.status = apply_grant_move(grant.status, GrantMove.RENEW)
        application.grant_id = grant.id
        evidence.record(
            session,
            ev.GrantRenewed(
                grant=grant.id, expires_at=grant.expires_at, application=application.id
            ),
            actor=ev.Actor.parse(actor),
            at=rt.clock(),
            model_id=model.id,
            account_id=account.id,
        )
        return
    # A new grant, or the renewal of an expired one: expired is final, so it stays
    # expired and the renewal issues the grant that follows it.
    grant = await add_grant(
        rt,
        session,
        account=account,
        model=model,
        tier=application.tier,
        days=None,
        actor=actor,
        application_id=application.id,
    )
    application.grant_id = grant.id


async def decide(
    rt: Runtime, application_id: str, move: ApplicationMove, *, operator: str, reason: str | None
) -> Application:
    """An operator's move: start_review, request_changes, approve or deny."""
    async with rt.transaction() as session:
        application, account, model = await _load(session, application_id, None)
        await _move(
            rt,
            session,
            application,
            account,
            model,
            move,
            Actor.OPERATOR,
            operator,
            (reason or "").strip() or None,
        )
    return application


async def decide_many(
    rt: Runtime,
    application_ids: Sequence[str],
    move: ApplicationMove,
    *,
    operator: str,
    reason: str | None,
) -> list[tuple[str, str | None]]:
    """The same decision for several applications; each one succeeds or fails on its own.

    Returns (id, error message or None) per application, in the order given.
    """
    results: list[tuple[str, str | None]] = []
    for application_id in application_ids:
        try:
            await decide(rt, application_id, move, operator=operator, reason=reason)
        except GatewayError as exc:
            results.append((application_id, exc.message))
        else:
            results.append((application_id, None))
    return results


async def act_as_applicant(
    rt: Runtime,
    account_id: str,
    application_id: str,
    move: ApplicationMove,
    *,
    answers: Mapping[str, object] | None = None,
    reason: str | None = None,
) -> Application:
    """The applicant withdraws, or resubmits with changed answers after a request."""
    reason = clean_text(reason, field="the reason", max_length=5000)
    async with rt.transaction() as session:
        application, account, model = await _load(session, application_id, account_id)
        if move is ApplicationMove.RESUBMIT:
            rules = _rules(rt, application.tier)
            given = answers if answers is not None else application.answers
            problems = validate_answers(rules.fields, given, ISO_COUNTRIES)
            if problems:
                raise AnswersInvalid(problems)
            application.answers = clean_answers(rules.fields, given)
        await _move(
            rt,
            session,
            application,
            account,
            model,
            move,
            Actor.APPLICANT,
            ev.Actor.account(account.id),
            reason,
        )
    return application


async def _load(
    session: AsyncSession, application_id: str, owner: str | None
) -> tuple[Application, Account, Model]:
    query = (
        select(Application)
        .options(selectinload(Application.account), selectinload(Application.model))
        .where(Application.id == application_id)
        .with_for_update()
    )
    if owner is not None:
        query = query.where(Application.account_id == owner)
    application = await session.scalar(query)
    if application is None:
        # Someone else's application is "not found", never "forbidden".
        raise NotFound(f"no application {application_id}", code="application_not_found")
    return application, application.account, application.model


async def get_application(
    session: AsyncSession, application_id: str, *, owner: str | None
) -> Application:
    """One application with its events; `owner` limits it to that account's own."""
    query = (
        select(Application)
        .options(
            selectinload(Application.account),
            selectinload(Application.model),
            selectinload(Application.events),
        )
        .where(Application.id == application_id)
    )
    if owner is not None:
        query = query.where(Application.account_id == owner)
    application = await session.scalar(query)
    if application is None:
        raise NotFound(f"no application {application_id}", code="application_not_found")
    return application


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None  # None: everything awaiting review
    model: ModelRef | None = None
    tier: str | None = None
    overdue_only: bool = False
    account_id: str | None = None
    applicant: str | None = None  # part of the applicant's email or name, any case


@dataclass(frozen=True)
class QueueItem:
    application: Application
    due_at: datetime
    overdue: bool
    days_waiting: int


async def list_applications(
    session: AsyncSession, rt: Runtime, where: QueueFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[QueueItem], int]:
    """Applications oldest first (the queue's order), with their review clocks, and the total."""
    query = (
        select(Application)
        .join(Model, Application.model_id == Model.id)
        .options(selectinload(Application.account), selectinload(Application.model))
    )
    if where.status is None and where.account_id is None:
        query = query.where(Application.status.in_(["submitted", "under_review"]))
    elif where.status is not None:
        query = query.where(Application.status == where.status)
    if where.account_id is not None:
        query = query.where(Application.account_id == where.account_id)
    if where.model is not None:
        query = query.where(Model.org == where.model.org, Model.name == where.model.name)
    if where.tier is not None:
        query = query.where(Application.tier == where.tier)
    if where.applicant:
        needle = where.applicant.lower()
        query = query.join(Account, Application.account_id == Account.id).where(
            func.lower(Account.email).contains(needle, autoescape=True)
            | func.lower(Account.display_name).contains(needle, autoescape=True)
        )
    now = rt.clock()
    if where.overdue_only:
        # Overdue depends on each tier's review_days: filter tier by tier in SQL.
        clauses = [
            (Application.tier == tier)
            & (Application.submitted_at < now - timedelta(days=rules.review_days))
            for tier, rules in rt.policy.applications.items()
        ]
        query = query.where(or_(*clauses), Application.status.in_(["submitted", "under_review"]))
    total = (
        await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    )
    rows = (
        await session.scalars(
            query.order_by(Application.submitted_at, Application.id).limit(limit).offset(offset)
        )
    ).all()
    items = []
    for application in rows:
        clock = review_clock(_rules(rt, application.tier), application.submitted_at, now)
        waiting = application.status in ("submitted", "under_review")
        items.append(
            QueueItem(application, clock.due_at, clock.overdue and waiting, clock.days_waiting)
        )
    return items, total


__all__ = [
    "AnswersInvalid",
    "ApplicationForm",
    "QueueFilter",
    "QueueItem",
    "act_as_applicant",
    "application_form",
    "decide",
    "decide_many",
    "get_application",
    "list_applications",
    "submit",
]


async def expire_stale_applications(rt: Runtime) -> int:
    """Expire applications whose applicant did not answer a request for changes in time."""
    from policies.applications import response_clock

    now = rt.clock()
    expired = 0
    async with rt.sessionmaker() as session:
        waiting = (
            await session.execute(
                select(Application.id, Application.tier, Application.updated_at).where(
                    Application.status == ApplicationStatus.CHANGES_REQUESTED.value
                )
            )
        ).all()
    for application_id, tier, changed_at in waiting:
        if not response_clock(_rules(rt, tier), changed_at, now).expired:
            continue
        async with rt.transaction() as session:
            application, account, model = await _load(session, application_id, None)
            if application.status != ApplicationStatus.CHANGES_REQUESTED.value:
                continue  # another process got there first
            await _move(
                rt,
                session,
                application,
                account,
                model,
                ApplicationMove.EXPIRE,
                Actor.SYSTEM,
                ev.SCHEDULER,
                "no answer to the request for changes in time",
            )
            expired += 1
    return expired
