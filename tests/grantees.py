"""Setting up grantees for download tests: a published, promoted release, an account with
a grant and an API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.grants.service import create_grant
from gateway.keys.service import create_key
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from stages.names import parse_model_ref
from stages.release import Move
from tests.accounts import create_account
from tests.sample import publish
from tests.units import within

MODEL = parse_model_ref("acme/sample")


@dataclass(frozen=True)
class Grantee:
    account_id: str
    email: str
    grant_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


async def open_release(rt: Runtime, tmp_path: Path, to: str = "researcher") -> None:
    """Publish acme/sample:1.0 and promote it up to stage `to`."""
    await publish(rt, tmp_path)
    for stage in rt.policy.ladder.names:
        await within(
            rt,
            lambda uow, stage=stage: move_release(
                uow, MODEL, "1.0", Move.PROMOTE, target=stage, actor="test"
            ),
        )
        if stage == to:
            return


async def grantee(
    rt: Runtime,
    email: str = "alice@example.org",
    tier: str = "researcher",
    scopes: tuple[str, ...] = ("download", "keys"),
) -> Grantee:
    account = await create_account(rt, email, operator=False, actor="test")
    grant = await within(
        rt,
        lambda uow: create_grant(uow, email=email, model=MODEL, tier=tier, days=None, actor="test"),
    )
    created = await within(
        rt,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=scopes, days=None, name="test", actor="test"
        ),
    )
    return Grantee(account.id, email, grant.id, created.secret)
