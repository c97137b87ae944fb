# The release stage machine.
#
# Rules:
# - A release has a stage ("draft", then the ladder's tiers, narrowest first) and an
#   orthogonal status (active, recalled, decommissioned).
# - The legal moves are the data in _TRANSITIONS: which status a move may start from,
#   the status it leaves, and which stages it may go to. Nothing else is legal.
# - promote goes exactly one stage wider; rollback goes to any narrower stage (draft
#   included); both only while active. recall and reinstate flip the status and never
#   touch the stage. decommissioned is terminal.
# - States are immutable; apply() returns a new one or raises. An illegal move raises
#   IllegalMove with a sentence saying why, without the release name: the caller knows
#   which release it is talking about and adds that context.

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

DRAFT: Final = "draft"


class Status(StrEnum):
    ACTIVE = "active"
    RECALLED = "recalled"
    DECOMMISSIONED = "decommissioned"


class Move(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    RECALL = "recall"
    REINSTATE = "reinstate"
    DECOMMISSION = "decommission"


@dataclass(frozen=True)
class ReleaseState:
    stage: str
    status: Status

    def __post_init__(self) -> None:
        # Statuses read back from storage arrive as text; a bad one fails here, early.
        object.__setattr__(self, "status", Status(self.status))


class _Reach(Enum):
    """Where a move may take the stage."""

    NEXT_WIDER = "next wider stage"
    ANY_NARROWER = "any narrower stage"
    SAME = "same stage"


# status -> move -> (status after the move, where the stage may go)
_TRANSITIONS: Final[Mapping[Status, Mapping[Move, tuple[Status, _Reach]]]] = {
    Status.ACTIVE: {
        Move.PROMOTE: (Status.ACTIVE, _Reach.NEXT_WIDER),
        Move.ROLLBACK: (Status.ACTIVE, _Reach.ANY_NARROWER),
        Move.RECALL: (Status.RECALLED, _Reach.SAME),
        Move.DECOMMISSION: (Status.DECOMMISSIONED, _Reach.SAME),
    },
    Status.RECALLED: {
        Move.REINSTATE: (Status.ACTIVE, _Reach.SAME),
        Move.DECOMMISSION: (Status.DECOMMISSIONED, _Reach.SAME),
    },
    Status.DECOMMISSIONED: {},
}

# Why a move is refused in a status, when the status alone is the reason.
_STATUS_REASON: Final[Mapping[Status, str]] = {
    Status.ACTIVE: "only a recalled release can be reinstated",
    Status.RECALLED: "reinstate it first",
    Status.DECOMMISSIONED: "decommissioning is final",
}

# Sharper reasons for a few (status, move) pairs.
_MOVE_REASON: Final[Mapping[tuple[Status, Move], str]] = {
    (Status.RECALLED, Move.RECALL): "it is already recalled",
}

_VERB: Final[Mapping[Move, str]] = {Move.ROLLBACK: "roll back"}


class StageError(Exception):
    """Base of the stage machine's errors."""


# The names read as the domain says them; an "Error" suffix would add nothing.
class UnknownStage(StageError, LookupError):
    """A stage name that is neither draft nor a tier of the ladder."""

    def __init__(self, stage: str, known: Sequence[str]) -> None:
        self.stage = stage
        self.known = tuple(known)
        super().__init__(f"unknown stage {stage!r}; stages are {', '.join(self.known)}")


class IllegalMove(StageError):
    """A move the transition table does not allow from this state."""

    def __init__(self, state: ReleaseState, move: Move, target: str | None, why: str) -> None:
        self.state = state
        self.move = move
        self.target = target
        self.why = why
        super().__init__(why)


class StageMachine:
    """The stages of one ladder and the moves between them."""

    def __init__(self, ladder_names: Sequence[str]) -> None:
        names = tuple(ladder_names)
        if not names:
            raise ValueError("a stage machine needs at least one tier")
        if DRAFT in names:
            raise ValueError(f"{DRAFT!r} is the stage before any tier, not a tier")
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be distinct, got {list(names)}")
        self.stages: tuple[str, ...] = (DRAFT, *names)
        self._rank = {stage: rank for rank, stage in enumerate(self.stages)}
        self._edges = {
            ReleaseState(stage, status): self._edges_from(stage, status)
            for stage in self.stages
            for status in Status
        }

    def initial(self) -> ReleaseState:
        """Where every release starts: an active draft."""
        return ReleaseState(DRAFT, Status.ACTIVE)

    def apply(self, state: ReleaseState, move: Move, target: str | None = None) -> ReleaseState:
        """The state after `move`; IllegalMove or UnknownStage if it is not allowed."""
        move = Move(move)  # a plain "promote" from a caller works too
        self._check_stage(state.stage)
        if target is not None:
            self._check_stage(target)
        new_state = self._edges[state].get((move, target))
        if new_state is None:
            raise IllegalMove(state, move, target, self._why_not(state, move, target))
        return new_state

    def legal_moves(self, state: ReleaseState) -> list[tuple[Move, str | None]]:
        """Every (move, target) that apply() accepts from `state`."""
        self._check_stage(state.stage)
        return list(self._edges[state])

    def reaches(self, stage: str, tier: str) -> bool:
        """Whether a release at `stage` is open to `tier` (status is not considered)."""
        self._check_stage(stage)
        if tier == DRAFT:
            raise UnknownStage(tier, self.stages[1:])
        self._check_stage(tier)
        return self._rank[stage] >= self._rank[tier]

    def next_stage(self, stage: str) -> str | None:
        """The stage one wider than `stage` (where promote goes), or None at the widest."""
        self._check_stage(stage)
        wider = self.stages[self._rank[stage] + 1 :]
        return wider[0] if wider else None

    def open_tiers(self, state: ReleaseState) -> frozenset[str]:
        """The tiers a release is open to: none unless active, else those its stage reaches."""
        if state.status is not Status.ACTIVE:
            return frozenset()
        self._check_stage(state.stage)
        return frozenset(self.stages[1 : self._rank[state.stage] + 1])

    def _edges_from(
        self, stage: str, status: Status
    ) -> dict[tuple[Move, str | None], ReleaseState]:
        edges: dict[tuple[Move, str | None], ReleaseState] = {}
        rank = self._rank[stage]
        for move, (new_status, reach) in _TRANSITIONS[status].items():
            if reach is _Reach.SAME:
                edges[(move, None)] = ReleaseState(stage, new_status)
            elif reach is _Reach.NEXT_WIDER:
                for wider in self.stages[rank + 1 : rank + 2]:
                    edges[(move, wider)] = ReleaseState(wider, new_status)
            else:
                for narrower in self.stages[:rank]:
                    edges[(move, narrower)] = ReleaseState(narrower, new_status)
        return edges

    def _check_stage(self, stage: str) -> None:
        if stage not in self._rank:
            raise UnknownStage(stage, self.stages)

    def _why_not(self, state: ReleaseState, move: Move, target: str | None) -> str:
        verb = _VERB.get(move, move.value)
        allowed = _TRANSITIONS[state.status]
        if move not in allowed:
            article = "an" if state.status is Status.ACTIVE else "a"
            reason = _MOVE_REASON.get((state.status, move), _STATUS_REASON[state.status])
            return f"cannot {verb} {article} {state.status} release: {reason}"
        _, reach = allowed[move]
        if reach is _Reach.NEXT_WIDER:
            return self._why_not_wider(state.stage, verb, target)
        if reach is _Reach.ANY_NARROWER:
            return self._why_not_narrower(state.stage, verb, target)
        return f"cannot {verb} to {target}: {verb} keeps the stage, give no target"

    def _why_not_wider(self, stage: str, verb: str, target: str | None) -> str:
        rank = self._rank[stage]
        if rank + 1 == len(self.stages):
            return f"cannot {verb} from {stage}: it is already the widest stage"
        wider = self.stages[rank + 1]
        if target is None:
            return f"cannot {verb} without a target stage: the next stage is {wider}"
        if self._rank[target] <= rank:
            return (
                f"cannot {verb} from {stage} to {target}: "
                f"{target} is not wider than {stage}, roll back instead"
            )
        return (
            f"cannot {verb} from {stage} to {target}: "
            f"promotion goes one stage at a time, the next stage is {wider}"
        )

    def _why_not_narrower(self, stage: str, verb: str, target: str | None) -> str:
        rank = self._rank[stage]
        if rank == 0:
            return f"cannot {verb} from {stage}: there is no narrower stage"
        if target is None:
            choices = ", ".join(self.stages[:rank])
            return f"cannot {verb} without a target stage: choose one of {choices}"
        return f"cannot {verb} from {stage} to {target}: {target} is not narrower than {stage}"
