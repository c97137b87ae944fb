"""URL signing keys at rest: sealed with a key-encryption key that is not in the database.

A dump of the database alone cannot mint a URL; a wrong or missing key-encryption key
stops the start with a message naming it; rows from before sealing are sealed at start,
once; rotation re-encrypts; secret key files are readable by their owner alone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from alembic import command
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, text

from gateway.cli import main
from gateway.config import ConfigError, Settings, load_settings
from gateway.credentials import url_tokens
from gateway.credentials.key_encryption import (
    KEK_FILE,
    KeyEncryptionError,
    LocalKeyEncryptor,
    kek_id,
    new_kek_text,
    parse_keks,
)
from gateway.db.engine import make_engine
from gateway.db.migrate import alembic_config, upgrade
from gateway.db.models import UrlSigningKey
from gateway.runtime import Runtime, build_runtime
from gateway.signing.release import KEY_FILE, ensure_signing_key
from tests.backends import DATABASES
from tests.conftest import PostgresServer
from tests.served import clean_env, free_port
from tests.units import within, writing

pytestmark = pytest.mark.anyio
PEM_MARK = "PRIVATE KEY"


async def rows(rt: Runtime) -> list[UrlSigningKey]:
    async with rt.sessionmaker() as session:
        return list((await session.scalars(select(UrlSigningKey))).all())


async def started(settings: Settings) -> Runtime:
    rt = build_runtime(settings)
    await rt.prepare()
    return rt


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime that has been through start-up: the key file and a first key exist."""
    rt = await started(settings)
    yield rt
    await rt.close()


