"""Making accounts in tests the way `gateway accounts create` does: one unit of work each."""

from __future__ import annotations

from gateway.db.models import Account
from gateway.identity.accounts import add_account
from gateway.runtime import Runtime
from stages import evidence as ev
from tests.units import within


async def create_account(
    rt: Runtime, email: str, *, operator: bool, actor: str | ev.Actor, display_name: str = ""
) -> Account:
    """A new account for `email`, committed; refused as the command refuses."""
    return await within(
        rt,
        lambda uow: add_account(
            uow,
            email,
            operator=operator,
            actor=actor if isinstance(actor, ev.Actor) else ev.Actor.parse(actor),
            display_name=display_name,
        ),
    )
