"""Publish a release: store every file once (hashing while it streams), sign the manifest
built from those digests, then record the release in the unit of work's one write phase.

All-or-nothing: objects are content-addressed and invisible until a release row names
them, and the release, its artifacts and its evidence commit together at the very end.
A publish that fails or is killed leaves at most unreferenced objects behind, and running
it again succeeds (and stores nothing twice). The temporary files of a killed publish are
removed by the next publish, or by the gateway's next start.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from gateway import evidence
from gateway.catalog import repository as catalog
from gateway.db.models import Artifact, Component, Release
from gateway.db.uow import UnitOfWork
from gateway.errors import Conflict, InvalidInput, StorageUnavailable
from gateway.input_files import read_input_text
from gateway.publishing import repository
from gateway.publishing.scan import FolderFile, scan_folder
from gateway.signing.release import sign_release
from gateway.storage import SourceUnreadable, Storage, StorageError, StoredObject
from policies.components import classify
from policies.schema import ComponentRule
from stages import evidence as ev
from stages.names import ModelRef, check_version

# Two workers keep both cores busy hashing while the other waits on I/O.
UPLOAD_WORKERS = 2


class PublishProgress(Protocol):
    def started(self, files: int, total_bytes: int) -> None: ...
    def advanced(self, nbytes: int) -> None: ...
    def phase(self, text: str) -> None: ...


@dataclass(frozen=True)
class PublishRequest:
    model: ModelRef
    version: str
    folder: Path
    license_file: Path
    guidance_file: Path | None = None
    component_overrides: Sequence[ComponentRule] = ()


@dataclass(frozen=True)
class Published:
    release_id: int
    ref: str
    artifacts: int
    total_size: int
    components: dict[str, int]
    manifest_sha256: str


async def publish_release(
    uow: UnitOfWork,
    request: PublishRequest,
    *,
    actor: str,
    progress: PublishProgress | None = None,
) -> Published:
    """Publish a folder as a new release in stage `draft`."""
    rt = uow.rt
    check_version(request.version)
    ref = f"{request.model}:{request.version}"
    if await catalog.release_exists(uow.session, request.model, request.version):
        raise Conflict(f"{ref} already exists; publish a new version", code="release_exists")
    # Storing the files takes long: no connection is held meanwhile.
    await uow.end_read()
    license_text = _read_text(request.license_file, "license")
    guidance = _read_text(request.guidance_file, "guidance") if request.guidance_file else None
    files = scan_folder(request.folder)
    kinds = {
        f.path: classify(f.path, rt.policy.publish, request.component_overrides) for f in files
    }

    # What a killed publish left in the store goes before this one adds its own.
    await asyncio.to_thread(_sweep, rt.storage)
    if progress:
        progress.started(len(files), sum(f.size for f in files))
    stored = await asyncio.to_thread(_store_all, rt.storage, files, progress)
    if progress:
        progress.phase("signing")
    signed = await asyncio.to_thread(
        sign_release,
        request.model.name,
        [(f.path, stored[f.path].sha256) for f in files],
        rt.signing_key,
    )
    if progress:
        progress.phase("recording")

    now = rt.clock()
    license_sha = hashlib.sha256(license_text.encode("utf-8")).hexdigest()
    try:
        session = await uow.write()
        if await catalog.release_exists(session, request.model, request.version):
            raise Conflict(f"{ref} already exists; publish a new version", code="release_exists")
        model = await repository.model_to_publish(session, request.model, now)
        license_row = await repository.license_of(session, license_sha, license_text, now)
        total = sum(s.size for s in stored.values())
        release = Release(
            model_id=model.id,
            version=request.version,
            stage="draft",
            status="active",
            license_id=license_row.id,
            guidance=guidance,
            signature_bundle=signed.bundle,
            manifest_sha256=signed.root_sha256,
            signing_key_id=rt.signing_key.key_id,
            total_size=total,
            published_at=now,
            published_by=actor,
            stage_changed_at=now,
        )
        session.add(release)
        await session.flush()
        components: dict[str, Component] = {}
        for name in sorted(set(kinds.values())):
            members = [stored[p] for p, k in kinds.items() if k == name]
            components[name] = Component(
                release_id=release.id,
                name=name,
                artifact_count=len(members),
                total_size=sum(m.size for m in members),
            )
            session.add(components[name])
        await session.flush()
        session.add_all(
            Artifact(
                release_id=release.id,
                component_id=components[kinds[f.path]].id,
                path=f.path,
                size=stored[f.path].size,
                sha256=stored[f.path].sha256,
            )
            for f in files
        )
        evidence.record(
            session,
            ev.ReleasePublished(
                version=request.version,
                artifacts=len(files),
                total_size=total,
                license_sha256=license_sha,
                manifest_sha256=signed.root_sha256,
                signing_key_id=rt.signing_key.key_id,
            ),
            actor=ev.Actor.parse(actor),
            at=now,
            model_id=model.id,
            release_id=release.id,
        )
    except IntegrityError as exc:
        raise Conflict(
            f"{ref} was published by another command at the same time", code="release_exists"
        ) from exc
    counts: dict[str, int] = {}
    for kind in kinds.values():
        counts[kind] = counts.get(kind, 0) + 1
    return Published(
        release_id=release.id,
        ref=ref,
        artifacts=len(files),
        total_size=total,
        components=dict(sorted(counts.items())),
        manifest_sha256=signed.root_sha256,
    )


def _sweep(storage: Storage) -> None:
    try:
        storage.remove_stale_uploads()
    except StorageError as exc:
        raise StorageUnavailable(f"removing interrupted uploads: {exc}") from exc


def _store_all(
    storage: Storage, files: list[FolderFile], progress: PublishProgress | None
) -> dict[str, StoredObject]:
    on_progress: Callable[[int], None] | None = progress.advanced if progress else None

    def store(item: FolderFile) -> tuple[str, StoredObject]:
        try:
            return item.path, storage.put_file(item.source, on_progress=on_progress)
        except SourceUnreadable as exc:
            raise InvalidInput(f"{item.path}: {exc}", code="file_unreadable") from exc
        except StorageError as exc:
            # The store failed, not the file: say so, and never as bad input.
            raise StorageUnavailable(f"storing {item.path}: {exc}") from exc

    pool = ThreadPoolExecutor(max_workers=UPLOAD_WORKERS)
    futures = [pool.submit(store, item) for item in files]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        # The first failure ends the publish: files not started yet are not tried (against a
        # hung store each would wait out the timeout), the ones in flight end by theirs.
        pool.shutdown(wait=True, cancel_futures=True)
    for future in futures:
        if not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]
    return dict(future.result() for future in futures)


def _read_text(path: Path | None, what: str) -> str:
    assert path is not None
    text = read_input_text(path, what=what)
    if not text.strip():
        raise InvalidInput(f"{what} file {path} is empty", code=f"{what}_invalid")
    return text
