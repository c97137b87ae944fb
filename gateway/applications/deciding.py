"""The moves after an application was submitted: an operator's decision (one or many), the
applicant withdrawing or resubmitting, and the expiry of changes never sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.applications import moves, repository
from gateway.applications.service import AnswersInvalid, rules_for
from gateway.db.models import Account, Application, Model
from gateway.db.uow import UnitOfWork
from gateway.errors import GatewayError, NotFound
from gateway.text import clean_text
from policies.answers import clean_answers, validate_answers
from policies.applications import response_clock
from policies.countries import ISO_COUNTRIES
from stages import evidence as ev
from stages.applications import Actor, ApplicationMove, ApplicationStatus


async def decide(
    uow: UnitOfWork,
    application_id: str,
    move: ApplicationMove,
    *,
    operator: str,
    reason: str | None,
) -> Application:
    """An operator's move: start_review, request_changes, approve or deny."""
    application, account, model = await _load(uow, application_id, None)
    await moves.move(
        uow,
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
    uow: UnitOfWork,
    application_ids: Sequence[str],
    move: ApplicationMove,
    *,
    operator: str,
    reason: str | None,
) -> list[tuple[str, str | None]]:
    """The same decision for several applications; each one succeeds or fails on its own
    (a refused move changes nothing, see moves.py).

    Returns (id, error message or None) per application, in the order given.
    """
    results: list[tuple[str, str | None]] = []
    for application_id in application_ids:
        try:
            await decide(uow, application_id, move, operator=operator, reason=reason)
        except GatewayError as exc:
            results.append((application_id, exc.message))
        else:
            results.append((application_id, None))
    return results


async def act_as_applicant(
    uow: UnitOfWork,
    account_id: str,
    application_id: str,
    move: ApplicationMove,
    *,
    answers: Mapping[str, object] | None = None,
    reason: str | None = None,
) -> Application:
    """The applicant withdraws, or resubmits with changed answers after a request."""
    reason = clean_text(reason, field="the reason", max_length=5000)
    application, account, model = await _load(uow, application_id, account_id)
    if move is ApplicationMove.RESUBMIT:
        moves.check_move(application, move, Actor.APPLICANT, reason)
        rules = rules_for(uow.rt, application.tier)
        given = answers if answers is not None else application.answers
        problems = validate_answers(rules.fields, given, ISO_COUNTRIES)
        if problems:
            raise AnswersInvalid(problems)
        application.answers = clean_answers(rules.fields, given)
    await moves.move(
        uow,
        application,
        account,
        model,
        move,
        Actor.APPLICANT,
        ev.Actor.account(account.id),
        reason,
    )
    return application


async def expire_stale_applications(uow: UnitOfWork) -> int:
    """Expire applications whose applicant did not answer a request for changes in time."""
    rt = uow.rt
    now = rt.clock()
    expired = 0
    for application_id, tier, changed_at in await repository.waiting_for_changes(uow.session):
        try:
            rules = rules_for(rt, tier)
        except GatewayError:
            continue  # a tier the policy no longer has: no clock to run out
        if not response_clock(rules, changed_at, now).expired:
            continue
        application, account, model = await _load(uow, application_id, None)
        if application.status != ApplicationStatus.CHANGES_REQUESTED.value:
            continue  # another process got there first
        await moves.move(
            uow,
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


async def _load(
    uow: UnitOfWork, application_id: str, owner: str | None
) -> tuple[Application, Account, Model]:
    # Locked in the write phase: the move reads the status it changes.
    session = await uow.write()
    application = await repository.for_update(session, application_id, owner)
    if application is None:
        # Someone else's application is "not found", never "forbidden".
        raise NotFound(f"no application {application_id}", code="application_not_found")
    return application, application.account, application.model
