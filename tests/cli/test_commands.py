"""The operator CLI: output, exit codes and error messages, on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import Settings
from tests.sample import make_folder, make_license


def gateway(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def published(settings_env: Settings, tmp_path: Path, version: str = "1.0") -> Result:
    folder = make_folder(tmp_path / f"src-{version}")
    result = gateway(
        "release",
        "publish",
        "acme/sample",
        version,
        str(folder),
        "--license",
        str(make_license(tmp_path)),
        "--component",
        "*.txt=data_manifest",
    )
    assert result.exit_code == 0, result.output
    return result


def test_publish_list_show_promote_rollback(settings_env: Settings, tmp_path: Path) -> None:
    result = published(settings_env, tmp_path)
    assert "Published acme/sample:1.0: 6 files" in result.output
    assert "1 data_manifest" in result.output
    assert "stage draft" in result.output

    listing = gateway("release", "list")
    assert "acme/sample" in listing.output
    assert "draft" in listing.output

    refused = gateway("stage", "promote", "acme/sample:1.0", "--to", "trusted_partner")
    assert refused.exit_code == 4
    assert "evaluation/internal-safety = pass: missing" in refused.output
    attached = gateway(
        "evidence",
        "attach",
        "acme/sample:1.0",
        "--kind",
        "evaluation",
        "--name",
        "internal-safety",
        "--result",
        "pass",
    )
    assert attached.exit_code == 0, attached.output
    promoted = gateway("stage", "promote", "acme/sample:1.0", "--to", "trusted_partner")
    assert promoted.exit_code == 0, promoted.output
    assert "draft → trusted_partner" in promoted.output

    shown = gateway("release", "show", "acme/sample:1.0", "--json")
    body = json.loads(shown.output)
    assert body["stage"] == "trusted_partner"
    assert {a["path"]: a["component"] for a in body["artifacts"]}["notes.txt"] == "data_manifest"

    back = gateway(
        "stage", "rollback", "acme/sample:1.0", "--to", "draft", "--reason", "leak check"
    )
    assert back.exit_code == 0, back.output
    assert "trusted_partner → draft (rolled back)" in back.output

    models = gateway("models", "list", "--json")
    assert json.loads(models.output) == [
        {
            "model": "acme/sample",
            "releases": 1,
            "latest": "1.0",
            "stage": "draft",
            "status": "active",
        }
    ]


def test_illegal_moves_and_missing_releases_exit_with_a_message(
    settings_env: Settings, tmp_path: Path
) -> None:
    published(settings_env, tmp_path)
    skip = gateway("stage", "promote", "acme/sample:1.0", "--to", "public")
    assert skip.exit_code == 4
    assert "promotion goes one stage at a time" in skip.output
    unknown = gateway("stage", "promote", "acme/sample:1.0", "--to", "everyone")
    assert unknown.exit_code == 4
    assert "everyone" in unknown.output
    missing = gateway("stage", "promote", "acme/sample:9.9", "--to", "trusted_partner")
    assert missing.exit_code == 3
    assert "no release acme/sample:9.9" in missing.output
    no_reason = gateway("stage", "rollback", "acme/sample:1.0", "--to", "draft")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.output
    bad_ref = gateway("stage", "promote", "acme-sample", "--to", "public")
    assert bad_ref.exit_code == 2
    assert "expected ORG/NAME:VERSION" in bad_ref.output


def test_a_refused_promotion_says_whether_it_recorded_the_approval(
    settings_env: Settings, tmp_path: Path
) -> None:
    published(settings_env, tmp_path)
    for email in ("op1@lab.example", "op2@lab.example"):
        assert gateway("accounts", "create", email, "--operator").exit_code == 0
    # One approval is enough for partners: nothing is recorded, and nothing is claimed.
    first = gateway("stage", "promote", "acme/sample:1.0", "--to", "trusted_partner")
    assert first.exit_code == 4
    assert first.output.startswith(
        "acme/sample:1.0: not promoted to trusted_partner; unmet: "
        "evidence evaluation/internal-safety = pass: missing"
    )
    assert "approval recorded" not in first.output
    evidence = ("--kind", "evaluation", "--name", "internal-safety", "--result", "pass")
    assert gateway("evidence", "attach", "acme/sample:1.0", *evidence).exit_code == 0
    assert gateway("stage", "promote", "acme/sample:1.0", "--to", "trusted_partner").exit_code == 0

    # Researchers need two operators and more: the first one's approval is kept, and said.
    as_first = ("--to", "researcher", "--as", "op1@lab.example")
    refused = gateway("stage", "promote", "acme/sample:1.0", *as_first)
    assert refused.exit_code == 4
    headline = refused.output.splitlines()[0]
    assert headline.startswith(
        "acme/sample:1.0: approval recorded (1 of 2); promotion to researcher waits for: "
        "days in stage: 0 of 14; grantees who downloaded: 0 of 3;"
    )
    assert headline.endswith("; approvals: 1 of 2")
    assert "[UNMET] days in stage: 0 of 14" in refused.output
    # The same operator again adds nothing, and is told so.
    again = gateway("stage", "promote", "acme/sample:1.0", *as_first)
    assert again.exit_code == 4
    assert again.output.startswith(
        "acme/sample:1.0: not promoted to researcher; your approval was already recorded "
        "(1 of 2); promotion waits for: days in stage: 0 of 14;"
    )
    # A second operator's approval meets the approvals gate; the rest still waits.
    second = gateway("stage", "approve", "acme/sample:1.0", "--as", "op2@lab.example")
    assert second.exit_code == 4
    headline = second.output.splitlines()[0]
    assert headline.startswith(
        "acme/sample:1.0: approval recorded (2 of 2); promotion to researcher waits for: "
        "days in stage: 0 of 14;"
    )
    assert "approvals:" not in headline
    assert "[met  ] approvals: 2 of 2" in second.output
    shown = json.loads(gateway("release", "show", "acme/sample:1.0", "--json").output)
    assert shown["stage"] == "trusted_partner"


def test_publishing_the_same_version_twice_is_refused(
    settings_env: Settings, tmp_path: Path
) -> None:
    published(settings_env, tmp_path)
    folder = make_folder(tmp_path / "again")
    again = gateway(
        "release",
        "publish",
        "acme/sample",
        "1.0",
        str(folder),
        "--license",
        str(make_license(tmp_path)),
    )
    assert again.exit_code == 4
    assert "acme/sample:1.0 already exists" in again.output


def test_bad_component_override_is_a_usage_error(settings_env: Settings, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "src")
    result = gateway(
        "release",
        "publish",
        "acme/sample",
        "1.0",
        str(folder),
        "--license",
        str(make_license(tmp_path)),
        "--component",
        "no-equals-sign",
    )
    assert result.exit_code == 2
    assert "GLOB=KIND" in result.output or "=" in result.output


def test_accounts(settings_env: Settings) -> None:
    created = gateway("accounts", "create", "Ops@Example.ORG", "--operator")
    assert created.exit_code == 0, created.output
    assert "Created operator Ops@example.org" in created.output
    again = gateway("accounts", "create", "ops@example.org")
    assert again.exit_code == 4
    assert "already exists" in again.output
    bad = gateway("accounts", "create", "not-an-email")
    assert bad.exit_code == 2
    assert "invalid email address" in bad.output
    listing = gateway("accounts", "list", "--operators")
    assert "Ops@example.org" in listing.output


def test_config_show_masks_passwords(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_HOME", str(tmp_path))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql+asyncpg://gw:s3cret@db.internal/gw")
    result = gateway("config", "show")
    assert result.exit_code == 0
    assert "s3cret" not in result.output
    assert "gw:***@db.internal" in result.output
    assert str(tmp_path) in result.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GATEWAY_DATABASE_URL", "mysql://x/y", "GATEWAY_DATABASE_URL: expected sqlite+aiosqlite"),
        ("GATEWAY_STORAGE_URL", "ftp://x", "GATEWAY_STORAGE_URL: expected file:///absolute/path"),
        ("GATEWAY_S3_ENDPOINT_URL", "localhost:9000", "GATEWAY_S3_ENDPOINT_URL: expected an http"),
        ("GATEWAY_PUBLIC_URL", "gateway.example", "GATEWAY_PUBLIC_URL: expected an http"),
        ("GATEWAY_POLICY_FILE", "/nonexistent.toml", "GATEWAY_POLICY_FILE: expected a policy file"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("GATEWAY_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    for command in (["config", "show"], ["serve"], ["models", "list"]):
        result = gateway(*command)
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_bad_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_HOME", str(tmp_path))
    (tmp_path / "gateway.toml").write_text(
        'storage_url = "file:///srv/objects"\ndatabse_url = "x"\n'
    )
    result = gateway("config", "show")
    assert result.exit_code == 2
    assert "unknown setting 'databse_url'" in result.output
    (tmp_path / "gateway.toml").write_text('storage_url = "file:///srv/objects"\n')
    good = gateway("config", "show")
    assert "file:///srv/objects" in good.output


def test_a_policy_file_that_does_not_validate_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("schema_version = 1\n[tiers.public]\norder = 1\n")
    check = gateway("policy", "check", str(bad))
    assert check.exit_code == 1
    assert "tiers.public" in check.output
    monkeypatch.setenv("GATEWAY_HOME", str(tmp_path))
    monkeypatch.setenv("GATEWAY_POLICY_FILE", str(bad))
    start = gateway("models", "list")
    assert start.exit_code == 2
    assert "GATEWAY_POLICY_FILE" in start.output


def test_policy_check_accepts_the_shipped_policy() -> None:
    shipped = Path(__file__).parents[2] / "policies" / "default.toml"
    result = gateway("policy", "check", str(shipped))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "trusted_partner" in result.output
    assert "evaluators" in result.output
    assert "medium 15 days, high 10 days, critical 2 days" in result.output
    assert "only an operator quarantines" in result.output
    missing = gateway("policy", "check", "/nonexistent/policy.toml")
    assert missing.exit_code == 2
