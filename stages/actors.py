# Who acted, as a value.
#
# Rules:
# - An actor's text is its stored form: `account:<id>`, `cli:user@host`, `system` or
#   `system:<part>`, `public`, `anonymous`.
# - `Actor.parse` reads any stored text back without loss (`str(Actor.parse(t)) == t`);
#   text in no known form (seed scripts, older rows, tests) reads as an `OTHER` actor
#   holding the text unchanged, so reading history never fails.
# - An `Actor` is a `str`: every column and older signature that takes the stored text
#   keeps working while callers move over to the value.

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, Self


class ActorKind(StrEnum):
    ACCOUNT = "account"  # a signed-in person or a bearer key: the account's id
    OPERATOR_CLI = "cli"  # an operator command run without --as: user@host
    SYSTEM = "system"  # the gateway itself; the id names the part (scheduler, trigger)
    PUBLIC = "public"  # someone not signed in, e.g. a public incident report
    ANONYMOUS = "anonymous"  # an unverified sign-up attempt
    OTHER = "other"  # text in no known form: stored and read back as it is


_BARE = frozenset({ActorKind.PUBLIC, ActorKind.ANONYMOUS})
_PREFIXED = frozenset({ActorKind.ACCOUNT, ActorKind.OPERATOR_CLI, ActorKind.SYSTEM})
ACTOR_MAX_LENGTH: Final = 320  # the width of every actor column


class Actor(str):
    """Who acted, as a value; its text is the stored form. A `str` so every column and
    older signature that takes the stored text keeps working while callers move over."""

    __slots__ = ()

    def __new__(cls, kind: ActorKind, id: str = "") -> Self:
        kind = ActorKind(kind)  # a copy or an unpickled actor passes the kind as text
        if kind in _BARE:
            if id:
                raise ValueError(f"a {kind.value} actor has no id")
            text = kind.value
        elif kind is ActorKind.OTHER:
            text = id
            if not text or _known_kind(text) is not ActorKind.OTHER:
                raise ValueError(f"{text!r} is not free-form actor text")
        else:
            if kind is not ActorKind.SYSTEM and not id:
                raise ValueError(f"a {kind.value} actor needs an id")
            if ":" in id and kind is ActorKind.ACCOUNT:
                raise ValueError("an account actor's id has no ':'")
            text = f"{kind.value}:{id}" if id else kind.value
        if len(text) > ACTOR_MAX_LENGTH or not text.isprintable():
            raise ValueError("an actor is printable text of at most 320 characters")
        return super().__new__(cls, text)

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (self.kind.value, self.id)

    @classmethod
    def parse(cls, text: str) -> Actor:
        """Read a stored actor back; `str(Actor.parse(t)) == t` for every stored `t`."""
        if isinstance(text, Actor):
            return text
        kind = _known_kind(text)
        if kind in _BARE:
            return cls(kind)
        if kind is ActorKind.OTHER:
            return cls(kind, text)
        return cls(kind, text.partition(":")[2])

    @classmethod
    def account(cls, account_id: str) -> Actor:
        return cls(ActorKind.ACCOUNT, account_id)

    @property
    def kind(self) -> ActorKind:
        return _known_kind(str(self))

    @property
    def id(self) -> str:
        if self.kind in _PREFIXED:
            return str(self).partition(":")[2]
        return str(self) if self.kind is ActorKind.OTHER else ""

    def is_account(self, account_id: str) -> bool:
        """Whether this is the given account acting (e.g. on its own application)."""
        return self.kind is ActorKind.ACCOUNT and self.id == account_id

    def as_seen_by(self, account_id: str) -> Literal["you", "system", "operator"]:
        """Who this is to the account whose record it is on: itself, the gateway, or an
        operator (anyone else acting on an account's record acts as an operator)."""
        if self.is_account(account_id):
            return "you"
        if self.kind is ActorKind.SYSTEM:
            return "system"
        return "operator"

    def __repr__(self) -> str:
        return f"Actor({self.kind.value}, {self.id!r})"


def _known_kind(text: str) -> ActorKind:
    if text in ("public", "anonymous"):
        return ActorKind(text)
    prefix, colon, rest = text.partition(":")
    if prefix == "system" and (not colon or rest):
        return ActorKind.SYSTEM
    if prefix in ("account", "cli") and colon and rest:
        if prefix == "account" and ":" in rest:
            return ActorKind.OTHER
        return ActorKind(prefix)
    return ActorKind.OTHER


GATEWAY: Final = Actor(ActorKind.SYSTEM)  # automatic decisions (an auto-approval)
SCHEDULER: Final = Actor(ActorKind.SYSTEM, "scheduler")  # scheduled jobs
TRIGGER: Final = Actor(ActorKind.SYSTEM, "trigger")  # policy triggers on incidents
# Reports signed by a secret scanning partner (GitHub), checked by the gateway's receiver.
SECRET_SCANNING: Final = Actor(ActorKind.SYSTEM, "secret-scanning")
PUBLIC: Final = Actor(ActorKind.PUBLIC)
ANONYMOUS: Final = Actor(ActorKind.ANONYMOUS)
