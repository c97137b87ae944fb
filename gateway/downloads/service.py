"""Download manifests: signed URLs for what a grant may fetch, in one unit of work.

The /d/ endpoint itself is gateway/downloads/delivery.py.

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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.catalog.service import published_release
from gateway.credentials import url_tokens
from gateway.db.models import Account, Artifact, Download, Grant, QuotaUsage, Release
from gateway.db.uow import UnitOfWork
from gateway.downloads.access import (
    Client,
    PortalCaller,
    Requester,
    access_facts,
    best_grant,
    grants_of,
    key_facts,
    key_id,
    recalled_tiers,
)
from gateway.downloads.delivery import Delivery, deliver
from gateway.errors import Denied
from gateway.runtime import Runtime
from stages import evidence as ev
from stages.access import Deny, decide
from stages.actors import Actor
from stages.grants import quota_period
from stages.names import ModelRef

# The feature's service names, /d/ and the refusal included, for its callers.
__all__ = [
    "CONTINUE_DAYS",
    "Client",
    "Delivery",
    "Denied",
    "DownloadManifest",
    "IssuedUrl",
    "WithheldArtifact",
    "deliver",
    "issue_manifest",
    "issue_manifest_for_account",
]

CONTINUE_DAYS = 7


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
    # Why the release was yanked (PEP 592), when it is: still downloadable by its version.
    yanked_reason: str | None = None


async def issue_manifest(
    uow: UnitOfWork,
    caller: Requester,
    model: ModelRef,
    version: str,
    *,
    paths: list[str] | None,
    continue_ids: dict[str, str] | None,
    client: Client,
) -> DownloadManifest:
    """Signed URLs for every artifact the caller's grant may fetch now, and why not the rest."""
    rt = uow.rt
    now = rt.clock()
    # The reads first (the signing key comes from the cache, or is read in this unit),
    # then the evidence, by group commit with other requests'.
    signing_key = await rt.url_keys.signing(uow, now)
    pending: list[ev.Payload] = []
    session = uow.session
    release = await published_release(uow, model, version)
    grants = await grants_of(uow, caller.account.id, release.model_id)
    recalled = await recalled_tiers(uow, release.id)
    grant, decision = best_grant(rt, now, caller, release, grants, recalled)
    manifest = None
    if grant is None or isinstance(decision, Deny):
        assert isinstance(decision, Deny)
        pending.append(
            ev.DownloadManifestRefused(
                reason=decision.reason.value,
                key=key_id(caller),
                client_address=client.address,
                user_agent=client.user_agent,
            )
        )
    else:
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
    # The manifest writes nothing but its evidence: by group commit, on disk before the
    # answer (a refusal's too).
    await evidence.append(
        uow,
        pending,
        actor=Actor.account(caller.account.id),
        at=now,
        model_id=release.model_id,
        release_id=release.id,
        account_id=caller.account.id,
    )
    if isinstance(decision, Deny):
        # Kept: a unit that wrote (a first signing key) commits its evidence, then refuses.
        raise uow.kept(Denied(decision.reason, decision.message))
    assert manifest is not None
    return manifest


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
    pending: list[ev.Payload],
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
            access_facts(
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
            ev.UrlIssued(
                grant=grant.id,
                artifact=artifact.id,
                path=artifact.path,
                tier=grant.tier,
                download=download_id,
                expires_at=expires,
                key=key_id(caller),
                client_address=client.address,
                user_agent=client.user_agent,
            )
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
        yanked_reason=release.yanked_reason if release.yanked_at is not None else None,
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


async def issue_manifest_for_account(
    uow: UnitOfWork,
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
        uow,
        PortalCaller(account),
        model,
        version,
        paths=paths,
        continue_ids=continue_ids,
        client=client,
    )
