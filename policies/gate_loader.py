# Reading the promotion gates and the reinstatement rule from a policy file.
#
# Rules:
# - Same contract as the rest of the loader: every problem is collected with the dotted
#   path of its field, what was expected and what was found; unknown keys are refused.
# - [gates.<tier>] is the gate of promotion INTO that tier, and is optional: a tier
#   without one is gated by the stage machine alone. Inside a gate every key is optional
#   and its default demands nothing (0, no limit, no evidence, one approval), except
#   no_recall_in_force, which defaults to true.
# - A gate that can never be met is refused: nothing can be downloaded before the first
#   tier opens, so that tier's gate cannot ask for downloads.
# - Evidence labels are compared exactly, so they are kept to lower-case slugs.

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, TypeGuard

from policies.reading import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    Check,
    at,
    describe,
    is_array,
    is_bool,
    is_non_negative_days,
    is_non_negative_int,
    is_positive_int,
    is_table,
)
from policies.schema import EvidenceRequirement, GateRules, ReinstateRules
from stages.incidents import Severity
from stages.tiers import TierLadder

# "evaluation", "red-team", "pass", "v1.2": what an operator types on a command line.
EVIDENCE_LABEL: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
_LABEL_EXPECTED: Final = f'a lower-case label such as "red-team" ({EVIDENCE_LABEL.pattern})'

_GATE_KEYS: Final = (
    "min_days_in_stage",
    "min_grantees_downloaded",
    "min_organisations_downloaded",
    "max_open_incidents",
    "required_evidence",
    "approvals",
    "no_recall_in_force",
    "min_api_requests",
    "min_api_users",
    "max_flagged_share",
)
_EVIDENCE_KEYS: Final = ("kind", "name", "result")
_SEVERITY_KEYS: Final = tuple(Severity)
_REINSTATE_KEYS: Final = ("approvals",)


def is_evidence_label(value: object) -> TypeGuard[str]:
    """Whether `value` may name an evidence kind, name or result."""
    return isinstance(value, str) and EVIDENCE_LABEL.fullmatch(value) is not None


def read_gates(
    data: Mapping[str, object], check: Check, ladder: TierLadder | None
) -> Mapping[str, GateRules] | None:
    """The `[gates.<tier>]` tables by tier, in ladder order; no `gates` table is no gates."""
    if "gates" not in data:
        return MappingProxyType({})
    tables = data["gates"]
    if not is_table(tables):
        check.add("gates", f"expected a table of gates by tier, got {describe(tables)}")
        return None
    gates: dict[str, GateRules] = {}
    for tier, body in tables.items():
        path = f"gates.{tier}"
        if ladder is not None and tier not in ladder:
            check.add(path, f"expected a tier of the ladder ({', '.join(ladder.names)})")
            continue
        first_tier = ladder is not None and ladder.names[0] == tier
        read = _read_gate(body, path, check, first_tier=first_tier)
        if read is not None:
            gates[tier] = read
    if ladder is None or len(gates) != len(tables):
        return None
    return MappingProxyType({tier: gates[tier] for tier in ladder.names if tier in gates})


def _read_gate(body: object, path: str, check: Check, *, first_tier: bool) -> GateRules | None:
    if not is_table(body):
        check.add(path, f"expected a table, got {describe(body)}")
        return None
    check.keys(body, path, _GATE_KEYS)
    days = check.optional(
        body, path, "min_days_in_stage", NON_NEGATIVE_INT, is_non_negative_days, 0
    )
    grantees = _read_download_count(body, path, "min_grantees_downloaded", check, first_tier)
    organisations = _read_download_count(
        body, path, "min_organisations_downloaded", check, first_tier
    )
    incidents = _read_max_incidents(body, path, check)
    evidence = _read_evidence(body, path, check)
    approvals = check.optional(body, path, "approvals", POSITIVE_INT, is_positive_int, 1)
    no_recall = check.optional(body, path, "no_recall_in_force", "true or false", is_bool, True)
    requests = _read_api_count(body, path, "min_api_requests", check, first_tier)
    users = _read_api_count(body, path, "min_api_users", check, first_tier)
    share = _read_flagged_share(body, path, check, first_tier)
    if (
        days is None
        or grantees is None
        or organisations is None
        or incidents is None
        or evidence is None
        or approvals is None
        or no_recall is None
        or requests is None
        or users is None
        or share is False
    ):
        return None
    return GateRules(
        min_days_in_stage=days,
        min_grantees_downloaded=grantees,
        min_organisations_downloaded=organisations,
        max_open_incidents=incidents,
        required_evidence=evidence,
        approvals=approvals,
        no_recall_in_force=no_recall,
        min_api_requests=requests,
        min_api_users=users,
        max_flagged_share=share,
    )


