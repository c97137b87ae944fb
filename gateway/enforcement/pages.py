"""Enforcement in the portal: an account sees every action against it and may appeal each
once; operators decide appeals and act on accounts, with the policy's suggested step.

Handlers stay thin: read the form, call the enforcement service in the request's unit of
work (the same functions the CLI calls), render. A refused form is shown again with what
was typed and why, with the status code of the refusal; another account's action is a
404, never a 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeAlias
from urllib.parse import quote, urlencode

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from gateway.enforcement import appeals, history, service
from gateway.errors import FieldChecks, FieldsInvalid, GatewayError, InvalidInput, NotFound
from gateway.web import Page, PathStr, Uow
from gateway.web.forms import Form, field, whole_number
from gateway.web.guards import (
    BACK,
    Back,
    Operator,
    SignedIn,
    back_to,
    requires_operator,
    requires_sign_in,
)
from gateway.web.pages import page_numbers
from stages.actors import Actor
from stages.enforcement import (
    AccountMove,
    AccountStatus,
    AppealMove,
    EnforcementStep,
    legal_account_moves,
)

Done: TypeAlias = Annotated[
    str | None, QueryParameter(description="Which confirmation to show after a form was sent")
]
EmailQuery: TypeAlias = Annotated[str, QueryParameter(description="The account's email")]
SearchQuery: TypeAlias = Annotated[
    str, QueryParameter(description="Part of an account's email or name", max_length=320)
]
StandingQuery: TypeAlias = Annotated[
    str, QueryParameter(description="active, suspended or terminated; empty: any")
]

STANDING = "/account/standing"
APPEALS = "/ops/appeals"
ACCOUNTS = "/ops/accounts"
ACCOUNTS_PAGE = 50

STEP_LABELS: Mapping[str, str] = {
    EnforcementStep.WARN.value: "Warn",
    EnforcementStep.SUSPEND.value: "Suspend",
    EnforcementStep.TERMINATE.value: "Terminate",
}
ACCOUNT_NOTICES: Mapping[str, str] = {
    "appealed": "Your appeal was sent. The operators will tell you their decision and why.",
}
OPS_NOTICES: Mapping[str, str] = {
    "uphold": "Done: the action was upheld; it stands, and the account was told why.",
    "overturn": "Done: the action was overturned; it no longer stands, and the account was told.",
    "warn": "Done: the account was warned.",
    "suspend": "Done: the account is suspended.",
    "terminate": "Done: the account is terminated.",
    "lift": "Done: the suspension was lifted.",
}


def account_link(email: str) -> str:
    """The console page of an account; the email is one path segment."""
    return f"{ACCOUNTS}/{quote(email, safe='@')}"


# Signing in from an account's forms comes back to the account's page.
_BACK_TO_ACCOUNT: dict[str, Back] = {BACK: lambda c: account_link(c.path_params["email"])}


def _address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def _actor(operator: Operator) -> Actor:
    return Actor.account(operator.id)


def _days(text: str) -> int | None:
    return whole_number(text, what="the number of days", code="invalid_days")


def _step(text: str) -> EnforcementStep:
    try:
        return EnforcementStep(text)
    except ValueError:
        known = ", ".join(STEP_LABELS)
        raise InvalidInput(
            f"unknown step {text!r}; expected one of {known}", code="unknown_step"
        ) from None


def _appeal_move(text: str) -> AppealMove:
    try:
        return AppealMove(text)
    except ValueError:
        raise InvalidInput(
            f"unknown decision {text!r}; expected uphold or overturn", code="unknown_move"
        ) from None


class EnforcementPages(Controller):
    include_in_schema = False

    # The account's own standing ----------------------------------------------------------

    @get(STANDING, guards=[requires_sign_in])
    async def standing(self, uow: Uow, account: SignedIn, done: Done = None) -> Template:
        return await _standing_page(uow, account, done=done)

    @post(STANDING + "/{action_id:str}/appeal", guards=[requires_sign_in], opt=back_to(STANDING))
    async def appeal(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        account: SignedIn,
        action_id: PathStr,
        data: Form,
    ) -> Template | Redirect:
        statement = field(data, "statement")
        try:
            await appeals.appeal(uow, account.id, action_id, statement, _address(request))
        except NotFound:
            raise
        except GatewayError as exc:
            return await _standing_page(
                uow,
                account,
                errors={action_id: exc.message},
                statements={action_id: statement},
                status=exc.status,
            )
        return Redirect(f"{STANDING}?done=appealed")

    # Operators: appeals ------------------------------------------------------------------

    @get(APPEALS, guards=[requires_operator])
    async def appeals(self, uow: Uow, done: Done = None) -> Template:
        return await _appeals_page(uow, done=done)

    @post(APPEALS + "/{appeal_id:str}/decide", guards=[requires_operator], opt=back_to(APPEALS))
    async def decide(
        self, uow: Uow, operator: Operator, appeal_id: PathStr, data: Form
    ) -> Template | Redirect:
        reason = field(data, "reason")
        try:
            move = _appeal_move(field(data, "move"))
            await appeals.decide_appeal(uow, appeal_id, move, reason, _actor(operator))
        except NotFound:
            raise
        except GatewayError as exc:
            return await _appeals_page(
                uow,
                errors={appeal_id: exc.message},
                values={appeal_id: {"move": field(data, "move"), "reason": reason}},
                status=exc.status,
            )
        return Redirect(f"{APPEALS}?done={move.value}")

    # Operators: accounts -----------------------------------------------------------------

    @get(ACCOUNTS, guards=[requires_operator])
    async def accounts(
        self,
        uow: Uow,
        email: EmailQuery = "",
        q: SearchQuery = "",
        standing: StandingQuery = "",
        page: Page = 1,
    ) -> Template | Redirect:
        if email.strip():
            return Redirect(account_link(email.strip()))
        return await _accounts_page(uow, q.strip(), standing.strip(), page)

    @get(ACCOUNTS + "/{email:str}", guards=[requires_operator], opt=_BACK_TO_ACCOUNT)
    async def account(self, uow: Uow, email: PathStr, done: Done = None) -> Template:
        return await _account_page(uow, email, done=done)

    @post(ACCOUNTS + "/{email:str}/enforce", guards=[requires_operator], opt=_BACK_TO_ACCOUNT)
    async def enforce(
        self, uow: Uow, operator: Operator, email: PathStr, data: Form
    ) -> Template | Redirect:
        try:
            checks = FieldChecks()
            chosen = checks.check("step", lambda: _step(field(data, "step")))
            days = checks.check("days", lambda: _days(field(data, "days")))
            service.check_step(checks, chosen, field(data, "reason"), days)
            checks.done()
            assert chosen is not None  # done() raised otherwise
            step = chosen
            await service.enforce(
                uow,
                email=email,
                step=step,
                reason=field(data, "reason"),
                days=days,
                incident_id=field(data, "incident").strip() or None,
                actor=_actor(operator),
            )
        except GatewayError as exc:
            if exc.code == "account_not_found":
                raise
            return await _account_page(uow, email, error=exc, values=data)
        return Redirect(f"{account_link(email)}?done={step.value}")

    @post(ACCOUNTS + "/{email:str}/lift", guards=[requires_operator], opt=_BACK_TO_ACCOUNT)
    async def lift(
        self, uow: Uow, operator: Operator, email: PathStr, data: Form
    ) -> Template | Redirect:
        try:
            await service.lift(uow, email, field(data, "reason"), _actor(operator))
        except GatewayError as exc:
            if exc.code == "account_not_found":
                raise
            values = {"lift_reason": field(data, "reason")}
            return await _account_page(uow, email, lift_error=exc, values=values)
        return Redirect(f"{account_link(email)}?done=lift")


async def _accounts_page(uow: Uow, text: str, standing: str, page: int) -> Template:
    """Every account, or those matching the search, a page at a time."""
    error = None
    try:
        rows, total = await history.find_accounts(
            uow,
            text=text,
            standing=standing,
            limit=ACCOUNTS_PAGE,
            offset=(page - 1) * ACCOUNTS_PAGE,
        )
    except InvalidInput as exc:
        error = exc.message
        rows, total = [], 0
    pages = max(1, -(-total // ACCOUNTS_PAGE))
    params = {name: value for name, value in (("q", text), ("standing", standing)) if value}

    def link(number: int) -> str:
        shown = {**params, **({"page": str(number)} if number > 1 else {})}
        return ACCOUNTS + (f"?{urlencode(shown)}" if shown else "")

    return Template(
        "enforcement/accounts.html",
        context={
            "accounts": rows,
            "account_link": account_link,
            "q": text,
            "standing": standing,
            "standings": list(AccountStatus),
            "total": total,
            "page": page,
            "pages": pages,
            "page_numbers": page_numbers(page, pages),
            "page_link": link,
            "error": error,
        },
        status_code=400 if error else 200,
    )


async def _standing_page(
    uow: Uow,
    account: SignedIn,
    *,
    done: str | None = None,
    errors: Mapping[str, str] | None = None,
    statements: Mapping[str, str] | None = None,
    status: int = 200,
) -> Template:
    return Template(
        "enforcement/standing.html",
        context={
            "account": account,
            "records": await history.list_actions(uow, account.id),
            "notice": ACCOUNT_NOTICES.get(done or ""),
            "errors": errors or {},
            "statements": statements or {},
            "describe": history.describe_step,
        },
        status_code=status,
    )


async def _appeals_page(
    uow: Uow,
    *,
    done: str | None = None,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
    status: int = 200,
) -> Template:
    records = await history.list_appeals(uow)
    listed = {record.appeal.id for record in records}
    errors = errors or {}
    return Template(
        "enforcement/appeals.html",
        context={
            "records": records,
            "notice": OPS_NOTICES.get(done or ""),
            "errors": errors,
            # A refusal about an appeal no longer pending (decided meanwhile) goes on top.
            "other_errors": [message for key, message in errors.items() if key not in listed],
            "values": values or {},
            "describe": history.describe_step,
            "account_link": account_link,
        },
        status_code=status,
    )


async def _account_page(
    uow: Uow,
    email: str,
    *,
    done: str | None = None,
    error: GatewayError | None = None,
    lift_error: GatewayError | None = None,
    values: Mapping[str, Any] | None = None,
) -> Template:
    shown = await history.standing(uow, email)
    failed = error or lift_error
    kept = {name: field(values, name) for name in values} if values else {}
    chosen = kept.get("step") or (shown.suggestion.step.value if shown.suggestion.step else "")
    return Template(
        "enforcement/account.html",
        context={
            "account": shown.account,
            "records": shown.actions,
            "suggestion": shown.suggestion,
            "steps": {
                step: label
                for step, label in STEP_LABELS.items()
                if AccountMove(step) in legal_account_moves(AccountStatus(shown.account.status))
            },
            "chosen": chosen,
            "suspend_days": uow.rt.policy.enforcement.suspend_days,
            "max_days": service.MAX_SUSPEND_DAYS,
            "notice": OPS_NOTICES.get(done or ""),
            "error": error.message if error else None,
            "problems": error.by_field if isinstance(error, FieldsInvalid) else {},
            "lift_error": lift_error.message if lift_error else None,
            "values": kept,
            "describe": history.describe_step,
            "self_link": account_link(shown.account.email),
        },
        status_code=failed.status if failed else 200,
    )
