"""Applications as the portal, the JSON API and the CLI read them: the form of a tier,
one application, the review queue. The moves live in submitting.py and deciding.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.applications import repository
from gateway.db.models import Application, Model, Release
from gateway.db.uow import UnitOfWork
from gateway.errors import InvalidInput, NotFound
from gateway.pagination import Keyset, Page, decode_cursor, page_of
from gateway.runtime import Runtime
from policies.answers import FieldProblem
from policies.applications import review_clock
from policies.schema import ApplicationRules
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


def rules_for(rt: Runtime, tier: str) -> ApplicationRules:
    """The policy's rules for applying at `tier`; 400 unknown_tier for a tier it lacks."""
    try:
        return rt.policy.application_rules(tier)
    except UnknownTier as exc:
        raise InvalidInput(str(exc), code="unknown_tier") from exc


async def model_and_release(uow: UnitOfWork, model: ModelRef) -> tuple[Model, Release]:
    """The model and its newest release (the one whose license is accepted)."""
    model_row = await repository.model_by_ref(uow.session, model)
    if model_row is None:
        raise NotFound(f"no model {model}", code="model_not_found")
    release = await repository.newest_release(uow.session, model_row.id)
    if release is None:
        raise NotFound(f"{model} has no release to apply for yet", code="release_not_found")
    return model_row, release


async def application_form(uow: UnitOfWork, model: ModelRef, tier: str) -> ApplicationForm:
    """The form for a tier of a model, with the license of its newest release."""
    rt = uow.rt
    rules = rules_for(rt, tier)
    _, release = await model_and_release(uow, model)
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


async def get_application(
    uow: UnitOfWork, application_id: str, *, owner: str | None
) -> Application:
    """One application with its events; `owner` limits it to that account's own."""
    application = await repository.with_events(uow.session, application_id, owner)
    if application is None:
        # Someone else's application is "not found", never "forbidden".
        raise NotFound(f"no application {application_id}", code="application_not_found")
    return application


async def applications_by_id(uow: UnitOfWork, ids: Sequence[str]) -> dict[str, Application]:
    """The applications of these ids that exist, with their account and model."""
    return await repository.by_ids(uow.session, ids)


async def linked_applications(
    uow: UnitOfWork, account_id: str, grant_ids: Sequence[str]
) -> list[Application]:
    """The account's applications that made or renewed these grants, newest first."""
    return await repository.linked_to_grants(uow.session, account_id, grant_ids)


async def account_emails(uow: UnitOfWork, account_ids: Sequence[str]) -> dict[str, str]:
    """The email of each of these accounts that exists, by id."""
    if not account_ids:
        return {}
    return {a.id: a.email for a in await repository.actor_accounts(uow.session, account_ids)}


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


def _overdue_before(rt: Runtime, where: QueueFilter) -> dict[str, datetime] | None:
    if not where.overdue_only:
        return None
    return repository.deadline_starts(
        {tier: rules.review_days for tier, rules in rt.policy.applications.items()}, rt.clock()
    )


def _with_clocks(rt: Runtime, rows: Sequence[Application]) -> list[QueueItem]:
    now = rt.clock()
    items = []
    for application in rows:
        clock = review_clock(rules_for(rt, application.tier), application.submitted_at, now)
        waiting = application.status in repository.AWAITING_REVIEW
        items.append(
            QueueItem(application, clock.due_at, clock.overdue and waiting, clock.days_waiting)
        )
    return items


async def list_applications(
    uow: UnitOfWork, where: QueueFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[QueueItem], int]:
    """Applications oldest first (the queue's order), with their review clocks, and the total."""
    rows, total = await repository.search(
        uow.session,
        status=where.status,
        model=where.model,
        tier=where.tier,
        account_id=where.account_id,
        applicant=where.applicant,
        overdue_before=_overdue_before(uow.rt, where),
        limit=limit,
        offset=offset,
    )
    return _with_clocks(uow.rt, rows), total


QUEUE_LISTING = "applications"


def _queue_keyset(item: QueueItem) -> Keyset:
    return Keyset(item.application.submitted_at, item.application.id)


async def review_queue_page(
    uow: UnitOfWork, where: QueueFilter, *, cursor: str | None, limit: int
) -> Page[QueueItem]:
    """A page of the review queue (the order of `list_applications`), from `cursor` on."""
    rows = await repository.search_after(
        uow.session,
        status=where.status,
        model=where.model,
        tier=where.tier,
        applicant=where.applicant,
        overdue_before=_overdue_before(uow.rt, where),
        after=decode_cursor(QUEUE_LISTING, cursor),
        limit=limit,
    )
    return page_of(QUEUE_LISTING, _with_clocks(uow.rt, rows), limit, _queue_keyset)
