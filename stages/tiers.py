# Tiers and the ladder that orders them.
#
# Rules:
# - A tier is a plain frozen value; the policy file is where tiers come from.
# - A ladder is immutable and ordered narrowest first. A tier's rank is its 1-based
#   position on the ladder, so rank 0 is free for the "draft" stage that reaches no one.
# - Looking up a tier that is not on the ladder raises UnknownTier, never KeyError,
#   so callers can show the known names.
# - A tier gives access to weights (its grantees download components) or to an API only
#   (its grantees see no component; a downstream inference service checks their keys).
#   Either kind may carry API terms; an API-only tier always does.

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class Access(StrEnum):
    WEIGHTS = "weights"
    API = "api"


@dataclass(frozen=True)
class ApiTerms:
    """How much a grant of the tier may use the model's API: requests a minute, per key,
    and credits a calendar month (UTC), per grant, refilled on the first of the month."""

    requests_per_minute: int
    credits_per_month: int


@dataclass(frozen=True)
class Tier:
    """An audience for a release and the terms of access it gets."""

    name: str
    rank: int
    title: str
    components: frozenset[str]
    grant_days: int
    url_ttl_seconds: int
    download_quota: int
    quota_period_days: int
    access: Access = Access.WEIGHTS
    api: ApiTerms | None = None
    # External evaluators: the tier's grantees submit evaluation results for the releases
    # open to them, attributed to them and counted as gate evidence.
    evaluators: bool = False

    @property
    def api_only(self) -> bool:
        return self.access is Access.API


class UnknownTier(LookupError):
    """A tier name that is not on the ladder."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown tier {name!r}; known tiers: {', '.join(self.known)}")


@dataclass(frozen=True, init=False)
class TierLadder:
    """The tiers of a policy, narrowest first."""

    tiers: tuple[Tier, ...]

    def __init__(self, tiers: Iterable[Tier]) -> None:
        ordered = tuple(sorted(tiers, key=lambda tier: tier.rank))
        names = [tier.name for tier in ordered]
        if not ordered:
            raise ValueError("a tier ladder needs at least one tier")
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be distinct, got {names}")
        ranks = [tier.rank for tier in ordered]
        if ranks != list(range(1, len(ordered) + 1)):
            raise ValueError(f"tier ranks must be 1..{len(ordered)}, got {ranks}")
        object.__setattr__(self, "tiers", ordered)

    @property
    def names(self) -> tuple[str, ...]:
        """Tier names, narrowest first."""
        return tuple(tier.name for tier in self.tiers)

    def get(self, name: str) -> Tier:
        """The tier called `name`; UnknownTier if there is none."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise UnknownTier(name, self.names)

    def rank(self, name: str) -> int:
        """The 1-based rank of tier `name` (wider tiers rank higher)."""
        return self.get(name).rank

    def visible_components(self, tier_name: str) -> frozenset[str]:
        """The components a grantee of `tier_name` may see."""
        return self.get(tier_name).components

    def tiers_seeing(self, component: str) -> tuple[str, ...]:
        """Names of the tiers that see `component`, narrowest first."""
        return tuple(tier.name for tier in self.tiers if component in tier.components)

    def recall_reach(self, recalled: Iterable[str]) -> frozenset[str]:
        """The tiers that lose a release when the tiers `recalled` are recalled.

        Recalling a tier withdraws the release from every wider tier too: the public never
        keeps what researchers lost. Names not on the ladder (a tier since removed from the
        policy) stay recalled themselves and widen nothing.
        """
        named = frozenset(recalled)
        ranks = [tier.rank for tier in self.tiers if tier.name in named]
        if not ranks:
            return named
        return named | {tier.name for tier in self.tiers if tier.rank >= min(ranks)}

    def __iter__(self) -> Iterator[Tier]:
        return iter(self.tiers)

    def __len__(self) -> int:
        return len(self.tiers)

    def __contains__(self, name: object) -> bool:
        return any(tier.name == name for tier in self.tiers)