def legacy_row(kid_hint: str = "") -> tuple[dict[str, object], Ed25519PrivateKey]:
    """A row as the gateway wrote it before sealing: the private key as plain PEM."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    kid = f"legacy{kid_hint}"
    jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
    return {"kid": kid, "pem": pem, "jwk": jwk}, private


async def test_a_database_dump_alone_cannot_mint_a_url(live: Runtime) -> None:
    (row,) = await rows(live)
    # Nothing in the row is a usable private key...
    for column in UrlSigningKey.__table__.columns:
        assert PEM_MARK not in str(getattr(row, column.name))
    with pytest.raises(ValueError, match="Unable to load PEM"):
        serialization.load_pem_private_key(row.sealed_private_key.encode(), password=None)
    # ...and no other key-encryption key opens it, not even with the right kid.
    stranger = LocalKeyEncryptor(keys=parse_keks(new_kek_text(), "test"))
    with pytest.raises(KeyEncryptionError):
        stranger.open(row.sealed_private_key, kid=row.kid)
    # The twin: with the gateway's own key-encryption key it signs a token that verifies.
    key = await within(live, lambda uow: live.url_keys.signing(uow, live.clock()))
    assert key.kid == row.kid
    now = datetime.now(UTC)
    token, _ = url_tokens.issue(
        key,
        issuer="http://testserver",
        account_id="a",
        grant_id="g",
        artifact_id=1,
        download_id="d",
        key_id=None,
        now=now,
        ttl_seconds=60,
    )
    claims = url_tokens.verify(
        token, issuer="http://testserver", keys={row.kid: dict(row.public_jwk)}, now=now
    )
    assert claims.artifact_id == 1


async def test_a_sealed_key_does_not_open_on_another_row(live: Runtime) -> None:
    (row,) = await rows(live)
    with pytest.raises(KeyEncryptionError, match="changed or moved"):
        live.key_encryptor.open(row.sealed_private_key, kid="some-other-kid")


async def test_the_key_file_is_made_on_first_start_with_mode_0600(live: Runtime) -> None:
    path = live.settings.keys_dir / KEK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (row,) = await rows(live)
    assert row.sealed_private_key.startswith(f"rgkek1:{live.key_encryptor.current_id()}:")
    # The key-encryption key is in the file, not in the database.
    kek_text = path.read_text().strip()
    assert kek_text not in row.sealed_private_key


async def test_a_missing_key_file_stops_the_start_naming_it(live: Runtime) -> None:
    path = live.settings.keys_dir / KEK_FILE
    path.unlink()
    restarted = build_runtime(live.settings)
    try:
        with pytest.raises(ConfigError, match=f"{path} is missing") as refused:
            await restarted.prepare()
        assert "GATEWAY_SECRET_KEY" in str(refused.value)
        # Not silently replaced by a new key that could never open the stored ones.
        assert not path.exists()
    finally:
        await restarted.close()


async def test_a_wrong_secret_key_stops_the_start_naming_it(settings: Settings) -> None:
    first, second = new_kek_text(), new_kek_text()
    rt = await started(replace(settings, secret_key=first))
    await rt.close()
    wrong = build_runtime(replace(settings, secret_key=second))
    try:
        with pytest.raises(ConfigError) as refused:
            await wrong.prepare()
    finally:
        await wrong.close()
    message = str(refused.value)
    assert "GATEWAY_SECRET_KEY" in message
    assert kek_id(parse_keks(first, "t")[0]) in message
    # The twin: the right key starts.
    right = await started(replace(settings, secret_key=first))
    await right.close()


def test_a_command_with_the_wrong_secret_key_exits_2_naming_it(
    settings_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_KEY", new_kek_text())
    first = CliRunner().invoke(main, ["keys", "rotate-url-signing"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    monkeypatch.setenv("GATEWAY_SECRET_KEY", new_kek_text())
    refused = CliRunner().invoke(main, ["keys", "rotate-url-signing"], catch_exceptions=False)
    assert refused.exit_code == 2
    assert "GATEWAY_SECRET_KEY" in refused.output
    assert "Traceback" not in refused.output


def test_a_malformed_secret_key_is_refused_when_settings_load(tmp_path: Path) -> None:
    env = {"GATEWAY_HOME": str(tmp_path), "GATEWAY_SECRET_KEY": "too-short"}
    with pytest.raises(ConfigError, match="GATEWAY_SECRET_KEY: key 1 is not 32 bytes"):
        load_settings(env)
    good = new_kek_text()
    loaded = load_settings({**env, "GATEWAY_SECRET_KEY": good})
    assert loaded.secret_key == good
    assert loaded.masked()["secret_key"] == "***"
    assert good not in json.dumps(loaded.masked())


async def test_plaintext_rows_are_sealed_at_start_once(runtime: Runtime) -> None:
    values, private = legacy_row()
    async with writing(runtime) as session:
        await session.execute(
            insert(UrlSigningKey).values(
                kid=values["kid"],
                sealed_private_key=values["pem"],
                public_jwk=values["jwk"],
                created_at=datetime.now(UTC),
            )
        )
    assert await runtime.prepare() == 1
    (row,) = await rows(runtime)
    assert PEM_MARK not in row.sealed_private_key
    opened = runtime.key_encryptor.open(row.sealed_private_key, kid=row.kid)
    assert opened.decode() == values["pem"]
    # The same key still signs: URLs already issued under it keep verifying.
    key = await within(runtime, lambda uow: runtime.url_keys.signing(uow, runtime.clock()))
    assert key.kid == values["kid"]
    assert key.private_key.private_bytes_raw() == private.private_bytes_raw()
    # Once: a second start finds nothing to seal and changes nothing.
    assert await runtime.prepare() == 0
    assert [r.sealed_private_key for r in await rows(runtime)] == [row.sealed_private_key]


async def test_the_migration_keeps_old_rows_and_the_start_seals_them(
    empty_migrated_to_0005: str, tmp_path: Path
) -> None:
    values, _ = legacy_row()
    engine = make_engine(empty_migrated_to_0005)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO url_signing_keys (kid, private_pem, public_jwk, created_at) "
                    "VALUES (:kid, :pem, :jwk, :at)"
                ),
                {
                    "kid": values["kid"],
                    "pem": values["pem"],
                    "jwk": json.dumps(values["jwk"]),
                    "at": datetime.now(UTC),
                },
            )
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade, empty_migrated_to_0005)
    home = tmp_path / "home"
    home.mkdir()
    rt = await started(
        Settings(
            home=home,
            database_url=empty_migrated_to_0005,
            storage_url=(home / "objects").as_uri(),
            s3_endpoint_url=None,
            s3_region=None,
            policy_file=None,
            public_url="http://testserver",
            scheduler=False,
        )
    )
    try:
        (row,) = await rows(rt)
        assert row.kid == values["kid"]
        assert rt.key_encryptor.open(row.sealed_private_key, kid=row.kid).decode() == values["pem"]
    finally:
        await rt.close()


@pytest.fixture(params=DATABASES)
async def empty_migrated_to_0005(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at the revision before sealing (0005)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = await asyncio.to_thread(server.create, f"gw_old_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0005")
    return url


async def test_rotating_the_signing_key_seals_every_key_with_the_current_kek(
    settings: Settings,
) -> None:
    old, new = new_kek_text(), new_kek_text()
    rt = await started(replace(settings, secret_key=old))
    await rt.close()
    # The new key first, the old one after it: the rotation re-encrypts every row.
    both = build_runtime(replace(settings, secret_key=f"{new},{old}"))
    try:
        async with writing(both) as session:
            kid, retired = await url_tokens.rotate(session, both.key_encryptor, both.clock(), 60)
        assert len(retired) == 1
    finally:
        await both.close()
    only_new = await started(replace(settings, secret_key=new))
    try:
        found = await rows(only_new)
        assert {r.kid for r in found} == {kid, *retired}
        for row in found:
            assert only_new.key_encryptor.is_current(row.sealed_private_key)
            only_new.key_encryptor.open(row.sealed_private_key, kid=row.kid)
    finally:
        await only_new.close()


async def test_a_start_with_a_new_secret_key_first_reencrypts(settings: Settings) -> None:
    old, new = new_kek_text(), new_kek_text()
    rt = await started(replace(settings, secret_key=old))
    await rt.close()
    rotated = build_runtime(replace(settings, secret_key=f"{new},{old}"))
    try:
        assert await rotated.prepare() == 1
    finally:
        await rotated.close()
    only_new = await started(replace(settings, secret_key=new))
    await only_new.close()


def test_rotating_the_key_file_reencrypts_and_keeps_running_processes_working(
    settings_env: Settings,
) -> None:
    for _ in range(2):
        assert CliRunner().invoke(main, ["keys", "rotate-url-signing"]).exit_code == 0
    path = settings_env.keys_dir / KEK_FILE
    before = parse_keks(path.read_text(), "before")
    result = CliRunner().invoke(main, ["keys", "rotate-secret-key"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    after = parse_keks(path.read_text(), "after")
    assert after[1:] == before
    assert f"key-encryption key {kek_id(after[0])}" in result.output
    assert "Re-encrypted 2 of 2" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    async def check() -> None:
        # Only the new key: it opens every row.
        rt = build_runtime(replace(settings_env, secret_key=new_key_text(after[0])))
        try:
            for row in await rows(rt):
                rt.key_encryptor.open(row.sealed_private_key, kid=row.kid)
        finally:
            await rt.close()

    asyncio.run(check())


def new_key_text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_release_signing_key_file_is_made_owner_only(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    ensure_signing_key(keys)
    path = keys / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    ensure_signing_key(keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_processes_starting_at_once_share_one_whole_release_signing_key(tmp_path: Path) -> None:
    """Replicas on one shared home: every one of them reads the same complete key, never
    a half-written file or a second key."""
    keys = tmp_path / "keys"
    code = (
        "import sys, pathlib\n"
        "from gateway.signing.release import ensure_signing_key\n"
        "print(ensure_signing_key(pathlib.Path(sys.argv[1])).key_id)\n"
    )
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(keys)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(12)
    ]
    answers = [process.communicate(timeout=60) for process in starting]
    assert all(process.returncode == 0 for process in starting), [e for _, e in answers]
    assert len({out.strip() for out, _ in answers}) == 1
    assert [p.name for p in keys.iterdir()] == [KEY_FILE]  # no temporary file left behind


@pytest.mark.parametrize("fault", ["wrong-secret-key", "missing-key-file"])
def test_serve_stops_at_start_naming_the_key_encryption_key(
    settings_env: Settings, tmp_path: Path, fault: str
) -> None:
    first = new_kek_text() if fault == "wrong-secret-key" else None
    env = clean_env(**{k: v for k, v in os.environ.items() if k.startswith("GATEWAY_")})
    if first is not None:
        env["GATEWAY_SECRET_KEY"] = first
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "rotate-url-signing"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    if fault == "wrong-secret-key":
        env["GATEWAY_SECRET_KEY"] = new_kek_text()
        named = "GATEWAY_SECRET_KEY"
    else:
        (settings_env.keys_dir / KEK_FILE).unlink()
        named = str(settings_env.keys_dir / KEK_FILE)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
    assert process.returncode == 2, output
    assert named in output
    assert "Traceback" not in output
