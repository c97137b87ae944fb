"""Where GitHub's secret scanning keys come from: GitHub's list by default, another URL,
or a local file instead; a URL that is not one, or a file that is not there, stops the
start with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GITHUB_SCANNING_KEYS_URL, ConfigError, load_settings


def test_github_s_list_by_default(tmp_path: Path) -> None:
    settings = load_settings({"GATEWAY_HOME": str(tmp_path)})
    assert settings.secret_scanning_keys_url == GITHUB_SCANNING_KEYS_URL
    assert GITHUB_SCANNING_KEYS_URL == "https://api.github.com/meta/public_keys/secret_scanning"
    assert settings.secret_scanning_keys_file is None
    shown = settings.masked()
    assert shown["secret_scanning_keys_url"] == GITHUB_SCANNING_KEYS_URL
    assert shown["secret_scanning_keys_file"] == "(none: the list at secret_scanning_keys_url)"


def test_the_environment_and_gateway_toml_set_them(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text("{}")
    env = {
        "GATEWAY_HOME": str(tmp_path),
        "GATEWAY_SECRET_SCANNING_KEYS_URL": "https://mirror.example/keys",
        "GATEWAY_SECRET_SCANNING_KEYS_FILE": str(keys),
    }
    settings = load_settings(env)
    assert settings.secret_scanning_keys_url == "https://mirror.example/keys"
    assert settings.secret_scanning_keys_file == keys
    assert settings.masked()["secret_scanning_keys_file"] == str(keys)
    (tmp_path / "gateway.toml").write_text(f'secret_scanning_keys_file = "{keys}"\n')
    assert load_settings({"GATEWAY_HOME": str(tmp_path)}).secret_scanning_keys_file == keys


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "GATEWAY_SECRET_SCANNING_KEYS_URL",
            "ftp://keys.example/list",
            "GATEWAY_SECRET_SCANNING_KEYS_URL: expected an http:// or https:// URL, "
            "got 'ftp://keys.example/list'",
        ),
        (
            "GATEWAY_SECRET_SCANNING_KEYS_FILE",
            "/nowhere/keys.json",
            "GATEWAY_SECRET_SCANNING_KEYS_FILE: expected a key list file, but "
            "/nowhere/keys.json does not exist",
        ),
    ],
)
def test_a_bad_value_stops_the_start(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"GATEWAY_HOME": str(tmp_path), name: value})
    assert str(refused.value) == message
