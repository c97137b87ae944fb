"""The evidence attached to a release, as operators read it back: every attachment, and
the document of one, streamed from storage. Attaching is `promotion.attach_evidence`.

An attachment is looked up within its release, so an id of another release's evidence
is not found. The document is read in chunks in a worker thread (storage calls block),
after the request's unit has ended: a slow reader holds no database connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from gateway.catalog.repository import release_by_ref
from gateway.errors import NotFound, StorageUnavailable
from gateway.staging.repository import attachment_of, attachments
from gateway.storage import ObjectNotFound, StorageError

if TYPE_CHECKING:
    from gateway.db.models import EvidenceAttachment
    from gateway.db.uow import UnitOfWork
    from stages.names import ModelRef

logger = logging.getLogger("gateway.staging")

CHUNK = 1 << 20


async def list_evidence(uow: UnitOfWork, model: ModelRef, version: str) -> list[EvidenceAttachment]:
    """Every attachment of the release, oldest first."""
    release = await release_by_ref(uow.session, model, version)
    return await attachments(uow.session, release.id)


@dataclass(frozen=True)
class EvidenceDocument:
    """The file of one attachment: its name, hash and size, and its bytes as they are read."""

    name: str
    sha256: str
    size: int
    chunks: AsyncIterator[bytes]


async def evidence_document(
    uow: UnitOfWork, model: ModelRef, version: str, attachment_id: str
) -> EvidenceDocument:
    """The document attached as `attachment_id` to the release, opened for reading."""
    release = await release_by_ref(uow.session, model, version)
    ref = f"{model}:{version}"
    row = await attachment_of(uow.session, release.id, attachment_id)
    if row is None:
        raise NotFound(f"no evidence {attachment_id} on {ref}", code="evidence_not_found")
    if row.file_sha256 is None or row.file_name is None:
        raise NotFound(
            f"the evidence {row.kind}/{row.name} on {ref} has no attached file",
            code="evidence_file_none",
        )
    try:
        stream = await asyncio.to_thread(uow.rt.storage.open_read, row.file_sha256)
    except ObjectNotFound:
        raise NotFound(
            f"the file of {row.kind}/{row.name} on {ref} is no longer stored",
            code="evidence_file_gone",
        ) from None
    except StorageError as exc:
        raise StorageUnavailable(f"reading {row.file_name}: {exc}") from exc
    return EvidenceDocument(row.file_name, row.file_sha256, row.file_size or 0, _chunks(stream))


async def _chunks(stream: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            yield chunk
    except (OSError, StorageError):
        # The answer has begun: all that is left is to end it short, which the client sees.
        logger.exception("reading an evidence document failed midway")
    finally:
        await asyncio.to_thread(stream.close)
