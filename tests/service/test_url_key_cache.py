"""The process's cache of URL signing keys, read in the caller's unit of work.

A key the cache reads from committed rows is kept at once; a first key that the caller's
unit makes is kept only once that unit has committed, so a rollback never leaves this
process signing URLs with a key that no longer exists.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.credentials.url_tokens import SigningKeyPair
from gateway.db.models import UrlSigningKey
from gateway.db.uow import UnitOfWork, unit_of_work
from gateway.runtime import Runtime
from tests.units import within

pytestmark = pytest.mark.anyio


async def kids(rt: Runtime) -> list[str]:
    async with rt.sessionmaker() as session:
        return list((await session.scalars(select(UrlSigningKey.kid))).all())


def statements(rt: Runtime) -> list[str]:
    """Every statement the runtime's engine runs from now on."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine.sync_engine, "before_cursor_execute", note)
    return seen


async def test_a_first_key_made_by_a_unit_that_rolls_back_is_not_signed_with(
    runtime: Runtime,
) -> None:
    assert await kids(runtime) == []
    signed_with: list[SigningKeyPair] = []

    async def undone(uow: UnitOfWork) -> None:
        signed_with.append(await runtime.url_keys.signing(uow, runtime.clock()))
        assert uow.writing, "with no key yet, the caller's unit makes the first one"
        raise RuntimeError("undone")

    with pytest.raises(RuntimeError, match="undone"):
        await within(runtime, undone)
    (lost,) = signed_with
    assert await kids(runtime) == []
    # The next unit finds no key either, makes one, and that is the key it signs with.
    kept = await within(runtime, lambda uow: runtime.url_keys.signing(uow, runtime.clock()))
    assert kept.kid != lost.kid
    assert await kids(runtime) == [kept.kid]


async def test_a_first_key_made_by_a_unit_that_commits_is_kept(runtime: Runtime) -> None:
    made = await within(runtime, lambda uow: runtime.url_keys.signing(uow, runtime.clock()))
    seen = statements(runtime)
    again = await within(runtime, lambda uow: runtime.url_keys.signing(uow, runtime.clock()))
    assert again.kid == made.kid
    assert seen == [], "a fresh cached key is used without reading the database"


async def test_a_key_read_from_committed_rows_is_kept_at_once(runtime: Runtime) -> None:
    await runtime.prepare()
    (kid,) = await kids(runtime)
    async with unit_of_work(runtime) as uow:
        first = await runtime.url_keys.signing(uow, runtime.clock())
        assert not uow.writing, "an existing key is only read"
        seen = statements(runtime)
        # Within the same unit, before it commits, the key is already cached.
        second = await runtime.url_keys.signing(uow, runtime.clock())
        assert seen == []
    assert first.kid == second.kid == kid
