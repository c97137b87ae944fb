"""The /d/ endpoint's decision, quota and evidence, in one unit of work.

The token and the live state (grant, account, release, recalls, the issuing key, the
quota) are read in the unit's read phase. A new download's quota unit and its
`download.requested` evidence are the unit's one short write phase, so the database's
write lock is held for those alone; every other request (a further range of a download
already started, a HEAD, a refusal) writes only its evidence, by group commit with
other requests'. A refusal keeps its evidence (the unit commits, then refuses).
The counting rule is in gateway/downloads/service.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from gateway import evidence
from gateway.credentials import url_tokens
from gateway.db.changes import detached
from gateway.db.models import (
    Account,
    ApiKey,
    Artifact,
    Component,
    Download,
    Grant,
    Model,
    QuotaUsage,
    Release,
)
from gateway.db.uow import UnitOfWork
from gateway.downloads.access import Client, access_facts, recalled_tiers
from gateway.downloads.ranges import ByteRange, RangeNotSatisfiable, parse_range
from gateway.errors import Denied, GatewayError
from gateway.keys.service import key_by_id, key_facts_of
from gateway.runtime import Runtime
from stages import evidence as ev
from stages.access import Deny, Reason, decide
from stages.actors import Actor
from stages.grants import quota_period


@dataclass(frozen=True)
class Delivery:
    """What /d/ sends: a local file (whole or a range), a redirect to storage, or the
    location nginx sends a local file from (`accel_path`, for X-Accel-Redirect)."""

    sha256: str
    size: int
    filename: str
    byte_range: ByteRange | None
    redirect_url: str | None
    local_path: Any
    accel_path: str | None = None


async def deliver(
    uow: UnitOfWork,
    token: str,
    *,
    range_header: str | None,
    method: str,
    client: Client,
) -> Delivery:
    """Check a download token and the live state; record the request; say what to send."""
    rt = uow.rt
    now = rt.clock()
    refusal: Denied | None = None
    session = uow.session
    keys = await rt.url_keys.verifying(uow, now, url_tokens.unverified_kid(token))
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
    row = await _granted_file(uow, claims.grant_id, claims.artifact_id)
    if row is None:
        raise Denied(Reason.URL_INVALID, "this download link does not match any grant")
    grant, account, artifact, component, release = row
    if account.id != claims.account_id or release.model_id != grant.model_id:
        raise Denied(Reason.URL_INVALID, "this download link does not match its grant")
    # A URL issued under an API key lives only as long as the key: revoking a leaked
    # key stops its links too. Portal URLs carry no key and answer to the account.
    key = await _issuing_key(uow, claims)
    recalled = await recalled_tiers(uow, release.id)
    try:
        byte_range = parse_range(range_header, artifact.size)
    except RangeNotSatisfiable:
        byte_range = None
        refusal = _RangeRefused(artifact.size)
    started = await session.get(Download, claims.download_id)
    if started is not None and (started.grant_id != grant.id or started.artifact_id != artifact.id):
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
        access_facts(
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
    # A new download takes a quota unit: that, and its evidence, in the unit's write
    # phase. Anything else (a range of a download already started, a HEAD, a refusal)
    # writes only its evidence, by group commit.
    new_download = refusal is None and started is None and method != "HEAD"
    if new_download:
        session = await uow.write()
        if not await _start_download(session, grant, artifact.id, claims.download_id, period, now):
            new_download = False
            refusal = Denied(
                Reason.QUOTA_EXHAUSTED,
                "the download quota for this file is used up for this period",
            )
    requested = ev.DownloadRequested(
        grant=grant.id,
        artifact=artifact.id,
        path=artifact.path,
        tier=grant.tier,
        download=claims.download_id,
        key=claims.key_id or "portal-session",
        method=method,
        range=range_header,
        outcome=refusal.code if refusal else "allowed",
        new_download=new_download,
        client_address=client.address,
        user_agent=client.user_agent,
    )
    await evidence.append(
        uow,
        [requested],
        actor=Actor.account(account.id),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
        account_id=account.id,
    )
    if refusal is not None:
        raise uow.kept(refusal)
    return await _handing_over(rt, artifact, byte_range)


async def _handing_over(rt: Runtime, artifact: Artifact, byte_range: ByteRange | None) -> Delivery:
    """How the bytes go out: a redirect to S3, nginx's internal location, or the file."""
    filename = artifact.path.rsplit("/", 1)[-1]
    redirect = accel = None
    local = await asyncio.to_thread(rt.storage.local_path, artifact.sha256)
    if local is None:
        redirect = rt.storage.presigned_get_url(
            artifact.sha256, expires_seconds=rt.settings.s3_redirect_seconds, filename=filename
        )
    elif rt.settings.accel_redirect is not None:
        inside = rt.storage.internal_path(artifact.sha256)
        accel = None if inside is None else rt.settings.accel_redirect + inside
    return Delivery(
        sha256=artifact.sha256,
        size=artifact.size,
        filename=filename,
        byte_range=byte_range,
        redirect_url=redirect,
        local_path=local,
        accel_path=accel,
    )


GrantedFile = tuple[Grant, Account, Artifact, Component, Release]
# What a token's grant and file are read from, for this process's cache.
_FILE_TABLES = ("grants", "accounts", "artifacts", "components", "releases", "models")


async def _granted_file(uow: UnitOfWork, grant_id: str, artifact_id: int) -> GrantedFile | None:
    """The grant, its account and the artifact a token names, with the artifact's
    component and release (and the release's model), through this process's cache
    (gateway/db/changes.py). The rows are shared with other requests: read them only."""
    cache = uow.rt.changes.cache("granted file", _FILE_TABLES)

    async def load() -> GrantedFile | None:
        session = uow.session
        found = (
            await session.execute(
                select(Grant, Account, Artifact, Component, Release, Model)
                .join(Account, Grant.account_id == Account.id)
                .join(Artifact, Artifact.id == artifact_id)
                .join(Component, Component.id == Artifact.component_id)
                .join(Release, Release.id == Artifact.release_id)
                .join(Model, Model.id == Release.model_id)
                .where(Grant.id == grant_id)
            )
        ).first()
        if found is None:
            return None
        grant, account, artifact, component, release, model = found
        # Loaded, not changed: nothing to write for it.
        set_committed_value(release, "model", model)
        detached(session, grant, account, artifact, component, release, model)
        return grant, account, artifact, component, release

    found: GrantedFile | None = await cache.get((grant_id, artifact_id), load)
    return found


async def _issuing_key(uow: UnitOfWork, claims: url_tokens.DownloadClaims) -> ApiKey | None:
    """The API key a URL was issued under, or None for a portal session's URL."""
    if claims.key_id is None:
        return None
    key = await key_by_id(uow, claims.key_id)
    if key is None or key.account_id != claims.account_id:
        raise Denied(Reason.URL_INVALID, "this download link does not match its API key")
    return key


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
