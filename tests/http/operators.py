"""Operators with `admin` keys for the operator API's tests, and what they leave behind."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.applications import service, submitting
from gateway.db.models import Account, Evidence
from gateway.keys.service import create_key
from gateway.runtime import Runtime
from stages.names import parse_model_ref
from tests.accounts import create_account
from tests.units import reading, within, writing

OPS = "/api/v1/ops"


@dataclass(frozen=True)
class KeyHolder:
    account_id: str
    email: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    @property
    def actor(self) -> str:
        return f"account:{self.account_id}"


async def key_holder(
    rt: Runtime,
    email: str = "ops@lab.example",
    *,
    operator: bool = True,
    scopes: tuple[str, ...] = ("admin",),
) -> KeyHolder:
    """An account with one key of `scopes`; an operator unless told otherwise."""
    account = await create_account(rt, email, operator=operator, actor="test")
    created = await within(
        rt,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=scopes, days=None, name="ops", actor="test"
        ),
    )
    return KeyHolder(account.id, email, created.secret)


async def demote(rt: Runtime, account_id: str) -> None:
    """The account is no longer an operator; its keys keep the scopes they had."""
    async with writing(rt) as session:
        account = await session.get_one(Account, account_id)
        account.is_operator = False


async def evidence_by(rt: Runtime, actor: str, kind: str | None = None) -> list[Evidence]:
    """The evidence rows recorded with `actor`, oldest first (of one kind, if given)."""
    query = select(Evidence).where(Evidence.actor == actor).order_by(Evidence.id)
    if kind is not None:
        query = query.where(Evidence.kind == kind)
    async with reading(rt) as session:
        return list((await session.scalars(query)).all())


def error_of(response: Any) -> str:
    body = response.json()
    assert response.status_code >= 400, body
    code: str = body["error"]
    return code


PARTNER_ANSWERS = {"organisation": "Lab", "intended_use": "red-team evaluation"}


async def applies(
    rt: Runtime,
    email: str,
    at: datetime,
    *,
    tier: str = "trusted_partner",
    model: str = "acme/sample",
) -> str:
    """An application by a new (or existing) account, submitted at `at`: its id."""
    async with reading(rt) as session:
        existing = await session.scalar(select(Account.id).where(Account.email == email))
    if existing is None:
        existing = (await create_account(rt, email, operator=False, actor="test")).id
    account_id = existing
    ref = parse_model_ref(model)
    form = await within(rt, lambda uow: service.application_form(uow, ref, tier))
    rt.clock = lambda: at
    application = await within(
        rt,
        lambda uow: submitting.submit(
            uow,
            account_id=account_id,
            model=ref,
            tier=tier,
            answers=PARTNER_ANSWERS,
            license_sha256=form.license_sha256,
            address="203.0.113.7",
        ),
    )
    return application.id


# What every cursor list of the operator API refuses, whatever its own filters.
PAGING_REFUSALS: list[tuple[dict[str, str], str]] = [
    ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ({"limit": "201"}, "invalid_request"),
    ({"limit": "0"}, "invalid_request"),
]


def forged_cursor(listing: str) -> str:
    """A well-formed cursor of `listing`, which every other list refuses."""
    text = f'["{listing}","2030-01-01T00:00:00+00:00","x"]'
    return base64.urlsafe_b64encode(text.encode()).decode()
