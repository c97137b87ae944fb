"""Download URLs that expire, and their refresh.

When a worker's URL answers 410 url_expired, the book asks the gateway once for new URLs
of every file still incomplete, sending their download ids back (`continue`) so the
grant's quota is not charged again. Workers whose URLs expired at the same moment find
the new URL already there instead of each asking again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from gateway.client.api import GatewayApi
from gateway.client.errors import DownloadFailed, unexpected
from gateway.client.schemas import Artifact
from gateway.client.state import DownloadState
from stages.access import Reason
from stages.names import ModelRef

# A file whose fresh URL expires again before any byte flowed points at a clock or TTL
# problem on the server; asking forever would only hide it.
MAX_REFRESHES_PER_FILE = 3


class UrlBook:
    """The current URL of each file of one download, shared by the workers."""

    def __init__(
        self,
        api: GatewayApi,
        model: ModelRef,
        version: str,
        artifacts: Iterable[Artifact],
        state: DownloadState,
    ) -> None:
        self._api = api
        self._model = model
        self._version = version
        self._state = state
        self._lock = threading.Lock()
        self._urls = {a.path: a.url for a in artifacts}
        self._done: set[str] = set()
        self._refreshes: dict[str, int] = {}

    def url(self, path: str) -> str:
        with self._lock:
            return self._urls[path]

    def done(self, path: str) -> None:
        with self._lock:
            self._done.add(path)

    def progressed(self, path: str) -> None:
        """Bytes flowed for `path`: its URL works, so its refresh budget starts over."""
        with self._lock:
            self._refreshes.pop(path, None)

    def refresh(self, path: str, stale: str) -> str:
        """A URL for `path` to use instead of `stale`, which the gateway said has expired."""
        with self._lock:
            if self._urls[path] != stale:
                return self._urls[path]  # another worker refreshed it meanwhile
            count = self._refreshes.get(path, 0) + 1
            if count > MAX_REFRESHES_PER_FILE:
                raise DownloadFailed(
                    Reason.URL_EXPIRED.value,
                    f"the download URL of {path} expired {count - 1} times in a row, "
                    "before any data arrived; check the clock of this machine and the server",
                )
            self._refreshes[path] = count
            pending = sorted(p for p in self._urls if p not in self._done)
            manifest = self._api.request_manifest(
                self._model,
                self._version,
                paths=pending,
                resume=self._state.download_ids(pending),
            )
            fresh = {a.path: a for a in manifest.artifacts if a.path in self._urls}
            self._state.remember_ids({p: a.download_id for p, a in fresh.items()})
            for p, artifact in fresh.items():
                self._urls[p] = artifact.url
            if path not in fresh:
                withheld = next((w for w in manifest.withheld if w.path == path), None)
                if withheld is not None:
                    raise DownloadFailed(withheld.reason, withheld.message or f"{path} withheld")
                raise unexpected(f"the gateway no longer lists {path} in the release")
            return self._urls[path]
