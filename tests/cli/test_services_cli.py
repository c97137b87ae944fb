"""`gateway services`: an operator makes an inference service's account and its `verify`
keys; names are checked, a taken name is refused, and the list shows them."""

from __future__ import annotations

import re

from click.testing import CliRunner, Result

from gateway.api_access.cli import services_group
from gateway.config import Settings
from gateway.keys.cli import keys
from tests.backends import on_backends

pytestmark = on_backends("sqlite+file")
KEY = re.compile(r"^rgk_[0-9A-Za-z]{28}$")


def services(*args: str) -> Result:
    return CliRunner().invoke(services_group, list(args))


def test_a_service_gets_verify_keys_and_is_listed(settings_env: Settings) -> None:
    made = services("create", "inference-eu")
    assert made.exit_code == 0, made.output
    assert KEY.match(made.stdout.strip())
    again = services("key", "inference-eu", "--expires", "30d")
    assert again.exit_code == 0, again.output
    assert KEY.match(again.stdout.strip())
    assert again.stdout != made.stdout
    listed = CliRunner().invoke(keys, ["list", "--account", "inference-eu@services.invalid"])
    assert listed.output.count("verify") == 2
    table = services("list")
    assert "inference-eu" in table.output
    assert "inference-eu@services.invalid" in table.output


def test_bad_and_taken_names_are_refused(settings_env: Settings) -> None:
    assert services("list").output.startswith("no service accounts")
    bad = services("create", "Inference EU")
    assert bad.exit_code == 2
    assert "lower-case letters, digits and '-'" in bad.output
    assert services("create", "svc").exit_code == 0
    taken = services("create", "svc")
    assert taken.exit_code != 0
    assert "already exists" in taken.output
    missing = services("key", "nobody")
    assert missing.exit_code == 3
    assert "no service account nobody" in missing.output
