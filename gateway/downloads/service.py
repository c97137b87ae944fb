"""Download manifests and the /d/ endpoint's decision, quota and evidence.

Counting rule (also in the README): one *download* is one artifact fetched under one
grant. It has an id, carried in every URL issued for it. The first request made with a
new download id uses one unit of the artifact's quota for the current period; every
later request with the same id (retries, resumes with Range, and refreshed URLs, which
keep the id when the client sends it back in `continue`) uses none. A download id can be
continued for CONTINUE_DAYS after it started. Refused requests never use a unit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.catalog.service import get_release
from gateway.credentials import url_tokens
from gateway.db.models import (
    Account,
    ApiKey,
    Artifact,
    Component,
    Download,
    Grant,
    Model,
    QuotaUsage,
    Recall,
    Release,
)
from gateway.downloads.ranges import ByteRange, RangeNotSatisfiable, parse_range
from gateway.errors import GatewayError
from gateway.keys.service import Caller, key_facts_of
from gateway.runtime import Runtime
from stages.access import AccessFacts, Allow, Deny, GrantFacts, KeyFacts, Reason, decide
from stages.grants import quota_period
from stages.names import ModelRef

CONTINUE_DAYS = 7
_STATUS = {Reason.URL_EXPIRED: 410, Reason.KEY_INVALID: 401}


class Denied(GatewayError):
    """A refusal with one of the access reasons; 403 unless the reason says otherwise."""

    exit_code = 6

    def __init__(self, reason: Reason, message: str, hint: str | None = None) -> None:
        super().__init__(message, code=reason.value)
        self.status = _STATUS.get(reason, 403)
        self.reason = reason
        self.hint = hint


@dataclass(frozen=True)
class Client:
    address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class IssuedUrl:
    path: str
    size: int
    sha256: str
    component: str
    url: str
    expires_at: datetime
    download_id: str
    quota_remaining: int


@dataclass(frozen=True)
class WithheldArtifact:
    path: str
    component: str
    reason: str
    message: str


@dataclass(frozen=True)
class DownloadManifest:
    model: str
    version: str
    tier: str
    grant_id: str
    artifacts: list[IssuedUrl]
    withheld: list[WithheldArtifact]
    signature_url: str
    public_key_url: str


@dataclass(frozen=True)
class PortalCaller:
    """A signed-in account in the portal: its session stands in for an API key."""

    account: Account
    key: None = None


Requester = Caller | PortalCaller


def key_facts(caller: Requester) -> KeyFacts | None:
    return key_facts_of(caller.key) if caller.key is not None else None


def _grant_facts(grant: Grant) -> GrantFacts:
    return GrantFacts(
        status=grant.status, tier=grant.tier, starts_at=grant.starts_at, expires_at=grant.expires_at
    )


def _facts(
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
) -> AccessFacts:
    components: frozenset[str] = frozenset()
    if grant is not None and grant.tier in rt.policy.ladder:
        components = rt.policy.ladder.visible_components(grant.tier)
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
    )


async def _recalled_tiers(session: AsyncSession, release_id: int, rt: Runtime) -> frozenset[str]:
    """Tiers of the release under a recall in force (a whole-release recall is its status).

    Recalling a tier withdraws the release from every wider tier too: the public never
    keeps what researchers lost.
    """
    rows = await session.scalars(
        select(Recall.tier).where(
            Recall.release_id == release_id, Recall.lifted_at.is_(None), Recall.tier.is_not(None)
        )
    )
    return rt.policy.ladder.recall_reach(tier for tier in rows.all() if tier is not None)


async def issue_manifest(
    rt: Runtime,
    caller: Requester,
    model: ModelRef,
    version: str,
    *,
    paths: list[str] | None,
    continue_ids: dict[str, str] | None,
    client: Client,
) -> DownloadManifest:
    """Signed URLs for every artifact the caller's grant may fetch now, and why not the rest."""
    now = rt.clock()
    # One connection at a time: the signing key first (its cache may read it), then the
    # reads in a plain session, then the evidence in one short write transaction, so the
    # database's write lock is held for the inserts alone and no step waits for a second
    # connection while holding one.
    signing_key = await rt.url_keys.signing(rt, now)
    pending: list[dict[str, Any]] = []
    async with rt.reading() as session:
        release = await get_release(session, model, version)
        grants = (
            await session.scalars(
                select(Grant).where(
                    Grant.account_id == caller.account.id, Grant.model_id == release.model_id
                )
            )
        ).all()
        recalled = await _recalled_tiers(session, release.id, rt)
        grant, decision = _best_grant(rt, now, caller, release, grants, recalled)
        if isinstance(decision, Deny) or grant is None:
            assert isinstance(decision, Deny)
            pending.append(
                {
                    "kind": "download.manifest_refused",
                    "actor": f"account:{caller.account.id}",
                    "at": now,
                    "model_id": release.model_id,
                    "release_id": release.id,
                    "account_id": caller.account.id,
                    "data": {
                        "reason": decision.reason.value,
                        "key": _key_id(caller),
                        **_client(client),
                    },
                }
            )
            refusal: Deny | None = decision
            manifest = None
        else:
            refusal = None
            manifest = await _issue(
                rt,
                session,
                signing_key,
                now,
                caller,
                release,
                grant,
                paths,
                continue_ids,
                client,
                pending,
                recalled,
            )
    async with rt.transaction() as session:
        for row in pending:
            evidence.record(session, row.pop("kind"), **row)
    if refusal is not None:
        raise Denied(refusal.reason, refusal.message)
    assert manifest is not None
    return manifest


