"""The moves after an application was submitted: an operator's decision (one or many), the
applicant withdrawing or resubmitting, and the expiry of changes never sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.applications import moves, repository
from gateway.applications.service import AnswersInvalid, rules_for
from gateway.db.models import Account, Application, Model
from gateway.db.uow import UnitOfWork
from gateway.errors import GatewayError, InvalidInput, NotFound, Unavailable
from gateway.text import clean_text
from policies.answers import clean_answers, validate_answers
from policies.applications import response_clock
from policies.countries import ISO_COUNTRIES
from stages import evidence as ev
from stages.applications import Actor, ApplicationMove, ApplicationStatus, reason_required


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


# The moves an operator makes, one application at a time and in bulk.
OPERATOR_MOVES = (
    ApplicationMove.START_REVIEW,
    ApplicationMove.REQUEST_CHANGES,
    ApplicationMove.APPROVE,
    ApplicationMove.DENY,
)
BULK_MOVES = (ApplicationMove.APPROVE, ApplicationMove.DENY, ApplicationMove.REQUEST_CHANGES)
# A bulk decision is one unit of work; the console's page holds 50 applications.
BULK_LIMIT = 500


def operator_move(
    text: str, allowed: Sequence[ApplicationMove] = OPERATOR_MOVES
) -> ApplicationMove:
    """The move an operator named (`approve`, `deny`, ...); 400 unknown_move otherwise."""
    for move in allowed:
        if move.value == text:
            return move
    known = ", ".join(move.value for move in allowed)
    raise InvalidInput(f"unknown decision {text!r}; expected one of {known}", code="unknown_move")


def _bulk_ids(
    application_ids: Sequence[str], move: ApplicationMove, reason: str | None
) -> list[str]:
    """The ids of a bulk decision, each once, in order; refused before any is decided."""
    ids = list(dict.fromkeys(i.strip() for i in application_ids if i.strip()))
    if move not in BULK_MOVES:
        operator_move(move.value, BULK_MOVES)
    if not ids:
        raise InvalidInput("select at least one application", code="nothing_selected")
    if len(ids) > BULK_LIMIT:
        raise InvalidInput(
            f"select at most {BULK_LIMIT} applications at once", code="too_many_selected"
        )
    if reason_required(move) and not (reason or "").strip():
        # One reason serves them all, so a missing one refuses the whole batch.
        raise InvalidInput(
            f"a reason is required to {move.value.replace('_', ' ')}; it is shown to "
            "each applicant",
            code="reason_required",
        )
    return ids


async def decide_many(
    uow: UnitOfWork,
    application_ids: Sequence[str],
    move: ApplicationMove,
    *,
    operator: str,
    reason: str | None,
) -> list[tuple[str, GatewayError | None]]:
    """The same decision for several applications; each one succeeds or fails on its own
    (a refused move changes nothing, see moves.py). A batch that is wrong as a whole (no
    ids, too many, a move that is not a bulk one, no reason where one is needed) raises
    InvalidInput before any application is decided.

    Returns (id, the refusal or None) per application, in the order given, each id once.
    """
    results: list[tuple[str, GatewayError | None]] = []
    for application_id in _bulk_ids(application_ids, move, reason):
        try:
            await decide(uow, application_id, move, operator=operator, reason=reason)
        except Unavailable:
            raise  # the database, not this application: the whole batch fails, and rolls back
        except GatewayError as exc:
            results.append((application_id, exc))
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
