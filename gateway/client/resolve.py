"""Which release to download, and the gateway's manifest for it.

Without a version, the newest release the caller can actually get wins: releases are
tried newest first, skipping drafts, releases that are not active and yanked ones (PEP
592: a yanked release is downloaded only by its exact version), and one the gateway
refuses with tier_not_open (open to partners, say, but not yet to the caller's tier)
gives way to the next older one. Any other refusal is the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from gateway.client.api import GatewayApi
from gateway.client.errors import DownloadFailed, usage
from gateway.client.schemas import DownloadManifest, ReleaseEntry
from gateway.client.selection import Selection
from gateway.client.state import DownloadState
from stages.access import Reason
from stages.names import InvalidName, ModelRef, check_version


def candidates(releases: list[ReleaseEntry]) -> list[str]:
    """Versions worth asking for, newest first (the API lists them oldest first).

    A version becomes part of a folder name, so one the gateway would never accept (a
    slash, `..`) is left out rather than trusted.
    """
    return [
        r.version
        for r in reversed(releases)
        if r.status == "active" and r.stage != "draft" and not r.yanked and _is_version(r.version)
    ]


def _is_version(text: str) -> bool:
    try:
        check_version(text)
    except InvalidName:
        return False
    return True


def open_manifest(
    api: GatewayApi,
    model: ModelRef,
    version: str | None,
    selection: Selection,
    state_for: Callable[[str], DownloadState],
) -> tuple[str, DownloadManifest, DownloadState]:
    """The version chosen, its manifest, and the saved state of its folder."""
    if version is not None:
        state = state_for(version)
        return version, request_manifest(api, model, version, selection, state), state
    releases = api.model_releases(model)
    versions = candidates(releases)
    if not versions:
        if candidates([replace(r, yanked=False) for r in releases]):
            raise DownloadFailed(
                "release_not_found",
                f"every active release of {model} is yanked: name the version you need "
                f"({model}:VERSION)",
                status=404,
            )
        raise DownloadFailed(
            "release_not_found", f"{model} has no active release open to anyone yet", status=404
        )
    refused: DownloadFailed | None = None
    for candidate in versions:
        state = state_for(candidate)
        try:
            return candidate, request_manifest(api, model, candidate, selection, state), state
        except DownloadFailed as exc:
            if exc.code != Reason.TIER_NOT_OPEN:
                raise
            refused = refused or exc  # the newest refusal says the most
    assert refused is not None
    raise refused


def request_manifest(
    api: GatewayApi,
    model: ModelRef,
    version: str,
    selection: Selection,
    state: DownloadState,
) -> DownloadManifest:
    """Ask for URLs of the selected files, continuing the downloads a previous run began."""
    paths: list[str] | None = None
    if not selection.everything:
        # The public catalog says which file is in which component, so URLs (and their
        # evidence) are issued only for the files wanted.
        listed = api.catalog_artifacts(model, version)
        paths = [a.path for a in listed if selection.matches(a.path, a.component)]
        if not paths:
            raise usage(f"no file of {model}:{version} matches --components/--include")
    return api.request_manifest(model, version, paths=paths, resume=state.download_ids(paths))
