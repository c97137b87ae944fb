# Loading and validating a policy file.
#
# Rules:
# - Input is the file's text and the name it came from; this module never opens a file.
# - A problem names the dotted path of the field, what was expected and what was found.
#   Problems are collected, not raised one by one, so one run shows all of them.
# - Unknown keys are refused: a typo must never fall back silently to a default.
# - The result is plain frozen values (policies.schema); nothing downstream sees TOML.
# - Tiers, publishing and API keys are read here; each tier's application rules and the
#   grant lifecycle in policies.application_loader; promotion gates and reinstatement in
#   policies.gate_loader; triggers, decommission and enforcement in
#   policies.response_loader.

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Final, TypeGuard

from policies.application_loader import read_applications, read_lifecycle
from policies.gate_loader import read_gates, read_reinstate
from policies.reading import (
    MAX_INT,
    POSITIVE_INT,
    Check,
    describe,
    is_array,
    is_bool,
    is_days,
    is_int,
    is_min_count,
    is_name,
    is_positive_int,
    is_table,
    is_text,
)
from policies.response_loader import (
    read_decommission,
    read_enforcement,
    read_quarantine,
    read_reporting,
    read_triggers,
)
from policies.schema import (
    ComponentRule,
    EvidenceRules,
    KeyRules,
    Policy,
    PublishRules,
    TransparencyRules,
)
from policies.toml_text import TomlRefused, read_toml
from stages.release import DRAFT
from stages.tiers import Access, ApiTerms, Tier, TierLadder

SCHEMA_VERSION: Final = 1
# S3 (SigV4) presigned URLs cannot outlive seven days, so neither may ours.
MAX_URL_TTL_SECONDS: Final = 7 * 24 * 3600

_TOP_KEYS: Final = (
    "schema_version",
    "tiers",
    "publish",
    "api_keys",
    "lifecycle",
    "gates",
    "reinstate",
    "triggers",
    "decommission",
    "enforcement",
    "evidence",
    "transparency",
    "reporting",
    "quarantine",
)
_KEY_RULE_KEYS: Final = ("default_days", "max_days")
_TIER_KEYS: Final = (
    "order",
    "title",
    "components",
    "grant_days",
    "url_ttl_seconds",
    "download_quota",
    "quota_period_days",
    "access",
    "api",
    "application",
    "evaluators",
)
# What only a tier that delivers weights says; an API-only tier leaves them out.
_WEIGHTS_KEYS: Final = ("components", "url_ttl_seconds", "download_quota", "quota_period_days")
_API_KEYS: Final = ("requests_per_minute", "credits_per_month")
MAX_REQUESTS_PER_MINUTE: Final = 1_000_000
MAX_CREDITS_PER_MONTH: Final = MAX_INT
_PUBLISH_KEYS: Final = ("components", "default_component")
_RULE_KEYS: Final = ("glob", "component")

_COMPONENT: Final = "a component name matching [a-z][a-z0-9_]*"


