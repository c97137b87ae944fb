"""External evaluators: grantees of a tier the policy marks `evaluators = true` submit
evaluation results for a release open to them (a name, a result, an optional report).

A result is evidence of kind `evaluation` like an operator's, counted by the promotion
gates, and attributed to the evaluator: the attachment carries their account as its
author and is marked external. Attachments are never edited or removed, by anyone; a
later result is a new attachment beside the earlier one.
"""

from __future__ import annotations

from gateway.catalog.service import published_release
from gateway.db.models import EvidenceAttachment
from gateway.db.uow import UnitOfWork
from gateway.downloads.access import Requester, best_grant, grants_of, recalled_tiers
from gateway.errors import Denied, Forbidden
from gateway.staging.evidence_files import EvidenceFile
from gateway.staging.promotion import attach_evidence
from stages.access import Deny
from stages.actors import Actor
from stages.names import ModelRef

EVALUATION = "evaluation"


async def submit_evaluation(
    uow: UnitOfWork,
    caller: Requester,
    model: ModelRef,
    version: str,
    *,
    name: str,
    result: str,
    file: EvidenceFile | None,
    note: str | None,
) -> EvidenceAttachment:
    """Record an external evaluator's result for a release open to their grant."""
    rt = uow.rt
    ladder = rt.policy.ladder
    release = await published_release(uow, model, version)
    grants = [
        grant
        for grant in await grants_of(uow, caller.account.id, release.model_id)
        if grant.tier in ladder and ladder.get(grant.tier).evaluators
    ]
    if not grants:
        evaluating = [tier.name for tier in ladder if tier.evaluators]
        raise Forbidden(
            f"you hold no grant of {model} in an evaluators tier "
            f"({', '.join(evaluating) or 'the policy has none'}): only external evaluators "
            "submit evaluation results",
            code="not_an_evaluator",
        )
    recalled = await recalled_tiers(uow, release.id)
    api_only = all(ladder.get(grant.tier).api_only for grant in grants)
    grant, decision = best_grant(
        rt, rt.clock(), caller, release, grants, recalled, api_use=api_only
    )
    if grant is None or isinstance(decision, Deny):
        assert isinstance(decision, Deny)
        raise Denied(decision.reason, decision.message)
    return await attach_evidence(
        uow,
        model,
        version,
        kind=EVALUATION,
        name=name,
        result=result,
        file=file,
        note=note,
        actor=Actor.account(caller.account.id),
        external=True,
    )
