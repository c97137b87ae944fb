"""The settings of how bytes leave and who stands in front: each bad value stops the start
with its name, each good one is read as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings, load_settings


def settings_from(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"GATEWAY_HOME": str(tmp_path), **env})


def test_the_defaults_hand_bytes_over_themselves_and_trust_no_header(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    assert settings.s3_redirect_seconds == 30
    assert settings.accel_redirect is None
    assert settings.trusted_proxies == ()


def test_good_values_are_read_as_written(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        GATEWAY_S3_REDIRECT_SECONDS="45",
        GATEWAY_ACCEL_REDIRECT="/_objects/",
        GATEWAY_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8,::1",
    )
    assert settings.s3_redirect_seconds == 45
    assert settings.accel_redirect == "/_objects/"
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")


def test_gateway_toml_sets_them_too(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        's3_redirect_seconds = 90\naccel_redirect = "/internal/files/"\n'
        'trusted_proxies = "192.168.0.0/16"\n'
    )
    settings = settings_from(tmp_path)
    assert (settings.s3_redirect_seconds, settings.accel_redirect) == (90, "/internal/files/")
    assert settings.trusted_proxies == ("192.168.0.0/16",)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("GATEWAY_S3_REDIRECT_SECONDS", "0", "a whole number of seconds from 1 to 3600"),
        ("GATEWAY_S3_REDIRECT_SECONDS", "1.5", "a whole number of seconds from 1 to 3600"),
        ("GATEWAY_S3_REDIRECT_SECONDS", "3601", "a whole number of seconds from 1 to 3600"),
        ("GATEWAY_S3_REDIRECT_SECONDS", "soon", "a whole number of seconds from 1 to 3600"),
        ("GATEWAY_ACCEL_REDIRECT", "_objects/", "starts and ends with /"),
        ("GATEWAY_ACCEL_REDIRECT", "/_objects", "starts and ends with /"),
        ("GATEWAY_ACCEL_REDIRECT", "/a/../", "starts and ends with /"),
        ("GATEWAY_ACCEL_REDIRECT", "/a b/", "starts and ends with /"),
        ("GATEWAY_TRUSTED_PROXIES", "nginx", "addresses or networks"),
        ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/33", "addresses or networks"),
    ],
)
def test_a_bad_value_is_refused_with_its_name(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from(tmp_path, **{variable: value})
    assert str(refused.value).startswith(f"{variable}: ")
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"operator_notices = \n", "not valid TOML: Invalid value"),
        (b"x = " + b"[" * 5000 + b"]" * 5000, "not valid TOML: arrays or tables nested more"),
        (b'operator_notices = "\xff"\n', "not valid TOML: 'utf-8' codec can't decode"),
    ],
    ids=["bad-toml", "deep", "not-utf8"],
)
def test_a_gateway_toml_that_does_not_read_is_a_config_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "gateway.toml").write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        load_settings({"GATEWAY_HOME": str(tmp_path)})
    assert str(refused.value).startswith(f"{tmp_path / 'gateway.toml'}: {problem}")
