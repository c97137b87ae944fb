# The policy as plain values, after the loader has validated the file.
#
# Rules: frozen values only; nothing here reads a file or knows TOML. The loader is the
# one place that turns text into these.

from dataclasses import dataclass

from stages.tiers import TierLadder


@dataclass(frozen=True)
class ComponentRule:
    """Files matching `glob` belong to `component`."""

    glob: str
    component: str


@dataclass(frozen=True)
class PublishRules:
    """How published files are sorted into components; the first matching rule wins."""

    rules: tuple[ComponentRule, ...]
    default_component: str


@dataclass(frozen=True)
class KeyRules:
    """API key lifetimes: a key always expires; `default_days` unless asked, at most `max_days`."""

    default_days: int
    max_days: int


@dataclass(frozen=True)
class Policy:
    schema_version: int
    ladder: TierLadder
    publish: PublishRules
    api_keys: KeyRules
