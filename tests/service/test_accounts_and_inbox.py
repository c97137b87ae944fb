"""The one way an account is made, and the inbox marked read through the notify service."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.db.models import Account, Evidence, Notification
from gateway.db.uow import UnitOfWork, unit_of_work
from gateway.errors import Conflict, InvalidInput
from gateway.identity import repository
from gateway.identity.accounts import add_account, create_account
from gateway.notify.service import inbox_page, mark_read, notify
from gateway.runtime import Runtime
from stages import evidence as ev
from tests.accounts import create_account as make_account
from tests.units import within

pytestmark = pytest.mark.anyio
OPS = ev.Actor.parse("cli:ops")


async def _count(rt: Runtime, model: type[Account] | type[Evidence]) -> int:
    async with unit_of_work(rt) as uow:
        return await uow.session.scalar(select(func.count()).select_from(model)) or 0


async def test_an_account_is_made_once_per_address_in_any_case(runtime: Runtime) -> None:
    made = await within(
        runtime, lambda uow: add_account(uow, "Ada@Uni.EDU", operator=True, actor=OPS)
    )
    assert (made.email, made.is_operator, made.status) == ("Ada@uni.edu", True, "active")
    evidence_before = await _count(runtime, Evidence)
    with pytest.raises(Conflict) as taken:
        await within(
            runtime, lambda uow: add_account(uow, "ada@UNI.edu", operator=False, actor=OPS)
        )
    assert taken.value.code == "account_exists"
    with pytest.raises(InvalidInput):
        await within(
            runtime, lambda uow: add_account(uow, "not an address", operator=False, actor=OPS)
        )
    assert await _count(runtime, Account) == 1
    # Nothing of a refusal is written: no second row, no evidence.
    assert await _count(runtime, Evidence) == evidence_before


async def test_a_taken_address_leaves_the_rest_of_the_unit_intact(runtime: Runtime) -> None:
    ada = await make_account(runtime, "ada@uni.edu", operator=False, actor="t")

    async def work(uow: UnitOfWork) -> str:
        session = await uow.write()
        other = await create_account(
            session, "bob@uni.edu", now=runtime.clock(), actor=OPS, display_name=" Bob "
        )
        with pytest.raises(Conflict):
            await create_account(session, "ada@uni.edu", now=runtime.clock(), actor=OPS)
        return other.id

    bob_id = await within(runtime, work)
    async with unit_of_work(runtime) as uow:
        bob = await uow.session.get(Account, bob_id)
        assert bob is not None
        assert bob.display_name == "Bob"
        created = await uow.session.scalar(select(Evidence).where(Evidence.account_id == bob_id))
        assert created is not None
        assert created.kind == ev.AccountCreated.KIND.value
        assert await uow.session.get(Account, ada.id) is not None


async def _inbox_of(rt: Runtime, account_id: str, n: int) -> None:
    async def work(uow: UnitOfWork) -> None:
        session = await uow.write()
        for i in range(n):
            notify(
                session,
                rt.settings,
                account_id=account_id,
                kind="test.note",
                subject=f"note {i}",
                body="",
                link=None,
                now=rt.clock(),
            )

    await within(rt, work)


async def test_mark_read_touches_only_the_accounts_own_entries(runtime: Runtime) -> None:
    ada = await make_account(runtime, "ada@uni.edu", operator=False, actor="t")
    bob = await make_account(runtime, "bob@uni.edu", operator=False, actor="t")
    await _inbox_of(runtime, ada.id, 3)
    await _inbox_of(runtime, bob.id, 2)
    page = await within(runtime, lambda uow: inbox_page(uow, ada.id, page=1, size=10))
    assert (page.total, page.unread, len(page.notes)) == (3, 3, 3)
    bobs = await within(runtime, lambda uow: inbox_page(uow, bob.id, page=1, size=10))
    first, *_ = page.notes
    # Bob's ids asked for by Ada change nothing; an empty list marks nothing.
    assert (
        await within(runtime, lambda uow: mark_read(uow, ada.id, [n.id for n in bobs.notes])) == 0
    )
    assert await within(runtime, lambda uow: mark_read(uow, ada.id, [])) == 0
    assert await within(runtime, lambda uow: mark_read(uow, ada.id, [first.id])) == 1
    assert await within(runtime, lambda uow: mark_read(uow, ada.id, [first.id])) == 0
    assert await within(runtime, lambda uow: mark_read(uow, ada.id)) == 2
    after = await within(runtime, lambda uow: inbox_page(uow, ada.id, page=1, size=10))
    assert after.unread == 0
    assert (await within(runtime, lambda uow: inbox_page(uow, bob.id, page=1, size=1))).unread == 2
    async with unit_of_work(runtime) as uow:
        read = await uow.session.scalars(
            select(Notification.read_at).where(Notification.account_id == ada.id)
        )
        assert all(at is not None for at in read)


async def test_an_address_taken_by_a_concurrent_writer_is_refused_and_nothing_else_lost(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_account(runtime, "ada@uni.edu", operator=False, actor="t")

    async def not_seen(session: object, email: str) -> None:
        # As if another writer committed the row after this one looked.
        return None

    async def work(uow: UnitOfWork) -> str:
        session = await uow.write()
        bob = await create_account(session, "bob@uni.edu", now=runtime.clock(), actor=OPS)
        monkeypatch.setattr(repository, "find_account", not_seen)
        with pytest.raises(Conflict) as taken:
            await create_account(session, "ada@uni.edu", now=runtime.clock(), actor=OPS)
        assert taken.value.code == "account_exists"
        return bob.id

    bob_id = await within(runtime, work)
    async with unit_of_work(runtime) as uow:
        assert await uow.session.get(Account, bob_id) is not None
        emails = await uow.session.scalars(select(Account.email).order_by(Account.email))
        assert list(emails) == ["ada@uni.edu", "bob@uni.edu"]