class PolicyError(ValueError):
    """A policy file that does not validate; `problems` lists every reason."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


def load_policy(text: str, source: str) -> Policy:
    """The policy in `text`; PolicyError naming `source` if it does not validate."""
    try:
        data = read_toml(text)
    except TomlRefused as exc:
        raise PolicyError(source, [f"invalid TOML: {exc}"]) from exc
    check = Check()
    # A file for another schema version would mostly produce noise; stop at the version.
    if check.field(data, "", "schema_version", str(SCHEMA_VERSION), _is_schema_version) is None:
        raise PolicyError(source, check.problems)
    check.keys(data, "", _TOP_KEYS)
    ladder = _read_ladder(data, check)
    applications = read_applications(data.get("tiers"), check)
    publish = _read_publish(data, check, ladder)
    api_keys = _read_key_rules(data, check)
    lifecycle = read_lifecycle(data, check)
    gates = read_gates(data, check, ladder)
    reinstate = read_reinstate(data, check)
    triggers = read_triggers(data, check, ladder)
    decommission = read_decommission(data, check)
    enforcement = read_enforcement(data, check)
    evidence = _read_evidence(data, check)
    transparency = _read_transparency(data, check)
    reporting = read_reporting(data, check)
    quarantine = read_quarantine(data, check)
    if (
        check.problems
        or ladder is None
        or applications is None
        or publish is None
        or api_keys is None
        or lifecycle is None
        or gates is None
        or reinstate is None
        or triggers is None
        or decommission is None
        or enforcement is None
        or evidence is None
        or transparency is None
        or reporting is None
        or quarantine is None
    ):
        raise PolicyError(source, check.problems)
    return Policy(
        schema_version=SCHEMA_VERSION,
        ladder=ladder,
        publish=publish,
        api_keys=api_keys,
        applications=MappingProxyType({name: applications[name] for name in ladder.names}),
        lifecycle=lifecycle,
        gates=gates,
        reinstate=reinstate,
        decommission=decommission,
        triggers=triggers,
        enforcement=enforcement,
        evidence=evidence,
        transparency=transparency,
        reporting=reporting,
        quarantine=quarantine,
    )


def _read_evidence(data: Mapping[str, object], check: Check) -> EvidenceRules | None:
    """The `[evidence]` table, optional: how long evidence keeps personal data."""
    if "evidence" not in data:
        return EvidenceRules()
    table = check.field(data, "", "evidence", "a table {personal_data_days}", is_table)
    if table is None:
        return None
    check.keys(table, "evidence", ("personal_data_days",))
    if "personal_data_days" not in table:
        return EvidenceRules()
    days = check.field(table, "evidence", "personal_data_days", POSITIVE_INT, is_days)
    return None if days is None else EvidenceRules(personal_data_days=days)


def _read_transparency(data: Mapping[str, object], check: Check) -> TransparencyRules | None:
    """The `[transparency]` table, optional: the smallest count a report publishes."""
    if "transparency" not in data:
        return TransparencyRules()
    table = check.field(data, "", "transparency", "a table {min_count}", is_table)
    if table is None:
        return None
    check.keys(table, "transparency", ("min_count",))
    if "min_count" not in table:
        return TransparencyRules()
    least = check.field(table, "transparency", "min_count", "an integer", is_min_count)
    return None if least is None else TransparencyRules(min_count=least)


def _read_ladder(data: Mapping[str, object], check: Check) -> TierLadder | None:
    tables = check.field(data, "", "tiers", "a table of tiers", is_table)
    if tables is None:
        return None
    if not tables:
        check.add("tiers", "expected at least one tier, got none")
        return None
    read = {name: _read_tier(name, body, check) for name, body in tables.items()}
    valid = [entry for entry in read.values() if entry is not None]
    owners: dict[int, str] = {}
    for name, entry in read.items():
        if entry is None:
            continue
        order = entry[0]
        if order in owners:
            check.add(
                f"tiers.{name}.order",
                f"expected an order no other tier uses, got {order} (also {owners[order]}'s)",
            )
        owners.setdefault(order, name)
    if len(valid) != len(read) or len(owners) != len(valid):
        return None
    valid.sort(key=lambda entry: entry[0])
    # The file's order values only sort; ranks are positions, so draft can be rank 0.
    return TierLadder(replace(tier, rank=rank) for rank, (_, tier) in enumerate(valid, start=1))


def _read_tier(name: str, body: object, check: Check) -> tuple[int, Tier] | None:
    """The tier's order and the tier itself, its rank still 0 until the ladder is known."""
    path = f"tiers.{name}"
    if not is_name(name):
        check.add(path, f"expected a tier name matching [a-z][a-z0-9_]*, got {describe(name)}")
        return None
    if name == DRAFT:
        check.add(path, f'expected a tier name other than "{DRAFT}", the stage before any tier')
        return None
    if not is_table(body):
        check.add(path, f"expected a table, got {describe(body)}")
        return None
    check.keys(body, path, _TIER_KEYS)
    order = check.field(body, path, "order", "an integer", is_int)
    title = check.field(body, path, "title", "a non-empty string", is_text)
    grant_days = check.field(body, path, "grant_days", POSITIVE_INT, is_days)
    access = _read_access(body, path, check)
    api = _read_api_terms(body, path, check, required=access is Access.API)
    evaluators = check.optional(body, path, "evaluators", "true or false", is_bool, False)
    if access is Access.API:
        weights: tuple[frozenset[str], int, int, int] | None = (frozenset(), 0, 0, 0)
        for key in _WEIGHTS_KEYS:
            if key in body:
                check.add(
                    f"{path}.{key}",
                    'expected no such key in an API-only tier (access = "api"): its '
                    "grantees download nothing",
                )
                weights = None
    elif access is Access.WEIGHTS:
        weights = _read_weights_terms(body, path, check)
    else:
        weights = None  # what the tier should hold depends on the access it has
    if (
        order is None
        or title is None
        or grant_days is None
        or access is None
        or weights is None
        or (access is Access.API and api is None)
        or ("api" in body and api is None)
        or evaluators is None
    ):
        return None
    components, url_ttl, quota, period = weights
    tier = Tier(
        name=name,
        rank=0,
        title=title,
        components=components,
        grant_days=grant_days,
        url_ttl_seconds=url_ttl,
        download_quota=quota,
        quota_period_days=period,
        access=access,
        api=api,
        evaluators=evaluators,
    )
    return order, tier


def _read_access(body: Mapping[str, object], path: str, check: Check) -> Access | None:
    if "access" not in body:
        return Access.WEIGHTS
    expected = '"weights" (grantees download components) or "api" (API only)'
    value = check.field(body, path, "access", expected, _is_access)
    return None if value is None else Access(value)


