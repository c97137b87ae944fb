"""Exit codes of `gateway download`: one table, used by the command and its --help.

Scripts branch on these numbers, so they only ever grow: each access reason has its own
code (10 + its position in `stages.access.Reason`), and a golden test pins the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.access import Reason

OK = 0
UNEXPECTED = 1
USAGE = 2
NOT_FOUND = 3
HASH_MISMATCH = 40
SIGNATURE_INVALID = 41
NETWORK_FAILURE = 42
INTERRUPTED = 130  # the shell's convention for SIGINT

REASON_BASE = 10

# Error codes the client raises by itself (not sent by the server).
HASH_MISMATCH_CODE = "hash_mismatch"
SIGNATURE_INVALID_CODE = "signature_invalid"
NETWORK_FAILURE_CODE = "network_failure"
USAGE_CODE = "usage"
INTERRUPTED_CODE = "interrupted"
UNEXPECTED_CODE = "unexpected"

_NOT_FOUND_CODES = frozenset({"model_not_found", "release_not_found", "not_found"})

# What each refusal means to the person running the command; a test checks every Reason
# has a line, so adding a reason without documenting its exit code fails the suite.
_REASON_MEANING: dict[Reason, str] = {
    Reason.KEY_INVALID: "the API key is not valid",
    Reason.KEY_EXPIRED: "the API key has expired",
    Reason.KEY_REVOKED: "the API key was revoked",
    Reason.KEY_SCOPE_MISSING: "the API key lacks the download scope",
    Reason.ACCOUNT_SUSPENDED: "the account is suspended",
    Reason.ACCOUNT_TERMINATED: "the account was terminated",
    Reason.NO_GRANT: "no access grant for this model",
    Reason.GRANT_NOT_STARTED: "the grant has not started yet",
    Reason.GRANT_EXPIRED: "the grant has expired",
    Reason.GRANT_SUSPENDED: "the grant is suspended",
    Reason.GRANT_REVOKED: "the grant was revoked",
    Reason.RELEASE_RECALLED: "the release was recalled",
    Reason.RELEASE_DECOMMISSIONED: "the release was decommissioned",
    Reason.TIER_NOT_OPEN: "the release is not open to the grant's tier",
    Reason.COMPONENT_NOT_IN_TIER: "the requested components are not in the grant's tier",
    Reason.QUOTA_EXHAUSTED: "the download quota is used up",
    Reason.URL_EXPIRED: "download links kept expiring, even after a refresh",
    Reason.URL_INVALID: "a download link was refused as invalid",
    Reason.TIER_API_ONLY: "the grant's tier is API-only: it downloads nothing",
    Reason.API_NOT_IN_TIER: "the grant's tier gives no API access",
    Reason.RATE_LIMITED: "the API key's requests of the minute are used up",
    Reason.CREDITS_EXHAUSTED: "the grant's API credits of the month are spent",
    Reason.RELEASE_QUARANTINED: "the release is quarantined until an operator decides",
}


@dataclass(frozen=True)
class ExitCode:
    number: int
    code: str  # the error code it stands for ("" for success)
    meaning: str


def _table() -> tuple[ExitCode, ...]:
    rows = [
        ExitCode(OK, "", "downloaded and verified"),
        ExitCode(UNEXPECTED, UNEXPECTED_CODE, "unexpected error, or a server error"),
        ExitCode(USAGE, USAGE_CODE, "bad command line (name, option, missing key)"),
        ExitCode(
            NOT_FOUND, "not_found", "no such model or release (model_not_found, release_not_found)"
        ),
    ]
    rows += [
        ExitCode(REASON_BASE + index, reason.value, _REASON_MEANING[reason])
        for index, reason in enumerate(Reason)
    ]
    rows += [
        ExitCode(HASH_MISMATCH, HASH_MISMATCH_CODE, "a file did not match its SHA-256"),
        ExitCode(SIGNATURE_INVALID, SIGNATURE_INVALID_CODE, "the release signature check failed"),
        ExitCode(NETWORK_FAILURE, NETWORK_FAILURE_CODE, "the network kept failing after retries"),
        ExitCode(INTERRUPTED, INTERRUPTED_CODE, "interrupted; run again to resume"),
    ]
    return tuple(rows)


TABLE = _table()
_BY_CODE = {row.code: row.number for row in TABLE if row.code}


def exit_code_for(code: str, status: int | None = None) -> int:
    """The exit code for an error code from the server or the client itself."""
    if code in _NOT_FOUND_CODES:
        return NOT_FOUND
    if code in _BY_CODE:
        return _BY_CODE[code]
    # A code this client does not know yet: fall back on the HTTP status class.
    if status == 404:
        return NOT_FOUND
    return UNEXPECTED


def help_epilog() -> str:
    """The exit-code table for `--help` (the \\b marker keeps click from rewrapping it)."""
    lines = ["\b", "Exit codes:"]
    lines += [f"  {row.number:>3}  {row.code or 'ok':<24} {row.meaning}" for row in TABLE]
    return "\n".join(lines)
