"""The applicant's application pages: choosing a tier, applying, the list of one's
applications, one application's timeline, withdrawing and resubmitting.

Handlers stay thin: read the form, call the service, render. What only a page needs (the
words for statuses and timeline events) is decided here. A refused form is shown again
with what was typed and a message next to each field, and with the same status code the
JSON API would answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from gateway.applications.answer_forms import (
    COUNTRIES,
    TICKED,
    Refusal,
    answers_from,
    approval_words,
    rules_or_none,
    shown_answer,
)
from gateway.applications.deciding import act_as_applicant
from gateway.applications.service import (
    ApplicationForm,
    QueueFilter,
    application_form,
    get_application,
    list_applications,
)
from gateway.applications.submitting import submit
from gateway.authorised_uses.pages import LISTING_FIELDS, listing_from_form, listing_values
from gateway.authorised_uses.service import listing_of
from gateway.catalog.api import model_ref, open_tiers
from gateway.catalog.service import get_model
from gateway.errors import GatewayError, NotFound
from gateway.grants.service import GrantFilter, list_grants
from gateway.ratelimits import RateLimit
from gateway.runtime import Runtime
from gateway.web import Limiter, Name, Org, Page, PathStr, Rt, Uow
from gateway.web.forms import Form
from gateway.web.forms import field as form_field
from gateway.web.guards import BACK, WITH_QUERY, SignedIn, back_to, requires_sign_in
from gateway.web.pages import (
    PAGE_SIZE,
    Done,
    client_address,
    page_count,
    plain_text,
    tier_title,
)
from policies.answers import validate_answers
from policies.applications import approval_route, response_clock
from policies.countries import ISO_COUNTRIES
from policies.schema import ApplicationRules
from stages.actors import Actor
from stages.applications import ApplicationMove, ApplicationStatus, is_open
from stages.names import ModelRef

if TYPE_CHECKING:
    from gateway.db.models import Account, Application
    from gateway.db.uow import UnitOfWork


TierQuery: TypeAlias = Annotated[
    str | None, QueryParameter(description="The tier to apply for; none shows the choice")
]
APPLICATION_STATUS_WORDS: Mapping[str, str] = {
    "submitted": "submitted, waiting for review",
    "under_review": "under review",
    "changes_requested": "changes requested: your answer is needed",
    "approved": "approved",
    "denied": "denied",
    "withdrawn": "withdrawn",
    "expired": "expired: no answer in time",
}
MOVE_WORDS: Mapping[str, str] = {
    "submit": "submitted the application",
    "start_review": "started reviewing it",
    "request_changes": "asked for changes",
    "resubmit": "sent changed answers",
    "approve": "approved it",
    "deny": "denied it",
    "withdraw": "withdrew it",
    "expire": "closed it: the changes were not sent in time",
}
DONE_NOTICES: Mapping[str, str] = {
    "applied": "Thank you: your application was received.",
    "renewal": "Thank you: your renewal request was received.",
    "withdrawn": "Your application was withdrawn.",
    "resubmitted": "Your changed answers were sent; the review starts again.",
    "unlisted": "Your use was taken off the public list of authorised uses.",
}


async def _apply_back(request: Request[Any, Any, Any]) -> str:
    # After signing in, the form of the tier that was being applied for.
    chosen = form_field(await request.form(), "tier") or request.query_params.get("tier") or ""
    org, name = request.path_params["org"], request.path_params["name"]
    return quote(f"/models/{org}/{name}/apply?tier={chosen}", safe="/")


@dataclass(frozen=True)
class TierChoice:
    name: str
    title: str
    components: list[str]
    grant_days: int
    approval: str
    open_now: bool
    open_version: str | None  # the newest release open to this tier
    yours: str | None  # what the viewer already has at this tier


@dataclass(frozen=True)
class ApplicationRow:
    id: str
    model: str
    tier: str
    tier_title: str
    status: str
    status_words: str
    submitted_at: datetime
    decided_at: datetime | None
    renewal: bool


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    who: str
    what: str
    reason: str | None
    status_words: str


@dataclass(frozen=True)
class AnswerRow:
    label: str
    shown: str


def _application_row(rt: Runtime, application: Application) -> ApplicationRow:
    return ApplicationRow(
        id=application.id,
        model=application.model.ref,
        tier=application.tier,
        tier_title=tier_title(rt, application.tier),
        status=application.status,
        status_words=APPLICATION_STATUS_WORDS.get(application.status, application.status),
        submitted_at=application.submitted_at,
        decided_at=application.decided_at,
        renewal=application.renewal_of is not None,
    )


_WHO = {"you": "You", "system": "The gateway", "operator": "An operator"}


def _who(actor: str, account: Account) -> str:
    return _WHO[Actor.parse(actor).as_seen_by(account.id)]


def _timeline(application: Application, account: Account) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=event.at,
            who=_who(event.actor, account),
            what=MOVE_WORDS.get(event.move, event.move.replace("_", " ")),
            reason=event.reason,
            status_words=APPLICATION_STATUS_WORDS.get(event.to_status, event.to_status),
        )
        for event in application.events
    ]


def _answer_rows(rules: ApplicationRules | None, answers: Mapping[str, Any]) -> list[AnswerRow]:
    questions = {q.name: q for q in rules.fields} if rules else {}
    order = [name for name in questions if name in answers] + [
        name for name in answers if name not in questions
    ]
    return [
        AnswerRow(
            questions[name].label if name in questions else name,
            shown_answer(questions.get(name), answers[name]),
        )
        for name in order
    ]


class ApplicationPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    # Applying ----------------------------------------------------------------------------

    @get("/models/{org:str}/{name:str}/apply", opt=WITH_QUERY)
    async def apply_form(
        self,
        uow: Uow,
        runtime: Rt,
        account: SignedIn,
        org: Org,
        name: Name,
        tier: TierQuery = None,
    ) -> Template:
        ref = model_ref(org, name)
        if not tier:
            return await _tier_picker(uow, runtime, account, ref)
        form = await application_form(uow, ref, tier)
        return _apply_page(account, form, values={}, refusal=Refusal(), accepted=False)

    @post("/models/{org:str}/{name:str}/apply", opt={BACK: _apply_back})
    async def apply(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        runtime: Rt,
        limiter: Limiter,
        account: SignedIn,
        org: Org,
        name: Name,
        data: Form,
        tier: TierQuery = None,
    ) -> Template | Redirect:
        chosen = form_field(data, "tier") or tier or ""
        # Counted before anything is read, while this request holds no connection.
        await uow.end_read()
        await limiter.take(RateLimit.APPLICATIONS_PER_ACCOUNT, account.id)
        ref = model_ref(org, name)
        form = await application_form(uow, ref, chosen)
        fields = form.rules.fields
        answers = answers_from(data, fields)
        sha256 = form_field(data, "license_sha256")
        accepted = form_field(data, "accept_license") == TICKED
        if not accepted:
            refusal = Refusal.from_problems(
                validate_answers(fields, answers, ISO_COUNTRIES), fields
            )
            refusal.add("accept_license", "You must accept the license to apply")
            return _apply_page(account, form, values=answers, refusal=refusal, accepted=False)
        shown = {**answers, **listing_values(data)}
        try:
            application = await submit(
                uow,
                account_id=account.id,
                model=ref,
                tier=form.tier,
                answers=answers,
                license_sha256=sha256,
                address=client_address(request),
                listing=listing_from_form(data),
            )
        except GatewayError as exc:
            # A changed license must be read again: the box is ticked only for the one shown.
            still = sha256 == form.license_sha256
            return _apply_page(
                account,
                form,
                values=shown,
                refusal=Refusal.of(exc, fields, also=LISTING_FIELDS),
                accepted=still,
            )
        return Redirect(f"/applications/{application.id}?done=applied")

    # Applications ------------------------------------------------------------------------

    @get("/applications")
    async def applications(
        self, uow: Uow, runtime: Rt, account: SignedIn, page: Page = 1
    ) -> Template:
        mine = QueueFilter(account_id=account.id)
        # The service lists oldest first (the review queue's order); newest first is
        # that order read from the end.
        _, total = await list_applications(uow, mine, limit=0)
        end = total - (page - 1) * PAGE_SIZE
        start = max(0, end - PAGE_SIZE)
        items: list[ApplicationRow] = []
        if end > 0:
            found, total = await list_applications(uow, mine, limit=end - start, offset=start)
            items = [_application_row(runtime, item.application) for item in reversed(found)]
        return Template(
            "applicant/applications.html",
            context={"items": items, "total": total, "page": page, "pages": page_count(total)},
        )

    @get("/applications/{application_id:str}")
    async def application(
        self,
        uow: Uow,
        runtime: Rt,
        account: SignedIn,
        application_id: PathStr,
        done: Done = None,
    ) -> Template:
        return await _application_page(uow, runtime, account, application_id, done=done)

    @get("/applications/{application_id:str}/withdraw")
    async def withdraw_form(
        self, uow: Uow, runtime: Rt, account: SignedIn, application_id: PathStr
    ) -> Template:
        application = await get_application(uow, application_id, owner=account.id)
        return Template(
            "applicant/withdraw.html",
            context={
                "application": _application_row(runtime, application),
                "may_withdraw": is_open(ApplicationStatus(application.status)),
            },
        )

    @post(
        "/applications/{application_id:str}/withdraw",
        opt=back_to("/applications/{application_id}"),
    )
    async def withdraw(
        self, uow: Uow, runtime: Rt, account: SignedIn, application_id: PathStr, data: Form
    ) -> Template | Redirect:
        try:
            reason = plain_text(form_field(data, "reason"), "The reason", lines=True).strip()
            await act_as_applicant(
                uow,
                account.id,
                application_id,
                ApplicationMove.WITHDRAW,
                reason=reason or None,
            )
        except NotFound:
            raise
        except GatewayError as exc:
            return await _application_page(
                uow, runtime, account, application_id, refusal=Refusal.of(exc)
            )
        return Redirect(f"/applications/{application_id}?done=withdrawn")

    @post(
        "/applications/{application_id:str}/resubmit",
        opt=back_to("/applications/{application_id}"),
    )
    async def resubmit(
        self, uow: Uow, runtime: Rt, account: SignedIn, application_id: PathStr, data: Form
    ) -> Template | Redirect:
        application = await get_application(uow, application_id, owner=account.id)
        rules = rules_or_none(runtime, application.tier)
        fields = rules.fields if rules else ()
        answers = answers_from(data, fields)
        try:
            await act_as_applicant(
                uow, account.id, application_id, ApplicationMove.RESUBMIT, answers=answers
            )
        except NotFound:
            raise
        except GatewayError as exc:
            return await _application_page(
                uow,
                runtime,
                account,
                application_id,
                values=answers,
                refusal=Refusal.of(exc, fields),
            )
        return Redirect(f"/applications/{application_id}?done=resubmitted")


async def _tier_picker(uow: UnitOfWork, rt: Runtime, account: Account, ref: ModelRef) -> Template:
    model = await get_model(uow, ref)
    if not model.releases:
        raise NotFound(f"{ref} has no release to apply for yet", code="release_not_found")
    newest = model.releases[-1]
    # A tier is open when any release is open to it, not only the newest: 1.0 may be
    # public while 1.1 is still with partners. The newest such release is named.
    open_version: dict[str, str] = {}
    for release in model.releases:
        for tier in open_tiers(rt, release.stage, release.status):
            open_version[tier] = release.version
    yours: dict[str, str] = {}
    now = rt.clock()
    for grant in await list_grants(uow, GrantFilter(account_id=account.id, model=ref)):
        if grant.status == "active" and grant.expires_at > now:
            yours[grant.tier] = f"You have access until {grant.expires_at:%Y-%m-%d}."
    pending, _ = await list_applications(
        uow, QueueFilter(account_id=account.id, model=ref), limit=500
    )
    for item in pending:
        application = item.application
        if is_open(ApplicationStatus(application.status)) and application.renewal_of is None:
            words = APPLICATION_STATUS_WORDS[application.status]
            yours.setdefault(application.tier, f"Your application is {words}.")
    choices = [
        TierChoice(
            name=tier.name,
            title=tier.title,
            components=sorted(tier.components),
            grant_days=tier.grant_days,
            approval=approval_words(rt.policy.application_rules(tier.name)),
            open_now=tier.name in open_version,
            open_version=open_version.get(tier.name),
            yours=yours.get(tier.name),
        )
        for tier in rt.policy.ladder
    ]
    return Template(
        "applicant/tiers.html",
        context={"model": str(ref), "version": newest.version, "choices": choices},
    )


def _apply_page(
    account: Account,
    form: ApplicationForm,
    *,
    values: Mapping[str, object],
    refusal: Refusal,
    accepted: bool,
) -> Template:
    route = approval_route(
        form.rules, email=account.email, email_verified=account.email_verified_at is not None
    )
    return Template(
        "applicant/apply.html",
        context={
            "form": form,
            "approval": approval_words(form.rules),
            "route": route,
            "email_verified": account.email_verified_at is not None,
            "values": values,
            "refusal": refusal,
            "accepted": accepted,
            "countries": COUNTRIES,
        },
        status_code=refusal.status if refusal else 200,
    )


async def _application_page(
    uow: UnitOfWork,
    rt: Runtime,
    account: Account,
    application_id: str,
    *,
    done: str | None = None,
    values: Mapping[str, object] | None = None,
    refusal: Refusal | None = None,
) -> Template:
    application = await get_application(uow, application_id, owner=account.id)
    rules = rules_or_none(rt, application.tier)
    status = ApplicationStatus(application.status)
    changes = next((e for e in reversed(application.events) if e.move == "request_changes"), None)
    answer_by = None
    if status is ApplicationStatus.CHANGES_REQUESTED and rules is not None:
        answer_by = response_clock(rules, application.updated_at, rt.clock()).due_at
    refusal = refusal or Refusal()
    return Template(
        "applicant/application.html",
        context={
            "application": application,
            "row": _application_row(rt, application),
            "timeline": _timeline(application, account),
            "answers": _answer_rows(rules, application.answers),
            "fields": rules.fields if rules else (),
            "values": values if values is not None else application.answers,
            "refusal": refusal,
            "may_withdraw": is_open(status),
            "may_resubmit": status is ApplicationStatus.CHANGES_REQUESTED and rules is not None,
            "changes": changes,
            "answer_by": answer_by,
            "review_days": rules.review_days if rules else None,
            "notice": DONE_NOTICES.get(done or ""),
            "countries": COUNTRIES,
            "listing": await listing_of(uow, application.id),
        },
        status_code=refusal.status if refusal else 200,
    )
