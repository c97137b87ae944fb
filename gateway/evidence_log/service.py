"""The evidence log: sealing rows into the tree, signing checkpoints, proofs, export.

Sealing runs as the `evidence.seal` job (once across replicas: the job's lock), in its
unit's write phase. It takes queued rows oldest first, gives each the next leaf position,
stores the leaf and every subtree it completes, and signs a checkpoint when the tree
grew. The first run makes the log's Ed25519 key, sealed with the key-encryption key.
Everything else here only reads.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import evidence
from gateway.credentials.key_encryption import KeyEncryptor
from gateway.credentials.url_tokens import prepare_keys
from gateway.db.models import EvidenceCheckpoint, EvidenceLogKey
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.evidence_log import checkpoints as notes
from gateway.evidence_log import repository
from gateway.evidence_log.entries import (
    PERSONAL,
    SALT_BYTES,
    canonical,
    entry,
    export_line,
    personal_hash,
    split_personal,
)
from gateway.evidence_log.tree import (
    Appender,
    consistency_ranges,
    hashes_of,
    inclusion_ranges,
    leaf_hash,
    needed,
    range_hash,
    subtrees,
)
from stages import evidence as ev

# Rows read and written per round, and at most per run: a run is one write transaction.
# On SQLite that transaction holds the one write lock, so a run there stays short (about
# a second); PostgreSQL's writers never wait for it, so a run there can take a backlog
# (rows from before the log, a burst) at the rate sealing goes (BENCHMARKS.md).
BATCH: Final = 5_000
MAX_PER_RUN: Final = 200_000
MAX_PER_RUN_SQLITE: Final = 20_000
EXPORT_BATCH: Final = 2_000


@dataclass(frozen=True)
class Sealed:
    sealed: int
    size: int
    root: bytes
    signed: bool


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    signed_at: datetime
    note: str


@dataclass(frozen=True)
class Inclusion:
    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]
    entry: bytes
    checkpoint: str | None


@dataclass(frozen=True)
class Consistency:
    old: int
    new: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


def _entry_of(index: int, row: Any, personal: bytes | None) -> bytes:
    kept, _ = split_personal(row.data or {})
    return entry(
        index=index,
        evidence_id=row.id,
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        model_id=row.model_id,
        release_id=row.release_id,
        account_id=row.account_id,
        data=kept,
        personal=personal,
    )


async def signing_key(uow: UnitOfWork) -> tuple[str, Ed25519PrivateKey]:
    session = await uow.write()
    rt = uow.rt
    row = await repository.log_key(session)
    if row is None:
        # What every start does: the key-encryption key exists and opens the URL keys.
        await prepare_keys(session, rt.key_encryptor, rt.clock())
        name = notes.key_name_for(rt.settings.public_url)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        row = EvidenceLogKey(
            key_name=name,
            public_key=private.public_key().public_bytes_raw(),
            sealed_private_key=rt.key_encryptor.seal(pem, kid=name),
            created_at=rt.clock(),
        )
        repository.add_log_key(session, row)
        return name, private
    opened = serialization.load_pem_private_key(
        rt.key_encryptor.open(row.sealed_private_key, kid=row.key_name), None
    )
    assert isinstance(opened, Ed25519PrivateKey)
    return row.key_name, opened


async def seal(uow: UnitOfWork, *, limit: int | None = None) -> Sealed:
    """Seal up to `limit` queued rows (default: the backend's limit a run) and sign a
    checkpoint if the tree grew (or has none)."""
    if limit is None:
        limit = MAX_PER_RUN_SQLITE if uow.rt.settings.is_sqlite else MAX_PER_RUN
    session = await uow.write()
    size = await repository.tree_size(session)
    appender = Appender.over(size, await repository.nodes(session, subtrees(0, size)))
    latest = await repository.latest_checkpoint(session)
    if latest is not None and (latest.tree_size, bytes(latest.root_hash)) != (size, appender.root):
        # Never sign over a changed tree: every later checkpoint would carry the change.
        raise Conflict(
            f"the stored tree of {size} leaves does not match the latest checkpoint "
            f"({latest.tree_size} leaves): its leaves or nodes were changed; sealing stops "
            "until they are restored (gateway audit verify names what differs)",
            code="evidence_log_changed",
        )
    sealed = 0
    while sealed < limit:
        rows = await repository.unsealed(session, min(BATCH, limit - sealed))
        if not rows:
            break
        leaves: list[dict[str, Any]] = []
        completed: list[dict[str, Any]] = []
        for row in rows:
            index = appender.size
            _, personal = split_personal(row.data or {})
            salt = secrets.token_bytes(SALT_BYTES) if personal else None
            hidden = personal_hash(personal, salt) if salt is not None else None
            hashed = leaf_hash(_entry_of(index, row, hidden))
            completed.extend(
                {"level": level, "position": position, "hash": node}
                for level, position, node in appender.append(hashed)
            )
            leaves.append(
                {
                    "leaf_index": index,
                    "evidence_id": row.id,
                    "leaf_hash": hashed,
                    "personal_sha256": hidden,
                    "personal_salt": salt,
                }
            )
        await repository.add_sealed(session, leaves, completed)
        sealed += len(rows)
    signed = latest is None or latest.tree_size != appender.size
    if signed:
        now = uow.rt.clock()
        name, private = await signing_key(uow)
        text = notes.body(name, appender.size, appender.root, now)
        repository.add_checkpoint(
            session,
            EvidenceCheckpoint(
                tree_size=appender.size,
                root_hash=appender.root,
                signed_at=now,
                note=notes.sign(private, name, text),
            ),
        )
    return Sealed(sealed=sealed, size=appender.size, root=appender.root, signed=signed)


async def reseal_log_key(session: AsyncSession, encryptor: KeyEncryptor) -> int:
    """Seal the log's key with `encryptor`'s current key-encryption key (1 if it changed).
    It is opened first, so a wrong key-encryption key stops here, naming it."""
    row = await repository.log_key(session)
    if row is None or encryptor.is_current(row.sealed_private_key):
        if row is not None:
            encryptor.open(row.sealed_private_key, kid=row.key_name)
        return 0
    pem = encryptor.open(row.sealed_private_key, kid=row.key_name)
    row.sealed_private_key = encryptor.seal(pem, kid=row.key_name)
    return 1


async def erase_personal_data(uow: UnitOfWork, *, limit: int = MAX_PER_RUN_SQLITE) -> int:
    """Erase the personal fields of sealed evidence older than the policy's period (up to
    `limit` rows a run), with their leaves' salts; records how many. The log still
    verifies: its leaves commit to the fields' salted hash, which stays."""
    rt = uow.rt
    now = rt.clock()
    before = now - timedelta(days=rt.policy.evidence.personal_data_days)
    session = await uow.write()
    rows = await repository.with_personal_before(session, before, limit)
    if not rows:
        return 0
    erased = [
        (row.leaf_index, row.id, {k: None if k in PERSONAL else v for k, v in row.data.items()})
        for row in rows
    ]
    await repository.erase_personal(session, erased)
    evidence.record(
        session,
        ev.PersonalDataErased(rows=len(erased), before=before),
        actor=ev.SCHEDULER,
        at=now,
    )
    return len(erased)


