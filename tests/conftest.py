"""Shared fixtures: real databases built by the migrations, real storage, a runtime.

Service and HTTP tests run on every backend in BACKENDS (tests/backends.py): SQLite with
local storage, and PostgreSQL with S3 storage on a loopback moto_server.
GATEWAY_TEST_BACKENDS changes the list (`all`, or `sqlite+file` for a quick local run).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.db.migrate import upgrade
from gateway.runtime import Runtime, build_runtime
from tests.backends import BACKENDS
from tests.served import SUITE_POLICY

pytest_plugins = [
    "tests.fixtures.faulty_proxy",
    "tests.fixtures.moto",
    "tests.fixtures.oidc",
    "tests.fixtures.rogue_provider",
    "tests.fixtures.smtp",
    "tests.fixtures.webhook_receiver",
]

POSTGRES_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class PostgresServer:
    """Creates and drops throwaway databases on the local PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def _execute(self, *statements: str) -> None:
        import asyncio

        import asyncpg

        async def go() -> None:
            connection = await asyncpg.connect(self.admin_url)
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        asyncio.run(go())

    def url(self, name: str) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"

    def create(self, name: str, template: str | None = None) -> str:
        suffix = f" TEMPLATE {template}" if template else ""
        # A test's commits need not wait for the disk: a crash of the PostgreSQL server
        # itself is not what any test is about, and every other behaviour (visibility,
        # locks, isolation) is the same.
        self._execute(
            f'CREATE DATABASE "{name}"{suffix}',
            f'ALTER DATABASE "{name}" SET synchronous_commit = off',
        )
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        self._execute(
            *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in reversed(self.created))
        )
        self.created.clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_ADMIN_URL)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file built by running the migrations; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres: PostgresServer) -> str:
    """A PostgreSQL database built by the migrations, used as a template per test."""
    name = f"gw_template_{uuid.uuid4().hex[:8]}"
    upgrade(postgres.create(name))
    return name


def fresh_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend.startswith("sqlite"):
        template: Path = request.getfixturevalue("migrated_sqlite")
        target = tmp_path / "gateway.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    server: PostgresServer = request.getfixturevalue("postgres")
    template_name: str = request.getfixturevalue("migrated_postgres_template")
    return server.create(f"gw_test_{uuid.uuid4().hex[:12]}", template=template_name)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for one backend combination, with a fresh migrated database."""
    backend: str = request.param
    home = tmp_path / "home"
    home.mkdir()
    storage_url = (home / "objects").as_uri()
    endpoint = None
    if backend.endswith("+s3"):
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        storage_url = f"s3://{bucket}/gateway"
    return Settings(
        home=home,
        database_url=fresh_database_url(backend, tmp_path, request),
        storage_url=storage_url,
        s3_endpoint_url=endpoint,
        s3_region="us-east-1" if endpoint else None,
        policy_file=SUITE_POLICY,
        public_url="http://testserver",
        # Tests run jobs themselves, at the moments they choose.
        scheduler=False,
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    await rt.close()


@pytest.fixture
def settings_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The same settings, exported as environment variables for CLI and subprocess tests."""
    monkeypatch.setenv("GATEWAY_HOME", str(settings.home))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_STORAGE_URL", settings.storage_url)
    if settings.s3_endpoint_url:
        monkeypatch.setenv("GATEWAY_S3_ENDPOINT_URL", settings.s3_endpoint_url)
        monkeypatch.setenv("GATEWAY_S3_REGION", settings.s3_region or "us-east-1")
    monkeypatch.setenv("GATEWAY_POLICY_FILE", str(settings.policy_file or SUITE_POLICY))
    return replace(settings)
