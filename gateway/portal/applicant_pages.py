"""The applicant's portal pages: apply, applications, grants, keys, downloads, inbox.

Handlers stay thin: read the form, call the service, render. What only a page needs (the
words for statuses and timeline events, turning a posted HTML form into typed answers)
is decided here. A refused form is shown again with what was typed and a message next to
each field, and with the same status code the JSON API would answer.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeAlias
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.applications.service import (
    AnswersInvalid,
    ApplicationForm,
    QueueFilter,
    act_as_applicant,
    application_form,
    get_application,
    list_applications,
    submit,
)
from gateway.catalog.api import model_ref, open_tiers
from gateway.catalog.repository import model_by_ref
from gateway.db.models import Account, ApiKey, Application, Closeout, Grant, Notification
from gateway.downloads.api import client_of
from gateway.downloads.service import issue_manifest_for_account
from gateway.errors import Denied, FieldsInvalid, GatewayError, InvalidInput, NotFound
from gateway.grants.lifecycle import attest_closeout
from gateway.grants.service import GrantFilter, list_grants
from gateway.keys.service import SCOPES, create_key, list_keys, revoke_key
from gateway.notify.service import in_inbox
from gateway.portal.key_form import read_key_form
from gateway.ratelimits import RateLimit
from gateway.runtime import Runtime
from gateway.web import Db, Limiter, Name, Org, Page, PathStr, Rt, Version
from gateway.web.forms import Form
from gateway.web.forms import field as form_field
from gateway.web.guards import BACK, WITH_QUERY, SignedIn, back_to, requires_sign_in
from gateway.web.secret_pages import SECRET_PAGE
from policies.answers import FieldProblem, validate_answers
from policies.applications import approval_route, response_clock
from policies.countries import COUNTRY_NAMES, ISO_COUNTRIES
from policies.lifecycle import renewal_open
from policies.schema import ApplicationRules, Approval, FieldKind, FormField
from stages.actors import Actor
from stages.applications import ApplicationMove, ApplicationStatus, is_open
from stages.names import ModelRef
from stages.tiers import UnknownTier

PAGE_SIZE = 20
TierQuery: TypeAlias = Annotated[
    str | None, QueryParameter(description="The tier to apply for; none shows the choice")
]
Done: TypeAlias = Annotated[
    str | None, QueryParameter(description="Which confirmation to show after a form was sent")
]
ANSWER = "answer."  # form inputs named answer.<field> carry the tier's answers
TICKED = "on"  # what a browser sends for a ticked checkbox without a value

APPLICATION_STATUS_WORDS: Mapping[str, str] = {
    "submitted": "submitted, waiting for review",
    "under_review": "under review",
    "changes_requested": "changes requested: your answer is needed",
    "approved": "approved",
    "denied": "denied",
    "withdrawn": "withdrawn",
    "expired": "expired: no answer in time",
}
GRANT_STATUS_WORDS: Mapping[str, str] = {
    "active": "active",
    "suspended": "suspended: downloads are paused",
    "revoked": "revoked",
    "expired": "expired",
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
    "attested": "Thank you: your deletion statement was recorded.",
    "revoked": "The key was revoked. Requests made with it are refused from now on.",
    "read": "Every notification is marked as read.",
}
# Where to go next after a refusal, by its code.
NEXT_STEPS: Mapping[str, tuple[str, str]] = {
    "application_open": ("/applications", "See your applications"),
    "grant_active": ("/grants", "See your grants"),
    "account_suspended": ("/account", "See your account"),
    "account_terminated": ("/account", "See your account"),
}


def _ascii_fold(name: str) -> str:
    # "Åland Islands" sorts with the A's, as a reader of the list expects.
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()


COUNTRIES: Sequence[tuple[str, str]] = sorted(
    ((code, name) for code, name in COUNTRY_NAMES.items() if code in ISO_COUNTRIES),
    key=lambda pair: _ascii_fold(pair[1]),
)


# --- small pure helpers -----------------------------------------------------------------


async def _apply_back(request: Request[Any, Any, Any]) -> str:
    # After signing in, the form of the tier that was being applied for.
    chosen = form_field(await request.form(), "tier") or request.query_params.get("tier") or ""
    org, name = request.path_params["org"], request.path_params["name"]
    return quote(f"/models/{org}/{name}/apply?tier={chosen}", safe="/")


def _address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def time_left(expires_at: datetime, now: datetime) -> str:
    """'12 days left', 'less than a day left' or 'ended'."""
    if expires_at <= now:
        return "ended"
    days = (expires_at - now).days
    return "less than a day left" if days == 0 else f"{_plural(days, 'day')} left"


def control_character(text: str, *, lines: bool) -> str | None:
    """The first control character a person would not type (tabs, and line breaks where
    `lines`, are fine), as U+XXXX; None if there is none. PostgreSQL cannot store NUL, so
    free text the services store unchecked is checked here first."""
    for char in text:
        if char == "\t" or (lines and char in "\r\n"):
            continue
        if unicodedata.category(char) == "Cc":
            return f"U+{ord(char):04X}"
    return None


def plain_text(text: str, what: str, *, lines: bool) -> str:
    """`text` unchanged, or InvalidInput if it holds a control character."""
    found = control_character(text, lines=lines)
    if found is not None:
        raise InvalidInput(f"{what} contains a control character ({found}); remove it")
    return text


def approval_words(rules: ApplicationRules) -> str:
    """How applications for a tier are approved, in plain words."""
    if rules.approval is Approval.ON_ACCEPTANCE:
        return "Approved automatically as soon as you accept the license."
    review = f"reviewed by hand by the release team within {_plural(rules.review_days, 'day')}"
    if rules.approval is Approval.EMAIL_DOMAIN:
        return (
            "Approved automatically when your email address is confirmed and belongs to one "
            f"of these domains: {', '.join(rules.allowed_domains)}. Other applications are "
            f"{review}."
        )
    return f"Every application is {review}."


def answers_from(data: Mapping[str, Any], fields: Sequence[FormField]) -> dict[str, object]:
    """Typed answers from a posted form: a ticked box is True, an unticked one False, and
    an empty input is no answer. Anything else a box sends is left for the check to refuse."""
    answers: dict[str, object] = {}
    for key in data:
        if key.startswith(ANSWER):
            text = form_field(data, key)
            if text.strip():
                answers[key.removeprefix(ANSWER)] = text
    for question in fields:
        if question.kind is FieldKind.CHECKBOX:
            ticked = answers.get(question.name)
            if ticked is None:
                answers[question.name] = False
            elif ticked == TICKED:
                answers[question.name] = True
    return answers


@dataclass
class Refusal:
    """What to show next to a refused form: messages by field, and the rest."""

    problems: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    next_step: tuple[str, str] | None = None
    status: int = 400

    @classmethod
    def of(cls, error: GatewayError, fields: Sequence[FormField] = ()) -> Refusal:
        if isinstance(error, AnswersInvalid):
            return cls.from_problems(error.problems, fields)
        return cls(
            general=[error.message], next_step=NEXT_STEPS.get(error.code), status=error.status
        )

    @classmethod
    def from_problems(
        cls, problems: Sequence[FieldProblem], fields: Sequence[FormField]
    ) -> Refusal:
        asked = {question.name for question in fields}
        refusal = cls()
        for problem in problems:
            if problem.field in asked:
                refusal.problems.setdefault(problem.field, problem.message)
            else:
                refusal.general.append(problem.message)
        return refusal

    def add(self, name: str, message: str) -> None:
        self.problems.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.problems or self.general)


def _shown_answer(question: FormField | None, value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if question is not None and question.kind is FieldKind.COUNTRY:
        return f"{COUNTRY_NAMES.get(text, text)} ({text})"
    return text


def _rules_or_none(rt: Runtime, tier: str) -> ApplicationRules | None:
    try:
        return rt.policy.application_rules(tier)
    except UnknownTier:
        return None  # a tier the policy no longer has: show what was stored as it is


def _tier_title(rt: Runtime, tier: str) -> str:
    return rt.policy.ladder.get(tier).title if tier in rt.policy.ladder else tier


def _pages(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


# --- what the templates show --------------------------------------------------------------


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


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    tier_title: str
    components: list[str]
    status_words: str
    time_left: str
    download_version: str | None
    renewal_open: bool
    renewal_opens_at: datetime | None
    open_renewal: str | None  # id of a renewal application still open
    license_sha256: str | None
    closeout: Closeout | None
    closeout_overdue: bool


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    state: str
    scopes: list[str]


def _application_row(rt: Runtime, application: Application) -> ApplicationRow:
    return ApplicationRow(
        id=application.id,
        model=application.model.ref,
        tier=application.tier,
        tier_title=_tier_title(rt, application.tier),
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
            _shown_answer(questions.get(name), answers[name]),
        )
        for name in order
    ]


# --- loading what several pages share -----------------------------------------------------


async def _linked_applications(
    db: AsyncSession, account_id: str, grant_ids: Sequence[str]
) -> list[Application]:
    """The account's applications that made or renewed these grants, newest first."""
    if not grant_ids:
        return []
    rows = await db.scalars(
        select(Application)
        .where(
            Application.account_id == account_id,
            or_(Application.grant_id.in_(grant_ids), Application.renewal_of.in_(grant_ids)),
        )
        .order_by(Application.submitted_at.desc())
    )
    return list(rows.all())


