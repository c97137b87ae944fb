"""The evidence log on SQLite and PostgreSQL: rows are sealed in gap-free order, a row
committed late is sealed late and never skipped, checkpoints and proofs verify with the
reference verifier, and a row changed, deleted or moved directly in the database (its
guard dropped, as a superuser would) is named by the verifier."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Executable, delete, select, text, update
from sqlalchemy.exc import DBAPIError

from gateway import evidence
from gateway.db.models import Evidence, EvidenceLeaf, EvidenceNode
from gateway.db.uow import unit_of_work
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.evidence_log import reference_verify as reference
from gateway.evidence_log import service
from gateway.runtime import Runtime
from stages import evidence as ev
from tests.accounts import create_account
from tests.backends import on_each_database
from tests.units import writing

pytestmark = [pytest.mark.anyio, on_each_database()]
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def add(rt: Runtime, count: int, *, start: int = 0) -> None:
    async with writing(rt) as session:
        for n in range(start, start + count):
            evidence.record(
                session,
                ev.GrantRenewed(grant=f"g{n}", expires_at=AT, application=f"a{n}"),
                actor=ev.Actor.account("acc1"),
                at=AT,
                account_id=None,
            )


async def seal(rt: Runtime) -> service.Sealed:
    rt.key_encryptor.create_if_missing()
    async with unit_of_work(rt) as uow:
        return await service.seal(uow)


async def exported(rt: Runtime) -> tuple[list[bytes], service.Checkpoint, str]:
    stream = io.BytesIO()
    async with unit_of_work(rt) as uow:
        done = await service.write_export(uow, stream, since=None)
    return stream.getvalue().splitlines(keepends=True), done.checkpoint, done.public_key


async def verify(rt: Runtime, tmp_path: Path) -> reference.Report:
    lines, checkpoint, key = await exported(rt)
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b"".join(lines))
    return reference.verify_export_file(
        path,
        [reference.parse_checkpoint(checkpoint.note)],
        reference.parse_verifier_key(key),
    )


async def tamper(rt: Runtime, *statements: Executable) -> None:
    """Run statements with the append-only guards of evidence and leaves out of the way."""
    async with rt.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            for trigger in (
                "evidence_no_update",
                "evidence_no_delete",
                "evidence_leaves_no_update",
                "evidence_leaves_no_delete",
            ):
                await connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        else:
            await connection.execute(text("ALTER TABLE evidence DISABLE TRIGGER USER"))
            await connection.execute(text("ALTER TABLE evidence_leaves DISABLE TRIGGER USER"))
        for statement in statements:
            await connection.execute(statement)


def move(index: int, to: int) -> Executable:
    return update(EvidenceLeaf).where(EvidenceLeaf.leaf_index == index).values(leaf_index=to)


async def leaf_ids(rt: Runtime) -> list[tuple[int, int]]:
    async with rt.sessionmaker() as session:
        rows = await session.execute(
            select(EvidenceLeaf.leaf_index, EvidenceLeaf.evidence_id).order_by(
                EvidenceLeaf.leaf_index
            )
        )
        return [(index, evidence_id) for index, evidence_id in rows]


async def test_the_first_seal_signs_the_empty_log_and_an_idle_one_signs_nothing(
    runtime: Runtime,
) -> None:
    first = await seal(runtime)
    assert (first.sealed, first.size, first.signed) == (0, 0, True)
    assert first.root.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    again = await seal(runtime)
    assert (again.sealed, again.size, again.signed) == (0, 0, False)
    async with unit_of_work(runtime) as uow:
        history = await service.checkpoint_history(uow)
        key = reference.parse_verifier_key(await service.public_key(uow))
    assert [c.size for c in history] == [0]
    checkpoint = reference.parse_checkpoint(history[0].note)
    reference.verify_checkpoint(checkpoint, key)
    assert checkpoint.origin == "testserver/evidence"


async def test_rows_are_sealed_in_order_and_every_proof_verifies(
    runtime: Runtime, tmp_path: Path
) -> None:
    await seal(runtime)
    sizes = []
    for batch in range(3):
        await add(runtime, 5 + batch, start=batch * 10)
        sizes.append((await seal(runtime)).size)
    assert sizes == [5, 11, 18]
    ids = await leaf_ids(runtime)
    assert [index for index, _ in ids] == list(range(18))
    assert [evidence_id for _, evidence_id in ids] == sorted(e for _, e in ids)

    report = await verify(runtime, tmp_path)
    assert (report.first_leaf, report.end) == (0, 18)
    lines, checkpoint, _ = await exported(runtime)
    leaf_hashes = [bytes.fromhex(json.loads(line)["leaf_hash"]) for line in lines]
    assert reference.root_of(leaf_hashes) == checkpoint.root
    assert [json.loads(line)["entry"]["index"] for line in lines] == list(range(18))

    async with unit_of_work(runtime) as uow:
        for size in (5, 11, 18):
            for index in range(size):
                proof = await service.inclusion(uow, index, size=size, account_id=None)
                assert proof.leaf_hash == leaf_hashes[index]
                assert proof.root == reference.root_of(leaf_hashes[:size])
                assert reference.verify_inclusion(
                    index, size, reference.leaf_hash(proof.entry), proof.proof, proof.root
                )
                assert proof.checkpoint is not None
                assert reference.parse_checkpoint(proof.checkpoint).size == size
        for old in range(19):
            for new in range(old, 19):
                shown = await service.consistency(uow, old, new)
                assert reference.verify_consistency(
                    old, new, shown.old_root, shown.new_root, shown.proof
                ), (old, new)


async def test_a_grantee_finds_proofs_of_their_own_events_only(runtime: Runtime) -> None:
    account = await create_account(runtime, "grantee@example.org", operator=False, actor="system")
    await add(runtime, 2)
    async with writing(runtime) as session:
        evidence.record(
            session,
            ev.GrantRenewed(grant="g", expires_at=AT, application="a"),
            actor=ev.Actor.account(account.id),
            at=AT,
            account_id=account.id,
        )
        # About the account, written by an operator: what only operators see.
        evidence.record(
            session,
            ev.GrantRenewed(grant="g", expires_at=AT, application="b"),
            actor=ev.Actor.parse("cli:ops@bastion.internal"),
            at=AT,
            account_id=account.id,
        )
    size = (await seal(runtime)).size
    lines, _, _ = await exported(runtime)
    entries = [json.loads(line)["entry"] for line in lines]
    theirs = [i for i, entry in enumerate(entries) if entry["actor"] == f"account:{account.id}"]
    about = [i for i, entry in enumerate(entries) if entry["account_id"] == account.id]
    # Created by the system, renewed by themselves, renewed by an operator: one is theirs.
    assert (len(theirs), len(about)) == (1, 3)
    async with unit_of_work(runtime) as uow:
        for index in theirs:
            proof = await service.inclusion(uow, index, size=None, account_id=account.id)
            assert proof.index == index
        for index in sorted(set(range(size)) - set(theirs)):
            with pytest.raises(NotFound) as refused:
                await service.inclusion(uow, index, size=None, account_id=account.id)
            assert refused.value.message == f"no leaf {index} among your events in a log of {size}"


async def test_sizes_past_the_latest_checkpoint_are_refused(runtime: Runtime) -> None:
    await add(runtime, 3)
    await seal(runtime)
    async with unit_of_work(runtime) as uow:
        with pytest.raises(
            InvalidInput, match="size 4 is not a size of the log: the latest checkpoint has 3"
        ):
            await service.inclusion(uow, 0, size=4, account_id=None)
        with pytest.raises(NotFound, match="no leaf 3 in a log of 3"):
            await service.inclusion(uow, 3, size=None, account_id=None)
        with pytest.raises(InvalidInput, match="from must be from 0 to 2, not 3"):
            await service.consistency(uow, 3, 2)


async def test_a_row_committed_late_is_sealed_late_and_never_skipped(runtime: Runtime) -> None:
    await seal(runtime)
    if runtime.settings.is_sqlite:
        # One writer at a time: a sealer waits for the slow transaction to end.
        await add(runtime, 1)
        assert (await seal(runtime)).sealed == 1
        return
    slow = await runtime.engine.connect()
    await slow.begin()
    await slow.execute(
        text(
            "INSERT INTO evidence (at, kind, actor, data) "
            "VALUES (now(), 'grant.renewed', 'system', '{\"slow\": true}')"
        )
    )
    await add(runtime, 2)
    first = await seal(runtime)
    assert (first.sealed, first.size) == (2, 2)
    await slow.commit()
    await slow.close()
    second = await seal(runtime)
    assert (second.sealed, second.size) == (1, 3)
    ids = await leaf_ids(runtime)
    assert [index for index, _ in ids] == [0, 1, 2]
    # The slow row took its id first and its leaf last.
    assert sorted(ids, key=lambda leaf: leaf[1]) == [ids[2], ids[0], ids[1]]


async def test_the_verifier_names_a_row_changed_in_the_database(
    runtime: Runtime, tmp_path: Path
) -> None:
    await add(runtime, 6)
    await seal(runtime)
    ids = await leaf_ids(runtime)
    changed = ids[3][1]
    await tamper(
        runtime,
        update(Evidence).where(Evidence.id == changed).values(actor="system"),
    )
    with pytest.raises(reference.EvidenceMismatch) as refused:
        await verify(runtime, tmp_path)
    assert str(refused.value).startswith(
        f"leaf 3 (evidence {changed}, grant.renewed at {AT.isoformat()}) does not match"
    )


async def test_the_verifier_names_a_row_deleted_from_the_database(
    runtime: Runtime, tmp_path: Path
) -> None:
    await add(runtime, 6)
    await seal(runtime)
    ids = await leaf_ids(runtime)
    await tamper(
        runtime,
        delete(EvidenceLeaf).where(EvidenceLeaf.leaf_index == 2),
        delete(Evidence).where(Evidence.id == ids[2][1]),
    )
    with pytest.raises(reference.VerificationError) as refused:
        await verify(runtime, tmp_path)
    assert "leaf 2 is missing" in str(refused.value)


async def test_the_verifier_names_rows_swapped_in_the_database(
    runtime: Runtime, tmp_path: Path
) -> None:
    await add(runtime, 6)
    await seal(runtime)
    await tamper(
        runtime,
        move(1, 100),
        move(4, 1),
        move(100, 4),
    )
    with pytest.raises(reference.EvidenceMismatch) as refused:
        await verify(runtime, tmp_path)
    assert str(refused.value).startswith("leaf 1 (evidence ")


async def test_personal_fields_are_in_the_log_only_as_a_salted_hash(
    runtime: Runtime, tmp_path: Path
) -> None:
    async with writing(runtime) as session:
        evidence.record(
            session,
            ev.AccountSignUpAttempted(client_address="192.0.2.44"),
            actor=ev.Actor.parse("anonymous"),
            at=AT,
        )
    await seal(runtime)
    lines, _, _ = await exported(runtime)
    [line] = lines
    assert b"192.0.2.44" not in line
    entry = json.loads(line)["entry"]
    assert entry["data"] == {}
    assert len(entry["personal"]) == 64
    [(_, row_id)] = await leaf_ids(runtime)

    # Changed, the address no longer matches the hash the leaf holds.
    await tamper(
        runtime,
        update(Evidence)
        .where(Evidence.id == row_id)
        .values(data={"client_address": "198.51.100.1"}),
    )
    with pytest.raises(reference.EvidenceMismatch):
        await verify(runtime, tmp_path)


async def test_personal_fields_past_the_policys_period_are_erased_and_the_log_verifies(
    runtime: Runtime, tmp_path: Path
) -> None:
    now = runtime.clock()
    old, recent = now - timedelta(days=366), now - timedelta(days=364)
    async with writing(runtime) as session:
        for at, address in ((old, "192.0.2.1"), (recent, "192.0.2.2")):
            evidence.record(
                session,
                ev.AccountSignUpAttempted(client_address=address),
                actor=ev.Actor.parse("anonymous"),
                at=at,
            )
    await seal(runtime)
    async with unit_of_work(runtime) as uow:
        assert await service.erase_personal_data(uow) == 1
    async with unit_of_work(runtime) as uow:
        assert await service.erase_personal_data(uow) == 0
    async with runtime.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Evidence.at, Evidence.kind, Evidence.data).order_by(Evidence.id)
            )
        ).all()
        salts = (
            await session.scalars(
                select(EvidenceLeaf.personal_salt).order_by(EvidenceLeaf.leaf_index)
            )
        ).all()
    assert [(kind, data) for _, kind, data in rows] == [
        ("account.sign_up_attempted", {"client_address": None}),
        ("account.sign_up_attempted", {"client_address": "192.0.2.2"}),
        (
            "personal_data.erased",
            {"rows": 1, "before": (rows[2].at - timedelta(days=365)).isoformat()},
        ),
    ]
    assert [salt is None for salt in salts] == [True, False]
    await seal(runtime)
    report = await verify(runtime, tmp_path)
    assert report.end == 3


async def test_the_database_lets_personal_fields_be_erased_and_nothing_else_changed(
    runtime: Runtime,
) -> None:
    async with writing(runtime) as session:
        evidence.record(
            session,
            ev.AccountSignedUp(email="a@example.org", client_address="192.0.2.1"),
            actor=ev.Actor.parse("anonymous"),
            at=AT,
        )
    refused = [
        {"email": "b@example.org", "client_address": None, "method": "password"},
        {"email": None, "client_address": None, "method": "oidc"},
        {"email": None, "client_address": None},
    ]
    for data in refused:
        with pytest.raises(DBAPIError, match="append-only"):
            async with runtime.engine.begin() as connection:
                await connection.execute(update(Evidence).values(data=data))
    with pytest.raises(DBAPIError, match="append-only"):
        async with runtime.engine.begin() as connection:
            await connection.execute(update(Evidence).values(actor="system"))
    erased = {"email": None, "client_address": None, "method": "password"}
    async with runtime.engine.begin() as connection:
        await connection.execute(update(Evidence).values(data=erased))
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(Evidence.data))).all() == [erased]


async def test_a_salt_may_be_erased_and_never_rewritten(runtime: Runtime) -> None:
    async with writing(runtime) as session:
        evidence.record(
            session,
            ev.AccountSignUpAttempted(client_address="192.0.2.9"),
            actor=ev.Actor.parse("anonymous"),
            at=AT,
        )
    await seal(runtime)
    with pytest.raises(DBAPIError, match="append-only"):
        async with runtime.engine.begin() as connection:
            await connection.execute(update(EvidenceLeaf).values(personal_salt=b"\x00" * 16))
    async with runtime.engine.begin() as connection:
        await connection.execute(update(EvidenceLeaf).values(personal_salt=None))


async def test_sealing_stops_rather_than_sign_over_a_changed_tree(runtime: Runtime) -> None:
    await add(runtime, 2)
    await seal(runtime)
    async with runtime.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.execute(text("DROP TRIGGER evidence_nodes_no_update"))
        else:
            await connection.execute(text("ALTER TABLE evidence_nodes DISABLE TRIGGER USER"))
        await connection.execute(update(EvidenceNode).values(hash=b"\x11" * 32))
    await add(runtime, 1, start=5)
    with pytest.raises(Conflict, match="the stored tree of 2 leaves does not match the latest"):
        await seal(runtime)
    async with unit_of_work(runtime) as uow:
        assert [c.size for c in await service.checkpoint_history(uow)] == [2]


async def test_a_row_that_is_not_valid_unicode_still_seals_and_verifies(
    runtime: Runtime, tmp_path: Path
) -> None:
    async with writing(runtime) as session:
        evidence.record(
            session,
            ev.GrantRenewed(grant="g\ud800", expires_at=AT, application="a"),
            actor=ev.Actor.account("acc1"),
            at=AT,
        )
    assert (await seal(runtime)).size == 1
    assert (await verify(runtime, tmp_path)).end == 1
