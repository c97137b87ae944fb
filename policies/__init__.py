"""The policy file: its schema, its loader, and the pure rules evaluated from it.

The shipped policy is `default.toml` in this package; the shell reads it with
importlib.resources, since nothing here opens files.
"""

from policies.components import classify, parse_override
from policies.loader import MAX_URL_TTL_SECONDS, SCHEMA_VERSION, PolicyError, load_policy
from policies.schema import ComponentRule, Policy, PublishRules

__all__ = [
    "MAX_URL_TTL_SECONDS",
    "SCHEMA_VERSION",
    "ComponentRule",
    "Policy",
    "PolicyError",
    "PublishRules",
    "classify",
    "load_policy",
    "parse_override",
]
