"""Choosing a version when none is given: only plausible, open versions are tried."""

from __future__ import annotations

from gateway.client.resolve import candidates
from gateway.client.schemas import ReleaseEntry


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
