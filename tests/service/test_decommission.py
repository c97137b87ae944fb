"""Decommissioning through the service, on every backend: the announcement and reminders
reach each grantee once, the date stops downloads (the clock is moved, never slept),
grants end or continue depending on a successor, and purging keeps shared objects."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from gateway.db.models import (
    Account,
    Closeout,
    Decommission,
    Evidence,
    Grant,
    GrantNotice,
    License,
    Notification,
    Release,
    StageChange,
)
from gateway.db.uow import unit_of_work
from gateway.decommission import announce as announcing
from gateway.decommission import purge as purging
from gateway.decommission import service
from gateway.downloads.service import (
    Client,
    Denied,
    deliver,
    issue_manifest_for_account,
)
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.grants.service import change_grant, create_grant
from gateway.publishing.service import PublishRequest, publish_release
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from stages.access import Reason
from stages.grants import GrantMove
from stages.release import Move
from tests.grantees import MODEL, Grantee, grantee, open_release
from tests.sample import make_folder, make_license, publish
from tests.units import within

pytestmark = pytest.mark.anyio
CLIENT = Client("127.0.0.1", "test")
ANNOUNCED = "release.decommission_announced"
REMINDER = "release.decommission_reminder"


def at(runtime: Runtime, moment: datetime) -> None:
    runtime.clock = lambda: moment


async def count(rt: Runtime, table: type[object], *where: Any) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where)) or 0


async def messages(rt: Runtime, who: Grantee, kind: str) -> list[Notification]:
    async with rt.sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(Notification)
                    .where(Notification.account_id == who.account_id, Notification.kind == kind)
                    .order_by(Notification.id)
                )
            ).all()
        )


async def evidence_of(rt: Runtime, kind: str) -> list[Evidence]:
    async with rt.sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(Evidence).where(Evidence.kind == kind).order_by(Evidence.id)
                )
            ).all()
        )


async def announce(
    rt: Runtime,
    effective_at: datetime,
    *,
    version: str = "1.0",
    successor: str | None = None,
    license_text: str | None = None,
) -> Decommission:
    return await within(
        rt,
        lambda uow: announcing.announce(
            uow,
            MODEL,
            version,
            at=effective_at,
            reason="superseded by a safer model",
            successor=successor,
            license_text=license_text,
            actor="op",
        ),
    )


async def url_for(rt: Runtime, who: Grantee, version: str = "1.0") -> str:
    """A download token for the release's README, issued to the grantee now."""
    async with rt.sessionmaker() as session:
        account = await session.get(Account, who.account_id)
    assert account is not None
    issued = await within(
        rt,
        lambda uow: issue_manifest_for_account(
            uow, account, MODEL, version, paths=["README.md"], client=CLIENT
        ),
    )
    return issued.artifacts[0].url.rsplit("/d/", 1)[1]


async def fetch(rt: Runtime, token: str) -> str:
    try:
        await within(
            rt, lambda uow: deliver(uow, token, range_header=None, method="GET", client=CLIENT)
        )
    except Denied as exc:
        return exc.reason.value
    return "allowed"


async def release_row(rt: Runtime, version: str = "1.0") -> Release:
    async with rt.sessionmaker() as session:
        row = await session.scalar(select(Release).where(Release.version == version))
    assert row is not None
    return row


