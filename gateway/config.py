"""Effective configuration: defaults, then `GATEWAY_HOME/gateway.toml`, then environment.

Every setting is validated once, at load time, so a bad value stops the gateway before it
serves anything, with a message naming the setting and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

# ConfigError and MAX_CACHE_SECONDS are the config's: callers import them from here.
from gateway.config_checks import MAX_CACHE_SECONDS as MAX_CACHE_SECONDS  # noqa: PLC0414
from gateway.config_checks import (
    SQLITE_PREFIX,
    check_cache_seconds,
    check_database_url,
    check_existing_file,
    check_http_url,
    check_metrics_token,
    check_proxies,
    check_redis_url,
    check_seconds,
    check_secret_key,
    check_storage_url,
    check_whole_seconds,
    mask_url,
)
from gateway.config_checks import ConfigError as ConfigError  # noqa: PLC0414
from gateway.ratelimits.rules import RateLimits, RateLimitSettingError, read_rate_limits
from policies.toml_text import read_toml

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
# Where GitHub publishes the keys its secret scanning signs partner reports with.
GITHUB_SCANNING_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"


@dataclass(frozen=True)
class OidcProvider:
    """A sign-in provider from `[oidc.<name>]` in gateway.toml."""

    name: str
    title: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")


@dataclass(frozen=True)
class Webhook:
    """An endpoint from `[[webhooks]]` in gateway.toml; payloads are signed with `secret`."""

    url: str
    secret: str
    events: tuple[str, ...] = ()  # empty: every event
    # Loopback, private and link-local hosts are refused unless this is set.
    allow_private: bool = False


# `GATEWAY_SMTP_URL`, read here so a bad one stops the start; notify/mail.py sends with it.
Security = Literal["plain", "starttls", "tls"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send, read from `GATEWAY_SMTP_URL`."""

    host: str
    port: int
    security: Security
    username: str | None = None
    # Never shown in logs or tracebacks.
    password: str | None = dataclasses.field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """The server a `smtp://`, `smtp+starttls://` or `smtps://` URL names."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            "GATEWAY_SMTP_URL: expected smtp://[user:password@]host[:port] "
            "(or smtps://, smtp+starttls://)"
        )
    security, default_port = _SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigError(f"GATEWAY_SMTP_URL: invalid port: {exc}") from exc
    if not parts.hostname:
        raise ConfigError("GATEWAY_SMTP_URL: expected a host name")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpServer(parts.hostname, port, security, username, password)


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    s3_endpoint_url: str | None
    s3_region: str | None
    policy_file: Path | None
    public_url: str
    smtp_url: str | None = None
    mail_from: str = "Release Gateway <gateway@localhost>"
    oidc: tuple[OidcProvider, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    scheduler: bool = True  # run the scheduled jobs in this process (GATEWAY_SCHEDULER=off)
    rate_limits: RateLimits = dataclasses.field(default_factory=RateLimits)
    # The key-encryption key(s) of the URL signing keys; None: a file under keys_dir.
    secret_key: str | None = None
    # The longest one call to S3 storage waits, retries included (None: storage's default).
    storage_timeout_seconds: float | None = None
    # How operators are mailed about applications awaiting review: one mail each
    # ("immediate"), or one summary a day ("daily"); the inbox hears of each at once.
    operator_notices: str = "immediate"
    # How long a presigned S3 URL that /d/ redirects to stays valid: a transfer already
    # redirected can start (or resume) within this long after a recall.
    s3_redirect_seconds: int = 30
    # nginx's internal location for local storage (e.g. "/_objects/"): /d/ decides, then
    # answers X-Accel-Redirect and nginx sends the file. None: the gateway sends it.
    accel_redirect: str | None = None
    # The proxies (addresses or networks) in front of the gateway: from these, the client
    # is the right-most address of X-Forwarded-For that is not one of them. Empty: the
    # connection's own address, whatever the headers say.
    trusted_proxies: tuple[str, ...] = ()
    # How long a process may answer the hot paths from its caches (gateway/db/changes.py)
    # without reading the database: at most one second; 0 turns the caches off.
    cache_seconds: float = 1.0
    # The bearer token that lets a client outside loopback and private networks read
    # /metrics; None: only those networks may. Never shown in logs or tracebacks.
    metrics_token: str | None = dataclasses.field(default=None, repr=False)
    # The public keys that sign GitHub's secret scanning reports (gateway/keys/
    # secret_scanning.py): the key list's URL, or the same list in a local file, which is
    # read instead of the URL when set (a gateway that cannot reach GitHub, tests).
    secret_scanning_keys_url: str = GITHUB_SCANNING_KEYS_URL
    secret_scanning_keys_file: Path | None = None
    # Where API verification counts requests and credits (redis://...): one atomic script
    # a verification instead of two database writes. None: the database counts them.
    redis_url: str | None = dataclasses.field(default=None, repr=False)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

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
            if field.name == "oidc":
                text = ", ".join(f"{p.name} ({p.issuer})" for p in self.oidc) or "(none)"
            elif field.name == "webhooks":
                text = ", ".join(w.url for w in self.webhooks) or "(none)"
            elif field.name == "rate_limits":
                text = self.rate_limits.describe()
            elif field.name == "trusted_proxies":
                text = ", ".join(self.trusted_proxies) or "(none: X-Forwarded-For is ignored)"
            elif field.name == "secret_key":
                text = "***" if value else f"(a file under {self.keys_dir})"
            elif field.name == "metrics_token":
                text = "***" if value else "(none: loopback and private addresses only)"
            elif field.name == "secret_scanning_keys_file":
                text = str(value) if value else "(none: the list at secret_scanning_keys_url)"
            else:
                text = "(not set)" if value is None else mask_url(str(value))
            shown[field.name] = text
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
    "smtp_url": "GATEWAY_SMTP_URL",
    "mail_from": "GATEWAY_MAIL_FROM",
    "scheduler": "GATEWAY_SCHEDULER",
    "secret_key": "GATEWAY_SECRET_KEY",
    "storage_timeout_seconds": "GATEWAY_STORAGE_TIMEOUT",
    "operator_notices": "GATEWAY_OPERATOR_NOTICES",
    "s3_redirect_seconds": "GATEWAY_S3_REDIRECT_SECONDS",
    "accel_redirect": "GATEWAY_ACCEL_REDIRECT",
    "trusted_proxies": "GATEWAY_TRUSTED_PROXIES",
    "cache_seconds": "GATEWAY_CACHE_SECONDS",
    "metrics_token": "GATEWAY_METRICS_TOKEN",
    "secret_scanning_keys_url": "GATEWAY_SECRET_SCANNING_KEYS_URL",
    "secret_scanning_keys_file": "GATEWAY_SECRET_SCANNING_KEYS_FILE",
    "redis_url": "GATEWAY_REDIS_URL",
}
OPERATOR_NOTICES = ("immediate", "daily")
_TABLES = ("oidc", "webhooks", "rate_limits")
_NUMBERS = frozenset({"storage_timeout_seconds", "s3_redirect_seconds", "cache_seconds"})


def _read_config_file(config_file: Path) -> dict[str, object]:
    """The settings in gateway.toml, if there is one; unknown names are refused."""
    raw: dict[str, object] = {}
    if config_file.is_file():
        try:
            raw = read_toml(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            # Bad TOML, nesting too deep, a number too long to read, or bad UTF-8.
            raise ConfigError(f"{config_file}: not valid TOML: {exc}") from exc
        unknown = sorted(set(raw) - set(_ENV) - set(_TABLES))
        if unknown:
            raise ConfigError(
                f"{config_file}: unknown setting {unknown[0]!r}; "
                f"known settings are {', '.join(sorted([*_ENV, *_TABLES]))}"
            )
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the configuration for this process."""
    env = os.environ if environ is None else environ
    home = Path(env.get("GATEWAY_HOME", ".gateway")).expanduser().absolute()
    if home.exists() and not home.is_dir():
        raise ConfigError(f"GATEWAY_HOME: expected a folder, but {home} is a file")
    config_file = home / "gateway.toml"
    raw = _read_config_file(config_file)

    def pick(name: str) -> tuple[str | None, str]:
        var = _ENV[name]
        if var in env and env[var] != "":
            return env[var], var
        value = raw.get(name)
        if value is None:
            return None, f"{config_file}: {name}"
        if name in _NUMBERS and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value), f"{config_file}: {name}"
        if not isinstance(value, str):
            raise ConfigError(f"{config_file}: {name}: expected a string, got {value!r}")
        return value, f"{config_file}: {name}"

    database_url, where = pick("database_url")
    database_url = check_database_url(
        database_url or f"{SQLITE_PREFIX}{home / 'gateway.sqlite3'}", where
    )
    storage_url, where = pick("storage_url")
    storage_url = check_storage_url(storage_url or (home / "objects").as_uri(), where)
    endpoint, where = pick("s3_endpoint_url")
    if endpoint is not None:
        check_http_url(endpoint, where)
    region, _ = pick("s3_region")
    # Only existence here: what kind of file it is, the reader checks (runtime.py).
    policy_file = check_existing_file(*pick("policy_file"), what="a policy file")
    public_url, where = pick("public_url")
    public_url = (public_url or DEFAULT_PUBLIC_URL).rstrip("/")
    check_http_url(public_url, where)
    smtp_url, where = pick("smtp_url")
    if smtp_url is not None:
        parse_smtp_url(smtp_url)
    mail_from, _ = pick("mail_from")
    scheduler, where = pick("scheduler")
    if scheduler not in (None, "on", "off"):
        raise ConfigError(f"{where}: expected on or off, got {scheduler!r}")
    secret_key = check_secret_key(*pick("secret_key"))
    timeout, where = pick("storage_timeout_seconds")
    storage_timeout = check_seconds(timeout, where) if timeout is not None else None
    operator_notices, where = pick("operator_notices")
    if operator_notices not in (None, *OPERATOR_NOTICES):
        raise ConfigError(f"{where}: expected immediate or daily, got {operator_notices!r}")
    s3_redirect_seconds, accel_redirect = _read_delivery(pick)
    trusted_proxies = check_proxies(*pick("trusted_proxies"))
    cache_seconds = check_cache_seconds(*pick("cache_seconds"))
    metrics_token = check_metrics_token(*pick("metrics_token"))
    scanning_keys_url, scanning_keys_file = _read_scanning_keys(pick)
    redis_url = check_redis_url(*pick("redis_url"))
    return Settings(
        home=home,
        database_url=database_url,
        storage_url=storage_url,
        s3_endpoint_url=endpoint,
        s3_region=region,
        policy_file=policy_file,
        public_url=public_url,
        smtp_url=smtp_url,
        mail_from=mail_from or "Release Gateway <gateway@localhost>",
        oidc=_read_oidc(raw.get("oidc"), f"{config_file}: oidc"),
        webhooks=_read_webhooks(raw.get("webhooks"), f"{config_file}: webhooks"),
        scheduler=scheduler != "off",
        rate_limits=_read_rate_limits(raw.get("rate_limits"), f"{config_file}: rate_limits"),
        secret_key=secret_key,
        storage_timeout_seconds=storage_timeout,
        operator_notices=operator_notices or "immediate",
        s3_redirect_seconds=s3_redirect_seconds,
        accel_redirect=accel_redirect,
        trusted_proxies=trusted_proxies,
        cache_seconds=cache_seconds,
        metrics_token=metrics_token,
        secret_scanning_keys_url=scanning_keys_url,
        secret_scanning_keys_file=scanning_keys_file,
        redis_url=redis_url,
    )


