"""One `gateway download`: choose the release, check its signature, fetch its files.

The signature is checked first, against the digests the gateway lists, so a release
whose signature fails costs one small request instead of a full download; each file is
then held to its listed digest as it arrives. Together that is the same guarantee as
`model_signing verify` over the finished folder, without reading the files twice.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from gateway.client import exit_codes
from gateway.client.api import GatewayApi
from gateway.client.errors import DownloadFailed, unexpected
from gateway.client.parts import DEFAULT_PARTS, PARTS_FROM
from gateway.client.paths import check_unique, target_path
from gateway.client.progress import TransferProgress
from gateway.client.refresh import UrlBook
from gateway.client.resolve import open_manifest
from gateway.client.schemas import Artifact, DownloadManifest, Withheld
from gateway.client.selection import Selection
from gateway.client.state import DownloadState, sibling
from gateway.client.transfer import FileFetcher, FileJob, FileResult, Interrupted, bytes_on_disk
from gateway.client.verify import verify_release
from stages.names import ModelRef

SIGNATURE_SUFFIX = ".sig"
PUBLIC_KEY_SUFFIX = ".pub.pem"
STATE_SUFFIX = ".download.json"

# How long Ctrl-C waits for workers to close their parts before giving up on them.
STOP_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class DownloadRequest:
    model: ModelRef
    version: str | None
    folder: Path | None  # None: ./NAME-VERSION
    selection: Selection = field(default_factory=Selection)
    parallel: int = 4  # files at once
    parts: int = DEFAULT_PARTS  # range requests at once for each file of `parts_from` bytes up
    parts_from: int = PARTS_FROM


@dataclass(frozen=True)
class DownloadSummary:
    release: str  # org/name:version
    folder: Path
    files: int
    total_bytes: int
    fetched_bytes: int  # over the network in this run
    skipped: int  # files already complete
    complete: bool  # the whole release is in the folder
    signed_files: int
    signature_path: Path
    public_key_path: Path
    withheld: tuple[Withheld, ...]


def folder_for(request: DownloadRequest, version: str) -> Path:
    folder = request.folder or Path(f"{request.model.name}-{version}")
    # Absolute, so that siblings (DIR.sig...) exist even for `--to .`.
    return Path(os.path.abspath(folder))


def download_release(
    api: GatewayApi,
    request: DownloadRequest,
    progress: TransferProgress,
    warn: Callable[[str], None],
) -> DownloadSummary:
    """Download, verify and sign-check a release into its folder; raise DownloadFailed."""

    def state_for(version: str) -> DownloadState:
        path = sibling(folder_for(request, version), STATE_SUFFIX)
        return DownloadState.load(path, f"{request.model}:{version}")

    version, manifest, state = open_manifest(
        api, request.model, request.version, request.selection, state_for
    )
    folder = folder_for(request, version)
    if manifest.yanked_reason is not None:
        warn(
            f"{request.model}:{version} is yanked: {manifest.yanked_reason}. "
            "It is no longer the model's latest release; download another unless you need this one."
        )
    artifacts, withheld = _selected(manifest, request.selection)
    for item in withheld:
        warn(f"withheld {item.path} ({item.component}): {item.message} [{item.reason}]")
    if not artifacts:
        raise _nothing_to_download(manifest, withheld)
    check_unique([a.path for a in artifacts])
    folder.mkdir(parents=True, exist_ok=True)
    # Biggest first: the long transfers start at once and small files fill the gaps.
    jobs = [
        FileJob(a.path, target_path(folder, a.path), a.size, a.sha256)
        for a in sorted(artifacts, key=lambda a: (-a.size, a.path))
    ]
    complete = request.selection.everything and not manifest.withheld
    signature_path = sibling(folder, SIGNATURE_SUFFIX)
    key_path = sibling(folder, PUBLIC_KEY_SUFFIX)
    signed = _check_signature(api, manifest, jobs, complete, signature_path, key_path)

    state.remember_ids({a.path: a.download_id for a in artifacts})
    fetcher = FileFetcher(
        api.client,
        UrlBook(api, request.model, version, artifacts, state),
        state,
        threading.Event(),
        parts=request.parts,
        parts_from=request.parts_from,
    )
    results = _fetch_all(fetcher, jobs, progress, request.parallel)
    return DownloadSummary(
        release=f"{request.model}:{version}",
        folder=folder,
        files=len(results),
        total_bytes=sum(r.size for r in results),
        fetched_bytes=sum(r.fetched for r in results),
        skipped=sum(r.skipped for r in results),
        complete=complete,
        signed_files=signed,
        signature_path=signature_path,
        public_key_path=key_path,
        withheld=withheld,
    )


def _selected(
    manifest: DownloadManifest, selection: Selection
) -> tuple[list[Artifact], tuple[Withheld, ...]]:
    # The request already named the paths; filtering again keeps the promise even if a
    # server ignored `paths`.
    artifacts = [a for a in manifest.artifacts if selection.matches(a.path, a.component)]
    withheld = tuple(w for w in manifest.withheld if selection.matches(w.path, w.component))
    return artifacts, withheld


def _nothing_to_download(
    manifest: DownloadManifest, withheld: tuple[Withheld, ...]
) -> DownloadFailed:
    release = f"{manifest.model}:{manifest.version}"
    if withheld:
        first = withheld[0]
        return DownloadFailed(
            first.reason,
            f"nothing to download from {release}: every selected file is withheld "
            f"({first.message})",
        )
    return unexpected(f"the gateway offered no files of {release}")


def _check_signature(
    api: GatewayApi,
    manifest: DownloadManifest,
    jobs: list[FileJob],
    complete: bool,
    signature_path: Path,
    key_path: Path,
) -> int:
    """Verify the listed digests against the release signature; save bundle and key."""
    bundle = api.fetch(manifest.signature_url)
    public_pem = api.fetch(manifest.public_key_url)
    try:
        text = bundle.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DownloadFailed(
            exit_codes.SIGNATURE_INVALID_CODE, "the signature bundle is not UTF-8 text"
        ) from exc
    signed = verify_release(text, public_pem, {j.path: j.sha256 for j in jobs}, complete=complete)
    # Beside the folder, not in it: `model_signing verify` must see only the release.
    _write_atomically(signature_path, bundle)
    _write_atomically(key_path, public_pem)
    return signed


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = sibling(path, ".tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _fetch_all(
    fetcher: FileFetcher, jobs: list[FileJob], progress: TransferProgress, parallel: int
) -> list[FileResult]:
    """Fetch in parallel; the first failure stops the others, leaving their parts."""
    on_disk = {job.path: bytes_on_disk(job, fetcher.state) for job in jobs}
    progress.start(len(jobs), sum(j.size for j in jobs), sum(on_disk.values()))

    def fetch(job: FileJob) -> FileResult:
        if fetcher.stop.is_set():
            raise Interrupted
        return fetcher.fetch(job, progress.file(job.path, job.size, on_disk[job.path]))

    futures = _start_workers(fetch, jobs, parallel)
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
    except KeyboardInterrupt:
        _stop(fetcher, futures)
        # Workers notice the stop between chunks; one stuck in a stalled read is left
        # behind (a daemon thread: it never holds up the exit) rather than holding up
        # Ctrl-C.
        wait(futures, timeout=STOP_GRACE_SECONDS)
        raise DownloadFailed(
            exit_codes.INTERRUPTED_CODE, "interrupted; run the same command again to resume"
        ) from None
    failure = _first_failure(futures)
    if failure is not None:
        _stop(fetcher, futures)
    wait(futures)
    if failure is not None:
        raise failure
    return [f.result() for f in futures]


def _start_workers(
    fetch: Callable[[FileJob], FileResult], jobs: list[FileJob], parallel: int
) -> list[Future[FileResult]]:
    """Run `fetch` over the jobs in `parallel` daemon threads; one future per job.

    Daemon threads, unlike a ThreadPoolExecutor's, are not joined when the interpreter
    exits: a worker blocked in a network read can never keep the command from ending.
    """
    work: queue.SimpleQueue[tuple[FileJob, Future[FileResult]]] = queue.SimpleQueue()
    futures: list[Future[FileResult]] = []
    for job in jobs:
        future: Future[FileResult] = Future()
        futures.append(future)
        work.put((job, future))

    def worker() -> None:
        while True:
            try:
                job, future = work.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue  # cancelled before it started
            try:
                future.set_result(fetch(job))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(exc)

    for number in range(min(parallel, len(jobs))):
        threading.Thread(target=worker, name=f"download-{number}", daemon=True).start()
    return futures


def _stop(fetcher: FileFetcher, futures: list[Future[FileResult]]) -> None:
    """Tell running workers to stop, and drop the jobs no worker has started."""
    fetcher.stop.set()
    for future in futures:
        future.cancel()


def _first_failure(futures: list[Future[FileResult]]) -> BaseException | None:
    for future in futures:
        if future.done() and not future.cancelled():
            error = future.exception()
            if error is not None and not isinstance(error, Interrupted):
                return error
    return None
