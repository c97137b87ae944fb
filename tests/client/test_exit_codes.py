"""The exit-code table: stable numbers, one per access reason, shown in --help."""

from __future__ import annotations

from click.testing import CliRunner

from gateway.cli.download import download
from gateway.client import exit_codes
from gateway.client.exit_codes import TABLE, exit_code_for, help_epilog
from stages.access import Reason

# Scripts depend on these numbers: changing one is a breaking change, not a refactor.
GOLDEN = {
    "": 0,
    "unexpected": 1,
    "usage": 2,
    "not_found": 3,
    "key_invalid": 10,
    "key_expired": 11,
    "key_revoked": 12,
    "key_scope_missing": 13,
    "account_suspended": 14,
    "account_terminated": 15,
    "no_grant": 16,
    "grant_not_started": 17,
    "grant_expired": 18,
    "grant_suspended": 19,
    "grant_revoked": 20,
    "release_recalled": 21,
    "release_decommissioned": 22,
    "tier_not_open": 23,
    "component_not_in_tier": 24,
    "quota_exhausted": 25,
    "url_expired": 26,
    "url_invalid": 27,
    "tier_api_only": 28,
    "api_not_in_tier": 29,
    "rate_limited": 30,
    "credits_exhausted": 31,
    "release_quarantined": 32,
    "hash_mismatch": 40,
    "signature_invalid": 41,
    "network_failure": 42,
    "interrupted": 130,
}


def test_the_table_is_the_golden_one() -> None:
    assert {row.code: row.number for row in TABLE} == GOLDEN


def test_every_reason_has_its_own_exit_code() -> None:
    numbers = [exit_code_for(reason.value, 403) for reason in Reason]
    assert len(set(numbers)) == len(Reason)
    assert all(10 <= n < 40 for n in numbers)


def test_exit_codes_are_unique() -> None:
    numbers = [row.number for row in TABLE]
    assert len(numbers) == len(set(numbers))


def test_not_found_codes_share_exit_code_3() -> None:
    assert exit_code_for("model_not_found", 404) == exit_codes.NOT_FOUND
    assert exit_code_for("release_not_found", 404) == exit_codes.NOT_FOUND


def test_unknown_codes_fall_back_on_the_status() -> None:
    assert exit_code_for("some_new_thing", 404) == exit_codes.NOT_FOUND
    assert exit_code_for("some_new_thing", 403) == exit_codes.UNEXPECTED
    assert exit_code_for("internal_error", 500) == exit_codes.UNEXPECTED


def test_help_prints_the_table() -> None:
    result = CliRunner().invoke(download, ["--help"])
    assert result.exit_code == 0
    for row in TABLE:
        assert f"{row.number:>3}  {row.code or 'ok'}" in result.output
    assert help_epilog().startswith("\b")