async def _own_grant(db: AsyncSession, account: Account, grant_id: str) -> Grant:
    for grant in await list_grants(db, GrantFilter(account_id=account.id)):
        if grant.id == grant_id:
            return grant
    raise NotFound(f"no grant {grant_id}", code="grant_not_found")


async def _newest_open_version(db: AsyncSession, rt: Runtime, grant: Grant) -> str | None:
    model = await model_by_ref(db, ModelRef(grant.model.org, grant.model.name))
    for release in reversed(model.releases):
        if grant.tier in open_tiers(rt, release.stage, release.status):
            return release.version
    return None


def _prior_answers(linked: Sequence[Application], grant_id: str) -> dict[str, Any]:
    for application in linked:
        if grant_id in (application.grant_id, application.renewal_of):
            return dict(application.answers)
    return {}


# --- the pages ---------------------------------------------------------------------------


class ApplicantPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    # Applying ----------------------------------------------------------------------------

    @get("/models/{org:str}/{name:str}/apply", opt=WITH_QUERY)
    async def apply_form(
        self,
        db: Db,
        runtime: Rt,
        account: SignedIn,
        org: Org,
        name: Name,
        tier: TierQuery = None,
    ) -> Template:
        ref = model_ref(org, name)
        if not tier:
            return await _tier_picker(db, runtime, account, ref)
        form = await application_form(db, runtime, ref, tier)
        return _apply_page(account, form, values={}, refusal=Refusal(), accepted=False)

    @post("/models/{org:str}/{name:str}/apply", opt={BACK: _apply_back})
    async def apply(
        self,
        request: Request[Any, Any, Any],
        db: Db,
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
        await limiter.take(RateLimit.APPLICATIONS_PER_ACCOUNT, account.id)
        ref = model_ref(org, name)
        form = await application_form(db, runtime, ref, chosen)
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
        try:
            application = await submit(
                runtime,
                account_id=account.id,
                model=ref,
                tier=form.tier,
                answers=answers,
                license_sha256=sha256,
                address=_address(request),
            )
        except GatewayError as exc:
            # A changed license must be read again: the box is ticked only for the one shown.
            still = sha256 == form.license_sha256
            return _apply_page(
                account, form, values=answers, refusal=Refusal.of(exc, fields), accepted=still
            )
        return Redirect(f"/applications/{application.id}?done=applied")

    # Applications ------------------------------------------------------------------------

    @get("/applications")
    async def applications(
        self, db: Db, runtime: Rt, account: SignedIn, page: Page = 1
    ) -> Template:
        mine = QueueFilter(account_id=account.id)
        # The service lists oldest first (the review queue's order); newest first is
        # that order read from the end.
        _, total = await list_applications(db, runtime, mine, limit=0)
        end = total - (page - 1) * PAGE_SIZE
        start = max(0, end - PAGE_SIZE)
        items: list[ApplicationRow] = []
        if end > 0:
            found, total = await list_applications(
                db, runtime, mine, limit=end - start, offset=start
            )
            items = [_application_row(runtime, item.application) for item in reversed(found)]
        return Template(
            "applicant/applications.html",
            context={"items": items, "total": total, "page": page, "pages": _pages(total)},
        )

    @get("/applications/{application_id:str}")
    async def application(
        self,
        db: Db,
        runtime: Rt,
        account: SignedIn,
        application_id: PathStr,
        done: Done = None,
    ) -> Template:
        return await _application_page(db, runtime, account, application_id, done=done)

    @get("/applications/{application_id:str}/withdraw")
    async def withdraw_form(
        self, db: Db, runtime: Rt, account: SignedIn, application_id: PathStr
    ) -> Template:
        application = await get_application(db, application_id, owner=account.id)
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
        self, db: Db, runtime: Rt, account: SignedIn, application_id: PathStr, data: Form
    ) -> Template | Redirect:
        try:
            reason = plain_text(form_field(data, "reason"), "The reason", lines=True).strip()
            await act_as_applicant(
                runtime,
                account.id,
                application_id,
                ApplicationMove.WITHDRAW,
                reason=reason or None,
            )
        except NotFound:
            raise
        except GatewayError as exc:
            return await _application_page(
                db, runtime, account, application_id, refusal=Refusal.of(exc)
            )
        return Redirect(f"/applications/{application_id}?done=withdrawn")

    @post(
        "/applications/{application_id:str}/resubmit",
        opt=back_to("/applications/{application_id}"),
    )
    async def resubmit(
        self, db: Db, runtime: Rt, account: SignedIn, application_id: PathStr, data: Form
    ) -> Template | Redirect:
        application = await get_application(db, application_id, owner=account.id)
        rules = _rules_or_none(runtime, application.tier)
        fields = rules.fields if rules else ()
        answers = answers_from(data, fields)
        try:
            await act_as_applicant(
                runtime, account.id, application_id, ApplicationMove.RESUBMIT, answers=answers
            )
        except NotFound:
            raise
        except GatewayError as exc:
            return await _application_page(
                db,
                runtime,
                account,
                application_id,
                values=answers,
                refusal=Refusal.of(exc, fields),
            )
        return Redirect(f"/applications/{application_id}?done=resubmitted")

    # Grants, renewal and close-out -------------------------------------------------------

    @get("/grants")
    async def grants(self, db: Db, runtime: Rt, account: SignedIn, done: Done = None) -> Template:
        return await _grants_page(db, runtime, account, done=done)

    @get("/grants/{grant_id:str}/renew")
    async def renew_form(
        self, db: Db, runtime: Rt, account: SignedIn, grant_id: PathStr
    ) -> Template:
        grant = await _own_grant(db, account, grant_id)
        linked = await _linked_applications(db, account.id, [grant.id])
        return await _renew_page(
            db, runtime, grant, values=_prior_answers(linked, grant.id), refusal=Refusal()
        )

    @post("/grants/{grant_id:str}/renew", opt=back_to("/grants"))
    async def renew(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        runtime: Rt,
        account: SignedIn,
        grant_id: PathStr,
        data: Form,
    ) -> Template | Redirect:
        grant = await _own_grant(db, account, grant_id)
        rules = _rules_or_none(runtime, grant.tier)
        fields = rules.fields if rules else ()
        if form_field(data, "with_answers"):
            answers = answers_from(data, fields)
        else:
            # The short form on the grants page: the answers given last time stand.
            linked = await _linked_applications(db, account.id, [grant.id])
            answers = _prior_answers(linked, grant.id)
        report = form_field(data, "usage_report").strip()
        window = renewal_open(runtime.policy.lifecycle, grant.expires_at, runtime.clock())
        refusal = Refusal(status=409)
        if grant.status != "active" or not window.open:
            refusal.general.append(
                f"renewal of this grant is open from {window.opens_at:%Y-%m-%d} until it ends, "
                "while it is active"
            )
        else:
            refusal.status = 400
            if not report:
                refusal.add("usage_report", "Tell us briefly how you used the weights")
            elif found := control_character(report, lines=True):
                refusal.add(
                    "usage_report",
                    f"The usage report contains a control character ({found}); remove it",
                )
            if form_field(data, "accept_license") != TICKED:
                refusal.add("accept_license", "You must accept the license to renew")
        if not refusal:
            try:
                application = await submit(
                    runtime,
                    account_id=account.id,
                    model=ModelRef(grant.model.org, grant.model.name),
                    tier=grant.tier,
                    answers=answers,
                    license_sha256=form_field(data, "license_sha256"),
                    address=_address(request),
                    renewal_of=grant.id,
                    usage_report=report,
                )
            except GatewayError as exc:
                refusal = Refusal.of(exc, fields)
            else:
                return Redirect(f"/applications/{application.id}?done=renewal")
        return await _renew_page(
            db, runtime, grant, values=answers, refusal=refusal, usage_report=report
        )

    @post("/closeouts/{closeout_id:str}/attest", opt=back_to("/grants"))
    async def attest(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        runtime: Rt,
        account: SignedIn,
        closeout_id: PathStr,
        data: Form,
    ) -> Template | Redirect:
        statement = form_field(data, "statement")
        if form_field(data, "deleted") != TICKED:
            error = 'Tick "I have deleted all copies of the weights" to confirm it'
            return await _grants_page(
                db,
                runtime,
                account,
                closeout_errors={closeout_id: error},
                statements={closeout_id: statement},
                status=400,
            )
        try:
            plain_text(statement, "The statement", lines=True)
            await attest_closeout(runtime, account.id, closeout_id, statement, _address(request))
        except NotFound:
            raise
        except GatewayError as exc:
            return await _grants_page(
                db,
                runtime,
                account,
                closeout_errors={closeout_id: exc.message},
                statements={closeout_id: statement},
                status=exc.status,
            )
        return Redirect("/grants?done=attested")

    # API keys -----------------------------------------------------------------------------

    @get("/keys")
    async def keys(self, db: Db, runtime: Rt, account: SignedIn, done: Done = None) -> Template:
        return await _keys_page(db, runtime, account, done=done)

    # The new key is shown on the answer.
    @post("/keys", opt=SECRET_PAGE)
    async def add_key(
        self, db: Db, runtime: Rt, limiter: Limiter, account: SignedIn, data: Form
    ) -> Template:
        await limiter.take(RateLimit.KEYS_PER_ACCOUNT, account.id)
        try:
            form = read_key_form(
                data,
                runtime.policy.api_keys,
                operator=account.is_operator,
                plain_name=lambda text: plain_text(text, "The name", lines=False),
            )
            created = await create_key(
                runtime,
                account_id=account.id,
                scopes=form.scopes,
                days=form.days,
                name=form.name,
                actor=Actor.account(account.id),
            )
        except GatewayError as exc:
            problems = exc.by_field if isinstance(exc, FieldsInvalid) else {}
            return await _keys_page(
                db,
                runtime,
                account,
                values=data,
                error=exc.message,
                problems=problems,
                status=exc.status,
            )
        return Template(
            "applicant/key_created.html",
            context={"key": created.key, "secret": created.secret, "base_url": _base(runtime)},
            status_code=201,
        )

    @post("/keys/{key_id:str}/revoke", opt=back_to("/keys"))
    async def revoke(self, runtime: Rt, account: SignedIn, key_id: PathStr) -> Redirect:
        await revoke_key(
            runtime, account_id=account.id, key_id=key_id, actor=Actor.account(account.id)
        )
        return Redirect("/keys?done=revoked")

    # Downloads ----------------------------------------------------------------------------

    # Download links are bearer secrets.
    @get(
        "/models/{org:str}/{name:str}/releases/{version:str}/download",
        opt={**SECRET_PAGE, **WITH_QUERY},
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        runtime: Rt,
        account: SignedIn,
        org: Org,
        name: Name,
        version: Version,
    ) -> Template:
        ref = model_ref(org, name)
        context: dict[str, Any] = {
            "model": str(ref),
            "version": version,
            "base_url": _base(runtime),
            "folder": f"{ref.name}-{version}",
            "manifest": None,
            "refusal": None,
        }
        try:
            manifest = await issue_manifest_for_account(
                runtime, account, ref, version, client=client_of(request)
            )
        except Denied as exc:
            context["refusal"] = exc
            return Template("applicant/download.html", context=context, status_code=exc.status)
        now = runtime.clock()
        first_expiry = min((a.expires_at for a in manifest.artifacts), default=None)
        context.update(
            manifest=manifest,
            tier_title=_tier_title(runtime, manifest.tier),
            expires_at=first_expiry,
            minutes_left=(
                max(1, math.floor((first_expiry - now).total_seconds() / 60))
                if first_expiry
                else None
            ),
        )
        return Template("applicant/download.html", context=context)

    # Inbox -------------------------------------------------------------------------------

    @get("/inbox")
    async def inbox(
        self, db: Db, runtime: Rt, account: SignedIn, page: Page = 1, done: Done = None
    ) -> Template:
        mine = in_inbox(account.id)
        total = await db.scalar(select(func.count()).select_from(Notification).where(mine)) or 0
        unread = (
            await db.scalar(
                select(func.count())
                .select_from(Notification)
                .where(mine, Notification.read_at.is_(None))
            )
            or 0
        )
        notes = (
            await db.scalars(
                select(Notification)
                .where(mine)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        ).all()
        base = _base(runtime)
        links = {note.id: note.link.removeprefix(base) if note.link else None for note in notes}
        return Template(
            "applicant/inbox.html",
            context={
                "notes": notes,
                "links": links,
                "total": total,
                "unread": unread,
                "page": page,
                "pages": _pages(total),
                "notice": DONE_NOTICES.get(done or ""),
            },
        )

    @post("/inbox/read-all", opt=back_to("/inbox"))
    async def read_all(self, runtime: Rt, account: SignedIn) -> Redirect:
        # No notification service marks entries read yet; this one UPDATE is all it takes.
        async with runtime.transaction() as session:
            await session.execute(
                update(Notification)
                .where(in_inbox(account.id), Notification.read_at.is_(None))
                .values(read_at=runtime.clock())
            )
        return Redirect("/inbox?done=read")


# --- page builders (shared by a GET and the POSTs that show it again) --------------------


def _base(rt: Runtime) -> str:
    return rt.settings.public_url.rstrip("/")


async def _tier_picker(db: AsyncSession, rt: Runtime, account: Account, ref: ModelRef) -> Template:
    model = await model_by_ref(db, ref)
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
    for grant in await list_grants(db, GrantFilter(account_id=account.id, model=ref)):
        if grant.status == "active" and grant.expires_at > now:
            yours[grant.tier] = f"You have access until {grant.expires_at:%Y-%m-%d}."
    pending, _ = await list_applications(
        db, rt, QueueFilter(account_id=account.id, model=ref), limit=500
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
    db: AsyncSession,
    rt: Runtime,
    account: Account,
    application_id: str,
    *,
    done: str | None = None,
    values: Mapping[str, object] | None = None,
    refusal: Refusal | None = None,
) -> Template:
    application = await get_application(db, application_id, owner=account.id)
    rules = _rules_or_none(rt, application.tier)
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
        },
        status_code=refusal.status if refusal else 200,
    )