def _checkpoint(row: EvidenceCheckpoint) -> Checkpoint:
    return Checkpoint(
        size=row.tree_size, root=bytes(row.root_hash), signed_at=row.signed_at, note=row.note
    )


async def latest_checkpoint(uow: UnitOfWork) -> Checkpoint:
    row = await repository.latest_checkpoint(uow.session)
    if row is None:
        raise NotFound(
            "the evidence log has no checkpoint yet: the first is signed by the "
            "evidence.seal job (or `gateway audit seal`)",
            code="no_checkpoint",
        )
    return _checkpoint(row)


async def checkpoint_history(
    uow: UnitOfWork, *, below: int | None = None, limit: int = 100
) -> list[Checkpoint]:
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be from 1 to 1000, not {limit}", code="bad_limit")
    rows = await repository.checkpoints(uow.session, below=below, limit=limit)
    return [_checkpoint(row) for row in rows]


async def sealing_lag(uow: UnitOfWork) -> timedelta:
    """How long the oldest evidence row not yet sealed has waited (zero when none waits):
    what the `evidence.seal` job has still to catch up on."""
    oldest = await repository.oldest_unsealed_at(uow.session)
    if oldest is None:
        return timedelta(0)
    # A row stamped by a clock slightly ahead of this one has not waited at all.
    return max(uow.rt.clock() - oldest, timedelta(0))


async def public_key(uow: UnitOfWork) -> str:
    """The verifier key of the log, in the signed-note form."""
    row = await repository.log_key(uow.session)
    if row is None:
        raise NotFound(
            "the evidence log has no key yet: it is made when the first checkpoint is signed",
            code="no_checkpoint",
        )
    return notes.verifier_key(row.key_name, bytes(row.public_key))


