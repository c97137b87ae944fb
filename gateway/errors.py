"""The gateway's own errors. HTTP handlers turn them into 4xx answers with the message;
the CLI prints the message and exits with the code. Each carries a stable `code`."""

from __future__ import annotations


class GatewayError(Exception):
    status = 400
    exit_code = 1

    def __init__(self, message: str, *, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidInput(GatewayError):
    status = 400
    exit_code = 2


class NotFound(GatewayError):
    status = 404
    exit_code = 3

    def __init__(self, message: str, *, code: str = "not_found") -> None:
        super().__init__(message, code=code)


class Conflict(GatewayError):
    status = 409
    exit_code = 4

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message, code=code)
