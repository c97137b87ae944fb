"""Promotion through evidence gates, approvals by distinct operators, overrides,
recalls and reinstatement — on every backend, with the shipped policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.db.models import Account, Evidence, Release
from gateway.downloads.service import Client, Denied, deliver, issue_manifest_for_account
from gateway.errors import Conflict
from gateway.grants.service import create_grant
from gateway.runtime import Runtime
from gateway.staging.evidence_files import EvidenceFile
from gateway.staging.promotion import attach_evidence, promote, stage_status
from gateway.staging.recalls import recall, reinstate
from gateway.staging.service import move_release
from stages.access import Reason
from stages.release import Move
from tests.accounts import create_account
from tests.grantees import MODEL
from tests.sample import publish
from tests.units import within, writing

pytestmark = pytest.mark.anyio
CLIENT = Client("192.0.2.7", "test")


async def release_row(rt: Runtime) -> Release:
    async with rt.sessionmaker() as session:
        row = await session.scalar(select(Release))
    assert row is not None
    return row


async def download_as(rt: Runtime, email: str, tier: str, *, confirmed: bool = True) -> None:
    """A grantee at `tier` fetches one file: the kind of use gates count."""
    account = await create_account(rt, email, operator=False, actor="t")
    if confirmed:
        async with writing(rt) as session:
            row = await session.get_one(Account, account.id)
            row.email_verified_at = rt.clock()
    await within(
        rt, lambda uow: create_grant(uow, email=email, model=MODEL, tier=tier, days=None, actor="t")
    )
    manifest = await within(
        rt,
        lambda uow: issue_manifest_for_account(
            uow, account, MODEL, "1.0", paths=["README.md"], client=CLIENT
        ),
    )
    token = manifest.artifacts[0].url.rsplit("/d/", 1)[1]
    await within(
        rt, lambda uow: deliver(uow, token, range_header=None, method="GET", client=CLIENT)
    )


async def test_promotion_to_trusted_partners_needs_the_internal_safety_evaluation(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    refused = await within(
        runtime, lambda uow: promote(uow, MODEL, "1.0", target="trusted_partner", actor="op:ann")
    )
    assert not refused.moved
    assert refused.unmet == ["evidence evaluation/internal-safety = pass: missing"]
    assert (await release_row(runtime)).stage == "draft"
    await within(
        runtime,
        lambda uow: attach_evidence(
            uow,
            MODEL,
            "1.0",
            kind="evaluation",
            name="internal-safety",
            result="fail",
            file=None,
            note=None,
            actor="op:ann",
        ),
    )
    still = await within(
        runtime, lambda uow: promote(uow, MODEL, "1.0", target="trusted_partner", actor="op:ann")
    )
    assert still.unmet == ["evidence evaluation/internal-safety = pass: missing (found fail)"]
    report = tmp_path / "safety.pdf"
    report.write_bytes(b"%PDF-1.4 internal safety evaluation: pass")
    await within(
        runtime,
        lambda uow: attach_evidence(
            uow,
            MODEL,
            "1.0",
            kind="evaluation",
            name="internal-safety",
            result="pass",
            file=EvidenceFile.named(report.name, report.read_bytes()),
            note="v2 of the suite",
            actor="op:ann",
        ),
    )
    done = await within(
        runtime, lambda uow: promote(uow, MODEL, "1.0", target="trusted_partner", actor="op:ann")
    )
    assert done.moved
    assert not done.overridden
    assert (await release_row(runtime)).stage == "trusted_partner"


async def test_the_researcher_gate_counts_use_days_and_two_distinct_operators(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await within(
        runtime,
        lambda uow: move_release(
            uow, MODEL, "1.0", Move.PROMOTE, target="trusted_partner", actor="t"
        ),
    )
    start = runtime.clock()
    await download_as(runtime, "a@lab-one.example", "trusted_partner")
    await download_as(runtime, "b@lab-one.example", "trusted_partner")
    status = await within(runtime, lambda uow: stage_status(uow, MODEL, "1.0"))
    assert status.next_stage == "researcher"
    assert (status.grantees_downloaded, status.organisations_downloaded) == (2, 1)
    assert status.report is not None
    details = {g.name: g.detail for g in status.report.gates if not g.met}
    assert details["min_days_in_stage"] == "days in stage: 0 of 14"
    assert details["min_grantees_downloaded"].endswith("2 of 3")
    assert details["min_organisations_downloaded"].endswith("1 of 2")
    await download_as(runtime, "c@lab-two.example", "trusted_partner")
    later = start + timedelta(days=15)
    runtime.clock = lambda: later
    first = await within(
        runtime, lambda uow: promote(uow, MODEL, "1.0", target="researcher", actor="op:ann")
    )
    assert not first.moved
    assert first.unmet == ["approvals: 1 of 2"]
    # The same operator twice is still one approval.
    again = await within(
        runtime, lambda uow: promote(uow, MODEL, "1.0", target="researcher", actor="op:ann")
    )
    assert not again.moved
    assert again.report.approvals_have == 1
    second = await within(
        runtime, lambda uow: promote(uow, MODEL, "1.0", target=None, actor="op:bob")
    )
    assert second.moved
    assert second.approvals == frozenset({"op:ann", "op:bob"})
    async with runtime.sessionmaker() as session:
        promoted = (
            await session.scalars(select(Evidence).where(Evidence.kind == "stage.promoted"))
        ).all()
    assert promoted[-1].data["approvals"] == ["op:ann", "op:bob"]
    assert promoted[-1].data["override"] is False


async def test_only_confirmed_addresses_count_as_organisations(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await within(
        runtime,
        lambda uow: move_release(
            uow, MODEL, "1.0", Move.PROMOTE, target="trusted_partner", actor="t"
        ),
    )
    await download_as(runtime, "a@lab-one.example", "trusted_partner")
    # Anyone can type an address at another lab; until it is confirmed it is no lab.
    await download_as(runtime, "x@lab-two.example", "trusted_partner", confirmed=False)
    await download_as(runtime, "y@lab-three.example", "trusted_partner", confirmed=False)
    status = await within(runtime, lambda uow: stage_status(uow, MODEL, "1.0"))
    assert (status.grantees_downloaded, status.organisations_downloaded) == (3, 1)


async def test_an_override_promotes_and_records_what_was_unmet(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    forced = await within(
        runtime,
        lambda uow: promote(
            uow,
            MODEL,
            "1.0",
            target="trusted_partner",
            actor="op:ann",
            override_reason="partner pilot starts today",
        ),
    )
    assert forced.moved
    assert forced.overridden
    async with runtime.sessionmaker() as session:
        row = await session.scalar(select(Evidence).where(Evidence.kind == "stage.promoted"))
    assert row is not None
    assert row.data["override"] is True
    assert row.data["override_reason"] == "partner pilot starts today"
    assert row.data["unmet"] == ["evidence evaluation/internal-safety = pass: missing"]
    with pytest.raises(Conflict, match="one stage at a time"):
        await within(
            runtime,
            lambda uow: promote(
                uow, MODEL, "1.0", target="public", actor="op:ann", override_reason="x"
            ),
        )


async def test_a_rollback_cuts_off_urls_of_the_wider_tier(runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    for stage in ("trusted_partner", "researcher"):
        await within(
            runtime,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "1.0", Move.PROMOTE, target=stage, actor="t"
            ),
        )
    researcher = await create_account(runtime, "r@uni.edu", operator=False, actor="t")
    await within(
        runtime,
        lambda uow: create_grant(
            uow, email="r@uni.edu", model=MODEL, tier="researcher", days=None, actor="t"
        ),
    )
    manifest = await within(
        runtime,
        lambda uow: issue_manifest_for_account(uow, researcher, MODEL, "1.0", client=CLIENT),
    )
    token = manifest.artifacts[0].url.rsplit("/d/", 1)[1]
    await within(
        runtime,
        lambda uow: move_release(
            uow,
            MODEL,
            "1.0",
            Move.ROLLBACK,
            target="trusted_partner",
            actor="op",
            reason="found a leak",
        ),
    )
    with pytest.raises(Denied) as refused:
        await within(
            runtime, lambda uow: deliver(uow, token, range_header=None, method="GET", client=CLIENT)
        )
    assert refused.value.reason is Reason.TIER_NOT_OPEN


async def test_recall_of_a_tier_and_of_the_release_then_reinstatement_by_two_operators(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    for stage in ("trusted_partner", "researcher", "public"):
        await within(
            runtime,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "1.0", Move.PROMOTE, target=stage, actor="t"
            ),
        )
    tokens = {}
    for email, tier in (("p@x.example", "public"), ("r@uni.edu", "researcher")):
        account = await create_account(runtime, email, operator=False, actor="t")
        await within(
            runtime,
            lambda uow, email=email, tier=tier: create_grant(
                uow, email=email, model=MODEL, tier=tier, days=None, actor="t"
            ),
        )
        manifest = await within(
            runtime,
            lambda uow, account=account: issue_manifest_for_account(
                uow, account, MODEL, "1.0", paths=["README.md"], client=CLIENT
            ),
        )
        tokens[tier] = manifest.artifacts[0].url.rsplit("/d/", 1)[1]

    tier_recall = await within(
        runtime,
        lambda uow: recall(
            uow, MODEL, "1.0", reason="leak on a forum", tier="public", actor="op:ann"
        ),
    )
    assert tier_recall.releases == ["acme/sample:1.0"]
    assert tier_recall.grantees_notified == 1
    with pytest.raises(Denied) as refused:
        await within(
            runtime,
            lambda uow: deliver(
                uow, tokens["public"], range_header=None, method="GET", client=CLIENT
            ),
        )
    assert refused.value.reason is Reason.RELEASE_RECALLED
    await within(
        runtime,
        lambda uow: deliver(
            uow, tokens["researcher"], range_header=None, method="GET", client=CLIENT
        ),
    )
    again = await within(
        runtime,
        lambda uow: recall(uow, MODEL, "1.0", reason="twice", tier="public", actor="op:ann"),
    )
    assert again.already == ["acme/sample:1.0"]

    everything = await within(
        runtime, lambda uow: recall(uow, MODEL, None, reason="critical incident", actor="op:ann")
    )
    assert everything.releases == ["acme/sample:1.0"]
    assert (await release_row(runtime)).status == "recalled"
    with pytest.raises(Denied) as both:
        await within(
            runtime,
            lambda uow: deliver(
                uow, tokens["researcher"], range_header=None, method="GET", client=CLIENT
            ),
        )
    assert both.value.reason is Reason.RELEASE_RECALLED

    first = await within(runtime, lambda uow: reinstate(uow, MODEL, "1.0", actor="op:ann"))
    assert not first.lifted
    assert first.unmet == ["approvals: 1 of 2"]
    same = await within(runtime, lambda uow: reinstate(uow, MODEL, "1.0", actor="op:ann"))
    assert not same.lifted
    lifted = await within(runtime, lambda uow: reinstate(uow, MODEL, "1.0", actor="op:bob"))
    assert lifted.lifted
    assert (await release_row(runtime)).status == "active"
    await within(
        runtime,
        lambda uow: deliver(
            uow, tokens["researcher"], range_header=None, method="GET", client=CLIENT
        ),
    )
    with pytest.raises(Conflict, match="no recall"):
        await within(runtime, lambda uow: reinstate(uow, MODEL, "1.0", actor="op:ann"))


async def test_a_tier_recall_withdraws_every_wider_tier_too(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    for stage in ("trusted_partner", "researcher", "public"):
        await within(
            runtime,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "1.0", Move.PROMOTE, target=stage, actor="t"
            ),
        )
    tokens = {}
    for email, tier in (("p@x.example", "public"), ("t@lab.example", "trusted_partner")):
        account = await create_account(runtime, email, operator=False, actor="t")
        await within(
            runtime,
            lambda uow, email=email, tier=tier: create_grant(
                uow, email=email, model=MODEL, tier=tier, days=None, actor="t"
            ),
        )
        manifest = await within(
            runtime,
            lambda uow, account=account: issue_manifest_for_account(
                uow, account, MODEL, "1.0", paths=["README.md"], client=CLIENT
            ),
        )
        tokens[tier] = manifest.artifacts[0].url.rsplit("/d/", 1)[1]
    await within(
        runtime,
        lambda uow: recall(
            uow, MODEL, "1.0", reason="researcher leak", tier="researcher", actor="op"
        ),
    )
    with pytest.raises(Denied) as refused:
        await within(
            runtime,
            lambda uow: deliver(
                uow, tokens["public"], range_header=None, method="GET", client=CLIENT
            ),
        )
    assert refused.value.reason is Reason.RELEASE_RECALLED
    await within(
        runtime,
        lambda uow: deliver(
            uow, tokens["trusted_partner"], range_header=None, method="GET", client=CLIENT
        ),
    )


@pytest.mark.parametrize(
    ("kind", "name", "result", "message"),
    [
        ("evaluation", "x" * 201, "pass", "name is at most 200 characters"),
        ("Evaluation", "red-team", "pass", "kind 'Evaluation': expected lower-case"),
        ("evaluation", "red team", "pass", "name 'red team': expected lower-case"),
    ],
)
async def test_evidence_labels_are_checked_before_anything_is_written(
    runtime: Runtime, tmp_path: Path, kind: str, name: str, result: str, message: str
) -> None:
    from gateway.db.models import EvidenceAttachment
    from gateway.errors import InvalidInput

    await publish(runtime, tmp_path)
    with pytest.raises(InvalidInput, match=message):
        await within(
            runtime,
            lambda uow: attach_evidence(
                uow,
                MODEL,
                "1.0",
                kind=kind,
                name=name,
                result=result,
                file=None,
                note=None,
                actor="op",
            ),
        )
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(EvidenceAttachment))).all() == []


async def test_the_manifest_uses_the_grant_that_sees_the_most(
    runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.publishing.service import PublishRequest, publish_release
    from tests.sample import make_folder, make_license

    folder = make_folder(tmp_path / "src", {"model.safetensors": b"w" * 10, "eval/run.py": b"x"})
    await within(
        runtime,
        lambda uow: publish_release(
            uow,
            PublishRequest(
                model=MODEL, version="1.0", folder=folder, license_file=make_license(tmp_path)
            ),
            actor="t",
        ),
    )
    for stage in ("trusted_partner", "researcher", "public"):
        await within(
            runtime,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "1.0", Move.PROMOTE, target=stage, actor="t"
            ),
        )
    account = await create_account(runtime, "both@lab.example", operator=False, actor="t")
    await within(
        runtime,
        lambda uow: create_grant(
            uow, email="both@lab.example", model=MODEL, tier="public", days=None, actor="t"
        ),
    )
    await within(
        runtime,
        lambda uow: create_grant(
            uow, email="both@lab.example", model=MODEL, tier="trusted_partner", days=None, actor="t"
        ),
    )
    manifest = await within(
        runtime, lambda uow: issue_manifest_for_account(uow, account, MODEL, "1.0", client=CLIENT)
    )
    assert manifest.tier == "trusted_partner"
    assert sorted(a.path for a in manifest.artifacts) == ["eval/run.py", "model.safetensors"]
    assert manifest.withheld == []
