"""Applying for a tier of a model, and asking to renew a grant.

An application records the applicant's answers and their acceptance of a license (which
text, by hash, when, from where). The policy decides its route: approved at once, or the
operators' review queue, whose operators are told. Every check runs before anything is
written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from gateway import evidence
from gateway.applications import moves, repository
from gateway.applications.operator_notices import tell_operators
from gateway.applications.service import AnswersInvalid, model_and_release, rules_for
from gateway.authorised_uses.service import Listing, consent
from gateway.db.models import Account, Application, Grant, Model
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.identity.accounts import ensure_active
from gateway.text import clean_text
from policies.answers import clean_answers, validate_answers
from policies.applications import AutoApprove, CoolingDown, approval_route, cooldown, review_clock
from policies.countries import ISO_COUNTRIES
from policies.lifecycle import renewal_open
from policies.schema import ApplicationRules
from stages import evidence as ev
from stages.applications import Actor, ApplicationMove, ApplicationStatus, is_open
from stages.grants import RenewalRefusal, renewal_refusal
from stages.names import ModelRef


async def submit(
    uow: UnitOfWork,
    *,
    account_id: str,
    model: ModelRef,
    tier: str,
    answers: Mapping[str, object],
    license_sha256: str,
    address: str | None,
    renewal_of: str | None = None,
    usage_report: str | None = None,
    listing: Listing | None = None,
) -> Application:
    """Apply for a tier of a model. Approved at once where the policy says so. With a
    `listing`, the applicant agrees to the use being listed publicly once approved."""
    rt = uow.rt
    rules = rules_for(rt, tier)
    usage_report = clean_text(usage_report, field="the usage report", max_length=10000)
    if renewal_of is not None and usage_report is None:
        raise InvalidInput(
            "a renewal needs a short report of how the access was used",
            code="usage_report_required",
        )
    now = rt.clock()
    # The checks below read what a concurrent application would change: under the lock.
    session = await uow.write()
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound("no such account", code="account_not_found")
    # A stopped account is told so first: no answers would change it.
    ensure_active(account, "apply")
    problems = validate_answers(rules.fields, answers, ISO_COUNTRIES)
    if problems:
        raise AnswersInvalid(problems)
    model_row, release = await model_and_release(uow, model)
    if license_sha256 != release.license.sha256:
        raise Conflict(
            "the license you accepted is not the current one; read it again and accept it",
            code="license_changed",
        )
    if renewal_of is not None:
        await _check_renewal(uow, account, model_row, tier, renewal_of, now)
    await _check_may_apply(uow, rules, account, model_row, tier, now, renewal_of)
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
    if listing is not None:
        consent(uow, application, listing, now)
    actor = ev.Actor.account(account.id)
    moves.record_event(
        session, application, now, actor, "submit", None, ApplicationStatus.SUBMITTED, None
    )
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
        await moves.move(
            uow,
            application,
            account,
            model_row,
            ApplicationMove.APPROVE,
            Actor.SYSTEM,
            ev.GATEWAY,
            route.reason,
        )
    else:
        moves.tell_applicant(
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
        await tell_operators(uow, application, account, model_row, due_at)
    return application


async def _check_renewal(
    uow: UnitOfWork, account: Account, model: Model, tier: str, grant_id: str, now: datetime
) -> None:
    grant = await uow.session.get(Grant, grant_id)
    if grant is None or grant.account_id != account.id:
        raise NotFound(f"no grant {grant_id}", code="grant_not_found")
    if grant.model_id != model.id or grant.tier != tier:
        raise InvalidInput(
            "a renewal is for the same model and tier as its grant", code="renewal_mismatch"
        )
    window = renewal_open(uow.rt.policy.lifecycle, grant.expires_at, now)
    refusal = renewal_refusal(grant.status, window_open=window.open)
    if refusal is RenewalRefusal.STATUS:
        raise Conflict(f"a {grant.status} grant cannot be renewed", code="renewal_refused")
    if refusal is RenewalRefusal.NOT_OPEN:
        raise Conflict(f"renewal opens on {window.opens_at:%Y-%m-%d}", code="renewal_not_open")


async def _check_may_apply(
    uow: UnitOfWork,
    rules: ApplicationRules,
    account: Account,
    model: Model,
    tier: str,
    now: datetime,
    renewal_of: str | None,
) -> None:
    session = uow.session
    for existing in await repository.for_same_tier(session, account.id, model.id, tier):
        if is_open(ApplicationStatus(existing.status)):
            raise Conflict(
                f"you already have an open application for this tier ({existing.id})",
                code="application_open",
            )
    withdrawn = await repository.withdrawn_grant_status(session, account.id, model.id, tier)
    if withdrawn is not None:
        # Applying again must not undo what an operator took away.
        raise Conflict(
            f"your access at this tier was {withdrawn}; contact the operators instead of "
            "applying again",
            code=f"grant_{withdrawn}",
        )
    if renewal_of is None:
        active = await repository.active_grant_id(session, account.id, model.id, tier, now)
        if active is not None:
            raise Conflict(
                "you already have access at this tier; renew it from your grants page instead",
                code="grant_active",
            )
    last_denied = await repository.last_denied_at(session, account.id, model.id, tier)
    wait = cooldown(rules, last_denied, now)
    if isinstance(wait, CoolingDown):
        raise Conflict(wait.message, code="cooling_down")
