"""The metrics token: unset by default, read from the environment or gateway.toml, refused
when short enough to guess or unfit for a header, and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings
from gateway.metrics.access import has_token, is_internal

TOKEN = "0123456789abcdef0123456789abcdef"


def test_no_token_by_default(tmp_path: Path) -> None:
    settings = load_settings({"GATEWAY_HOME": str(tmp_path)})
    assert settings.metrics_token is None
    assert settings.masked()["metrics_token"] == "(none: loopback and private addresses only)"


def test_the_token_is_read_and_never_shown(tmp_path: Path) -> None:
    settings = load_settings({"GATEWAY_HOME": str(tmp_path), "GATEWAY_METRICS_TOKEN": TOKEN})
    assert settings.metrics_token == TOKEN
    assert settings.masked()["metrics_token"] == "***"
    assert TOKEN not in repr(settings)


def test_gateway_toml_sets_it_too(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(f'metrics_token = "{TOKEN}"\n')
    assert load_settings({"GATEWAY_HOME": str(tmp_path)}).metrics_token == TOKEN


@pytest.mark.parametrize("bad", ["short-token", f"{TOKEN} with spaces", f"{TOKEN}é"])
def test_a_guessable_or_unsendable_token_stops_the_start(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"GATEWAY_HOME": str(tmp_path), "GATEWAY_METRICS_TOKEN": bad})
    assert str(refused.value) == (
        "GATEWAY_METRICS_TOKEN: expected at least 24 printable ASCII characters without "
        "spaces (e.g. from `openssl rand -hex 16`)"
    )


@pytest.mark.parametrize(
    ("host", "internal"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("::ffff:10.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("192.168.0.1", True),
        ("fd00::1", True),
        ("172.32.0.1", False),
        ("11.0.0.1", False),
        ("203.0.113.9", False),
        ("::ffff:203.0.113.9", False),
        ("2001:db8::1", False),
        ("fe80::1", False),
        ("testclient", False),
        ("", False),
        (None, False),
    ],
)
def test_internal_addresses_are_loopback_and_private_ranges(
    host: str | None, internal: bool
) -> None:
    assert is_internal(host) is internal


@pytest.mark.parametrize(
    ("authorization", "token", "allowed"),
    [
        (f"Bearer {TOKEN}", TOKEN, True),
        (f"bearer {TOKEN}", TOKEN, True),
        (f"Bearer {TOKEN}0", TOKEN, False),
        (f"Bearer {TOKEN[:-1]}", TOKEN, False),
        (f"Basic {TOKEN}", TOKEN, False),
        (TOKEN, TOKEN, False),
        (None, TOKEN, False),
        ("Bearer ", None, False),
        (f"Bearer {TOKEN}", None, False),
    ],
)
def test_the_token_must_be_sent_exactly_as_a_bearer_token(
    authorization: str | None, token: str | None, allowed: bool
) -> None:
    assert has_token(authorization, token) is allowed
