"""The account's API key pages: the list, a new key (shown once), revoking one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from gateway.errors import FieldsInvalid, GatewayError
from gateway.keys.key_form import read_key_form
from gateway.keys.service import SCOPES, SERVICE_SCOPE, create_key, list_keys, revoke_key
from gateway.ratelimits import RateLimit
from gateway.web import Limiter, PathStr, Uow
from gateway.web.forms import Form
from gateway.web.guards import SignedIn, back_to, requires_sign_in
from gateway.web.pages import (
    Done,
    plain_text,
    public_base,
)
from gateway.web.secret_pages import SECRET_PAGE
from stages.actors import Actor

if TYPE_CHECKING:
    from gateway.db.models import Account, ApiKey
    from gateway.db.uow import UnitOfWork

DONE_NOTICES: Mapping[str, str] = {
    "revoked": "The key was revoked. Requests made with it are refused from now on.",
}


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    state: str
    scopes: list[str]


class KeyPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    @get("/keys")
    async def keys(self, uow: Uow, account: SignedIn, done: Done = None) -> Template:
        return await _keys_page(uow, account, done=done)

    # The new key is shown on the answer.
    @post("/keys", opt=SECRET_PAGE)
    async def add_key(self, uow: Uow, limiter: Limiter, account: SignedIn, data: Form) -> Template:
        runtime = uow.rt
        # The limiter counts in a connection of its own: ours goes back to the pool first.
        await uow.end_read()
        await limiter.take(RateLimit.KEYS_PER_ACCOUNT, account.id)
        try:
            form = read_key_form(
                data,
                runtime.policy.api_keys,
                operator=account.is_operator,
                plain_name=lambda text: plain_text(text, "The name", lines=False),
            )
            created = await create_key(
                uow,
                account_id=account.id,
                scopes=form.scopes,
                days=form.days,
                name=form.name,
                actor=Actor.account(account.id),
            )
        except GatewayError as exc:
            problems = exc.by_field if isinstance(exc, FieldsInvalid) else {}
            return await _keys_page(
                uow,
                account,
                values=data,
                error=exc.message,
                problems=problems,
                status=exc.status,
            )
        return Template(
            "applicant/key_created.html",
            context={
                "key": created.key,
                "secret": created.secret,
                "base_url": public_base(runtime),
            },
            status_code=201,
        )

    @post("/keys/{key_id:str}/revoke", opt=back_to("/keys"))
    async def revoke(self, uow: Uow, account: SignedIn, key_id: PathStr) -> Redirect:
        await revoke_key(uow, account_id=account.id, key_id=key_id, actor=Actor.account(account.id))
        return Redirect("/keys?done=revoked")


async def _keys_page(
    uow: UnitOfWork,
    account: Account,
    *,
    done: str | None = None,
    values: Mapping[str, Any] | None = None,
    error: str | None = None,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
) -> Template:
    rt = uow.rt
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
        for key in reversed(await list_keys(uow, account))
    ]
    offered = [s for s in SCOPES if (s != "admin" or account.is_operator) and s != SERVICE_SCOPE]
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
