"""The applicant's answer forms (applying, renewing): a posted HTML form read as typed
answers, and a refusal shown next to each field, with the status code the JSON API would
answer."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.applications.service import (
    AnswersInvalid,
)
from gateway.errors import GatewayError
from gateway.runtime import Runtime
from gateway.web.forms import field as form_field
from policies.answers import FieldProblem
from policies.countries import COUNTRY_NAMES, ISO_COUNTRIES
from policies.schema import ApplicationRules, Approval, FieldKind, FormField
from stages.tiers import UnknownTier

ANSWER = "answer."  # form inputs named answer.<field> carry the tier's answers
TICKED = "on"  # what a browser sends for a ticked checkbox without a value
# Where to go next after a refusal, by its code.
NEXT_STEPS: Mapping[str, tuple[str, str]] = {
    "application_open": ("/applications", "See your applications"),
    "grant_active": ("/grants", "See your grants"),
    "account_suspended": ("/account", "See your account"),
    "account_terminated": ("/account", "See your account"),
}


def _ascii_fold(name: str) -> str:
    # "Åland Islands" sorts with the A's, as a reader of the list expects.
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()


COUNTRIES: Sequence[tuple[str, str]] = sorted(
    ((code, name) for code, name in COUNTRY_NAMES.items() if code in ISO_COUNTRIES),
    key=lambda pair: _ascii_fold(pair[1]),
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def time_left(expires_at: datetime, now: datetime) -> str:
    """'12 days left', 'less than a day left' or 'ended'."""
    if expires_at <= now:
        return "ended"
    days = (expires_at - now).days
    return "less than a day left" if days == 0 else f"{_plural(days, 'day')} left"


def approval_words(rules: ApplicationRules) -> str:
    """How applications for a tier are approved, in plain words."""
    if rules.approval is Approval.ON_ACCEPTANCE:
        return "Approved automatically as soon as you accept the license."
    review = f"reviewed by hand by the release team within {_plural(rules.review_days, 'day')}"
    if rules.approval is Approval.EMAIL_DOMAIN:
        return (
            "Approved automatically when your email address is confirmed and belongs to one "
            f"of these domains: {', '.join(rules.allowed_domains)}. Other applications are "
            f"{review}."
        )
    return f"Every application is {review}."


def answers_from(data: Mapping[str, Any], fields: Sequence[FormField]) -> dict[str, object]:
    """Typed answers from a posted form: a ticked box is True, an unticked one False, and
    an empty input is no answer. Anything else a box sends is left for the check to refuse."""
    answers: dict[str, object] = {}
    for key in data:
        if key.startswith(ANSWER):
            text = form_field(data, key)
            if text.strip():
                answers[key.removeprefix(ANSWER)] = text
    for question in fields:
        if question.kind is FieldKind.CHECKBOX:
            ticked = answers.get(question.name)
            if ticked is None:
                answers[question.name] = False
            elif ticked == TICKED:
                answers[question.name] = True
    return answers


@dataclass
class Refusal:
    """What to show next to a refused form: messages by field, and the rest."""

    problems: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    next_step: tuple[str, str] | None = None
    status: int = 400

    @classmethod
    def of(
        cls, error: GatewayError, fields: Sequence[FormField] = (), also: Collection[str] = ()
    ) -> Refusal:
        """`also`: names of the form's own inputs besides the policy's questions."""
        if isinstance(error, AnswersInvalid):
            return cls.from_problems(error.problems, fields, also)
        return cls(
            general=[error.message], next_step=NEXT_STEPS.get(error.code), status=error.status
        )

    @classmethod
    def from_problems(
        cls,
        problems: Sequence[FieldProblem],
        fields: Sequence[FormField],
        also: Collection[str] = (),
    ) -> Refusal:
        asked = {question.name for question in fields} | set(also)
        refusal = cls()
        for problem in problems:
            if problem.field in asked:
                refusal.problems.setdefault(problem.field, problem.message)
            else:
                refusal.general.append(problem.message)
        return refusal

    def add(self, name: str, message: str) -> None:
        self.problems.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.problems or self.general)


def shown_answer(question: FormField | None, value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if question is not None and question.kind is FieldKind.COUNTRY:
        return f"{COUNTRY_NAMES.get(text, text)} ({text})"
    return text


def rules_or_none(rt: Runtime, tier: str) -> ApplicationRules | None:
    try:
        return rt.policy.application_rules(tier)
    except UnknownTier:
        return None  # a tier the policy no longer has: show what was stored as it is
