"""The parts a running gateway needs, built once from the settings: database, storage,
policy and signing key. The app factory and every CLI command build one of these; nothing
is created at import time."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.api_access.meters import ApiMeter, meter_for
from gateway.config import ConfigError, Settings
from gateway.credentials.key_encryption import KeyEncryptor, LocalKeyEncryptor
from gateway.credentials.url_tokens import KeyCache, prepare_keys
from gateway.db.changes import Changes
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.group_commit import GroupCommit
from gateway.db.uow import UnitOfWork, unit_of_work
from gateway.errors import InvalidInput
from gateway.input_files import read_input_text
from gateway.ratelimits.store import DatabaseRateLimitStore
from gateway.signing.release import SigningKey, ensure_signing_key
from gateway.storage import Storage, StorageError, storage_from_url
from policies.loader import PolicyError, load_policy
from policies.schema import Policy
from stages.actors import Actor, ActorKind
from stages.release import StageMachine


def utcnow() -> datetime:
    return datetime.now(UTC)


def read_policy(path: Path | None) -> Policy:
    """Load the configured policy file, or the shipped default."""
    if path is None:
        text = resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")
        return load_policy(text, "policies/default.toml")
    try:
        text = read_input_text(path, what="policy")
    except InvalidInput as exc:
        raise ConfigError(f"GATEWAY_POLICY_FILE: {exc.message}") from exc
    try:
        return load_policy(text, str(path))
    except PolicyError as exc:
        raise ConfigError(f"GATEWAY_POLICY_FILE: {exc}") from exc


def cli_actor() -> Actor:
    """Who an operator command acts as: the local user, recorded in evidence."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(ActorKind.OPERATOR_CLI, f"{user}@{socket.gethostname()}")


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    signing_key: SigningKey
    key_encryptor: KeyEncryptor
    clock: Callable[[], datetime] = field(default=utcnow)
    url_keys: KeyCache = field(default_factory=KeyCache)
    # Evidence that stands alone, written by group commit (gateway/db/group_commit.py).
    group_commit: GroupCommit = field(init=False)
    # The hot paths' caches and what keeps them true (gateway/db/changes.py).
    changes: Changes = field(init=False)
    # When this process's scheduler started: a job is not overdue before it could have run.
    scheduler_started_at: datetime | None = None
    # Where API verification counts requests and credits (gateway/api_access/meters.py).
    meter: ApiMeter = field(init=False)
    # Key id -> when this process last wrote a key's use (gateway/keys/service.py).
    keys_noted: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.group_commit = GroupCommit(self)
        self.meter = meter_for(self.settings.redis_url, DatabaseRateLimitStore(self.engine))
        self.changes = Changes(self.settings.database_url, self.settings.cache_seconds)
        self.changes.on_change(("url_signing_keys",), self.url_keys.forget)
        self._machine: tuple[object, StageMachine] | None = None

    @property
    def stage_machine(self) -> StageMachine:
        """The policy's stage machine, built once per ladder (every access decision asks
        for it, once per artifact of a manifest)."""
        ladder = self.policy.ladder
        if self._machine is None or self._machine[0] is not ladder:
            self._machine = (ladder, StageMachine(ladder.names))
        return self._machine[1]

    def unit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One unit of work (gateway/db/uow.py): commits at the end of the block, rolls
        back on an error."""
        return unit_of_work(self)

    async def prepare(self) -> int:
        """What `gateway serve` checks before it starts its workers: the key-encryption key
        opens every URL signing key (else ConfigError naming it), keys stored in clear get
        sealed, and a first key exists; the evidence log's key is sealed under the current
        key-encryption key too. Idempotent; returns how many keys it sealed."""
        from gateway.evidence_log.service import reseal_log_key

        async with self.unit() as uow:
            session = await uow.write()
            changed = await prepare_keys(session, self.key_encryptor, self.clock())
            return changed + await reseal_log_key(session, self.key_encryptor)

    async def close(self) -> None:
        await self.meter.close()
        await self.changes.stop()
        await self.group_commit.drain()
        await self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    settings.home.mkdir(parents=True, exist_ok=True)
    policy = read_policy(settings.policy_file)
    try:
        storage = storage_from_url(
            settings.storage_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            timeout_seconds=settings.storage_timeout_seconds,
        )
    except (ValueError, StorageError) as exc:
        raise ConfigError(f"GATEWAY_STORAGE_URL: {exc}") from exc
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        policy=policy,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        storage=storage,
        signing_key=ensure_signing_key(settings.keys_dir),
        key_encryptor=LocalKeyEncryptor.for_settings(settings),
    )
