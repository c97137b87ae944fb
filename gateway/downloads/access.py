"""What the manifest and /d/ both need: who asks, and the facts of the one access decision
(stages/access.py) gathered from the rows they read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from gateway.db.changes import detached
from gateway.db.models import Account, Grant, Recall, Release
from gateway.db.uow import UnitOfWork
from gateway.keys.service import Caller, key_facts_of
from gateway.runtime import Runtime
from stages.access import AccessFacts, Allow, Deny, GrantFacts, KeyFacts, decide


@dataclass(frozen=True)
class Client:
    address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class PortalCaller:
    """A signed-in account in the portal: its session stands in for an API key."""

    account: Account
    key: None = None


Requester = Caller | PortalCaller


def key_facts(caller: Requester) -> KeyFacts | None:
    return key_facts_of(caller.key) if caller.key is not None else None


def key_id(caller: Requester) -> str:
    return caller.key.id if caller.key is not None else "portal-session"


def client_data(client: Client) -> dict[str, str | None]:
    return {"client_address": client.address, "user_agent": client.user_agent}


def _grant_facts(grant: Grant) -> GrantFacts:
    return GrantFacts(
        status=grant.status, tier=grant.tier, starts_at=grant.starts_at, expires_at=grant.expires_at
    )


def access_facts(
    rt: Runtime,
    *,
    now: datetime,
    account: Account,
    grant: Grant | None,
    release: Release,
    component: str | None,
    key: KeyFacts | None,
    quota_left: int | None = None,
    recalled: frozenset[str] = frozenset(),
    api_use: bool = False,
) -> AccessFacts:
    components: frozenset[str] = frozenset()
    api_only = has_api = False
    if grant is not None and grant.tier in rt.policy.ladder:
        tier = rt.policy.ladder.get(grant.tier)
        components, api_only, has_api = tier.components, tier.api_only, tier.api is not None
    return AccessFacts(
        now=now,
        account_status=account.status,
        grant=_grant_facts(grant) if grant is not None else None,
        release_ref=f"{release.model.ref}:{release.version}",
        release_stage=release.stage,
        release_status=release.status,
        component=component,
        tier_components=components,
        key=key,
        quota_left=quota_left,
        recalled_tiers=recalled,
        required_scope="" if api_use else "download",
        api_use=api_use,
        tier_api_only=api_only,
        tier_has_api=has_api,
        release_quarantined=release.quarantined_at is not None,
    )


async def recalled_tiers(uow: UnitOfWork, release_id: int) -> frozenset[str]:
    """Tiers of the release under a recall in force (a whole-release recall is its status).

    Recalling a tier withdraws the release from every wider tier too: the public never
    keeps what researchers lost. Read through this process's cache (gateway/db/changes.py).
    """
    cache = uow.rt.changes.cache("recalled tiers", ("recalls",))

    async def load() -> frozenset[str]:
        rows = await uow.session.scalars(
            select(Recall.tier).where(
                Recall.release_id == release_id,
                Recall.lifted_at.is_(None),
                Recall.tier.is_not(None),
            )
        )
        return frozenset(tier for tier in rows.all() if tier is not None)

    recalled: frozenset[str] = await cache.get(release_id, load) or frozenset()
    return uow.rt.policy.ladder.recall_reach(recalled)


async def grants_of(uow: UnitOfWork, account_id: str, model_id: int) -> tuple[Grant, ...]:
    """The account's grants on the model, through this process's cache. The rows are shared
    with other requests: read them, never change them."""
    cache = uow.rt.changes.cache("grants of", ("grants",))

    async def load() -> tuple[Grant, ...]:
        rows = (
            await uow.session.scalars(
                select(Grant).where(Grant.account_id == account_id, Grant.model_id == model_id)
            )
        ).all()
        detached(uow.session, *rows)
        return tuple(rows)

    found: tuple[Grant, ...] = await cache.get((account_id, model_id), load) or ()
    return found


def best_grant(
    rt: Runtime,
    now: datetime,
    caller: Requester,
    release: Release,
    grants: Iterable[Grant],
    recalled: frozenset[str],
    *,
    api_use: bool = False,
) -> tuple[Grant | None, Allow | Deny]:
    """The grant that allows access now, the one that sees most first (for files: the
    most components, as the narrow partner tier usually sees more than the public one;
    for API use: a tier with API terms); else the most telling refusal."""
    key = key_facts(caller)
    ladder = rt.policy.ladder

    def preference(grant: Grant) -> tuple[int, int, datetime]:
        if grant.tier not in ladder:
            return (-1, 0, grant.created_at)
        tier = ladder.get(grant.tier)
        sees = int(tier.api is not None) if api_use else len(tier.components)
        return (sees, tier.rank, grant.created_at)

    def judge(grant: Grant | None) -> Allow | Deny:
        facts = access_facts(
            rt,
            now=now,
            account=caller.account,
            grant=grant,
            release=release,
            component=None,
            key=key,
            recalled=recalled,
            api_use=api_use,
        )
        return decide(facts, rt.stage_machine)

    first_denial: Deny | None = None
    for grant in sorted(grants, key=preference, reverse=True):
        decision = judge(grant)
        if isinstance(decision, Allow):
            return grant, decision
        first_denial = first_denial or decision
    if first_denial is None:
        # No grant at all: the decision says so (or names a problem with the key first).
        no_grant = judge(None)
        assert isinstance(no_grant, Deny)
        first_denial = no_grant
    return None, first_denial
