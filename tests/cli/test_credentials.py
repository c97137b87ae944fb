"""Operator commands for grants and keys."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import Settings
from tests.sample import make_folder, make_license
from tests.units import writing


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def setup(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src")
    assert (
        gateway(
            "release",
            "publish",
            "acme/sample",
            "1.0",
            str(folder),
            "--license",
            str(make_license(tmp_path)),
        ).exit_code
        == 0
    )
    assert gateway("accounts", "create", "bob@example.org").exit_code == 0


def test_grant_lifecycle(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    created = gateway(
        "grants",
        "create",
        "--account",
        "bob@example.org",
        "--model",
        "acme/sample",
        "--tier",
        "researcher",
        "--days",
        "30",
    )
    assert created.exit_code == 0, created.output
    grant_id = created.output.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", grant_id)
    listing = gateway("grants", "list", "--account", "bob@example.org")
    assert grant_id in listing.output
    assert "researcher" in listing.output
    assert "active" in listing.output
    suspended = gateway("grants", "suspend", grant_id, "--reason", "check")
    assert "is now suspended" in suspended.output
    reinstated = gateway("grants", "reinstate", grant_id, "--reason", "fine")
    assert "is now active" in reinstated.output
    revoked = gateway("grants", "revoke", grant_id, "--reason", "done")
    assert "is now revoked" in revoked.output
    again = gateway("grants", "reinstate", grant_id, "--reason", "undo?")
    assert again.exit_code == 4
    assert "cannot reinstate a grant that is revoked" in again.output
    missing = gateway("grants", "revoke", "no-such-grant", "--reason", "x")
    assert missing.exit_code == 3


def test_grant_refusals(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    unknown_tier = gateway(
        "grants",
        "create",
        "--account",
        "bob@example.org",
        "--model",
        "acme/sample",
        "--tier",
        "vip",
    )
    assert unknown_tier.exit_code == 2
    assert "unknown tier 'vip'" in unknown_tier.output
    no_account = gateway(
        "grants",
        "create",
        "--account",
        "nobody@example.org",
        "--model",
        "acme/sample",
        "--tier",
        "public",
    )
    assert no_account.exit_code == 3
    no_model = gateway(
        "grants",
        "create",
        "--account",
        "bob@example.org",
        "--model",
        "acme/none",
        "--tier",
        "public",
    )
    assert no_model.exit_code == 3
    assert "no model acme/none" in no_model.output


def test_keys(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    created = gateway(
        "keys",
        "create",
        "--account",
        "bob@example.org",
        "--scope",
        "download",
        "--expires",
        "30d",
        "--name",
        "laptop",
    )
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert re.fullmatch(r"rgk_[0-9A-Za-z]{28}", key)
    listing = gateway("keys", "list", "--account", "bob@example.org")
    assert key[:12] in listing.output
    assert key not in listing.output
    assert "laptop" in listing.output
    key_id = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", listing.output)
    assert key_id is not None
    revoked = gateway("keys", "revoke", "--account", "bob@example.org", key_id.group(0))
    assert revoked.exit_code == 0
    assert "Revoked" in revoked.output
    assert "revoked" in gateway("keys", "list", "--account", "bob@example.org").output
    too_long = gateway(
        "keys",
        "create",
        "--account",
        "bob@example.org",
        "--scope",
        "download",
        "--expires",
        "4000d",
    )
    assert too_long.exit_code == 2
    assert "1 to 365 days" in too_long.output


def test_rotating_the_url_signing_key(settings_env: Settings, tmp_path: Path) -> None:
    first = gateway("keys", "rotate-url-signing")
    assert first.exit_code == 0
    second = gateway("keys", "rotate-url-signing")
    kid = re.search(r"Signing download URLs with key (\w+)", first.output)
    assert kid is not None
    assert f"Key {kid.group(1)} retired" in second.output


def _rows(settings: Settings, statement: str) -> list[tuple[object, ...]]:
    import asyncio

    from sqlalchemy import text

    from gateway.runtime import build_runtime

    async def go() -> list[tuple[object, ...]]:
        rt = build_runtime(settings)
        try:
            async with writing(rt) as session:
                result = await session.execute(text(statement))
                return [tuple(row) for row in result.all()] if result.returns_rows else []
        finally:
            await rt.close()

    return asyncio.run(go())


def test_rotating_the_url_signing_key_is_evidence(settings_env: Settings) -> None:
    rotated = gateway("keys", "rotate-url-signing")
    assert rotated.exit_code == 0, rotated.output
    kid = re.search(r"Signing download URLs with key (\w+)", rotated.output)
    assert kid is not None
    rows = _rows(
        settings_env, "SELECT actor, data FROM evidence WHERE kind = 'signing_key.rotated'"
    )
    assert len(rows) == 1
    actor, data = rows[0]
    assert str(actor).startswith("cli:")
    assert kid.group(1) in str(data)


def test_an_expired_key_is_listed_as_expired(settings_env: Settings, tmp_path: Path) -> None:
    setup(tmp_path)
    for name in ("old", "fresh"):
        made = gateway("keys", "create", "--account", "bob@example.org", "--scope", "download",
                       "--name", name)  # fmt: skip
        assert made.exit_code == 0, made.output
    _rows(settings_env, "UPDATE api_keys SET expires_at = '2000-01-01 00:00:00' WHERE name = 'old'")
    listing = gateway("keys", "list", "--account", "bob@example.org").output
    old = next(line for line in listing.splitlines() if " old " in line)
    fresh = next(line for line in listing.splitlines() if " fresh " in line)
    assert "expired" in old
    assert "active" in fresh
