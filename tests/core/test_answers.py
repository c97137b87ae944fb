"""Checking an applicant's answers against a tier's form, and the country list."""

import pytest

from policies import (
    COUNTRY_NAMES,
    ISO_COUNTRIES,
    FieldKind,
    FieldProblem,
    FormField,
    clean_answers,
    validate_answers,
)

AFFILIATION = FormField("affiliation", "Affiliation", FieldKind.TEXT, True, (), "", 20)
COUNTRY = FormField("country", "Country", FieldKind.COUNTRY, True, (), "", 0)
PURPOSE = FormField("purpose", "Research purpose", FieldKind.LONG_TEXT, True, (), "", 60)
PAPERS = FormField("papers", "Publications", FieldKind.LONG_TEXT, False, (), "", 40)
USE = FormField(
    "use",
    "Intended use",
    FieldKind.SELECT,
    True,
    ("research", "education", "commercial", "personal", "other"),
    "",
    0,
)
AGREE = FormField("agree", "I will not share the weights", FieldKind.CHECKBOX, True, (), "", 0)
NEWSLETTER = FormField("newsletter", "Send me news", FieldKind.CHECKBOX, False, (), "", 0)
FORM = (AFFILIATION, COUNTRY, PURPOSE, PAPERS, USE, AGREE, NEWSLETTER)

GOOD: dict[str, object] = {
    "affiliation": "Uni of Example",
    "country": "JP",
    "purpose": "Probing\nrefusal behaviour.\tTabs are fine.",
    "use": "research",
    "agree": True,
}


def problems(**changes: object) -> list[FieldProblem]:
    answers = {**GOOD, **changes}
    return validate_answers(
        FORM, {k: v for k, v in answers.items() if v != "<absent>"}, ISO_COUNTRIES
    )


def test_good_answers_have_no_problems() -> None:
    assert problems() == []
    assert problems(papers="", newsletter=False) == []
    assert problems(papers=None, newsletter=True) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"affiliation": "<absent>"}, ("affiliation", "Affiliation is required")),
        ({"affiliation": None}, ("affiliation", "Affiliation is required")),
        ({"affiliation": "   \n"}, ("affiliation", "Affiliation is required")),
        ({"affiliation": 42}, ("affiliation", "Affiliation must be text")),
        ({"affiliation": ["Uni"]}, ("affiliation", "Affiliation must be text")),
        (
            {"affiliation": "x" * 21},
            ("affiliation", "Affiliation must be at most 20 characters long (it is 21)"),
        ),
        ({"affiliation": "Uni\nof Example"}, ("affiliation", "Affiliation must be a single line")),
        ({"affiliation": "Uni\rExample"}, ("affiliation", "Affiliation must be a single line")),
        (
            {"affiliation": "Uni\x00Example"},
            ("affiliation", "Affiliation contains a control character (U+0000); remove it"),
        ),
        (
            {"purpose": "line\x1bone"},
            ("purpose", "Research purpose contains a control character (U+001B); remove it"),
        ),
        (
            {"purpose": "é" * 61},
            ("purpose", "Research purpose must be at most 60 characters long (it is 61)"),
        ),
        ({"papers": 3}, ("papers", "Publications must be text")),
        ({"use": "<absent>"}, ("use", "Intended use is required")),
        ({"use": ""}, ("use", "Intended use is required")),
        (
            {"use": "Research"},
            (
                "use",
                "Intended use must be one of: research, education, commercial, personal, other",
            ),
        ),
        (
            {"use": " research"},
            (
                "use",
                "Intended use must be one of: research, education, commercial, personal, other",
            ),
        ),
        ({"use": True}, ("use", "Intended use must be text")),
        ({"country": "<absent>"}, ("country", "Country is required")),
        (
            {"country": "jp"},
            ("country", "Country must be a two-letter ISO 3166 country code, such as GB or JP"),
        ),
        (
            {"country": "UK"},
            ("country", "Country must be a two-letter ISO 3166 country code, such as GB or JP"),
        ),
        (
            {"country": "Japan"},
            ("country", "Country must be a two-letter ISO 3166 country code, such as GB or JP"),
        ),
        ({"agree": "<absent>"}, ("agree", 'You must tick "I will not share the weights" to apply')),
        ({"agree": False}, ("agree", 'You must tick "I will not share the weights" to apply')),
        (
            {"agree": "yes"},
            ("agree", "I will not share the weights must be ticked or not ticked (true or false)"),
        ),
        (
            {"agree": 1},
            ("agree", "I will not share the weights must be ticked or not ticked (true or false)"),
        ),
        (
            {"newsletter": "on"},
            ("newsletter", "Send me news must be ticked or not ticked (true or false)"),
        ),
        ({"x": "hello"}, ("x", "unknown field 'x'")),
    ],
)
def test_each_bad_answer_is_reported_for_its_field(
    changes: dict[str, object], expected: tuple[str, str]
) -> None:
    assert problems(**changes) == [FieldProblem(*expected)]