def _read_api_count(
    body: Mapping[str, object], path: str, key: str, check: Check, first_tier: bool
) -> int | None:
    count = check.optional(body, path, key, NON_NEGATIVE_INT, is_non_negative_int, 0)
    if first_tier and count:
        check.add(
            at(path, key),
            "expected 0 in the gate of the first tier (no API use is served before the "
            f"first tier opens), got {count}",
        )
        return None
    return count


def is_share(value: object) -> TypeGuard[float]:
    """A fraction from 0 to 1 (0.02 is 2 %); an integer 0 or 1 will do."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _read_flagged_share(
    body: Mapping[str, object], path: str, check: Check, first_tier: bool
) -> float | bool | None:
    """The share, None when the gate sets none, or False when it is refused."""
    key = "max_flagged_share"
    if key not in body:
        return None
    share = check.field(body, path, key, "a fraction from 0 to 1, such as 0.02", is_share)
    if share is None:
        return False
    if first_tier:
        check.add(
            at(path, key),
            "expected no flagged-share limit in the gate of the first tier (no API use is "
            "served before the first tier opens)",
        )
        return False
    return float(share)


def _read_download_count(
    body: Mapping[str, object], path: str, key: str, check: Check, first_tier: bool
) -> int | None:
    count = check.optional(body, path, key, NON_NEGATIVE_INT, is_non_negative_int, 0)
    if first_tier and count:
        check.add(
            at(path, key),
            "expected 0 in the gate of the first tier (nothing can be downloaded before "
            f"the first tier opens), got {count}",
        )
        return None
    return count


def _read_max_incidents(
    body: Mapping[str, object], path: str, check: Check
) -> Mapping[Severity, int] | None:
    key_path = at(path, "max_open_incidents")
    table = check.optional(
        body,
        path,
        "max_open_incidents",
        "a table of severity = most open incidents allowed",
        is_table,
        {},
    )
    if table is None:
        return None
    check.keys(table, key_path, _SEVERITY_KEYS)
    limits: dict[Severity, int] = {}
    complete = True
    for severity in Severity:  # in order of severity, whatever order the file has
        if severity not in table:
            continue  # no limit
        limit = check.field(table, key_path, severity, NON_NEGATIVE_INT, is_non_negative_int)
        if limit is None:
            complete = False
        else:
            limits[severity] = limit
    if not complete:
        return None
    return MappingProxyType(limits)


def _read_evidence(
    body: Mapping[str, object], path: str, check: Check
) -> tuple[EvidenceRequirement, ...] | None:
    items = check.optional(
        body, path, "required_evidence", "an array of tables {kind, name, result}", is_array, []
    )
    if items is None:
        return None
    required: list[EvidenceRequirement] = []
    for index, item in enumerate(items):
        item_path = f"{path}.required_evidence[{index}]"
        read = _read_requirement(item, item_path, check)
        if read is None:
            continue
        if read in required:
            check.add(
                item_path,
                f"expected no repeats, got the same evidence as "
                f"required_evidence[{required.index(read)}]",
            )
            continue
        required.append(read)
    return tuple(required) if len(required) == len(items) else None


def _read_requirement(item: object, path: str, check: Check) -> EvidenceRequirement | None:
    if not is_table(item):
        check.add(path, f"expected a table {{kind, name, result}}, got {describe(item)}")
        return None
    check.keys(item, path, _EVIDENCE_KEYS)
    kind = check.field(item, path, "kind", _LABEL_EXPECTED, is_evidence_label)
    name = check.field(item, path, "name", _LABEL_EXPECTED, is_evidence_label)
    # No result: any recorded result of this kind and name will do.
    result = check.optional(item, path, "result", _LABEL_EXPECTED, is_evidence_label, "")
    if kind is None or name is None or result is None:
        return None
    return EvidenceRequirement(kind=kind, name=name, result=result or None)


def read_reinstate(data: Mapping[str, object], check: Check) -> ReinstateRules | None:
    """The `[reinstate]` table: how many operators must agree to lift a recall."""
    table = check.field(data, "", "reinstate", "a table {approvals}", is_table)
    if table is None:
        return None
    check.keys(table, "reinstate", _REINSTATE_KEYS)
    approvals = check.field(table, "reinstate", "approvals", POSITIVE_INT, is_positive_int)
    if approvals is None:
        return None
    return ReinstateRules(approvals=approvals)