async def test_the_announcement_reaches_each_grantee_once(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime, "alice@example.org")
    bob = await grantee(runtime, "bob@example.org")
    # Carol holds two grants of the model (two tiers): she hears once.
    carol = await grantee(runtime, "carol@example.org", tier="trusted_partner")
    await within(
        runtime,
        lambda uow: create_grant(
            uow, email=carol.email, model=MODEL, tier="researcher", days=None, actor="t"
        ),
    )
    dave = await grantee(runtime, "dave@example.org")
    await within(
        runtime,
        lambda uow: change_grant(uow, dave.grant_id, GrantMove.SUSPEND, reason="check", actor="op"),
    )
    now = runtime.clock()

    row = await announce(runtime, now + timedelta(days=40), successor=None)

    assert row.effective_at == now + timedelta(days=40)
    assert row.executed_at is None
    for who in (alice, bob, carol):
        (note,) = await messages(runtime, who, ANNOUNCED)
        assert note.subject == f"Hosting of acme/sample:1.0 ends on {row.effective_at:%Y-%m-%d}"
        assert "superseded by a safer model" in note.body
    assert await messages(runtime, dave, ANNOUNCED) == []
    (recorded,) = await evidence_of(runtime, "release.decommission_announced")
    assert recorded.actor == "op"
    assert recorded.data["grantees_notified"] == 3
    assert recorded.data["reminders"] == [
        (row.effective_at - timedelta(days=30)).isoformat(),
        (row.effective_at - timedelta(days=7)).isoformat(),
    ]
    async with unit_of_work(runtime) as uow:
        shown = await announcing.status(
            uow, MODEL, "1.0", rules=runtime.policy.decommission, now=now
        )
    assert shown is not None
    assert shown.phase == "announced"
    assert shown.grantees_notified == 3
    assert shown.purge_at == row.effective_at + timedelta(days=90)

    with pytest.raises(Conflict, match="already announced") as again:
        await announce(runtime, now + timedelta(days=50))
    assert again.value.code == "decommission_announced"
    assert await count(runtime, Notification, Notification.kind == ANNOUNCED) == 3


