"""The public list of authorised uses (as dbGaP lists approved data-access requests).

An applicant opts in when applying, writing the institution, project title and use
statement the list shows; nothing else of the application is public. A use is listed
while its application is approved and the consent stands; the applicant withdraws it
at any time (recorded as evidence), and it leaves the list at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from gateway import evidence
from gateway.applications.service import AnswersInvalid
from gateway.authorised_uses import repository
from gateway.catalog.service import get_model
from gateway.db.models import Application, PublicUse
from gateway.db.uow import UnitOfWork
from gateway.errors import InvalidInput, NotFound
from gateway.text import clean_text
from policies.answers import FieldProblem
from stages import evidence as ev
from stages.names import parse_model_ref

LIMITS: Final = {"institution": 200, "project_title": 200, "use_statement": 2000}
_WORDS: Final = {
    "institution": "The institution",
    "project_title": "The project title",
    "use_statement": "The use statement",
}


@dataclass(frozen=True)
class Listing:
    """What an applicant asks the public list to show of their use."""

    institution: str
    project_title: str
    use_statement: str


@dataclass(frozen=True)
class ListedUse:
    model: str
    tier: str
    approved_at: datetime | None
    institution: str
    project_title: str
    use_statement: str


def checked_listing(
    institution: str | None, project_title: str | None, use_statement: str | None
) -> Listing:
    """The listing, each part required and bounded; AnswersInvalid names every problem."""
    given = {
        "institution": institution,
        "project_title": project_title,
        "use_statement": use_statement,
    }
    problems: list[FieldProblem] = []
    cleaned: dict[str, str] = {}
    for name, value in given.items():
        try:
            text = clean_text(
                value,
                field=_WORDS[name],
                max_length=LIMITS[name],
                multiline=name == "use_statement",
                required=True,
            )
        except InvalidInput as exc:
            problems.append(FieldProblem(f"listing.{name}", f"{exc.message} for the public list"))
            continue
        assert text is not None
        cleaned[name] = text
    if problems:
        raise AnswersInvalid(problems)
    return Listing(**cleaned)


def consent(uow: UnitOfWork, application: Application, listing: Listing, now: datetime) -> None:
    """Record the consent given with `application` (in its unit of work)."""
    repository.add(
        uow.session,
        PublicUse(
            application_id=application.id,
            institution=listing.institution,
            project_title=listing.project_title,
            use_statement=listing.use_statement,
            consented_at=now,
        ),
    )
    evidence.record(
        uow.session,
        ev.PublicListingConsented(application.id),
        actor=ev.Actor.account(application.account_id),
        at=now,
        model_id=application.model_id,
        account_id=application.account_id,
    )


async def withdraw(uow: UnitOfWork, application_id: str, *, account_id: str) -> bool:
    """Withdraw the consent to list `application_id` (the caller's own); False if it was
    withdrawn already. NotFound if the application is not theirs or has no listing."""
    session = await uow.write()
    application = await repository.application(session, application_id)
    if application is None or application.account_id != account_id:
        raise NotFound("no such application", code="application_not_found")
    found = await repository.of_application(session, application_id)
    if found is None:
        raise NotFound(
            "this application was not to be listed publicly", code="public_listing_not_found"
        )
    if found.withdrawn_at is not None:
        return False
    now = uow.rt.clock()
    found.withdrawn_at = now
    evidence.record(
        session,
        ev.PublicListingWithdrawn(application_id),
        actor=ev.Actor.account(account_id),
        at=now,
        model_id=application.model_id,
        account_id=account_id,
    )
    return True


async def listing_of(uow: UnitOfWork, application_id: str) -> PublicUse | None:
    """The listing asked for with an application (withdrawn or not), or None."""
    return await repository.of_application(uow.session, application_id, lock=False)


async def authorised_uses(
    uow: UnitOfWork, *, model: str | None, limit: int = 50, offset: int = 0
) -> tuple[list[ListedUse], int]:
    """The listed uses, newest approval first, of one model or all; and their number."""
    if not 1 <= limit <= 500 or offset < 0:
        raise InvalidInput("limit must be from 1 to 500 and offset at least 0", code="bad_page")
    model_id = None
    if model:
        try:
            ref = parse_model_ref(model)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="bad_model_ref") from exc
        model_id = (await get_model(uow, ref)).id
    rows, total = await repository.listed(
        uow.session, model_id=model_id, limit=limit, offset=offset
    )
    return [
        ListedUse(
            model=f"{row.org}/{row.name}",
            tier=row.tier,
            approved_at=row.decided_at,
            institution=row.institution,
            project_title=row.project_title,
            use_statement=row.use_statement,
        )
        for row in rows
    ], total
