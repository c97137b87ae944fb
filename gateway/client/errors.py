"""The one error the download client raises: a code, a sentence, and its exit code."""

from __future__ import annotations

from gateway.client import exit_codes


class DownloadFailed(Exception):
    """A download that cannot go on; `code` is the server's error code or the client's own."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.hint = hint

    @property
    def exit_code(self) -> int:
        return exit_codes.exit_code_for(self.code, self.status)

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def usage(message: str) -> DownloadFailed:
    return DownloadFailed(exit_codes.USAGE_CODE, message)


def hash_mismatch(message: str) -> DownloadFailed:
    return DownloadFailed(exit_codes.HASH_MISMATCH_CODE, message)


def signature_invalid(message: str) -> DownloadFailed:
    return DownloadFailed(exit_codes.SIGNATURE_INVALID_CODE, message)


def network_failure(message: str) -> DownloadFailed:
    return DownloadFailed(exit_codes.NETWORK_FAILURE_CODE, message)


def unexpected(message: str, *, status: int | None = None) -> DownloadFailed:
    return DownloadFailed(exit_codes.UNEXPECTED_CODE, message, status=status)
