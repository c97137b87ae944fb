"""The operator console (/ops): the review queue and application decisions.

Operators only: anyone else signed in gets a 403, and a signed-out visitor is sent to the
sign-in page. Handlers stay thin: parse the query or form, call the applications service
(the same functions the CLI calls), render. Bad input is shown on the page with a 4xx,
never as a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from gateway.applications import deciding, service
from gateway.applications.reviewing import answer_rows, form_fields, queue_filter
from gateway.applications.service import QueueFilter, QueueItem
from gateway.errors import GatewayError, InvalidInput
from gateway.grants.service import GrantFilter, list_grants
from gateway.runtime import Runtime
from gateway.web import Page, PathStr, Rt, Uow
from gateway.web.forms import field, whole_number
from gateway.web.guards import Operator, back_to, requires_operator
from gateway.web.pages import page_numbers
from policies.applications import review_clock
from stages import actors
from stages.applications import (
    Actor,
    ApplicationMove,
    ApplicationStatus,
    awaits_review,
    legal_moves,
    reason_required,
)
from stages.tiers import UnknownTier

if TYPE_CHECKING:
    from gateway.db.models import Account
    from gateway.db.uow import UnitOfWork


Form = URLEncodedBody[dict[str, Any]]
PAGE_SIZE = 50
HISTORY_LIMIT = 100

STATUS_LABELS: Mapping[str, str] = {
    status.value: status.value.replace("_", " ") for status in ApplicationStatus
}

# The operator's moves, as the buttons and the bulk form say them.
MOVE_LABELS: Mapping[ApplicationMove, str] = {
    ApplicationMove.START_REVIEW: "Start review",
    ApplicationMove.REQUEST_CHANGES: "Request changes",
    ApplicationMove.APPROVE: "Approve",
    ApplicationMove.DENY: "Deny",
}

Status = Annotated[str, QueryParameter(description="An application status; empty: awaiting review")]
ModelQuery = Annotated[str, QueryParameter(description="ORG/NAME")]
Tier = Annotated[str, QueryParameter(description="A tier name")]
Overdue = Annotated[
    bool, QueryParameter(description="Only applications past their review deadline")
]
Moved = Annotated[str, QueryParameter(description="The move just made, for the notice")]
Applicant = Annotated[str, QueryParameter(description="Part of the applicant's email or name")]


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters as the operator typed them, kept as text to redraw the form."""

    status: str = ""
    model: str = ""
    tier: str = ""
    overdue: bool = False
    applicant: str = ""

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> QueueQuery:
        """The filters carried as hidden fields of a posted form."""
        return cls(
            status=field(data, "status").strip(),
            model=field(data, "model").strip(),
            tier=field(data, "tier").strip(),
            overdue=field(data, "overdue") in ("1", "true", "on"),
            applicant=field(data, "applicant").strip(),
        )

    def where(self, rt: Runtime) -> QueueFilter:
        """The service's filter, or InvalidInput naming the filter that is wrong."""
        return queue_filter(
            rt,
            status=self.status,
            model=self.model,
            tier=self.tier,
            overdue=self.overdue,
            applicant=self.applicant,
        )

    def params(self) -> dict[str, str]:
        shown = {
            "status": self.status,
            "model": self.model,
            "tier": self.tier,
            "applicant": self.applicant,
        }
        params = {name: value for name, value in shown.items() if value}
        if self.overdue:
            params["overdue"] = "1"
        return params

    def link(self, page: int = 1) -> str:
        params = self.params()
        if page > 1:
            params["page"] = str(page)
        return "/ops" + (f"?{urlencode(params)}" if params else "")


def _all(data: Mapping[str, Any], name: str) -> list[str]:
    """Every value of a repeated form field (checkboxes), once each, in order."""
    value = data.get(name, [])
    values = value if isinstance(value, list) else [value]
    return list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


def _operator_actor(operator: Account) -> actors.Actor:
    return actors.Actor.account(operator.id)


async def _actor_names(uow: UnitOfWork, actor_texts: Sequence[str | None]) -> dict[str, str]:
    """Who each actor of a timeline is, as people read it: accounts by their email."""
    stored = [actors.Actor.parse(actor) for actor in actor_texts if actor]
    ids = {who.id for who in stored if who.kind is actors.ActorKind.ACCOUNT}
    names = {actor: actor for actor in actor_texts if actor}
    names[actors.GATEWAY] = "the gateway (automatic)"
    emails = await service.account_emails(uow, sorted(ids))
    names.update({actors.Actor.account(account_id): email for account_id, email in emails.items()})
    return names