def _best_grant(
    rt: Runtime,
    now: datetime,
    caller: Requester,
    release: Release,
    grants: Any,
    recalled: frozenset[str],
) -> tuple[Grant | None, Allow | Deny]:
    """The grant that allows access now and sees the most of the release (the narrow
    partner tier usually sees more than the public one); else the most telling refusal."""
    key = key_facts(caller)
    ladder = rt.policy.ladder

    def preference(grant: Grant) -> tuple[int, int, datetime]:
        if grant.tier not in ladder:
            return (-1, 0, grant.created_at)
        return (
            len(ladder.visible_components(grant.tier)),
            ladder.rank(grant.tier),
            grant.created_at,
        )

    def judge(grant: Grant | None) -> Allow | Deny:
        facts = _facts(
            rt,
            now=now,
            account=caller.account,
            grant=grant,
            release=release,
            component=None,
            key=key,
            recalled=recalled,
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


async def _issue(
    rt: Runtime,
    session: AsyncSession,
    key: url_tokens.SigningKeyPair,
    now: datetime,
    caller: Requester,
    release: Release,
    grant: Grant,
    paths: list[str] | None,
    continue_ids: dict[str, str] | None,
    client: Client,
    pending: list[dict[str, Any]],
    recalled: frozenset[str],
) -> DownloadManifest:
    tier = rt.policy.ladder.get(grant.tier)
    component_of = {c.id: c.name for c in release.components}
    wanted = set(paths) if paths is not None else None
    artifacts = [a for a in release.artifacts if wanted is None or a.path in wanted]
    period = quota_period(grant.starts_at, now, grant.quota_period_days)
    usage = await session.execute(
        select(QuotaUsage.artifact_id, QuotaUsage.used).where(
            QuotaUsage.grant_id == grant.id, QuotaUsage.period == period
        )
    )
    # Not dict(result): a Result has .keys() (its columns), which dict() would misread.
    used = {artifact_id: count for artifact_id, count in usage}  # noqa: C416 - dict(Result) reads its .keys()
    continuing = await _continuable(session, grant, now, continue_ids or {}, artifacts)
    base = rt.settings.public_url
    issued: list[IssuedUrl] = []
    withheld: list[WithheldArtifact] = []
    for artifact in artifacts:
        component = component_of[artifact.component_id]
        download_id = continuing.get(artifact.id)
        left = grant.download_quota - used.get(artifact.id, 0)
        decision = decide(
            _facts(
                rt,
                now=now,
                account=caller.account,
                grant=grant,
                release=release,
                component=component,
                key=key_facts(caller),
                recalled=recalled,
                quota_left=None if download_id else left,
            ),
            rt.stage_machine,
        )
        if isinstance(decision, Deny):
            withheld.append(
                WithheldArtifact(artifact.path, component, decision.reason.value, decision.message)
            )
            continue
        download_id = download_id or str(uuid.uuid4())
        token, expires = url_tokens.issue(
            key,
            issuer=base,
            account_id=caller.account.id,
            grant_id=grant.id,
            artifact_id=artifact.id,
            download_id=download_id,
            key_id=caller.key.id if caller.key is not None else None,
            now=now,
            ttl_seconds=tier.url_ttl_seconds,
        )
        issued.append(
            IssuedUrl(
                path=artifact.path,
                size=artifact.size,
                sha256=artifact.sha256,
                component=component,
                url=f"{base}/d/{token}",
                expires_at=expires,
                download_id=download_id,
                quota_remaining=max(0, left),
            )
        )
        pending.append(
            {
                "kind": "url.issued",
                "actor": f"account:{caller.account.id}",
                "at": now,
                "model_id": release.model_id,
                "release_id": release.id,
                "account_id": caller.account.id,
                "data": {
                    "grant": grant.id,
                    "artifact": artifact.id,
                    "path": artifact.path,
                    "tier": grant.tier,
                    "download": download_id,
                    "expires_at": expires.isoformat(),
                    "key": _key_id(caller),
                    **_client(client),
                },
            }
        )
    api = (
        f"{base}/api/v1/models/{release.model.org}/{release.model.name}/releases/{release.version}"
    )
    return DownloadManifest(
        model=release.model.ref,
        version=release.version,
        tier=grant.tier,
        grant_id=grant.id,
        artifacts=issued,
        withheld=withheld,
        signature_url=f"{api}/signature",
        public_key_url=f"{base}/.well-known/release-signing-key.pem",
    )


async def _continuable(
    session: AsyncSession,
    grant: Grant,
    now: datetime,
    ids: dict[str, str],
    artifacts: list[Artifact],
) -> dict[int, str]:
    """Artifact id -> download id, for the ids the client may keep using."""
    by_path = {a.path: a.id for a in artifacts}
    asked = {by_path[p]: d for p, d in ids.items() if p in by_path}
    if not asked:
        return {}
    rows = (
        await session.scalars(
            select(Download).where(
                Download.id.in_(list(asked.values())),
                Download.grant_id == grant.id,
                Download.started_at > now - timedelta(days=CONTINUE_DAYS),
            )
        )
    ).all()
    started = {(row.artifact_id, row.id) for row in rows}
    # Only a download this grant started for this very artifact carries on; anything else
    # gets a new id (an id issued but never used has used no unit, so nothing is lost).
    return {a: d for a, d in asked.items() if (a, d) in started}


def _key_id(caller: Requester) -> str:
    return caller.key.id if caller.key is not None else "portal-session"


async def issue_manifest_for_account(
    rt: Runtime,
    account: Account,
    model: ModelRef,
    version: str,
    *,
    paths: list[str] | None = None,
    continue_ids: dict[str, str] | None = None,
    client: Client,
) -> DownloadManifest:
    """The manifest for a signed-in portal account (same decision, no API key)."""
    return await issue_manifest(
        rt,
        PortalCaller(account),
        model,
        version,
        paths=paths,
        continue_ids=continue_ids,
        client=client,
    )


def _client(client: Client) -> dict[str, str | None]:
    return {"client_address": client.address, "user_agent": client.user_agent}


@dataclass(frozen=True)
class Delivery:
    """What /d/ sends: a local file (whole or a range) or a redirect to storage."""

    sha256: str
    size: int
    filename: str
    byte_range: ByteRange | None
    redirect_url: str | None
    local_path: Any


async def deliver(
    rt: Runtime, token: str, *, range_header: str | None, method: str, client: Client
) -> Delivery:
    """Check a download token and the live state; record the request; say what to send."""
    now = rt.clock()
    refusal: Denied | None = None
    # The token and the live state are read in one plain session; only taking a quota
    # unit and writing the evidence need the write lock, in a short transaction after it.
    async with rt.reading() as session:
        keys = await rt.url_keys.verifying(session, now, url_tokens.unverified_kid(token))
        try:
            claims = url_tokens.verify(token, issuer=rt.settings.public_url, keys=keys, now=now)
        except url_tokens.TokenExpired as exc:
            raise Denied(
                Reason.URL_EXPIRED,
                str(exc),
                hint=(
                    "ask for a fresh URL: POST the release's /downloads again "
                    "(gateway download does this by itself)"
                ),
            ) from exc
        except url_tokens.TokenInvalid as exc:
            raise Denied(Reason.URL_INVALID, str(exc)) from exc
        row = (
            await session.execute(
                select(Grant, Account, Artifact, Component, Release, Model)
                .join(Account, Grant.account_id == Account.id)
                .join(Artifact, Artifact.id == claims.artifact_id)
                .join(Component, Component.id == Artifact.component_id)
                .join(Release, Release.id == Artifact.release_id)
                .join(Model, Model.id == Release.model_id)
                .where(Grant.id == claims.grant_id)
            )
        ).first()
        if row is None:
            raise Denied(Reason.URL_INVALID, "this download link does not match any grant")
        grant, account, artifact, component, release, model = row
        if account.id != claims.account_id or release.model_id != grant.model_id:
            raise Denied(Reason.URL_INVALID, "this download link does not match its grant")
        # A URL issued under an API key lives only as long as the key: revoking a leaked
        # key stops its links too. Portal URLs carry no key and answer to the account.
        key = await _issuing_key(session, claims)
        release.model = model
        recalled = await _recalled_tiers(session, release.id, rt)
        try:
            byte_range = parse_range(range_header, artifact.size)
        except RangeNotSatisfiable:
            byte_range = None
            refusal = _RangeRefused(artifact.size)
        started = await session.get(Download, claims.download_id)
        if started is not None and (
            started.grant_id != grant.id or started.artifact_id != artifact.id
        ):
            raise Denied(Reason.URL_INVALID, "this download link does not match its download")
        period = quota_period(grant.starts_at, now, grant.quota_period_days)
        quota_left = None
        if started is None:
            used = await session.scalar(
                select(QuotaUsage.used).where(
                    QuotaUsage.grant_id == grant.id,
                    QuotaUsage.artifact_id == artifact.id,
                    QuotaUsage.period == period,
                )
            )
            quota_left = grant.download_quota - (used or 0)
        decision = decide(
            _facts(
                rt,
                now=now,
                account=account,
                grant=grant,
                release=release,
                component=component.name,
                key=key_facts_of(key) if key is not None else None,
                recalled=recalled,
                quota_left=quota_left,
            ),
            rt.stage_machine,
        )
    if isinstance(decision, Deny):
        refusal = Denied(decision.reason, decision.message)
    async with rt.transaction() as session:
        if (
            refusal is None
            and started is None
            and method != "HEAD"
            and not await _start_download(
                session, grant, artifact.id, claims.download_id, period, now
            )
        ):
            refusal = Denied(
                Reason.QUOTA_EXHAUSTED,
                "the download quota for this file is used up for this period",
            )
        evidence.record(
            session,
            "download.requested",
            actor=f"account:{account.id}",
            at=now,
            model_id=release.model_id,
            release_id=release.id,
            account_id=account.id,
            data={
                "grant": grant.id,
                "artifact": artifact.id,
                "path": artifact.path,
                "tier": grant.tier,
                "download": claims.download_id,
                "key": claims.key_id or "portal-session",
                "method": method,
                "range": range_header,
                "outcome": refusal.code if refusal else "allowed",
                "new_download": started is None and refusal is None and method != "HEAD",
                **_client(client),
            },
        )
    if refusal is not None:
        raise refusal
    redirect = None
    local = await _local_path(rt, artifact.sha256)
    if local is None:
        redirect = rt.storage.presigned_get_url(
            artifact.sha256, expires_seconds=60, filename=artifact.path.rsplit("/", 1)[-1]
        )
    return Delivery(
        sha256=artifact.sha256,
        size=artifact.size,
        filename=artifact.path.rsplit("/", 1)[-1],
        byte_range=byte_range,
        redirect_url=redirect,
        local_path=local,
    )


async def _issuing_key(session: AsyncSession, claims: url_tokens.DownloadClaims) -> ApiKey | None:
    """The API key a URL was issued under, or None for a portal session's URL."""
    if claims.key_id is None:
        return None
    key = await session.get(ApiKey, claims.key_id)
    if key is None or key.account_id != claims.account_id:
        raise Denied(Reason.URL_INVALID, "this download link does not match its API key")
    return key


async def _local_path(rt: Runtime, sha256: str) -> Any:
    import asyncio

    return await asyncio.to_thread(rt.storage.local_path, sha256)


class _RangeRefused(Denied):
    def __init__(self, size: int) -> None:
        GatewayError.__init__(
            self,
            f"the range asked for lies outside the file ({size} bytes)",
            code="range_not_satisfiable",
        )
        self.status = 416
        self.reason = Reason.URL_INVALID
        self.hint = None
        self.size = size


async def _start_download(
    session: AsyncSession,
    grant: Grant,
    artifact_id: int,
    download_id: str,
    period: int,
    now: datetime,
) -> bool:
    """Record a new download and take one quota unit, atomically; False if none is left."""
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    try:
        async with session.begin_nested():
            session.add(
                Download(
                    id=download_id,
                    grant_id=grant.id,
                    artifact_id=artifact_id,
                    period=period,
                    started_at=now,
                )
            )
            await session.flush()
    except IntegrityError:
        return True  # the same download started in a concurrent request: no second unit
    await session.execute(
        insert(QuotaUsage)
        .values(grant_id=grant.id, artifact_id=artifact_id, period=period, used=0)
        .on_conflict_do_nothing()
    )
    # The guard in the WHERE makes check-and-take one statement: with K units left and
    # N > K concurrent requests, exactly K updates match, on SQLite and PostgreSQL alike.
    taken = await session.execute(
        update(QuotaUsage)
        .where(
            QuotaUsage.grant_id == grant.id,
            QuotaUsage.artifact_id == artifact_id,
            QuotaUsage.period == period,
            QuotaUsage.used < grant.download_quota,
        )
        .values(used=QuotaUsage.used + 1)
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return True
    await session.delete(await session.get(Download, download_id))
    return False