def _is_access(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in tuple(Access)


def _is_requests_per_minute(value: object) -> TypeGuard[int]:
    return is_positive_int(value) and value <= MAX_REQUESTS_PER_MINUTE


def _is_credits_per_month(value: object) -> TypeGuard[int]:
    return is_positive_int(value) and value <= MAX_CREDITS_PER_MONTH


def _read_weights_terms(
    body: Mapping[str, object], path: str, check: Check
) -> tuple[frozenset[str], int, int, int] | None:
    components = _read_components(body, path, check)
    url_ttl = check.field(
        body,
        path,
        "url_ttl_seconds",
        f"a positive integer of at most {MAX_URL_TTL_SECONDS} (7 days)",
        _is_url_ttl,
    )
    quota = check.field(body, path, "download_quota", POSITIVE_INT, is_positive_int)
    period = check.field(body, path, "quota_period_days", POSITIVE_INT, is_days)
    if components is None or url_ttl is None or quota is None or period is None:
        return None
    return components, url_ttl, quota, period


def _read_api_terms(
    body: Mapping[str, object], path: str, check: Check, *, required: bool
) -> ApiTerms | None:
    if "api" not in body:
        if required:
            check.add(
                f"{path}.api",
                "expected a table {requests_per_minute, credits_per_month}: an API-only "
                "tier needs its API terms",
            )
        return None
    table = check.field(
        body, path, "api", "a table {requests_per_minute, credits_per_month}", is_table
    )
    if table is None:
        return None
    where = f"{path}.api"
    check.keys(table, where, _API_KEYS)
    rpm = check.field(
        table,
        where,
        "requests_per_minute",
        f"a positive integer of at most {MAX_REQUESTS_PER_MINUTE:,}",
        _is_requests_per_minute,
    )
    credits = check.field(
        table,
        where,
        "credits_per_month",
        f"a positive integer of at most {MAX_CREDITS_PER_MONTH:,}",
        _is_credits_per_month,
    )
    if rpm is None or credits is None:
        return None
    return ApiTerms(requests_per_minute=rpm, credits_per_month=credits)


def _read_components(body: Mapping[str, object], path: str, check: Check) -> frozenset[str] | None:
    expected = "a non-empty array of component names matching [a-z][a-z0-9_]*"
    items = check.field(body, path, "components", expected, is_array)
    if items is None:
        return None
    if not items:
        check.add(f"{path}.components", f"expected {expected}, got an empty array")
        return None
    names: list[str] = []
    for index, item in enumerate(items):
        if not is_name(item):
            check.add(f"{path}.components[{index}]", f"expected {_COMPONENT}, got {describe(item)}")
        elif item in names:
            check.add(
                f"{path}.components[{index}]", f"expected no repeats, got {describe(item)} again"
            )
        else:
            names.append(item)
    return frozenset(names) if len(names) == len(items) else None


def _read_publish(
    data: Mapping[str, object], check: Check, ladder: TierLadder | None
) -> PublishRules | None:
    publish = check.field(data, "", "publish", "a table", is_table)
    if publish is None:
        return None
    check.keys(publish, "publish", _PUBLISH_KEYS)
    default = check.field(publish, "publish", "default_component", _COMPONENT, is_name)
    items = check.field(
        publish, "publish", "components", "an array of tables {glob, component}", is_array
    )
    rules: list[ComponentRule] = []
    for index, item in enumerate(items or ()):
        path = f"publish.components[{index}]"
        if not is_table(item):
            check.add(path, f"expected a table {{glob, component}}, got {describe(item)}")
            continue
        check.keys(item, path, _RULE_KEYS)
        glob = check.field(item, path, "glob", "a glob relative to the release root", _is_glob)
        component = check.field(item, path, "component", _COMPONENT, is_name)
        if glob is not None and component is not None:
            rules.append(ComponentRule(glob=glob, component=component))
            _check_seen(component, f"{path}.component", ladder, check)
    if default is not None:
        _check_seen(default, "publish.default_component", ladder, check)
    if items is None or default is None:
        return None
    return PublishRules(rules=tuple(rules), default_component=default)


def _read_key_rules(data: Mapping[str, object], check: Check) -> KeyRules | None:
    table = check.field(data, "", "api_keys", "a table {default_days, max_days}", is_table)
    if table is None:
        return None
    check.keys(table, "api_keys", _KEY_RULE_KEYS)
    default = check.field(table, "api_keys", "default_days", POSITIVE_INT, is_days)
    longest = check.field(table, "api_keys", "max_days", POSITIVE_INT, is_days)
    if default is None or longest is None:
        return None
    if default > longest:
        check.add(
            "api_keys.default_days",
            f"expected at most api_keys.max_days ({longest}), got {default}",
        )
        return None
    return KeyRules(default_days=default, max_days=longest)


def _check_seen(component: str, path: str, ladder: TierLadder | None, check: Check) -> None:
    """A component no tier sees would hide its files from everyone: almost surely a typo."""
    if ladder is None:
        return
    seen = sorted(set().union(*(tier.components for tier in ladder)))
    if component not in seen:
        check.add(
            path,
            f"expected a component some tier sees ({', '.join(seen)}), got {describe(component)}",
        )


def _is_url_ttl(value: object) -> TypeGuard[int]:
    return is_positive_int(value) and value <= MAX_URL_TTL_SECONDS


def _is_schema_version(value: object) -> TypeGuard[int]:
    return is_int(value) and value == SCHEMA_VERSION


def _is_glob(value: object) -> TypeGuard[str]:
    # A glob starting with "/" can never match a relative path: a silently dead rule.
    return isinstance(value, str) and value != "" and not value.startswith("/")