async def _grants_page(
    db: AsyncSession,
    rt: Runtime,
    account: Account,
    *,
    done: str | None = None,
    closeout_errors: Mapping[str, str] | None = None,
    statements: Mapping[str, str] | None = None,
    status: int = 200,
) -> Template:
    now = rt.clock()
    grants = await list_grants(db, GrantFilter(account_id=account.id))
    linked = await _linked_applications(db, account.id, [g.id for g in grants])
    closeouts = {
        c.grant_id: c
        for c in (await db.scalars(select(Closeout).where(Closeout.account_id == account.id)))
    }
    rows = []
    for grant in grants:
        window = renewal_open(rt.policy.lifecycle, grant.expires_at, now)
        open_renewal = next(
            (
                a.id
                for a in linked
                if a.renewal_of == grant.id and is_open(ApplicationStatus(a.status))
            ),
            None,
        )
        renewable = grant.status == "active" and window.open and open_renewal is None
        license_sha256 = None
        if renewable:
            try:
                form = await application_form(
                    db, rt, ModelRef(grant.model.org, grant.model.name), grant.tier
                )
            except GatewayError:
                renewable = False  # the tier left the policy, or the release is gone
            else:
                license_sha256 = form.license_sha256
        closeout = closeouts.get(grant.id)
        rows.append(
            GrantRow(
                grant=grant,
                tier_title=_tier_title(rt, grant.tier),
                components=(
                    sorted(rt.policy.ladder.visible_components(grant.tier))
                    if grant.tier in rt.policy.ladder
                    else []
                ),
                status_words=GRANT_STATUS_WORDS.get(grant.status, grant.status),
                time_left=time_left(grant.expires_at, now),
                download_version=(
                    await _newest_open_version(db, rt, grant) if grant.status == "active" else None
                ),
                renewal_open=renewable,
                renewal_opens_at=(
                    window.opens_at if grant.status == "active" and now < window.opens_at else None
                ),
                open_renewal=open_renewal,
                license_sha256=license_sha256,
                closeout=closeout,
                closeout_overdue=bool(
                    closeout and closeout.attested_at is None and now > closeout.due_at
                ),
            )
        )
    return Template(
        "applicant/grants.html",
        context={
            "rows": rows,
            "notice": DONE_NOTICES.get(done or ""),
            "closeout_errors": closeout_errors or {},
            "statements": statements or {},
        },
        status_code=status,
    )