def test_text_exactly_at_the_limit_is_accepted() -> None:
    assert problems(affiliation="x" * 20, purpose="y" * 60) == []


def test_a_country_outside_the_callers_set_is_refused_by_name() -> None:
    answers = {**GOOD}
    allowed = ISO_COUNTRIES - {"JP"}
    assert validate_answers(FORM, answers, allowed) == [
        FieldProblem("country", "Country: applications from Japan cannot be accepted")
    ]


def test_every_problem_is_reported_in_form_order_then_unknown_fields() -> None:
    answers = {"zeta": 1, "country": "XX", "agree": False, "alpha": "", "use": "other"}
    assert validate_answers(FORM, answers, ISO_COUNTRIES) == [
        FieldProblem("affiliation", "Affiliation is required"),
        FieldProblem(
            "country", "Country must be a two-letter ISO 3166 country code, such as GB or JP"
        ),
        FieldProblem("purpose", "Research purpose is required"),
        FieldProblem("agree", 'You must tick "I will not share the weights" to apply'),
        FieldProblem("alpha", "unknown field 'alpha'"),
        FieldProblem("zeta", "unknown field 'zeta'"),
    ]


def test_an_empty_form_refuses_every_answer_and_accepts_none() -> None:
    assert validate_answers((), {}, ISO_COUNTRIES) == []
    assert validate_answers((), {"use": "research"}, ISO_COUNTRIES) == [
        FieldProblem("use", "unknown field 'use'")
    ]


def test_clean_answers_strips_text_and_fills_in_checkboxes() -> None:
    answers = {**GOOD, "affiliation": "  Uni of Example ", "papers": "  "}
    assert clean_answers(FORM, answers) == {
        "affiliation": "Uni of Example",
        "country": "JP",
        "purpose": "Probing\nrefusal behaviour.\tTabs are fine.",
        "use": "research",
        "agree": True,
        "newsletter": False,
    }


def test_iso_countries_are_the_249_assigned_codes() -> None:
    assert len(ISO_COUNTRIES) == 249
    assert frozenset(COUNTRY_NAMES) == ISO_COUNTRIES
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in ISO_COUNTRIES)
    assert {"GB", "JP", "US", "DE", "TW", "XK"} & ISO_COUNTRIES == {"GB", "JP", "US", "DE", "TW"}
    # Reserved or withdrawn codes are not countries a person can choose.
    assert not {"UK", "EU", "AN", "YU", "ZZ"} & ISO_COUNTRIES


def test_country_names_read_well_in_a_list() -> None:
    assert COUNTRY_NAMES["GB"] == "United Kingdom"
    assert COUNTRY_NAMES["KR"] == "South Korea"
    assert COUNTRY_NAMES["CI"] == "Côte d'Ivoire"
    names = list(COUNTRY_NAMES.values())
    assert len(set(names)) == len(names)
    assert all(name.strip() == name and name for name in names)
    with pytest.raises(TypeError):
        COUNTRY_NAMES["XX"] = "Nowhere"  # type: ignore[index]