async def _size(uow: UnitOfWork, size: int | None, what: str) -> int:
    latest = await latest_checkpoint(uow)
    if size is None:
        return latest.size
    if not 0 <= size <= latest.size:
        raise InvalidInput(
            f"{what} {size} is not a size of the log: the latest checkpoint has {latest.size}",
            code="bad_size",
        )
    return size


async def inclusion(
    uow: UnitOfWork, index: int, *, size: int | None, account_id: str | None
) -> Inclusion:
    """The inclusion proof of leaf `index` in the tree of `size` leaves (the latest
    checkpoint's when None). `account_id` None: an operator, who may see any leaf;
    otherwise only leaves of what that account did itself are found."""
    size = await _size(uow, size, "size")
    found = await repository.leaf(uow.session, index) if 0 <= index < size else None
    if found is None or (
        account_id is not None and _actor(found[1]) != ev.Actor.account(account_id)
    ):
        mine = "" if account_id is None else " among your events"
        raise NotFound(f"no leaf {index}{mine} in a log of {size}", code="no_leaf")
    stored, row = found
    ranges = inclusion_ranges(index, size)
    nodes = await repository.nodes(uow.session, needed([*ranges, (0, size)]))
    personal = None if stored.personal_sha256 is None else bytes(stored.personal_sha256)
    noted = await repository.checkpoint(uow.session, size)
    return Inclusion(
        index=index,
        size=size,
        leaf_hash=bytes(stored.leaf_hash),
        root=range_hash(0, size, nodes),
        proof=hashes_of(ranges, nodes),
        entry=_entry_of(index, row, personal) if row is not None else b"",
        checkpoint=noted.note if noted is not None else None,
    )


def _actor(row: Any) -> str | None:
    # An account's own events are the ones it did: rows an operator or the gateway wrote
    # about it (a warning, a link to an incident) hold what only operators see.
    return None if row is None else row.actor


async def consistency(uow: UnitOfWork, old: int, new: int | None) -> Consistency:
    new = await _size(uow, new, "to")
    if not 0 <= old <= new:
        raise InvalidInput(f"from must be from 0 to {new}, not {old}", code="bad_size")
    ranges = consistency_ranges(old, new)
    nodes = await repository.nodes(uow.session, needed([*ranges, (0, old), (0, new)]))
    return Consistency(
        old=old,
        new=new,
        old_root=range_hash(0, old, nodes),
        new_root=range_hash(0, new, nodes),
        proof=hashes_of(ranges, nodes),
    )


async def export(
    uow: UnitOfWork, checkpoint: Checkpoint, *, since: datetime | None = None
) -> AsyncIterator[bytes]:
    """The lines of `gateway audit export`: every leaf up to `checkpoint` (from the first
    row of `since` on, after a line with the hashes of the leaves before it), each rebuilt
    from its row as it is now."""
    end = checkpoint.size
    start = 0
    if since is not None:
        first = await repository.first_leaf_since(uow.session, since)
        start = end if first is None else min(first, end)
    if start:
        prefix = subtrees(0, start)
        nodes = await repository.nodes(uow.session, prefix)
        yield (
            canonical({"prefix": {"size": start, "subtrees": [nodes[c].hex() for c in prefix]}})
            + b"\n"
        )
    async for row in repository.leaves_from(uow.session, start, end, batch=EXPORT_BATCH):
        yield export_line(_rebuilt(row), bytes(row.leaf_hash))


@dataclass(frozen=True)
class Exported:
    lines: int
    checkpoint: Checkpoint
    public_key: str


async def write_export(uow: UnitOfWork, stream: BinaryIO, *, since: datetime | None) -> Exported:
    """Write the export up to the latest checkpoint to `stream`; that checkpoint and the
    key that signed it, for checking the export against."""
    checkpoint = await latest_checkpoint(uow)
    key = await public_key(uow)
    lines = 0
    async for line in export(uow, checkpoint, since=since):
        stream.write(line)
        lines += 1
    return Exported(lines=lines, checkpoint=checkpoint, public_key=key)


def _rebuilt(row: Any) -> bytes:
    """A leaf's entry from its row as the row is now (what a changed row no longer matches)."""
    if row.id is None:
        return canonical({"index": row.leaf_index, "id": row.evidence_id, "missing": True})
    _, personal = split_personal(row.data or {})
    hidden: bytes | None
    if personal and row.personal_salt is not None:
        hidden = personal_hash(personal, bytes(row.personal_salt))
    else:
        hidden = None if row.personal_sha256 is None else bytes(row.personal_sha256)
    return _entry_of(row.leaf_index, row, hidden)