async def _renew_page(
    db: AsyncSession,
    rt: Runtime,
    grant: Grant,
    *,
    values: Mapping[str, object],
    refusal: Refusal,
    usage_report: str = "",
) -> Template:
    form = await application_form(db, rt, ModelRef(grant.model.org, grant.model.name), grant.tier)
    window = renewal_open(rt.policy.lifecycle, grant.expires_at, rt.clock())
    return Template(
        "applicant/renew.html",
        context={
            "grant": grant,
            "form": form,
            "window": window,
            "time_left": time_left(grant.expires_at, rt.clock()),
            "values": values,
            "usage_report": usage_report,
            "refusal": refusal,
            "countries": COUNTRIES,
        },
        status_code=refusal.status if refusal else 200,
    )


async def _keys_page(
    db: AsyncSession,
    rt: Runtime,
    account: Account,
    *,
    done: str | None = None,
    values: Mapping[str, Any] | None = None,
    error: str | None = None,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
) -> Template:
    now = rt.clock()
    rows = [
        KeyRow(
            key=key,
            state=(
                "revoked"
                if key.revoked_at is not None
                else "expired"
                if key.expires_at <= now
                else "active"
            ),
            scopes=key.scopes.split(),
        )
        for key in reversed(await list_keys(db, account))
    ]
    offered = [s for s in SCOPES if s != "admin" or account.is_operator]
    chosen = (values or {}).get("scopes", ["download"])
    return Template(
        "applicant/keys.html",
        context={
            "rows": rows,
            "scopes": offered,
            "chosen": [chosen] if isinstance(chosen, str) else list(chosen),
            "rules": rt.policy.api_keys,
            "values": {k: v for k, v in (values or {}).items() if k != "scopes"},
            "error": error,
            "problems": problems or {},
            "notice": DONE_NOTICES.get(done or ""),
        },
        status_code=status,
    )
