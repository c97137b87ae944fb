"""The JSON the gateway answers with, read into plain values.

Parsing is strict about the fields the client relies on (a missing URL or digest is a
server bug worth a clear message) and ignores fields it does not use, so the server can
add some without breaking older clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.client.errors import unexpected

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ReleaseEntry:
    version: str
    stage: str
    status: str
    yanked: bool = False


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int
    sha256: str
    component: str
    url: str
    download_id: str


@dataclass(frozen=True)
class Withheld:
    path: str
    component: str
    reason: str
    message: str


@dataclass(frozen=True)
class DownloadManifest:
    model: str
    version: str
    tier: str
    artifacts: tuple[Artifact, ...]
    withheld: tuple[Withheld, ...]
    signature_url: str
    public_key_url: str
    yanked_reason: str | None = None


@dataclass(frozen=True)
class CatalogArtifact:
    path: str
    component: str


def _field(body: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = body.get(name)
    # bool is an int in Python; a size of `true` is still a server bug.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise unexpected(f"the server's {where} has no valid {name!r} ({value!r})")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise unexpected(f"the server's {where} is not a JSON object")
    return value


def _list(body: dict[str, Any], name: str, where: str) -> list[Any]:
    value = body.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise unexpected(f"the server's {where} has no valid {name!r} list")
    return value


def parse_releases(body: Any) -> list[ReleaseEntry]:
    """The releases of `GET /api/v1/models/{org}/{name}`, oldest first as sent."""
    model = _object(body, "model")
    return [
        ReleaseEntry(
            version=_field(entry, "version", str, "release entry"),
            stage=_field(entry, "stage", str, "release entry"),
            status=_field(entry, "status", str, "release entry"),
            yanked=entry.get("yanked") is True,
        )
        for entry in (_object(e, "release entry") for e in _list(model, "releases", "model"))
    ]


def parse_catalog_artifacts(body: Any) -> list[CatalogArtifact]:
    """Paths and components of `GET .../releases/{version}` (the public catalog)."""
    release = _object(body, "release")
    return [
        CatalogArtifact(
            path=_field(entry, "path", str, "artifact"),
            component=_field(entry, "component", str, "artifact"),
        )
        for entry in (_object(e, "artifact") for e in _list(release, "artifacts", "release"))
    ]


def parse_manifest(body: Any) -> DownloadManifest:
    """The answer to `POST .../releases/{version}/downloads`."""
    where = "download manifest"
    manifest = _object(body, where)
    artifacts = []
    for entry in _list(manifest, "artifacts", where):
        item = _object(entry, "artifact")
        sha256 = _field(item, "sha256", str, "artifact").lower()
        if not _SHA256.fullmatch(sha256):
            raise unexpected(f"the server sent an invalid SHA-256 {sha256!r}")
        size = _field(item, "size", int, "artifact")
        if size < 0:
            raise unexpected(f"the server sent a negative size for {item.get('path')!r}")
        artifacts.append(
            Artifact(
                path=_field(item, "path", str, "artifact"),
                size=size,
                sha256=sha256,
                component=_field(item, "component", str, "artifact"),
                url=_field(item, "url", str, "artifact"),
                download_id=_field(item, "download_id", str, "artifact"),
            )
        )
    withheld = [
        Withheld(
            path=_field(item, "path", str, "withheld entry"),
            component=str(item.get("component", "")),
            reason=_field(item, "reason", str, "withheld entry"),
            message=str(item.get("message", "")),
        )
        for item in (_object(e, "withheld entry") for e in _list(manifest, "withheld", where))
    ]
    return DownloadManifest(
        model=_field(manifest, "model", str, where),
        version=_field(manifest, "version", str, where),
        tier=str(manifest.get("tier", "")),
        artifacts=tuple(artifacts),
        withheld=tuple(withheld),
        signature_url=_field(manifest, "signature_url", str, where),
        public_key_url=_field(manifest, "public_key_url", str, where),
        yanked_reason=_yanked_reason(manifest.get("yanked_reason")),
    )


def _yanked_reason(value: Any) -> str | None:
    """The reason a release was yanked, as one line of text fit for a terminal."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise unexpected("the server sent a yanked_reason that is not text")
    printable = "".join(c if c.isprintable() else " " for c in value)
    return " ".join(printable.split())[:2000] or "no reason given"
