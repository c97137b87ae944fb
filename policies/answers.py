# Checking an applicant's answers against a tier's form.
#
# Rules:
# - Answers are typed values: a string for text, long_text, select and country fields,
#   a bool for checkboxes. Turning an HTML form post into these is the shell's job.
# - A missing answer, None and blank text are all "no answer".
# - Every problem is reported, at most one per field, in the form's order, then the
#   answers to questions the form does not ask. Messages are for the applicant and use
#   the field's label.
# - Lengths count characters (code points) of the answer as sent.

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from policies.countries import COUNTRY_NAMES, ISO_COUNTRIES
from policies.schema import FieldKind, FormField

# Line breaks belong in long_text only. Tabs are allowed anywhere; any other control
# character is not text a person typed, and PostgreSQL refuses to store NUL at all.
_LINE_BREAKS = frozenset("\n\r")


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with the answer to one field (`field` is the field's name)."""

    field: str
    message: str


def validate_answers(
    fields: Iterable[FormField], answers: Mapping[str, object], countries: frozenset[str]
) -> list[FieldProblem]:
    """Every problem with `answers` to the form `fields`; empty when they may be accepted.

    `countries` is the set of ISO 3166-1 alpha-2 codes a country field accepts
    (policies.countries.ISO_COUNTRIES, or a narrower set the caller must apply).
    """
    problems: list[FieldProblem] = []
    asked: set[str] = set()
    for form_field in fields:
        asked.add(form_field.name)
        message = _problem(form_field, answers.get(form_field.name), countries)
        if message is not None:
            problems.append(FieldProblem(form_field.name, message))
    problems.extend(
        FieldProblem(name, f"unknown field {name!r}")
        for name in sorted(answers)
        if name not in asked
    )
    return problems


def clean_answers(
    fields: Iterable[FormField], answers: Mapping[str, object]
) -> dict[str, str | bool]:
    """The answers as they should be stored, once validate_answers found no problem.

    Text is stripped of surrounding white space, unanswered optional questions are left
    out, and an unanswered checkbox is False, so equal answers are always stored alike.
    """
    cleaned: dict[str, str | bool] = {}
    for form_field in fields:
        value = answers.get(form_field.name)
        if form_field.kind is FieldKind.CHECKBOX:
            cleaned[form_field.name] = value is True
        elif isinstance(value, str) and value.strip():
            cleaned[form_field.name] = value.strip()
    return cleaned


def _problem(form_field: FormField, value: object, countries: frozenset[str]) -> str | None:
    label = form_field.label
    if form_field.kind is FieldKind.CHECKBOX:
        return _checkbox_problem(form_field, value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"{label} is required" if form_field.required else None
    if not isinstance(value, str):
        return f"{label} must be text"
    if form_field.kind is FieldKind.SELECT:
        in_options = value in form_field.options
        return None if in_options else f"{label} must be one of: {', '.join(form_field.options)}"
    if form_field.kind is FieldKind.COUNTRY:
        return _country_problem(label, value, countries)
    return _text_problem(form_field, value)


def _checkbox_problem(form_field: FormField, value: object) -> str | None:
    if value is not None and not isinstance(value, bool):
        return f"{form_field.label} must be ticked or not ticked (true or false)"
    if form_field.required and value is not True:
        return f'You must tick "{form_field.label}" to apply'
    return None


def _country_problem(label: str, value: str, countries: frozenset[str]) -> str | None:
    if value not in ISO_COUNTRIES:
        return f"{label} must be a two-letter ISO 3166 country code, such as GB or JP"
    if value not in countries:
        return f"{label}: applications from {COUNTRY_NAMES[value]} cannot be accepted"
    return None


def _text_problem(form_field: FormField, value: str) -> str | None:
    label = form_field.label
    if len(value) > form_field.max_length:
        return (
            f"{label} must be at most {form_field.max_length} characters long (it is {len(value)})"
        )
    one_line = form_field.kind is FieldKind.TEXT
    for char in value:
        if char in _LINE_BREAKS:
            if one_line:
                return f"{label} must be a single line"
        elif char != "\t" and unicodedata.category(char) == "Cc":
            return f"{label} contains a control character (U+{ord(char):04X}); remove it"
    return None
