"""The whole client against an in-memory gateway: resume, refresh, retries, refusals.

These run the real HTTP code (httpx2 over a MockTransport) and the real files on disk,
without a server, so every misbehaviour can be staged exactly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx2
import pytest

from gateway.client import exit_codes, retry
from gateway.client.api import GatewayApi
from gateway.client.download import DownloadRequest, DownloadSummary, download_release
from gateway.client.errors import DownloadFailed
from gateway.client.progress import Silent
from gateway.client.selection import Selection
from stages.names import parse_model_ref
from tests.client.fake_gateway import BASE, KEY, SAMPLE_FILES, FakeGateway

FILES = SAMPLE_FILES


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture
def fake(tmp_path: Path) -> FakeGateway:
    return FakeGateway(tmp_path / "server", FILES)


def run(
    fake: FakeGateway,
    folder: Path,
    ref_version: str | None = "1.0",
    selection: Selection | None = None,
    key: str = KEY,
    warnings: list[str] | None = None,
) -> DownloadSummary:
    with httpx2.Client(transport=fake.transport(), follow_redirects=True) as client:
        return download_release(
            GatewayApi(client, BASE, key),
            DownloadRequest(
                parse_model_ref("acme/sample"),
                ref_version,
                folder,
                selection or Selection(),
                parallel=3,
            ),
            Silent(),
            warn=(warnings if warnings is not None else []).append,
        )


def assert_complete(folder: Path) -> None:
    for path, data in FILES.items():
        assert (folder / path).read_bytes() == data
    assert not list(folder.rglob("*.part"))


def test_a_full_download_verifies_and_saves_signature_and_key(
    fake: FakeGateway, tmp_path: Path
) -> None:
    folder = tmp_path / "sample-1.0"
    summary = run(fake, folder)
    assert_complete(folder)
    assert summary.complete
    assert summary.files == summary.signed_files == 4
    assert summary.fetched_bytes == sum(len(d) for d in FILES.values())
    assert (tmp_path / "sample-1.0.sig").read_text() == fake.signed.bundle
    assert (tmp_path / "sample-1.0.pub.pem").read_bytes() == fake.key.public_pem
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("sample")) == [
        "sample-1.0",
        "sample-1.0.download.json",
        "sample-1.0.pub.pem",
        "sample-1.0.sig",
    ]


def test_a_second_run_fetches_nothing_and_hashes_nothing(
    fake: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "sample-1.0"
    run(fake, folder)
    fake.log.clear()

    def no_hashing(*args: object, **kwargs: object) -> str:
        raise AssertionError("a verified, untouched file was hashed again")

    monkeypatch.setattr("gateway.client.transfer.sha256_of", no_hashing)
    summary = run(fake, folder)
    assert summary.fetched_bytes == 0
    assert summary.skipped == 4
    assert not [r for r in fake.log if r.url.path.startswith("/d/")]
    # The ids of the first run are sent back, so no quota is spent on a re-run.
    assert fake.manifest_bodies[-1]["continue"] == {p: f"dl-{p}" for p in FILES}


def test_a_changed_final_file_is_fetched_again(fake: FakeGateway, tmp_path: Path) -> None:
    folder = tmp_path / "sample-1.0"
    run(fake, folder)
    config = folder / "config.json"
    config.write_bytes(b"X" * len(FILES["config.json"]))  # same size, other bytes
    summary = run(fake, folder)
    assert_complete(folder)
    assert summary.fetched_bytes == len(FILES["config.json"])


def test_a_part_is_resumed_with_a_range(fake: FakeGateway, tmp_path: Path) -> None:
    folder = tmp_path / "sample-1.0"
    folder.mkdir()
    head = FILES["model.safetensors"][: 1 << 20]
    (folder / "model.safetensors.part").write_bytes(head)
    summary = run(fake, folder)
    assert_complete(folder)
    (request,) = fake.downloads("model.safetensors")
    assert request.headers["range"] == f"bytes={len(head)}-"
    assert summary.fetched_bytes == sum(len(d) for d in FILES.values()) - len(head)


def test_a_server_ignoring_range_restarts_the_part_with_its_body(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.ignore_range = True
    folder = tmp_path / "sample-1.0"
    folder.mkdir()
    (folder / "model.safetensors.part").write_bytes(b"garbage that is not the file")
    run(fake, folder)
    assert_complete(folder)
    assert len(fake.downloads("model.safetensors")) == 1


def test_a_part_longer_than_the_file_is_dropped(fake: FakeGateway, tmp_path: Path) -> None:
    folder = tmp_path / "sample-1.0"
    folder.mkdir()
    (folder / "README.md.part").write_bytes(b"x" * 1000)
    run(fake, folder)
    assert_complete(folder)
    (request,) = fake.downloads("README.md")
    assert "range" not in request.headers


def test_a_dropped_connection_resumes_from_what_arrived(fake: FakeGateway, tmp_path: Path) -> None:
    fake.behaviour.drop_after = (1 << 20) + 100_000
    folder = tmp_path / "sample-1.0"
    summary = run(fake, folder)
    assert_complete(folder)
    first, second = fake.downloads("model.safetensors")
    assert "range" not in first.headers
    # Bytes are written in whole 1 MiB chunks; the broken-off tail is asked for again.
    assert second.headers["range"] == f"bytes={1 << 20}-"
    assert summary.fetched_bytes == sum(len(d) for d in FILES.values())


def test_server_errors_are_retried(fake: FakeGateway, tmp_path: Path) -> None:
    fake.behaviour.fail_first = 2
    run(fake, tmp_path / "d")
    assert_complete(tmp_path / "d")
    assert len(fake.downloads("config.json")) == 3


def test_a_server_that_keeps_failing_ends_with_the_network_exit_code(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.fail_first = 99
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d")
    assert caught.value.exit_code == exit_codes.NETWORK_FAILURE
    assert not (tmp_path / "d" / "config.json").exists()


def test_expired_urls_are_refreshed_with_the_same_download_ids(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.expire_first = 1
    run(fake, tmp_path / "d")
    assert_complete(tmp_path / "d")
    first, *refreshes = fake.manifest_bodies
    assert first == {"paths": None, "continue": None}
    # Every file's first URL expired, so every file was in some refresh; one refresh may
    # serve several workers at once, so there are never more refreshes than files. Each
    # carries the ids already issued, so no quota unit is spent again.
    refreshed = {path for body in refreshes for path in body["continue"] or {}}
    assert refreshed == set(FILES)
    assert len(refreshes) <= len(FILES)
    for body in refreshes:
        resume = body["continue"]
        assert isinstance(resume, dict)
        assert resume
        assert resume == {p: f"dl-{p}" for p in resume}
        assert body["paths"] == sorted(resume)


def test_a_refused_download_stops_with_the_reason_exit_code(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.refuse_download = "release_recalled"
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d")
    assert caught.value.code == "release_recalled"
    assert caught.value.exit_code == 21
    assert caught.value.message == "refused: release_recalled"


def test_a_corrupted_file_is_deleted_and_fails_with_hash_mismatch(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.corrupt = {"config.json"}
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d")
    assert caught.value.exit_code == exit_codes.HASH_MISMATCH
    assert "config.json does not match its SHA-256" in caught.value.message
    assert not (tmp_path / "d" / "config.json").exists()
    assert not (tmp_path / "d" / "config.json.part").exists()


def test_a_tampered_part_fails_with_hash_mismatch_and_is_deleted(
    fake: FakeGateway, tmp_path: Path
) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    data = FILES["README.md"]
    (folder / "README.md.part").write_bytes(b"#" * len(data))  # complete size, wrong bytes
    with pytest.raises(DownloadFailed) as caught:
        run(fake, folder)
    assert caught.value.exit_code == exit_codes.HASH_MISMATCH
    assert not (folder / "README.md").exists()
    assert not (folder / "README.md.part").exists()
    assert not fake.downloads("README.md")  # nothing to fetch: the part had every byte


def test_components_and_include_filter_and_skip_the_completeness_check(
    fake: FakeGateway, tmp_path: Path
) -> None:
    folder = tmp_path / "d"
    summary = run(fake, folder, selection=Selection.parse(["weights"], ["model.*"]))
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["model.safetensors"]
    assert fake.manifest_bodies[0]["paths"] == ["model.safetensors"]
    assert not summary.complete
    assert summary.files == 1
    assert summary.signed_files == 4


def test_a_selection_matching_nothing_is_a_usage_error(fake: FakeGateway, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d", selection=Selection.parse(["eval_tools"], []))
    assert caught.value.exit_code == exit_codes.USAGE


def test_withheld_files_are_reported_and_the_rest_downloaded(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.withhold = {"model_card"}
    warnings: list[str] = []
    summary = run(fake, tmp_path / "d", warnings=warnings)
    assert not summary.complete
    assert summary.files == 3
    assert warnings == [
        "withheld README.md (model_card): the model_card component is not part of the tier "
        "[component_not_in_tier]"
    ]


def test_only_withheld_files_is_the_reason_exit_code(fake: FakeGateway, tmp_path: Path) -> None:
    fake.withhold = {"model_card"}
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d", selection=Selection.parse(["model_card"], []))
    assert caught.value.exit_code == 24


def test_without_version_the_newest_open_release_wins(fake: FakeGateway, tmp_path: Path) -> None:
    fake.releases = [
        ("0.9", "public", "active"),
        ("1.0", "researcher", "active"),
        ("1.1", "trusted_partner", "active"),
        ("1.2", "public", "recalled"),
        ("1.3", "draft", "active"),
    ]
    fake.behaviour.refuse_manifest = {"1.1": "tier_not_open"}
    summary = run(fake, tmp_path / "d", ref_version=None)
    assert summary.release == "acme/sample:1.0"
    asked = [r.url.path for r in fake.log if r.url.path.endswith("/downloads")]
    assert asked == [
        "/api/v1/models/acme/sample/releases/1.1/downloads",
        "/api/v1/models/acme/sample/releases/1.0/downloads",
    ]


def test_without_version_other_refusals_are_final(fake: FakeGateway, tmp_path: Path) -> None:
    fake.releases = [("1.0", "public", "active"), ("1.1", "public", "active")]
    fake.behaviour.refuse_manifest = {"1.1": "grant_expired"}
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d", ref_version=None)
    assert caught.value.exit_code == 18


def test_without_version_and_only_closed_tiers_the_refusal_is_tier_not_open(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.behaviour.refuse_manifest = {"1.0": "tier_not_open"}
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d", ref_version=None)
    assert caught.value.exit_code == 23


def test_a_bad_key_is_key_invalid(fake: FakeGateway, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d", key="rgk_wrong")
    assert caught.value.exit_code == 10
    assert not (tmp_path / "d").exists()


def test_an_unknown_release_is_not_found(fake: FakeGateway, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d", ref_version="9.9")
    assert caught.value.exit_code == exit_codes.NOT_FOUND


def test_a_signature_over_other_digests_fails_before_any_download(
    fake: FakeGateway, tmp_path: Path
) -> None:
    fake.files = {**FILES, "config.json": b'{"layers": 3}\n'}  # served, listed, not signed
    with pytest.raises(DownloadFailed) as caught:
        run(fake, tmp_path / "d")
    assert caught.value.exit_code == exit_codes.SIGNATURE_INVALID
    assert "config.json has another digest" in caught.value.message
    assert not [r for r in fake.log if r.url.path.startswith("/d/")]


def test_digests_in_the_manifest_are_the_files_sha256(fake: FakeGateway, tmp_path: Path) -> None:
    run(fake, tmp_path / "d")
    for path, data in FILES.items():
        assert hashlib.sha256((tmp_path / "d" / path).read_bytes()).hexdigest() == (
            hashlib.sha256(data).hexdigest()
        )


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"error": ' + b"[" * 5000])
def test_an_answer_nested_past_the_limit_is_unexpected_not_a_crash(
    fake: FakeGateway, tmp_path: Path, body: bytes
) -> None:
    def deep(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/downloads"):
            return httpx2.Response(200, content=body, headers={"content-type": "application/json"})
        return fake.handle(request)

    with (
        httpx2.Client(transport=httpx2.MockTransport(deep)) as client,
        pytest.raises(DownloadFailed) as caught,
    ):
        download_release(
            GatewayApi(client, BASE, KEY),
            DownloadRequest(parse_model_ref("acme/sample"), "1.0", tmp_path / "d"),
            Silent(),
            warn=lambda _: None,
        )
    assert caught.value.exit_code == exit_codes.UNEXPECTED
    assert "nests deeper than 32 levels" in str(caught.value)