class OpsPages(Controller):
    include_in_schema = False
    guards = [requires_operator]

    @get("/ops")
    async def queue(
        self,
        uow: Uow,
        runtime: Rt,
        status: Status = "",
        model: ModelQuery = "",
        tier: Tier = "",
        overdue: Overdue = False,
        page: Page = 1,
        applicant: Applicant = "",
    ) -> Template:
        query = QueueQuery(status.strip(), model.strip(), tier.strip(), overdue, applicant.strip())
        return await _queue_page(uow, runtime, query, page)

    @post("/ops/applications/bulk", opt=back_to("/ops"))
    async def bulk(self, uow: Uow, runtime: Rt, operator: Operator, data: Form) -> Template:
        query = QueueQuery.of(data)
        try:
            page = whole_number(field(data, "page"), what="page", code="invalid_page") or 1
        except InvalidInput:
            page = 1  # a page number only says where to come back to
        ids = _all(data, "ids")
        reason = field(data, "reason").strip()
        try:
            move = deciding.operator_move(field(data, "move"), deciding.BULK_MOVES)
            results = await deciding.decide_many(
                uow, ids, move, operator=_operator_actor(operator), reason=reason or None
            )
        except InvalidInput as exc:
            # Refused as a whole, before any application was decided.
            return await _queue_page(
                uow,
                runtime,
                query,
                page,
                error=exc,
                selected=ids,
                values={"move": field(data, "move"), "reason": reason},
            )
        # The same unit: it reads the decisions it made.
        by_id = await service.applications_by_id(uow, ids)
        failed = sum(1 for _, error in results if error)
        return Template(
            "ops/bulk_result.html",
            context={
                "move": move.value,
                "move_label": MOVE_LABELS[move],
                "reason": reason,
                "results": [
                    (i, by_id.get(i), error.message if error else None) for i, error in results
                ],
                "failed": failed,
                "done": len(results) - failed,
                "back": query.link(page),
            },
        )

    @get("/ops/applications/{application_id:str}")
    async def application(
        self, uow: Uow, runtime: Rt, application_id: PathStr, moved: Moved = ""
    ) -> Template:
        return await _application_page(uow, runtime, application_id, moved=moved)

    @post(
        "/ops/applications/{application_id:str}/decide",
        opt=back_to("/ops/applications/{application_id}"),
    )
    async def decide(
        self, uow: Uow, runtime: Rt, operator: Operator, application_id: PathStr, data: Form
    ) -> Template | Redirect:
        reason = field(data, "reason")
        try:
            move = deciding.operator_move(field(data, "move"))
            await deciding.decide(
                uow, application_id, move, operator=_operator_actor(operator), reason=reason
            )
        except GatewayError as exc:
            # NotFound stays a 404 page; a refused move redraws the page with why.
            if exc.status == 404:
                raise
            return await _application_page(
                uow,
                runtime,
                application_id,
                error=exc,
                values={"move": field(data, "move"), "reason": reason},
            )
        return Redirect(f"/ops/applications/{application_id}?moved={move.value}")


async def _queue_page(
    uow: UnitOfWork,
    rt: Runtime,
    query: QueueQuery,
    page: int,
    *,
    error: GatewayError | None = None,
    selected: Sequence[str] = (),
    values: Mapping[str, str] | None = None,
) -> Template:
    items: list[QueueItem] = []
    total = 0
    try:
        where = query.where(rt)
    except GatewayError as exc:
        error = error or exc
    else:
        items, total = await service.list_applications(
            uow, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    pages = max(1, -(-total // PAGE_SIZE))
    return Template(
        "ops/queue.html",
        context={
            "items": items,
            "total": total,
            "page": page,
            "pages": pages,
            "page_numbers": page_numbers(page, pages),
            "query": query,
            "statuses": STATUS_LABELS,
            "tiers": rt.policy.ladder.names,
            "bulk_moves": [
                (move.value, MOVE_LABELS[move], reason_required(move))
                for move in deciding.BULK_MOVES
            ],
            "error": error.message if error else None,
            "selected": set(selected),
            "values": values or {},
            "now": rt.clock(),
        },
        status_code=error.status if error else 200,
    )


async def _application_page(
    uow: UnitOfWork,
    rt: Runtime,
    application_id: str,
    *,
    moved: str = "",
    error: GatewayError | None = None,
    values: Mapping[str, str] | None = None,
) -> Template:
    application = await service.get_application(uow, application_id, owner=None)
    account = application.account
    status = ApplicationStatus(application.status)
    history, history_total = await service.list_applications(
        uow, QueueFilter(account_id=account.id), limit=HISTORY_LIMIT
    )
    grants = await list_grants(uow, GrantFilter(account_id=account.id))
    clock = None
    if awaits_review(status):
        try:
            rules = rt.policy.application_rules(application.tier)
        except UnknownTier:
            rules = None
        if rules is not None:
            clock = review_clock(rules, application.submitted_at, rt.clock())
    actors = [event.actor for event in application.events] + [application.decided_by]
    moves = [
        {
            "move": move.value,
            "label": MOVE_LABELS[move],
            "reason_required": reason_required(move),
        }
        for move in legal_moves(status, Actor.OPERATOR)
        if move in MOVE_LABELS
    ]
    return Template(
        "ops/application.html",
        context={
            "application": application,
            "account": account,
            "answers": answer_rows(form_fields(rt, application.tier), application.answers),
            "clock": clock,
            "history": [item for item in history if item.application.id != application.id],
            "history_total": history_total - 1,
            "grants": grants,
            "actors": await _actor_names(uow, actors),
            "moves": moves,
            "moved": STATUS_LABELS.get(application.status) if moved else None,
            "error": error.message if error else None,
            "values": values or {},
        },
        status_code=error.status if error else 200,
    )