_OIDC_KEYS = ("title", "issuer", "client_id", "client_secret", "scopes")


def _read_oidc(value: object, where: str) -> tuple[OidcProvider, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected tables like [oidc.university]")
    providers = []
    for name, body in value.items():
        here = f"{where}.{name}"
        if not isinstance(body, dict):
            raise ConfigError(f"{here}: expected a table")
        unknown = sorted(set(body) - set(_OIDC_KEYS))
        if unknown:
            raise ConfigError(
                f"{here}: unknown key {unknown[0]!r}; keys are {', '.join(_OIDC_KEYS)}"
            )
        for key in ("issuer", "client_id", "client_secret"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise ConfigError(f"{here}.{key}: expected a non-empty string")
        check_http_url(body["issuer"], f"{here}.issuer")
        scopes = body.get("scopes", ["openid", "email", "profile"])
        if not isinstance(scopes, list) or "openid" not in scopes:
            raise ConfigError(f"{here}.scopes: expected a list of scopes that includes openid")
        providers.append(
            OidcProvider(
                name=name,
                title=str(body.get("title") or name),
                issuer=body["issuer"].rstrip("/"),
                client_id=body["client_id"],
                client_secret=body["client_secret"],
                scopes=tuple(str(s) for s in scopes),
            )
        )
    return tuple(providers)


def _read_rate_limits(value: object, where: str) -> RateLimits:
    try:
        return read_rate_limits(value, where)
    except RateLimitSettingError as exc:
        raise ConfigError(str(exc)) from exc


def _read_webhooks(value: object, where: str) -> tuple[Webhook, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected [[webhooks]] tables")
    hooks = []
    for index, body in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(body, dict) or set(body) - {"url", "secret", "events", "allow_private"}:
            raise ConfigError(
                f"{here}: expected a table with url, secret, and optional events and allow_private"
            )
        if not isinstance(body.get("url"), str):
            raise ConfigError(f"{here}.url: expected a URL")
        check_http_url(body["url"], f"{here}.url")
        allow_private = body.get("allow_private", False)
        if not isinstance(allow_private, bool):
            raise ConfigError(f"{here}.allow_private: expected true or false")
        from gateway.notify.addresses import literal_refusal

        refusal = None if allow_private else literal_refusal(body["url"])
        if refusal:
            raise ConfigError(
                f"{here}.url: {refusal}; webhooks go to public addresses only "
                "(set allow_private = true for an endpoint inside your network)"
            )
        secret = body.get("secret")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ConfigError(f"{here}.secret: expected a string of at least 16 characters")
        events = body.get("events", [])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ConfigError(f"{here}.events: expected a list of event names")
        hooks.append(
            Webhook(
                url=body["url"],
                secret=secret,
                events=tuple(events),
                allow_private=allow_private,
            )
        )
    return tuple(hooks)


# Segments of letters, digits and ._~- (never . or .. alone), each ending in /.
_ACCEL_LOCATION = re.compile(r"/(?:(?!\.+/)[A-Za-z0-9._~-]+/)+")


def _read_delivery(pick: Callable[[str], tuple[str | None, str]]) -> tuple[int, str | None]:
    """How /d/ hands bytes over: the S3 redirect's lifetime and nginx's location."""
    seconds, where = pick("s3_redirect_seconds")
    redirect_seconds = 30 if seconds is None else check_whole_seconds(seconds, where)
    accel_redirect, where = pick("accel_redirect")
    if accel_redirect is not None and not _ACCEL_LOCATION.fullmatch(accel_redirect):
        raise ConfigError(
            f"{where}: expected nginx's internal location as a path that starts and ends "
            f"with / (like /_objects/), got {accel_redirect!r}"
        )
    return redirect_seconds, accel_redirect


def _read_scanning_keys(
    pick: Callable[[str], tuple[str | None, str]],
) -> tuple[str, Path | None]:
    """Where the keys of GitHub's secret scanning come from: the URL, and the file if any."""
    url, where = pick("secret_scanning_keys_url")
    if url is not None:
        check_http_url(url, where)
    # Only existence here: the key list checks what it reads, at each read.
    path = check_existing_file(*pick("secret_scanning_keys_file"), what="a key list file")
    return url or GITHUB_SCANNING_KEYS_URL, path
