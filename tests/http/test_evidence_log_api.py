"""The evidence log over HTTP: anyone reads the checkpoint, its key and consistency
proofs; a key holder gets inclusion proofs of their own events, an operator of any; bad
sizes are a 400 that says why, and a log with no checkpoint yet a 404 that says so."""

from __future__ import annotations

from typing import Any, TypeAlias

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway import evidence
from gateway.db.uow import unit_of_work
from gateway.evidence_log import reference_verify as reference
from gateway.evidence_log import service
from gateway.keys.service import create_key, revoke_key
from gateway.runtime import Runtime
from stages import evidence as ev
from tests.accounts import create_account
from tests.backends import on_each_database
from tests.units import within

pytestmark = [pytest.mark.anyio, on_each_database()]
Client: TypeAlias = AsyncTestClient[Litestar]


async def key_of(runtime: Runtime, email: str, *, operator: bool) -> tuple[str, str, str]:
    """(account id, key id, bearer secret) of a new account."""
    account = await create_account(runtime, email, operator=operator, actor="test")
    created = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=["download"], days=None, name="", actor="test"
        ),
    )
    return account.id, created.key.id, created.secret


async def sealed(runtime: Runtime) -> service.Sealed:
    runtime.key_encryptor.create_if_missing()
    async with unit_of_work(runtime) as uow:
        return await service.seal(uow)


def refused(response: httpx.Response, status: int, code: str) -> str:
    body: dict[str, Any] = response.json()
    assert (response.status_code, body.get("error")) == (status, code), body
    return str(body["message"])


async def test_before_the_first_seal_the_checkpoint_is_not_found(client: Client) -> None:
    answer = await client.get("/.well-known/evidence/checkpoint")
    assert "no checkpoint yet" in refused(answer, 404, "no_checkpoint")
    answer = await client.get("/.well-known/evidence/public-key")
    assert "no key yet" in refused(answer, 404, "no_checkpoint")


async def test_the_checkpoint_and_key_are_text_that_verify(
    client: Client, runtime: Runtime
) -> None:
    await key_of(runtime, "someone@example.org", operator=False)
    done = await sealed(runtime)
    note = await client.get("/.well-known/evidence/checkpoint")
    assert note.status_code == 200
    assert note.headers["content-type"] == "text/plain; charset=utf-8"
    key = await client.get("/.well-known/evidence/public-key")
    checkpoint = reference.parse_checkpoint(note.text)
    reference.verify_checkpoint(checkpoint, reference.parse_verifier_key(key.text))
    assert (checkpoint.size, checkpoint.root) == (done.size, done.root)
    history = (await client.get("/api/v1/evidence/checkpoints")).json()
    assert [(c["tree_size"], c["note"]) for c in history] == [(done.size, note.text)]


async def test_consistency_proofs_are_public_and_verify(client: Client, runtime: Runtime) -> None:
    await sealed(runtime)
    await key_of(runtime, "a@example.org", operator=False)
    await sealed(runtime)
    await key_of(runtime, "b@example.org", operator=False)
    latest = await sealed(runtime)
    for old in range(latest.size + 1):
        answer = await client.get(f"/api/v1/evidence/consistency?from={old}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["from_size"], body["to_size"], body["to_root"]) == (
            old,
            latest.size,
            latest.root.hex(),
        )
        assert reference.verify_consistency(
            old,
            latest.size,
            bytes.fromhex(body["from_root"]),
            bytes.fromhex(body["to_root"]),
            [bytes.fromhex(h) for h in body["proof"]],
        )
    past = await client.get(f"/api/v1/evidence/consistency?from=0&to={latest.size + 1}")
    assert refused(past, 400, "bad_size") == (
        f"to {latest.size + 1} is not a size of the log: the latest checkpoint has {latest.size}"
    )
    for query in ("from=-1", "from=x", ""):
        answer = await client.get(f"/api/v1/evidence/consistency?{query}")
        assert answer.status_code == 400, (query, answer.text)


async def test_inclusion_proofs_of_own_events_for_grantees_and_of_all_for_operators(
    client: Client, runtime: Runtime
) -> None:
    grantee, _, secret = await key_of(runtime, "g@example.org", operator=False)
    _, _, operator_secret = await key_of(runtime, "op@example.org", operator=True)
    async with unit_of_work(runtime) as uow:
        session = await uow.write()
        for actor in (ev.Actor.account(grantee), ev.Actor.parse("cli:ops@bastion.internal")):
            evidence.record(
                session,
                ev.GrantRenewed(grant="g", expires_at=runtime.clock(), application="a"),
                actor=actor,
                at=runtime.clock(),
                account_id=grantee,
            )
    done = await sealed(runtime)
    entries = {}
    for index in range(done.size):
        answer = await client.get(
            f"/api/v1/evidence/{index}/proof",
            headers={"Authorization": f"Bearer {operator_secret}"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        entry = body["entry"].encode()
        assert reference.verify_inclusion(
            index,
            done.size,
            reference.leaf_hash(entry),
            [bytes.fromhex(h) for h in body["proof"]],
            done.root,
        )
        assert reference.parse_checkpoint(body["checkpoint"]).size == done.size
        entries[index] = body["entry"]
    # What the grantee did is theirs; what an operator wrote about them is not.
    own = [index for index, entry in entries.items() if f'"actor":"account:{grantee}"' in entry]
    about = [index for index, entry in entries.items() if f'"account_id":"{grantee}"' in entry]
    # About them: the account made, its key made (by the test), their renewal, the operator's.
    assert (len(own), len(about)) == (1, 4)
    for index in range(done.size):
        answer = await client.get(
            f"/api/v1/evidence/{index}/proof", headers={"Authorization": f"Bearer {secret}"}
        )
        if index in own:
            assert answer.json()["entry"] == entries[index]
        else:
            assert refused(answer, 404, "no_leaf") == (
                f"no leaf {index} among your events in a log of {done.size}"
            )


async def test_inclusion_proofs_need_a_live_key(client: Client, runtime: Runtime) -> None:
    account, key_id, secret = await key_of(runtime, "g@example.org", operator=False)
    await sealed(runtime)
    assert (await client.get("/api/v1/evidence/0/proof")).status_code == 401
    await within(
        runtime, lambda uow: revoke_key(uow, account_id=account, key_id=key_id, actor="test")
    )
    answer = await client.get(
        "/api/v1/evidence/0/proof", headers={"Authorization": f"Bearer {secret}"}
    )
    assert answer.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/evidence/99999999999999999999999/proof",
        "/api/v1/evidence/-1/proof",
        "/api/v1/evidence/0/proof?size=99999999999999999999",
        "/api/v1/evidence/consistency?from=99999999999999999999",
        "/api/v1/evidence/checkpoints?below=99999999999999999999",
        "/api/v1/evidence/checkpoints?limit=0",
    ],
)
async def test_numbers_out_of_range_are_a_400(client: Client, runtime: Runtime, path: str) -> None:
    _, _, secret = await key_of(runtime, "op@example.org", operator=True)
    await sealed(runtime)
    answer = await client.get(path, headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 400, answer.text
