"""Writing and reading evidence on every backend: a payload names its kind and its data,
the older form still writes for callers not yet moved over, and rows written under older
names are found and read as today's kinds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from gateway import evidence
from gateway.db.models import Evidence
from gateway.runtime import Runtime, cli_actor
from stages import evidence as ev
from tests.units import writing

pytestmark = pytest.mark.anyio
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def rows(rt: Runtime, *where: object) -> list[Evidence]:
    async with rt.sessionmaker() as session:
        found = await session.scalars(select(Evidence).where(*where).order_by(Evidence.id))  # type: ignore[arg-type]
        return list(found.all())


async def test_a_payload_writes_its_kind_its_data_and_its_actor(runtime: Runtime) -> None:
    async with writing(runtime) as session:
        evidence.record(
            session,
            ev.GrantRenewed(grant="g1", expires_at=AT, application="a1"),
            actor=ev.Actor.account("acc1"),
            at=AT,
        )
    [row] = await rows(runtime)
    assert row.kind == "grant.renewed"
    assert row.data == {"grant": "g1", "expires_at": AT.isoformat(), "application": "a1"}
    assert row.actor == "account:acc1"
    assert evidence.actor_of(row) == ev.Actor.account("acc1")
    assert evidence.kind_of(row) is ev.EvidenceKind.GRANT_RENEWED


async def test_rows_under_older_names_are_found_and_read_as_todays_kinds(
    runtime: Runtime,
) -> None:
    # Written as an older version did, straight into the table.
    async with runtime.engine.begin() as connection:
        for kind, actor in (
            ("grant.expire", "system:scheduler"),
            ("application.approve", "system"),
            ("account.lift", "op:ann"),
        ):
            await connection.execute(
                text(
                    "INSERT INTO evidence (at, kind, actor, data) VALUES (:at, :kind, :actor, '{}')"
                ),
                {"at": AT, "kind": kind, "actor": actor},
            )
    async with writing(runtime) as session:
        evidence.record(session, ev.GrantExpired(grant="g2"), actor=ev.SCHEDULER, at=AT)
    expired = await rows(runtime, evidence.of_kind(ev.EvidenceKind.GRANT_EXPIRED))
    assert [row.kind for row in expired] == ["grant.expire", "grant.expired"]
    assert {evidence.kind_of(row) for row in expired} == {ev.EvidenceKind.GRANT_EXPIRED}
    [approved] = await rows(runtime, evidence.of_kind(ev.EvidenceKind.APPLICATION_APPROVED))
    assert evidence.actor_of(approved) == ev.GATEWAY
    [lifted] = await rows(runtime, evidence.of_kind(ev.EvidenceKind.ACCOUNT_SUSPENSION_LIFTED))
    assert evidence.actor_of(lifted).kind is ev.ActorKind.OTHER
    assert str(evidence.actor_of(lifted)) == "op:ann"
    # A filter on a kind never matches another kind's rows, old or new.
    assert await rows(runtime, evidence.of_kind(ev.EvidenceKind.GRANT_REVOKED)) == []


def test_an_operator_command_acts_as_the_local_user() -> None:
    actor = cli_actor()
    assert isinstance(actor, ev.Actor)
    assert actor.kind is ev.ActorKind.OPERATOR_CLI
    assert str(actor).startswith("cli:")
    assert "@" in actor.id
    assert ev.Actor.parse(str(actor)) == actor
