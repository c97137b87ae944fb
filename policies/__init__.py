"""The policy file: its schema, its loader, and the pure rules evaluated from it.

The shipped policy is `default.toml` in this package; the shell reads it with
importlib.resources, since nothing here opens files.
"""

from policies.answers import FieldProblem, clean_answers, validate_answers
from policies.applications import (
    AutoApprove,
    Cooldown,
    CoolingDown,
    MayApply,
    NeedsReview,
    ResponseClock,
    ReviewClock,
    Route,
    RouteCode,
    approval_route,
    cooldown,
    response_clock,
    review_clock,
)
from policies.components import classify, parse_override
from policies.countries import COUNTRY_NAMES, ISO_COUNTRIES
from policies.lifecycle import (
    CloseoutClock,
    RenewalWindow,
    closeout_clock,
    expiry_warnings_due,
    renewal_open,
)
from policies.loader import MAX_URL_TTL_SECONDS, SCHEMA_VERSION, PolicyError, load_policy
from policies.schema import (
    ApplicationRules,
    Approval,
    ComponentRule,
    FieldKind,
    FormField,
    KeyRules,
    LifecycleRules,
    Policy,
    PublishRules,
)

__all__ = [
    "COUNTRY_NAMES",
    "ISO_COUNTRIES",
    "MAX_URL_TTL_SECONDS",
    "SCHEMA_VERSION",
    "ApplicationRules",
    "Approval",
    "AutoApprove",
    "CloseoutClock",
    "ComponentRule",
    "Cooldown",
    "CoolingDown",
    "FieldKind",
    "FieldProblem",
    "FormField",
    "KeyRules",
    "LifecycleRules",
    "MayApply",
    "NeedsReview",
    "Policy",
    "PolicyError",
    "PublishRules",
    "RenewalWindow",
    "ResponseClock",
    "ReviewClock",
    "Route",
    "RouteCode",
    "approval_route",
    "classify",
    "clean_answers",
    "closeout_clock",
    "cooldown",
    "expiry_warnings_due",
    "load_policy",
    "parse_override",
    "renewal_open",
    "response_clock",
    "review_clock",
    "validate_answers",
]
