# Reading the application rules of each tier and the grant lifecycle from a policy file.
#
# Rules:
# - Same contract as the rest of the loader: every problem is collected with the dotted
#   path of its field, what was expected and what was found; unknown keys are refused.
# - Domain patterns are matched case-insensitively, so they are kept in lower case.
# - Only `options`, `help` and `max_length` of a form field may be left out; everything
#   else is spelled out in the file.

import re
from collections.abc import Mapping
from typing import Final, TypeGuard

from policies.reading import (
    NAME,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    Check,
    at,
    describe,
    is_array,
    is_bool,
    is_days,
    is_name,
    is_non_negative_days,
    is_positive_int,
    is_string,
    is_table,
    is_text,
    read_day_list,
)
from policies.schema import (
    DEFAULT_MAX_LENGTH,
    ApplicationRules,
    Approval,
    FieldKind,
    FormField,
    LifecycleRules,
)

_APPLICATION_KEYS: Final = (
    "approval",
    "allowed_domains",
    "cooldown_days",
    "review_days",
    "response_days",
    "fields",
)
_FIELD_KEYS: Final = ("name", "label", "kind", "required", "options", "help", "max_length")
_LIFECYCLE_KEYS: Final = ("expiry_warning_days", "renewal_opens_days", "closeout_days")

_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# "uni.example" or "*.edu": a domain, or "*." and a domain for any subdomain of it.
_DOMAIN_PATTERN: Final = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_PATTERN_EXPECTED: Final = 'a domain pattern such as "uni.example" or "*.edu"'


def _one_of(values: type[Approval] | type[FieldKind]) -> str:
    return "one of " + ", ".join(f'"{value}"' for value in values)