async def test_the_successor_and_license_are_part_of_the_announcement(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    await publish(runtime, tmp_path, version="1.1")
    alice = await grantee(runtime)
    row = await announce(
        runtime,
        runtime.clock() + timedelta(days=10),
        successor="1.1",
        license_text="Sample Model License v2\n",
    )
    (note,) = await messages(runtime, alice, ANNOUNCED)
    assert "Its successor is acme/sample:1.1." in note.body
    assert "license changes" in note.body
    async with runtime.sessionmaker() as session:
        new_license = await session.get(License, row.new_license_id)
    assert new_license is not None
    assert new_license.text == "Sample Model License v2\n"


async def test_refusals_write_nothing(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    await grantee(runtime)
    now = runtime.clock()
    later = now + timedelta(days=40)
    with pytest.raises(InvalidInput, match="not in the future"):
        await announce(runtime, now - timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="time zone"):
        await announce(runtime, later.replace(tzinfo=None))
    with pytest.raises(NotFound, match=r"no release acme/sample:2.0 to be the successor"):
        await announce(runtime, later, successor="2.0")
    with pytest.raises(InvalidInput, match="its own successor"):
        await announce(runtime, later, successor="1.0")
    with pytest.raises(InvalidInput, match="--successor"):
        await announce(runtime, later, successor="../x")
    with pytest.raises(NotFound, match=r"no release acme/sample:9.9"):
        await announce(runtime, later, version="9.9")
    with pytest.raises(InvalidInput, match="current license"):
        await announce(runtime, later, license_text=make_license(tmp_path).read_text())
    with pytest.raises(InvalidInput, match="empty"):
        await announce(runtime, later, license_text="  \n")
    with pytest.raises(InvalidInput, match="reason"):
        await within(
            runtime,
            lambda uow: announcing.announce(
                uow,
                MODEL,
                "1.0",
                at=later,
                reason="  ",
                successor=None,
                license_text=None,
                actor="op",
            ),
        )
    assert await count(runtime, Decommission) == 0
    assert await count(runtime, Notification) == 0
    assert await count(runtime, GrantNotice) == 0
    assert await count(runtime, License) == 1

    await within(
        runtime,
        lambda uow: move_release(uow, MODEL, "1.0", Move.DECOMMISSION, target=None, actor="op"),
    )
    with pytest.raises(Conflict, match="already decommissioned"):
        await announce(runtime, later)


async def test_reminders_at_30_and_7_days_once_each(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime, "alice@example.org")
    bob = await grantee(runtime, "bob@example.org")
    start = runtime.clock()
    effective = start + timedelta(days=40)
    await announce(runtime, effective)
    assert await within(runtime, service.send_reminders) == 0

    at(runtime, effective - timedelta(days=30))
    assert await within(runtime, service.send_reminders) == 2
    assert await within(runtime, service.send_reminders) == 0
    # Someone granted access after a reminder is told at the next run, with the time left.
    carol = await grantee(runtime, "carol@example.org")

    at(runtime, effective - timedelta(days=20))
    assert await within(runtime, service.send_reminders) == 1
    assert await within(runtime, service.send_reminders) == 0

    at(runtime, effective - timedelta(days=7))
    assert await within(runtime, service.send_reminders) == 3
    assert await within(runtime, service.send_reminders) == 0

    at(runtime, effective - timedelta(hours=1))
    assert await within(runtime, service.send_reminders) == 0
    for who in (alice, bob):
        subjects = [n.subject for n in await messages(runtime, who, REMINDER)]
        assert subjects == [
            "Hosting of acme/sample:1.0 ends in 30 day(s)",
            "Hosting of acme/sample:1.0 ends in 7 day(s)",
        ]
    assert [n.subject for n in await messages(runtime, carol, REMINDER)] == [
        "Hosting of acme/sample:1.0 ends in 20 day(s)",
        "Hosting of acme/sample:1.0 ends in 7 day(s)",
    ]


async def test_missed_reminders_become_one_message(runtime: Runtime, tmp_path: Path) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    effective = runtime.clock() + timedelta(days=40)
    await announce(runtime, effective)
    at(runtime, effective - timedelta(days=5))
    assert await within(runtime, service.send_reminders) == 1
    assert await within(runtime, service.send_reminders) == 0
    (note,) = await messages(runtime, alice, REMINDER)
    assert note.subject == "Hosting of acme/sample:1.0 ends in 5 day(s)"
    async with runtime.sessionmaker() as session:
        sent = set(
            (
                await session.scalars(
                    select(GrantNotice.notice).where(GrantNotice.grant_id == alice.grant_id)
                )
            ).all()
        )
    release = await release_row(runtime)
    assert sent == {f"decommission:{release.id}:{what}" for what in ("announced", "30", "7")}


async def test_reminder_jobs_running_at_once_send_each_message_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    for n in range(4):
        await grantee(runtime, f"g{n}@example.org")
    effective = runtime.clock() + timedelta(days=40)
    await announce(runtime, effective)
    at(runtime, effective - timedelta(days=29))
    sent = await asyncio.gather(*(within(runtime, service.send_reminders) for _ in range(3)))
    assert sum(sent) == 4
    assert await count(runtime, Notification, Notification.kind == REMINDER) == 4


async def test_at_the_date_downloads_stop_grants_end_and_closeouts_are_asked(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime, "alice@example.org")
    bob = await grantee(runtime, "bob@example.org")
    await within(
        runtime,
        lambda uow: change_grant(uow, bob.grant_id, GrantMove.SUSPEND, reason="check", actor="op"),
    )
    effective = runtime.clock() + timedelta(days=40)
    await announce(runtime, effective)

    at(runtime, effective - timedelta(minutes=10))
    token = await url_for(runtime, alice)
    assert await fetch(runtime, token) == "allowed"
    assert await service.execute_due(runtime) == 0
    assert (await release_row(runtime)).status == "active"

    at(runtime, effective + timedelta(minutes=5))
    assert await service.execute_due(runtime) == 1

    assert (await release_row(runtime)).status == "decommissioned"
    # The grant ended with the release, and the grant check comes first in the decision.
    assert await fetch(runtime, token) == Reason.GRANT_EXPIRED.value
    async with runtime.sessionmaker() as session:
        grants = (await session.scalars(select(Grant).order_by(Grant.created_at))).all()
        closeouts = (await session.scalars(select(Closeout))).all()
        changes = (
            await session.scalars(select(StageChange).where(StageChange.move == "decommission"))
        ).all()
    assert [(g.status, g.status_reason) for g in grants] == [
        ("expired", "the release was decommissioned")
    ] * 2
    assert {c.grant_id for c in closeouts} == {alice.grant_id, bob.grant_id}
    (change,) = changes
    assert change.actor == "system:scheduler"
    assert change.reason == "superseded by a safer model"
    (ended,) = await messages(runtime, alice, "release.decommissioned")
    assert "Your access to acme/sample has ended with it" in ended.body
    assert len(await messages(runtime, alice, "grant.ended")) == 1
    assert len(await evidence_of(runtime, "grant.expired")) == 2
    (done,) = await evidence_of(runtime, "release.decommissioned")
    assert done.data["grants_ended"] == 2
    assert done.data["other_release_open"] is False
    assert await evidence_of(runtime, "license.changed") == []

    # Jobs run again (or by another process) change nothing.
    assert await service.execute_due(runtime) == 0
    assert await within(runtime, service.send_reminders) == 0
    assert await count(runtime, Closeout) == 2
    assert await count(runtime, StageChange, StageChange.move == "decommission") == 1
    assert await count(runtime, Notification, Notification.kind == "release.decommissioned") == 1
    async with unit_of_work(runtime) as uow:
        shown = await announcing.status(
            uow, MODEL, "1.0", rules=runtime.policy.decommission, now=runtime.clock()
        )
    assert shown is not None
    assert shown.phase == "decommissioned"
    assert not shown.purgeable


async def test_with_an_open_successor_grants_continue_and_the_license_changes(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    await publish(runtime, tmp_path, version="1.1")
    for stage in ("trusted_partner", "researcher"):
        await within(
            runtime,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "1.1", Move.PROMOTE, target=stage, actor="t"
            ),
        )
    alice = await grantee(runtime)
    old = await release_row(runtime)
    effective = runtime.clock() + timedelta(days=40)
    row = await announce(runtime, effective, successor="1.1", license_text="License v2\n")

    at(runtime, effective - timedelta(minutes=1))
    token = await url_for(runtime, alice)
    at(runtime, effective)
    assert await service.execute_due(runtime) == 1

    assert await fetch(runtime, token) == Reason.RELEASE_DECOMMISSIONED.value
    assert await fetch(runtime, await url_for(runtime, alice, "1.1")) == "allowed"
    async with runtime.sessionmaker() as session:
        grant = await session.get(Grant, alice.grant_id)
        new_license = await session.get(License, row.new_license_id)
        old_license = await session.get(License, old.license_id)
    assert grant is not None
    assert grant.status == "active"
    assert await count(runtime, Closeout) == 0
    (ended,) = await messages(runtime, alice, "release.decommissioned")
    assert "continues for its other releases" in ended.body
    assert new_license is not None
    assert old_license is not None
    (changed,) = await evidence_of(runtime, "license.changed")
    assert changed.release_id == old.id
    assert changed.data["from_sha256"] == old_license.sha256
    assert changed.data["to_sha256"] == new_license.sha256
    assert (await release_row(runtime)).license_id == new_license.id


async def test_a_draft_successor_does_not_keep_grants_open(
    runtime: Runtime, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    await publish(runtime, tmp_path, version="1.1")  # stays in draft
    alice = await grantee(runtime)
    effective = runtime.clock() + timedelta(days=3)
    await announce(runtime, effective, successor="1.1")
    at(runtime, effective + timedelta(days=1))
    assert await service.execute_due(runtime) == 1
    async with runtime.sessionmaker() as session:
        grant = await session.get(Grant, alice.grant_id)
    assert grant is not None
    assert grant.status == "expired"
    assert await count(runtime, Closeout) == 1


async def test_a_release_decommissioned_early_is_finished_by_the_job(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The move happened but nothing else (a run that stopped, or an operator by hand)."""
    await open_release(runtime, tmp_path)
    alice = await grantee(runtime)
    effective = runtime.clock() + timedelta(days=3)
    await announce(runtime, effective)
    await within(
        runtime,
        lambda uow: move_release(uow, MODEL, "1.0", Move.DECOMMISSION, target=None, actor="op"),
    )
    at(runtime, effective)
    results = await asyncio.gather(*(service.execute_due(runtime) for _ in range(2)))
    assert sorted(results) == [0, 1]
    assert await count(runtime, StageChange, StageChange.move == "decommission") == 1
    async with runtime.sessionmaker() as session:
        grant = await session.get(Grant, alice.grant_id)
        row = await session.get(Decommission, (await release_row(runtime)).id)
    assert grant is not None
    assert grant.status == "expired"
    assert row is not None
    assert row.executed_at == effective
    assert await count(runtime, Closeout) == 1


async def publish_sharing(rt: Runtime, tmp_path: Path) -> dict[str, dict[str, str]]:
    """Publish 1.0 and 1.1, which share README.md's bytes; the SHA-256 of each file."""
    shared = os.urandom(5_000)
    digests: dict[str, dict[str, str]] = {}
    for version in ("1.0", "1.1"):
        folder = make_folder(
            tmp_path / f"src-{version}",
            {
                "model.safetensors": os.urandom(20_000),
                "config.json": os.urandom(100),
                "README.md": shared,
            },
        )
        await within(
            rt,
            lambda uow, version=version, folder=folder: publish_release(
                uow,
                PublishRequest(
                    model=MODEL, version=version, folder=folder, license_file=make_license(tmp_path)
                ),
                actor="t",
            ),
        )
        async with rt.sessionmaker() as session:
            release = await session.scalar(
                select(Release)
                .where(Release.version == version)
                .options(selectinload(Release.artifacts))
            )
        assert release is not None
        digests[version] = {a.path: a.sha256 for a in release.artifacts}
    assert digests["1.0"]["README.md"] == digests["1.1"]["README.md"]
    return digests


async def test_purge_waits_for_the_retention_and_keeps_shared_objects(
    runtime: Runtime, tmp_path: Path
) -> None:
    digests = await publish_sharing(runtime, tmp_path)
    start = runtime.clock()
    effective = start + timedelta(days=5)
    await announce(runtime, effective)
    with pytest.raises(Conflict, match="still hosted until") as hosted:
        await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.0", actor="op"))
    assert hosted.value.code == "not_decommissioned"
    with pytest.raises(Conflict, match="no decommission"):
        await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.1", actor="op"))

    at(runtime, effective)
    assert await service.execute_due(runtime) == 1
    purge_at = effective + timedelta(days=90)
    with pytest.raises(Conflict, match=f"purged from {purge_at:%Y-%m-%d %H:%M} UTC") as early:
        await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.0", actor="op"))
    assert early.value.code == "retention_period"
    assert all(runtime.storage.exists(d) for d in digests["1.0"].values())

    at(runtime, purge_at)
    plan = await within(runtime, lambda uow: purging.plan_purge(uow, MODEL, "1.0"))
    assert set(plan.delete) == {
        digests["1.0"]["model.safetensors"],
        digests["1.0"]["config.json"],
    }
    assert plan.kept == 1
    purged = await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.0", actor="op"))
    assert (purged.deleted, purged.kept, purged.deleted_bytes) == (2, 1, 20_100)
    assert not runtime.storage.exists(digests["1.0"]["model.safetensors"])
    assert not runtime.storage.exists(digests["1.0"]["config.json"])
    assert all(runtime.storage.exists(d) for d in digests["1.1"].values())
    (recorded,) = await evidence_of(runtime, "release.purged")
    assert recorded.actor == "op"
    assert recorded.data == {"objects_deleted": 2, "bytes_deleted": 20_100, "objects_kept": 1}
    with pytest.raises(Conflict, match="already purged"):
        await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.0", actor="op"))

    # Once 1.0 is purged, nothing holds the shared object but 1.1 itself.
    await announce(runtime, purge_at + timedelta(days=1), version="1.1")
    at(runtime, purge_at + timedelta(days=200))
    assert await service.execute_due(runtime) == 1
    purged = await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.1", actor="op"))
    assert (purged.deleted, purged.kept) == (3, 0)
    assert not runtime.storage.exists(digests["1.1"]["README.md"])


async def test_purge_that_failed_half_way_can_run_again(runtime: Runtime, tmp_path: Path) -> None:
    digests = await publish_sharing(runtime, tmp_path)
    effective = runtime.clock() + timedelta(days=1)
    await announce(runtime, effective)
    at(runtime, effective + timedelta(days=91))
    await service.execute_due(runtime)
    # As if a purge had deleted one object and then lost the storage.
    runtime.storage.delete(digests["1.0"]["config.json"])
    purged = await within(runtime, lambda uow: purging.purge(uow, MODEL, "1.0", actor="op"))
    assert purged.deleted == 2  # deleting an absent object is not an error
    assert not runtime.storage.exists(digests["1.0"]["model.safetensors"])
    assert runtime.storage.exists(digests["1.0"]["README.md"])
    assert await count(runtime, Decommission, Decommission.purged_at == runtime.clock()) == 1
