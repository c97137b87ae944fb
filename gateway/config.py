"""Effective configuration: defaults, then `GATEWAY_HOME/gateway.toml`, then environment.

Every setting is validated once, at load time, so a bad value stops the gateway before it
serves anything, with a message naming the setting and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_SQLITE_PREFIX = "sqlite+aiosqlite:///"
_POSTGRES_PREFIX = "postgresql+asyncpg://"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class ConfigError(Exception):
    """A setting has a value the gateway cannot use."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    s3_endpoint_url: str | None
    s3_region: str | None
    policy_file: Path | None
    public_url: str

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    def masked(self) -> dict[str, str]:
        """The settings as strings, with passwords in URLs replaced by `***`."""
        shown: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            shown[field.name] = "(not set)" if value is None else _mask_url(str(value))
        if self.policy_file is None:
            shown["policy_file"] = "(shipped policies/default.toml)"
        return shown


# name in gateway.toml -> environment variable
_ENV = {
    "database_url": "GATEWAY_DATABASE_URL",
    "storage_url": "GATEWAY_STORAGE_URL",
    "s3_endpoint_url": "GATEWAY_S3_ENDPOINT_URL",
    "s3_region": "GATEWAY_S3_REGION",
    "policy_file": "GATEWAY_POLICY_FILE",
    "public_url": "GATEWAY_PUBLIC_URL",
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the configuration for this process."""
    env = os.environ if environ is None else environ
    home = Path(env.get("GATEWAY_HOME", ".gateway")).expanduser().absolute()
    if home.exists() and not home.is_dir():
        raise ConfigError(f"GATEWAY_HOME: expected a folder, but {home} is a file")
    raw: dict[str, object] = {}
    config_file = home / "gateway.toml"
    if config_file.is_file():
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_file}: not valid TOML: {exc}") from exc
        unknown = sorted(set(raw) - set(_ENV))
        if unknown:
            raise ConfigError(
                f"{config_file}: unknown setting {unknown[0]!r}; "
                f"known settings are {', '.join(sorted(_ENV))}"
            )

    def pick(name: str) -> tuple[str | None, str]:
        var = _ENV[name]
        if var in env and env[var] != "":
            return env[var], var
        value = raw.get(name)
        if value is None:
            return None, f"{config_file}: {name}"
        if not isinstance(value, str):
            raise ConfigError(f"{config_file}: {name}: expected a string, got {value!r}")
        return value, f"{config_file}: {name}"

    database_url, where = pick("database_url")
    database_url = _check_database_url(
        database_url or f"{_SQLITE_PREFIX}{home / 'gateway.sqlite3'}", where
    )
    storage_url, where = pick("storage_url")
    storage_url = _check_storage_url(storage_url or (home / "objects").as_uri(), where)
    endpoint, where = pick("s3_endpoint_url")
    if endpoint is not None:
        _check_http_url(endpoint, where)
    region, _ = pick("s3_region")
    policy, where = pick("policy_file")
    policy_file = None
    if policy is not None:
        policy_file = Path(policy).expanduser().absolute()
        if not policy_file.is_file():
            raise ConfigError(f"{where}: expected a policy file, but {policy_file} does not exist")
    public_url, where = pick("public_url")
    public_url = (public_url or DEFAULT_PUBLIC_URL).rstrip("/")
    _check_http_url(public_url, where)
    return Settings(
        home=home,
        database_url=database_url,
        storage_url=storage_url,
        s3_endpoint_url=endpoint,
        s3_region=region,
        policy_file=policy_file,
        public_url=public_url,
    )


def _check_database_url(url: str, where: str) -> str:
    if url.startswith((_SQLITE_PREFIX, _POSTGRES_PREFIX)):
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return _POSTGRES_PREFIX + url.split("://", 1)[1]
    raise ConfigError(
        f"{where}: expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB, "
        f"got {_mask_url(url)!r}"
    )


def _check_storage_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path.startswith("/"):
        return url
    if parts.scheme == "s3" and parts.netloc:
        return url
    raise ConfigError(
        f"{where}: expected file:///absolute/path or s3://bucket[/prefix], got {url!r}"
    )


def _check_http_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {url!r}")


def _mask_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return text
