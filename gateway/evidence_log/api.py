"""The evidence log over HTTP: checkpoints and the public key for anyone, consistency
proofs for anyone, inclusion proofs for a grantee's own events (an operator's: any).

Checkpoints and keys are text (`text/plain`), as transparency-log tools read them;
proofs are JSON with hashes in lowercase hex.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import PathParameter, QueryParameter

from gateway.api_reference import BEARER, COMMON, answers
from gateway.evidence_log import service
from gateway.keys.auth import CallerDep
from gateway.keys.service import Unauthenticated, state_of
from gateway.web import Uow
from stages.keys import KeyState

_TEXT = "text/plain"  # Litestar adds the charset
# A checkpoint changes at most once a seal: caches may keep it briefly.
_SHORT_CACHE = {"cache-control": "public, max-age=10"}
# Sizes and positions are 64-bit columns; anything larger is refused as a bad query.
_MAX = 2**62


@dataclass(frozen=True)
class CheckpointOut:
    tree_size: int
    root_hash: str
    signed_at: datetime
    note: str

    @classmethod
    def of(cls, checkpoint: service.Checkpoint) -> CheckpointOut:
        return cls(checkpoint.size, checkpoint.root.hex(), checkpoint.signed_at, checkpoint.note)


@dataclass(frozen=True)
class InclusionOut:
    """`proof` is RFC 9162's inclusion proof of `leaf_hash` (SHA-256 of 0x00 and `entry`)
    at `index` in the tree of `tree_size` leaves whose root is `root_hash`; `checkpoint`
    is the signed note of that size, when one was signed at it."""

    index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]
    entry: str
    checkpoint: str | None


@dataclass(frozen=True)
class ConsistencyOut:
    """RFC 9162's consistency proof that the tree of `from_size` leaves is a prefix of
    the tree of `to_size`."""

    from_size: int
    to_size: int
    from_root: str
    to_root: str
    proof: list[str]


Size = Annotated[
    int | None,
    QueryParameter(
        description="A tree size up to the latest checkpoint's (default: that)", ge=0, le=_MAX
    ),
]


class EvidenceLogController(Controller):
    tags = ["evidence log"]

    @get(
        "/.well-known/evidence/checkpoint",
        summary="The latest signed checkpoint of the evidence log (C2SP signed note)",
        media_type=_TEXT,
        responses=answers(404, 503),
    )
    async def checkpoint(self, uow: Uow) -> Response[str]:
        latest = await service.latest_checkpoint(uow)
        return Response(latest.note, media_type=_TEXT, headers=_SHORT_CACHE)

    @get(
        "/.well-known/evidence/public-key",
        summary="The key that signs checkpoints (a signed-note verifier key)",
        media_type=_TEXT,
        responses=answers(404, 503),
    )
    async def public_key(self, uow: Uow) -> Response[str]:
        return Response(await service.public_key(uow) + "\n", media_type=_TEXT)

    @get(
        "/api/v1/evidence/checkpoints",
        summary="Signed checkpoints, newest first",
        responses=answers(*COMMON),
    )
    async def checkpoints(
        self,
        uow: Uow,
        below: Annotated[
            int | None,
            QueryParameter(description="Only checkpoints of smaller sizes", ge=0, le=_MAX),
        ] = None,
        limit: Annotated[int, QueryParameter(description="At most this many", ge=1, le=1000)] = 100,
    ) -> list[CheckpointOut]:
        found = await service.checkpoint_history(uow, below=below, limit=limit)
        return [CheckpointOut.of(checkpoint) for checkpoint in found]

    @get(
        "/api/v1/evidence/{index:int}/proof",
        summary="Inclusion proof of one evidence row (your own events; an operator's: any)",
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def inclusion(
        self,
        uow: Uow,
        caller: CallerDep,
        index: Annotated[int, PathParameter(description="The row's leaf index", ge=0, le=_MAX)],
        size: Size = None,
    ) -> InclusionOut:
        if state_of(caller.key, uow.rt.clock()) is not KeyState.ACTIVE:
            raise Unauthenticated("this API key is revoked or expired", code="key_invalid")
        account = None if caller.account.is_operator else caller.account.id
        proof = await service.inclusion(uow, index, size=size, account_id=account)
        return InclusionOut(
            index=proof.index,
            tree_size=proof.size,
            leaf_hash=proof.leaf_hash.hex(),
            root_hash=proof.root.hex(),
            proof=[hashed.hex() for hashed in proof.proof],
            entry=proof.entry.decode(),
            checkpoint=proof.checkpoint,
        )

    @get(
        "/api/v1/evidence/consistency",
        summary="Consistency proof between two sizes of the evidence log",
        responses=answers(*COMMON, 404),
    )
    async def consistency(
        self,
        uow: Uow,
        from_size: Annotated[
            int, QueryParameter(name="from", description="The older size", ge=0, le=_MAX)
        ],
        to_size: Annotated[
            int | None,
            QueryParameter(
                name="to", description="The newer size (default: the latest)", ge=0, le=_MAX
            ),
        ] = None,
    ) -> ConsistencyOut:
        proof = await service.consistency(uow, from_size, to_size)
        return ConsistencyOut(
            from_size=proof.old,
            to_size=proof.new,
            from_root=proof.old_root.hex(),
            to_root=proof.new_root.hex(),
            proof=[hashed.hex() for hashed in proof.proof],
        )
