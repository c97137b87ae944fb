"""Linking a provider's identity to an account, in the caller's unit of work: sign-ins of
one new identity that arrive together end on one account, and a refusal leaves nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from gateway.config import OidcProvider
from gateway.db.models import Account, Evidence, OidcIdentity
from gateway.db.uow import UnitOfWork
from gateway.identity.oidc_flow import ProviderIdentity
from gateway.identity.oidc_linking import EmailNotVerified, sign_in_with
from gateway.runtime import Runtime
from tests.units import within

pytestmark = pytest.mark.anyio
PROVIDER = OidcProvider("uni", "Uni ID", "https://id.uni.example", "c", "s")


def identity(email: str, *, verified: bool = True) -> ProviderIdentity:
    return ProviderIdentity(
        subject=f"sub-{uuid.uuid4().hex[:12]}", email=email, email_verified=verified, name="Lee"
    )


async def rows(rt: Runtime, model: type[Account] | type[OidcIdentity] | type[Evidence]) -> int:
    async with rt.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_sign_ins_of_one_new_identity_together_end_on_one_account(runtime: Runtime) -> None:
    who = identity("lee@uni.edu")

    async def one(uow: UnitOfWork) -> str:
        account = await sign_in_with(uow, PROVIDER, who, address="192.0.2.1")
        return account.id

    made = await asyncio.gather(*(within(runtime, one) for _ in range(4)))
    assert len(set(made)) == 1
    assert await rows(runtime, Account) == 1
    assert await rows(runtime, OidcIdentity) == 1
    async with runtime.sessionmaker() as session:
        kinds = list(await session.scalars(select(Evidence.kind).order_by(Evidence.id)))
    assert kinds.count("account.signed_up") == 1
    assert kinds.count("account.oidc_linked") == 1
    assert kinds.count("account.signed_in") == 4


async def test_a_refused_sign_in_leaves_nothing_though_its_unit_commits(
    runtime: Runtime,
) -> None:
    # The sign-in page answers a refusal with a page: the request's unit still commits.
    async def refused(uow: UnitOfWork) -> None:
        with pytest.raises(EmailNotVerified):
            await sign_in_with(uow, PROVIDER, identity("may@uni.edu", verified=False), address=None)

    await within(runtime, refused)
    assert await rows(runtime, Account) == 0
    assert await rows(runtime, OidcIdentity) == 0
    assert await rows(runtime, Evidence) == 0
