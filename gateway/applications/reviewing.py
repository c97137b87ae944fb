"""What a reviewer sees of applications, the same in the console and the CLI: the review
queue's filters, checked, and an applicant's answers as questions and replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.applications.service import QueueFilter
from gateway.errors import InvalidInput
from gateway.runtime import Runtime
from policies.countries import COUNTRY_NAMES
from policies.schema import FieldKind, FormField
from stages.applications import ApplicationStatus
from stages.names import InvalidName, ModelRef, parse_model_ref
from stages.tiers import UnknownTier

_STATUSES = tuple(status.value for status in ApplicationStatus)


# As long as an email address may be.
MAX_SEARCH = 320


def queue_filter(
    rt: Runtime,
    *,
    status: str | None,
    model: str | None,
    tier: str | None,
    overdue: bool,
    applicant: str | None = None,
) -> QueueFilter:
    """Check the queue's filters and build the service's filter from them (portal and CLI)."""
    if status and status not in _STATUSES:
        known = ", ".join(_STATUSES)
        raise InvalidInput(
            f"unknown status {status!r}; expected one of {known}", code="unknown_status"
        )
    checked_tier(rt, tier)
    ref = checked_model(model)
    if applicant and len(applicant) > MAX_SEARCH:
        raise InvalidInput(
            f"the applicant search is at most {MAX_SEARCH} characters", code="search_too_long"
        )
    return QueueFilter(
        status=status or None,
        model=ref,
        tier=tier or None,
        overdue_only=overdue,
        applicant=applicant or None,
    )


def checked_tier(rt: Runtime, tier: str | None) -> str | None:
    """A tier of the policy's ladder, or None for no tier; 400 unknown_tier otherwise."""
    if tier and tier not in rt.policy.ladder:
        known = ", ".join(rt.policy.ladder.names)
        raise InvalidInput(f"unknown tier {tier!r}; expected one of {known}", code="unknown_tier")
    return tier or None


def checked_model(model: str | None) -> ModelRef | None:
    """ORG/NAME as a model reference, or None for no model; 400 invalid_model otherwise."""
    try:
        return parse_model_ref(model) if model else None
    except InvalidName as exc:
        raise InvalidInput(str(exc), code="invalid_model") from exc


def answer_rows(fields: Sequence[FormField], answers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The applicant's answers as (question, answer) in the form's order, for people."""
    rows = []
    for form_field in fields:
        value = answers.get(form_field.name)
        if form_field.kind is FieldKind.CHECKBOX:
            text = "yes" if value is True else "no"
        elif value is None or value == "":
            text = "(not answered)"
        elif form_field.kind is FieldKind.COUNTRY:
            text = f"{COUNTRY_NAMES.get(str(value), str(value))} ({value})"
        else:
            text = str(value)
        rows.append((form_field.label, text))
    # Answers to questions the policy no longer asks are still the applicant's words.
    asked = {form_field.name for form_field in fields}
    rows.extend((name, str(value)) for name, value in answers.items() if name not in asked)
    return rows


def form_fields(rt: Runtime, tier: str) -> tuple[FormField, ...]:
    """The questions the policy asks for `tier` now; none for a tier it no longer has."""
    try:
        return rt.policy.application_rules(tier).fields
    except UnknownTier:
        return ()
