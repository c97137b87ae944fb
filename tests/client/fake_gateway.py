"""An in-memory gateway speaking the download contract, for client tests without a server.

It is an httpx2 MockTransport handler, so the client runs its real HTTP code. Knobs make
it misbehave the ways real networks and servers do: expired URLs, dropped connections,
5xx answers, ignored Range headers. Every request is logged for assertions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from gateway.signing.release import ensure_signing_key, sign_release

BASE = "http://gateway.test"
KEY = "rgk_test_key"
SAMPLE_FILES = {
    "model.safetensors": os.urandom(3 << 20),
    "shards/model-00002.safetensors": os.urandom(1 << 20),
    "README.md": b"# Sample\n",
    "config.json": b'{"layers": 2}\n',
}


@dataclass
class Behaviour:
    expire_first: int = 0  # answer 410 url_expired to the first N /d/ requests of a file
    fail_first: int = 0  # answer 503 to the first N /d/ requests of a file
    drop_after: int | None = None  # cut the first body of each file after this many bytes
    ignore_range: bool = False  # always answer 200 with the whole file
    refuse_download: str | None = None  # an access reason for every /d/ request
    refuse_manifest: dict[str, str] = field(default_factory=dict)  # version -> reason
    corrupt: set[str] = field(default_factory=set)  # paths served with a flipped byte


class FakeGateway:
    def __init__(self, tmp: Path, files: dict[str, bytes], *, tier: str = "researcher") -> None:
        self.files = files
        self.components = {p: _component(p) for p in files}
        self.key = ensure_signing_key(tmp / "keys")
        self.signed = sign_release(
            "sample", [(p, hashlib.sha256(d).hexdigest()) for p, d in files.items()], self.key
        )
        self.tier = tier
        self.withhold: set[str] = set()  # components the tier does not see
        self.releases = [("1.0", "researcher", "active")]
        self.behaviour = Behaviour()
        self.log: list[httpx2.Request] = []
        self.manifest_bodies: list[dict[str, object]] = []
        self._generation = 0
        self._hits: dict[str, int] = {}
        self._ids: dict[str, str] = {}

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def downloads(self, path: str) -> list[httpx2.Request]:
        return [r for r in self.log if r.url.path.startswith("/d/") and _path_of(r) == path]

    # -- the routes ------------------------------------------------------------------

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.log.append(request)
        route = request.url.path
        public = {
            "/sig": lambda: httpx2.Response(200, text=self.signed.bundle),
            "/key.pem": lambda: httpx2.Response(200, content=self.key.public_pem),
        }
        if route.startswith("/d/"):
            return self._download(request)
        if route in public:
            return public[route]()
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return _error(401, "key_invalid", "this API key is not valid")
        return self._api(request, route)

    def _api(self, request: httpx2.Request, route: str) -> httpx2.Response:
        if route == "/api/v1/models/acme/sample":
            return self._model()
        match = re.fullmatch(r"/api/v1/models/acme/sample/releases/([^/]+)(/downloads)?", route)
        if match is None:
            return _error(404, "model_not_found", f"nothing at {route}")
        if match.group(2):
            return self._manifest(match.group(1), json.loads(request.content or b"{}"))
        return self._catalog(match.group(1))

    def _model(self) -> httpx2.Response:
        releases = [
            {"version": v, "stage": s, "status": st, "published_at": "", "total_size": 0}
            for v, s, st in self.releases
        ]
        return httpx2.Response(200, json={"org": "acme", "name": "sample", "releases": releases})

    def _catalog(self, version: str) -> httpx2.Response:
        artifacts = [{"path": p, "component": c} for p, c in self.components.items()]
        return httpx2.Response(200, json={"version": version, "artifacts": artifacts})

    def _manifest(self, version: str, body: dict[str, object]) -> httpx2.Response:
        self.manifest_bodies.append(body)
        if version in self.behaviour.refuse_manifest:
            reason = self.behaviour.refuse_manifest[version]
            return _error(403, reason, f"refused: {reason}")
        if version not in {v for v, _, _ in self.releases}:
            return _error(404, "release_not_found", f"no release acme/sample:{version}")
        self._generation += 1
        wanted = body.get("paths")
        resume = body.get("continue") or {}
        assert isinstance(resume, dict)
        artifacts, withheld = [], []
        for path, data in self.files.items():
            if isinstance(wanted, list) and path not in wanted:
                continue
            component = self.components[path]
            if component in self.withhold:
                withheld.append(
                    {
                        "path": path,
                        "component": component,
                        "reason": "component_not_in_tier",
                        "message": f"the {component} component is not part of the tier",
                    }
                )
                continue
            download_id = resume.get(path) or self._ids.setdefault(path, f"dl-{path}")
            artifacts.append(
                {
                    "path": path,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "component": component,
                    "url": f"{BASE}/d/{self._generation}/{path}",
                    "expires_at": "2030-01-01T00:00:00Z",
                    "download_id": download_id,
                }
            )
        return httpx2.Response(
            200,
            json={
                "model": "acme/sample",
                "version": version,
                "tier": self.tier,
                "grant_id": "g1",
                "artifacts": artifacts,
                "withheld": withheld,
                "signature_url": f"{BASE}/sig",
                "public_key_url": f"{BASE}/key.pem",
            },
        )

    def _download(self, request: httpx2.Request) -> httpx2.Response:
        assert "authorization" not in request.headers, "the API key must not go to /d/"
        path = _path_of(request)
        generation = int(request.url.path.split("/")[2])
        hits = self._hits[path] = self._hits.get(path, 0) + 1
        b = self.behaviour
        if b.refuse_download:
            return _error(403, b.refuse_download, f"refused: {b.refuse_download}")
        if hits <= b.expire_first and generation == 1:
            return _error(410, "url_expired", "this download link has expired")
        if hits <= b.expire_first + b.fail_first:
            return _error(503, "unavailable", "try later")
        data = self.files[path]
        if path in b.corrupt:
            data = bytes([data[0] ^ 1]) + data[1:]
        sha = hashlib.sha256(self.files[path]).hexdigest()
        headers = {"etag": f'"{sha}"', "accept-ranges": "bytes"}
        asked = _range(request.headers.get("range"))
        status = 200
        if asked is not None and not b.ignore_range:
            start, last = asked
            if start >= len(data):
                return _error(416, "range_not_satisfiable", "outside the file")
            last = len(data) - 1 if last is None else min(last, len(data) - 1)
            headers["content-range"] = f"bytes {start}-{last}/{len(data)}"
            status, data = 206, data[start : last + 1]
        headers["content-length"] = str(len(data))
        limit = None
        if b.drop_after is not None and hits == 1 + b.expire_first + b.fail_first:
            limit = b.drop_after
        return httpx2.Response(status, headers=headers, stream=_Body(data, limit))


class _Body(httpx2.SyncByteStream):
    """A streamed body in 64 KiB pieces, as a socket gives it; with `limit`, it breaks off
    after that many bytes, as a dropped connection does."""

    def __init__(self, data: bytes, limit: int | None = None) -> None:
        self.data = data
        self.limit = limit

    def __iter__(self) -> Iterator[bytes]:
        end = len(self.data) if self.limit is None else self.limit
        for start in range(0, end, 1 << 16):
            yield self.data[start : min(start + (1 << 16), end)]
        if self.limit is not None:
            raise httpx2.ReadError("connection reset by peer")


def _component(path: str) -> str:
    if path.endswith(".safetensors"):
        return "weights"
    if path == "README.md":
        return "model_card"
    return "config"


def _path_of(request: httpx2.Request) -> str:
    return request.url.path.split("/", 3)[3]


def _range(header: str | None) -> tuple[int, int | None] | None:
    """(first, last or None) of `bytes=first-[last]`, the only forms the client sends."""
    if not header:
        return None
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header)
    assert match, f"the client sent an unexpected Range: {header}"
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def _error(status: int, code: str, message: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": code, "message": message, "status": status})
