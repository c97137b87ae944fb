"""Publishing a folder: what gets stored, signed and recorded, and what is refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.catalog.service import get_release
from gateway.db.models import Artifact, Evidence, Model, Release
from gateway.errors import Conflict, InvalidInput
from gateway.publishing.service import Published, PublishRequest, publish_release
from gateway.runtime import Runtime
from gateway.signing.release import SignatureInvalid, verify_folder
from policies.components import parse_override
from stages.names import InvalidName, parse_model_ref
from tests.sample import make_folder, make_license, publish
from tests.units import within


async def publish_in_unit(rt: Runtime, request: PublishRequest, *, actor: str) -> Published:
    return await within(rt, lambda uow: publish_release(uow, request, actor=actor))


pytestmark = pytest.mark.anyio


def request(tmp_path: Path, folder: Path, **changes: object) -> PublishRequest:
    fields: dict[str, object] = {
        "model": parse_model_ref("acme/sample"),
        "version": "1.0",
        "folder": folder,
        "license_file": make_license(tmp_path),
    }
    fields.update(changes)
    return PublishRequest(**fields)  # type: ignore[arg-type]


async def count(rt: Runtime, table: type[object]) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table)) or 0


async def test_publish_records_every_file_with_its_digest_and_component(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "src")
    published = await publish_in_unit(runtime, request(tmp_path, folder), actor="test")

    release = await within(
        runtime, lambda uow: get_release(uow, parse_model_ref("acme/sample"), "1.0")
    )
    assert release.stage == "draft"
    assert release.status == "active"
    component_of = {c.id: c.name for c in release.components}
    seen = {a.path: (a.size, a.sha256, component_of[a.component_id]) for a in release.artifacts}
    expected = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            expected[path.relative_to(folder).as_posix()] = (
                len(data),
                hashlib.sha256(data).hexdigest(),
            )
    assert {p: v[:2] for p, v in seen.items()} == expected
    assert seen["model.safetensors"][2] == "weights"
    assert seen["shards/model-00002.safetensors"][2] == "weights"
    assert seen["modeling.py"][2] == "code"
    assert seen["README.md"][2] == "model_card"
    assert seen["config.json"][2] == "config"
    assert seen["notes.txt"][2] == "other"
    assert published.total_size == sum(size for size, _ in expected.values())
    assert release.license.sha256 == hashlib.sha256(make_license(tmp_path).read_bytes()).hexdigest()
    # Every stored object is there and holds the right bytes.
    for size, digest in expected.values():
        assert runtime.storage.size(digest) == size
        with runtime.storage.open_read(digest) as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == digest


async def test_publish_writes_its_evidence(runtime: Runtime, tmp_path: Path) -> None:
    published = await publish(runtime, tmp_path)
    async with runtime.sessionmaker() as session:
        rows = (await session.scalars(select(Evidence))).all()
    assert [(r.kind, r.release_id, r.actor) for r in rows] == [
        ("release.published", published.release_id, "test")
    ]
    assert rows[0].data["manifest_sha256"] == published.manifest_sha256
    assert rows[0].data["artifacts"] == 6


async def test_signature_verifies_the_original_folder_and_catches_a_change(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "src")
    await publish_in_unit(runtime, request(tmp_path, folder), actor="test")
    release = await within(
        runtime, lambda uow: get_release(uow, parse_model_ref("acme/sample"), "1.0")
    )
    verify_folder(folder, release.signature_bundle, runtime.signing_key.public_pem)

    (folder / "modeling.py").write_bytes(b"print('tampered')\n")
    with pytest.raises(SignatureInvalid, match=r"modeling\.py"):
        verify_folder(folder, release.signature_bundle, runtime.signing_key.public_pem)


async def test_component_overrides_win_over_the_policy(runtime: Runtime, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src")
    overrides = (parse_override("*.txt=data_manifest"), parse_override("config.json=code"))
    await publish_in_unit(
        runtime, request(tmp_path, folder, component_overrides=overrides), actor="test"
    )
    release = await within(
        runtime, lambda uow: get_release(uow, parse_model_ref("acme/sample"), "1.0")
    )
    names = {c.id: c.name for c in release.components}
    by_path = {a.path: names[a.component_id] for a in release.artifacts}
    assert by_path["notes.txt"] == "data_manifest"
    assert by_path["config.json"] == "code"
    assert {c.name: c.artifact_count for c in release.components} == {
        "code": 2,
        "data_manifest": 1,
        "model_card": 1,
        "weights": 2,
    }


async def test_identical_files_across_releases_are_stored_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "src")
    await publish_in_unit(runtime, request(tmp_path, folder), actor="test")
    await publish_in_unit(runtime, request(tmp_path, folder, version="1.1"), actor="test")
    async with runtime.sessionmaker() as session:
        digests = (await session.scalars(select(Artifact.sha256))).all()
    assert len(digests) == 12
    assert len(set(digests)) == 6
    if runtime.storage.local_path(digests[0]) is not None:
        objects = [
            p for p in (runtime.settings.home / "objects" / "objects").rglob("*") if p.is_file()
        ]
        assert len(objects) == 6


async def test_existing_version_is_refused_and_nothing_changes(
    runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    before = await count(runtime, Evidence)
    with pytest.raises(Conflict, match=r"acme/sample:1.0 already exists"):
        await publish(runtime, tmp_path)
    assert await count(runtime, Release) == 1
    assert await count(runtime, Evidence) == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda f: None, "has no files to publish"),
        (lambda f: os.symlink("/etc/hostname", f / "escape.bin"), "a link that leaves the folder"),
        (lambda f: os.symlink(f / "missing", f / "broken.bin"), "a broken link"),
        (lambda f: os.mkfifo(f / "pipe.bin"), "not a regular file"),
        (lambda f: os.symlink(f.parent, f / "loop"), "a link to a folder"),
    ],
    ids=["empty", "escaping-link", "broken-link", "fifo", "linked-folder"],
)
async def test_bad_folders_are_refused_before_anything_is_recorded(
    runtime: Runtime,
    tmp_path: Path,
    setup,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    setup(folder)
    if message != "has no files to publish":
        (folder / "model.safetensors").write_bytes(b"x" * 100)
    with pytest.raises(InvalidInput, match=message):
        await publish_in_unit(runtime, request(tmp_path, folder), actor="test")
    assert await count(runtime, Release) == 0
    assert await count(runtime, Model) == 0
    assert await count(runtime, Evidence) == 0


async def test_a_link_inside_the_folder_is_published_as_the_file(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "src")
    os.symlink("model.safetensors", folder / "alias.safetensors")
    await publish_in_unit(runtime, request(tmp_path, folder), actor="test")
    release = await within(
        runtime, lambda uow: get_release(uow, parse_model_ref("acme/sample"), "1.0")
    )
    by_path = {a.path: a.sha256 for a in release.artifacts}
    assert by_path["alias.safetensors"] == by_path["model.safetensors"]


async def test_missing_folder_and_bad_license_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src")
    with pytest.raises(InvalidInput, match="no such folder"):
        await publish_in_unit(runtime, request(tmp_path, tmp_path / "nope"), actor="test")
    with pytest.raises(InvalidInput, match=r"license file .* no such file"):
        await publish_in_unit(
            runtime, request(tmp_path, folder, license_file=tmp_path / "none.txt"), actor="test"
        )
    empty = tmp_path / "empty-license.txt"
    empty.write_text("  \n")
    with pytest.raises(InvalidInput, match="is empty"):
        await publish_in_unit(runtime, request(tmp_path, folder, license_file=empty), actor="test")
    binary = tmp_path / "binary-license.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidInput, match="UTF-8"):
        await publish_in_unit(runtime, request(tmp_path, folder, license_file=binary), actor="test")
    assert await count(runtime, Release) == 0


@pytest.mark.parametrize("version", ["", "1.0/evil", "..", "-1", "a" * 65, "1 0"])
async def test_invalid_versions_are_refused(runtime: Runtime, tmp_path: Path, version: str) -> None:
    folder = make_folder(tmp_path / "src")
    with pytest.raises(InvalidName, match="invalid version"):
        await publish_in_unit(runtime, request(tmp_path, folder, version=version), actor="test")
    assert await count(runtime, Release) == 0


@pytest.mark.parametrize("name", ["acme", "acme/", "/x", "acme/a/b", "ac me/x", "acme/..", "-a/b"])
def test_invalid_model_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid model name"):
        parse_model_ref(name)


@pytest.mark.slow
def test_a_publish_killed_halfway_leaves_no_release_and_a_rerun_succeeds(
    settings_env: object, tmp_path: Path
) -> None:
    import signal
    import time

    folder = tmp_path / "big"
    folder.mkdir()
    chunk = os.urandom(1 << 20)
    for i in range(30):
        (folder / f"model-{i:05d}.safetensors").write_bytes(chunk * 6 + i.to_bytes(4, "big"))
    license_file = make_license(tmp_path)
    command = [
        sys.executable,
        "-m",
        "gateway",
        "release",
        "publish",
        "acme/big",
        "1.0",
        str(folder),
        "--license",
        str(license_file),
    ]
    # Migrate first, so the kill lands in the middle of storing rather than of migrating.
    subprocess.run(
        [sys.executable, "-m", "gateway", "db", "upgrade"], check=True, capture_output=True
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    home = Path(os.environ["GATEWAY_HOME"])
    deadline = time.monotonic() + 60
    storing = home / "objects" / "tmp"
    # Kill as soon as storing has visibly started but cannot have finished.
    while time.monotonic() < deadline and process.poll() is None:
        if (storing.exists() and any(storing.iterdir())) or _s3_uploads_started():
            break
        time.sleep(0.005)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGKILL)
    process.wait()

    listing = subprocess.run(
        [sys.executable, "-m", "gateway", "release", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "No releases yet." in listing.stdout

    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "Published acme/big:1.0: 30 files" in again.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "gateway", "release", "show", "acme/big:1.0"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "draft" in shown.stdout


def _s3_uploads_started() -> bool:
    """In S3 mode, storing has started once a multipart upload is open."""
    url = os.environ.get("GATEWAY_STORAGE_URL", "")
    if not url.startswith("s3://"):
        return False
    import boto3

    bucket = url[5:].split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=os.environ["GATEWAY_S3_ENDPOINT_URL"])
    listed = client.list_multipart_uploads(Bucket=bucket)
    return bool(listed.get("Uploads")) or bool(
        client.list_objects_v2(Bucket=bucket).get("KeyCount")
    )