def _is_approval(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in set(Approval)


def _is_kind(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in set(FieldKind)


def read_applications(tables: object, check: Check) -> dict[str, ApplicationRules] | None:
    """The application rules of every tier in the `tiers` table, by tier name."""
    if not is_table(tables):
        return None  # the ladder has reported it
    rules: dict[str, ApplicationRules] = {}
    complete = True
    for name, body in tables.items():
        if not is_table(body):
            complete = False  # the ladder has reported it
            continue
        read = _read_application(body, f"tiers.{name}", check)
        if read is None:
            complete = False
        else:
            rules[name] = read
    return rules if complete else None


def _read_application(
    tier: Mapping[str, object], tier_path: str, check: Check
) -> ApplicationRules | None:
    table = check.field(
        tier,
        tier_path,
        "application",
        "a table {approval, cooldown_days, review_days, response_days, fields}",
        is_table,
    )
    if table is None:
        return None
    path = f"{tier_path}.application"
    check.keys(table, path, _APPLICATION_KEYS)
    approval = check.field(table, path, "approval", _one_of(Approval), _is_approval)
    domains = _read_domains(table, path, None if approval is None else Approval(approval), check)
    cooldown = check.field(table, path, "cooldown_days", NON_NEGATIVE_INT, is_non_negative_days)
    review = check.field(table, path, "review_days", POSITIVE_INT, is_days)
    response = check.field(table, path, "response_days", POSITIVE_INT, is_days)
    fields = _read_fields(table, path, check)
    if (
        approval is None
        or domains is None
        or cooldown is None
        or review is None
        or response is None
        or fields is None
    ):
        return None
    return ApplicationRules(
        approval=Approval(approval),
        allowed_domains=domains,
        cooldown_days=cooldown,
        review_days=review,
        response_days=response,
        fields=fields,
    )


def _read_domains(
    table: Mapping[str, object], path: str, approval: Approval | None, check: Check
) -> tuple[str, ...] | None:
    key_path = at(path, "allowed_domains")
    wanted = approval is Approval.EMAIL_DOMAIN
    expected = 'a non-empty array of domain patterns such as "uni.example" or "*.edu"'
    if "allowed_domains" not in table:
        if wanted:
            check.add(key_path, f'missing; expected {expected} when approval is "email_domain"')
            return None
        return ()
    items = table["allowed_domains"]
    if not is_array(items):
        check.add(key_path, f"expected {expected}, got {describe(items)}")
        return None
    if wanted and not items:
        check.add(key_path, f"expected {expected}, got an empty array")
        return None
    if approval is not None and not wanted and items:
        check.add(
            key_path,
            f'expected no domains when approval is "{approval}" '
            '(they are only used with "email_domain"), got an array',
        )
        return None
    patterns: list[str] = []
    for index, item in enumerate(items):
        pattern = item.lower() if isinstance(item, str) else None
        if pattern is None or len(pattern) > 253 or not _DOMAIN_PATTERN.fullmatch(pattern):
            check.add(f"{key_path}[{index}]", f"expected {_PATTERN_EXPECTED}, got {describe(item)}")
        elif pattern in patterns:
            check.add(f"{key_path}[{index}]", f"expected no repeats, got {describe(item)} again")
        else:
            patterns.append(pattern)
    return tuple(patterns) if len(patterns) == len(items) else None


def _read_fields(
    table: Mapping[str, object], path: str, check: Check
) -> tuple[FormField, ...] | None:
    items = check.field(
        table, path, "fields", "an array of tables {name, label, kind, required}", is_array
    )
    if items is None:
        return None
    fields: list[FormField] = []
    owners: dict[str, int] = {}
    for index, item in enumerate(items):
        field_path = f"{path}.fields[{index}]"
        read = _read_field(item, field_path, check)
        if read is None:
            continue
        if read.name in owners:
            check.add(
                f"{field_path}.name",
                f"expected a name no other field uses, got {describe(read.name)} "
                f"(also fields[{owners[read.name]}]'s)",
            )
            continue
        owners[read.name] = index
        fields.append(read)
    return tuple(fields) if len(fields) == len(items) else None


def _read_field(item: object, path: str, check: Check) -> FormField | None:
    if not is_table(item):
        check.add(path, f"expected a table {{name, label, kind, required}}, got {describe(item)}")
        return None
    check.keys(item, path, _FIELD_KEYS)
    name = check.field(item, path, "name", f"a field name matching {NAME.pattern}", is_name)
    label = check.field(item, path, "label", "a non-empty string", is_text)
    kind_text = check.field(item, path, "kind", _one_of(FieldKind), _is_kind)
    required = check.field(item, path, "required", "true or false", is_bool)
    kind = None if kind_text is None else FieldKind(kind_text)
    options = _read_options(item, path, kind, check)
    help_text = check.field(item, path, "help", "a string", is_string) if "help" in item else ""
    max_length = _read_max_length(item, path, kind, check)
    if (
        name is None
        or label is None
        or kind is None
        or required is None
        or options is None
        or help_text is None
        or max_length is None
    ):
        return None
    return FormField(
        name=name,
        label=label,
        kind=kind,
        required=required,
        options=options,
        help=help_text,
        max_length=max_length,
    )


def _read_options(
    item: Mapping[str, object], path: str, kind: FieldKind | None, check: Check
) -> tuple[str, ...] | None:
    expected = "a non-empty array of distinct non-empty strings"
    key_path = at(path, "options")
    if kind is not FieldKind.SELECT:
        if kind is not None and "options" in item:
            check.add(
                key_path,
                f"expected no options for a {kind} field (only select fields have them), "
                f"got {describe(item['options'])}",
            )
            return None
        return ()
    values = check.field(item, path, "options", f"{expected} for a select field", is_array)
    if values is None:
        return None
    if not values:
        check.add(key_path, f"expected {expected} for a select field, got an empty array")
        return None
    options: list[str] = []
    for index, value in enumerate(values):
        if not is_text(value):
            check.add(f"{key_path}[{index}]", f"expected a non-empty string, got {describe(value)}")
        elif value in options:
            check.add(f"{key_path}[{index}]", f"expected no repeats, got {describe(value)} again")
        else:
            options.append(value)
    return tuple(options) if len(options) == len(values) else None


def _read_max_length(
    item: Mapping[str, object], path: str, kind: FieldKind | None, check: Check
) -> int | None:
    if kind is None:
        return 0  # the kind's own problem is reported; nothing to check against
    default = DEFAULT_MAX_LENGTH.get(kind)
    if default is None:
        if "max_length" in item:
            check.add(
                at(path, "max_length"),
                f"expected no max_length for a {kind} field (only text and long_text "
                f"answers have one), got {describe(item['max_length'])}",
            )
            return None
        return 0
    if "max_length" not in item:
        return default
    return check.field(item, path, "max_length", POSITIVE_INT, is_positive_int)


def read_lifecycle(data: Mapping[str, object], check: Check) -> LifecycleRules | None:
    """The `[lifecycle]` table: when grantees are warned, may renew, must attest deletion."""
    table = check.field(
        data,
        "",
        "lifecycle",
        "a table {expiry_warning_days, renewal_opens_days, closeout_days}",
        is_table,
    )
    if table is None:
        return None
    check.keys(table, "lifecycle", _LIFECYCLE_KEYS)
    warnings = _read_warning_days(table, check)
    renewal = check.field(table, "lifecycle", "renewal_opens_days", POSITIVE_INT, is_days)
    closeout = check.field(table, "lifecycle", "closeout_days", POSITIVE_INT, is_days)
    if warnings is None or renewal is None or closeout is None:
        return None
    return LifecycleRules(
        expiry_warning_days=warnings, renewal_opens_days=renewal, closeout_days=closeout
    )


def _read_warning_days(table: Mapping[str, object], check: Check) -> tuple[int, ...] | None:
    return read_day_list(
        check, table, "lifecycle", "expiry_warning_days", "days before a grant ends"
    )
