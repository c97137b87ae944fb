"""The gateway's own errors. HTTP handlers turn them into 4xx answers with the message;
the CLI prints the message and exits with the code. Each carries a stable `code`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from policies.answers import FieldProblem
from stages.access import Reason

T = TypeVar("T")


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


class TooLarge(InvalidInput):
    """Input over its size limit (an uploaded file, say); the message says the limit."""

    status = 413


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


class Forbidden(GatewayError):
    """Refused whoever the caller is, for where they ask from or what they lack; the
    message says how to get in."""

    status = 403
    exit_code = 6

    def __init__(self, message: str, *, code: str = "forbidden") -> None:
        super().__init__(message, code=code)


class Unavailable(GatewayError):
    """A part the gateway depends on is not answering; the same request may work later.

    `message` names the part and the cause, for the log, the CLI and /readyz; HTTP answers
    say only which part, and when to try again (Retry-After).
    """

    status = 503
    exit_code = 5
    retry_after_seconds = 5
    part = "a part of the gateway"

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(f"{self.part} unreachable: {detail}", code=code)
        self.detail = detail

    @property
    def public_message(self) -> str:
        return (
            f"the {self.part} is not answering at the moment; "
            f"try again in {self.retry_after_seconds} seconds"
        )


class DatabaseUnavailable(Unavailable):
    part = "database"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="database_unavailable")


class StorageUnavailable(Unavailable):
    part = "storage"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="storage_unavailable")


_DENIED_STATUS = {Reason.URL_EXPIRED: 410, Reason.KEY_INVALID: 401}


class Denied(GatewayError):
    """A refusal with one of the access reasons; 403 unless the reason says otherwise."""

    exit_code = 6

    def __init__(self, reason: Reason, message: str, hint: str | None = None) -> None:
        super().__init__(message, code=reason.value)
        self.status = _DENIED_STATUS.get(reason, 403)
        self.reason = reason
        self.hint = hint


class FieldsInvalid(InvalidInput):
    """Fields of one form are wrong; `problems` says why, field by field, every one at once.

    The code is that of the first problem, so a client that knew the single refusal
    still reads the same code.
    """

    def __init__(self, problems: Mapping[str, InvalidInput]) -> None:
        first = next(iter(problems.values()))
        super().__init__("; ".join(p.message for p in problems.values()), code=first.code)
        # As AnswersInvalid holds them: the JSON answer lists them the same way.
        self.problems = [FieldProblem(name, problem.message) for name, problem in problems.items()]

    @property
    def by_field(self) -> dict[str, str]:
        """Each refused field's message, by the field's name."""
        return {problem.field: problem.message for problem in self.problems}


class FieldChecks:
    """Runs a form's checks field by field and keeps every refusal, not only the first."""

    def __init__(self) -> None:
        self.refused: dict[str, InvalidInput] = {}

    def check(self, name: str, check: Callable[[], T]) -> T | None:
        """What `check` returns, or None with its InvalidInput kept against `name`."""
        try:
            return check()
        except InvalidInput as exc:
            self.refuse(name, exc)
            return None

    def refuse(self, name: str, problem: InvalidInput) -> None:
        if isinstance(problem, FieldsInvalid):
            for field, message in problem.by_field.items():
                self.refused.setdefault(field, InvalidInput(message, code=problem.code))
            return
        self.refused.setdefault(name, problem)

    def done(self) -> None:
        """Raise FieldsInvalid if any field was refused."""
        if self.refused:
            raise FieldsInvalid(self.refused)
