"""What each setting may hold: the checks `gateway.config` runs on every value it
loads, each raising ConfigError with the setting's name and what was expected."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SQLITE_PREFIX = "sqlite+aiosqlite:///"
POSTGRES_PREFIX = "postgresql+asyncpg://"


class ConfigError(Exception):
    """A setting has a value the gateway cannot use."""


# No cached entry may be older than this, whatever the setting (the recall bound).
MAX_CACHE_SECONDS = 1.0
# A storage call that may wait longer than an hour is not bounded in any useful sense.
MAX_TIMEOUT_SECONDS = 3600


def check_secret_key(value: str | None, where: str) -> str | None:
    if value is not None:
        from gateway.credentials.key_encryption import parse_keks  # it imports gateway.config

        parse_keks(value, where)
    return value


def check_database_url(url: str, where: str) -> str:
    if url.startswith((SQLITE_PREFIX, POSTGRES_PREFIX)):
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return POSTGRES_PREFIX + url.split("://", 1)[1]
    raise ConfigError(
        f"{where}: expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB, "
        f"got {mask_url(url)!r}"
    )


def check_storage_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path.startswith("/"):
        return url
    if parts.scheme == "s3" and parts.netloc:
        return url
    raise ConfigError(
        f"{where}: expected file:///absolute/path or s3://bucket[/prefix], got {url!r}"
    )


def check_seconds(text: str, where: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise ConfigError(
            f"{where}: expected a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT_SECONDS}, got {text!r}"
        )
    return seconds


def check_cache_seconds(text: str | None, where: str) -> float:
    if text is None:
        return MAX_CACHE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds <= MAX_CACHE_SECONDS:
        raise ConfigError(
            f"{where}: expected a number of seconds from 0 (no caching) to "
            f"{MAX_CACHE_SECONDS:g}, got {text!r}"
        )
    return seconds


def check_proxies(text: str | None, where: str) -> tuple[str, ...]:
    if text is None:
        return ()
    proxies = tuple(item.strip() for item in text.split(",") if item.strip())
    for item in proxies:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"{where}: expected addresses or networks separated by commas "
                f"(like 127.0.0.1, 10.0.0.0/8), got {item!r}"
            ) from None
    return proxies


# Long enough that guessing it is hopeless (`openssl rand -hex 16` gives 32).
MIN_METRICS_TOKEN_LENGTH = 24


METRICS_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: it travels in a header


def check_metrics_token(text: str | None, where: str) -> str | None:
    if text is None:
        return None
    if len(text) < MIN_METRICS_TOKEN_LENGTH or not METRICS_TOKEN.fullmatch(text):
        raise ConfigError(
            f"{where}: expected at least {MIN_METRICS_TOKEN_LENGTH} printable ASCII characters "
            "without spaces (e.g. from `openssl rand -hex 16`)"
        )
    return text


def check_whole_seconds(text: str, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_TIMEOUT_SECONDS:
        raise ConfigError(
            f"{where}: expected a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}, "
            f"got {text!r}"
        )
    return int(text)


def check_existing_file(text: str | None, where: str, *, what: str) -> Path | None:
    """The absolute path `text` names, if it exists (`what` says what it should be)."""
    if text is None:
        return None
    path = Path(text).expanduser().absolute()
    if not path.exists():
        raise ConfigError(f"{where}: expected {what}, but {path} does not exist")
    return path


def check_http_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {url!r}")


def check_redis_url(url: str | None, where: str) -> str | None:
    """A redis:// or rediss:// URL (with a database number, optionally), or None."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"{where}: expected a redis:// or rediss:// URL, got {mask_url(url)!r}")
    return url


def mask_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return text
