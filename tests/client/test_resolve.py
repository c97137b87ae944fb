"""Choosing a version when none is given: only plausible, open versions are tried."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest

from gateway.client.api import GatewayApi
from gateway.client.errors import DownloadFailed
from gateway.client.resolve import candidates, open_manifest
from gateway.client.schemas import ReleaseEntry
from gateway.client.selection import Selection
from gateway.client.state import DownloadState
from stages.names import ModelRef, parse_model_ref


def entry(version: str, stage: str = "public", status: str = "active") -> ReleaseEntry:
    return ReleaseEntry(version=version, stage=stage, status=status)


def test_newest_open_first_and_hostile_versions_left_out() -> None:
    releases = [
        entry("1.0"),
        entry("1.1", stage="draft"),
        entry("1.2", status="recalled"),
        entry("x/../../../.config"),
        entry(".."),
        entry("2.0"),
    ]
    assert candidates(releases) == ["2.0", "1.0"]


def test_yanked_releases_are_passed_over() -> None:
    releases = [entry("1.0"), replace(entry("1.1"), yanked=True), entry("2.0")]
    releases.append(replace(entry("2.1"), yanked=True))
    assert candidates(releases) == ["2.0", "1.0"]


class OnlyYanked:
    """A gateway whose every active release is yanked."""

    def model_releases(self, _model: ModelRef) -> list[ReleaseEntry]:
        return [replace(entry("1.0"), yanked=True), entry("0.9", status="recalled")]


def nothing_to_load(version: str) -> DownloadState:
    raise AssertionError(f"no version should be tried, yet {version} was")


def test_when_every_release_is_yanked_the_client_asks_for_a_version() -> None:
    api = cast(GatewayApi, OnlyYanked())
    with pytest.raises(DownloadFailed) as raised:
        open_manifest(api, parse_model_ref("acme/sample"), None, Selection(), nothing_to_load)
    assert raised.value.code == "release_not_found"
    assert "every active release of acme/sample is yanked" in str(raised.value)
    assert "acme/sample:VERSION" in str(raised.value)
