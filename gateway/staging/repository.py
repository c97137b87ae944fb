"""Every query of staging: the facts a promotion gate is judged on, approvals, recalls in
force, and whom a recall concerns. Releases themselves load through
gateway.catalog.repository.release_by_ref.

Downloads count from the moment the release entered its current stage: a promotion is
earned by use at the stage it leaves, not by use at an earlier one.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api_access.repository import api_figures
from gateway.db.models import (
    Account,
    Approval,
    Artifact,
    Download,
    EvidenceAttachment,
    Grant,
    Incident,
    Recall,
    Release,
)
from policies.gates import EvidenceFact, PromotionFacts
from stages.incidents import OPEN_INCIDENT_STATUSES, Severity


async def pending_approvals(
    session: AsyncSession, release_id: int, action: str, target: str
) -> frozenset[str]:
    """Operators who approved this move and whose approval is not used up yet."""
    rows = await session.scalars(
        select(Approval.operator).where(
            Approval.release_id == release_id,
            Approval.action == action,
            Approval.target == target,
            Approval.used_at.is_(None),
        )
    )
    return frozenset(rows.all())


async def recalls_in_force(session: AsyncSession, release_id: int) -> list[Recall]:
    rows = await session.scalars(
        select(Recall)
        .where(Recall.release_id == release_id, Recall.lifted_at.is_(None))
        .order_by(Recall.recalled_at)
    )
    return list(rows.all())


async def open_incidents(session: AsyncSession, release_id: int) -> dict[Severity, int]:
    rows = await session.execute(
        select(Incident.severity, func.count())
        .where(
            Incident.release_id == release_id,
            Incident.status.in_([s.value for s in OPEN_INCIDENT_STATUSES]),
            Incident.severity.is_not(None),
        )
        .group_by(Incident.severity)
    )
    return {Severity(severity): count for severity, count in rows.all() if severity}


async def attachments(session: AsyncSession, release_id: int) -> list[EvidenceAttachment]:
    rows = await session.scalars(
        select(EvidenceAttachment)
        .where(EvidenceAttachment.release_id == release_id)
        .order_by(EvidenceAttachment.attached_at)
    )
    return list(rows.all())


async def attachment_of(
    session: AsyncSession, release_id: int, attachment_id: str
) -> EvidenceAttachment | None:
    """One attachment, only if it is the release's."""
    return await session.scalar(
        select(EvidenceAttachment).where(
            EvidenceAttachment.id == attachment_id, EvidenceAttachment.release_id == release_id
        )
    )


async def downloaders(session: AsyncSession, release: Release) -> tuple[int, int]:
    """Distinct grantees, and distinct email domains among them, who downloaded the
    release since it entered its current stage. Only a confirmed address counts as an
    organisation: anyone can type an address at a university."""
    rows = (
        await session.execute(
            select(Account.email, Account.email_verified_at.is_not(None))
            .distinct()
            .select_from(Download)
            .join(Artifact, Artifact.id == Download.artifact_id)
            .join(Grant, Grant.id == Download.grant_id)
            .join(Account, Account.id == Grant.account_id)
            .where(
                Artifact.release_id == release.id, Download.started_at >= release.stage_changed_at
            )
        )
    ).all()
    domains = Counter(email.rsplit("@", 1)[-1].lower() for email, confirmed in rows if confirmed)
    return len(rows), len(domains)


async def promotion_facts(
    session: AsyncSession, release: Release, target: str, approver: str | None, now: datetime
) -> PromotionFacts:
    """What the gate of promotion into `target` is judged on; `approver` counts as approving."""
    grantees, organisations = await downloaders(session, release)
    api = await api_figures(session, release.id, release.stage_changed_at)
    approvals = await pending_approvals(session, release.id, "promote", target)
    if approver is not None:
        approvals = approvals | {approver}
    return PromotionFacts(
        stage_entered_at=release.stage_changed_at,
        grantees_downloaded=grantees,
        organisations_downloaded=organisations,
        open_incidents=await open_incidents(session, release.id),
        evidence=tuple(
            EvidenceFact(a.kind, a.name, a.result) for a in await attachments(session, release.id)
        ),
        approvals=approvals,
        recall_in_force=bool(await recalls_in_force(session, release.id)),
        api_requests=api.requests,
        api_users=api.users,
        api_flagged=api.flagged,
    )


async def use_approvals(
    session: AsyncSession, release_id: int, action: str, target: str, now: datetime
) -> None:
    """Mark the pending approvals of `action` to `target` used: the move they asked for is made."""
    await session.execute(
        update(Approval)
        .where(
            Approval.release_id == release_id,
            Approval.action == action,
            Approval.target == target,
            Approval.used_at.is_(None),
        )
        .values(used_at=now)
    )


async def grantees_of(
    session: AsyncSession, model_id: int, tier: str | None
) -> list[tuple[Grant, Account]]:
    """Active and suspended grants of the model (of one tier, if given), with their holders."""
    query = (
        select(Grant, Account)
        .join(Account, Account.id == Grant.account_id)
        .where(Grant.model_id == model_id, Grant.status.in_(["active", "suspended"]))
    )
    if tier is not None:
        query = query.where(Grant.tier == tier)
    return [(grant, account) for grant, account in (await session.execute(query)).all()]
