"""The page guards: who is sent to sign in, where `next` brings them back, who gets a 403.

Each refusal has its allowed twin: the same request from the right account goes through.
"""

from __future__ import annotations

import pytest

from gateway.db.models import Account
from gateway.identity.passwords import hash_password
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.http.portal import HTML, Http, csrf_token, submit
from tests.units import writing

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


async def make_account(rt: Runtime, email: str, *, operator: bool = False) -> str:
    account = await create_account(rt, email, operator=operator, actor="t")
    async with writing(rt) as session:
        row = await session.get(Account, account.id)
        assert row is not None
        row.password_hash = hash_password(PASSWORD)
    return account.id


async def sign_in(client: Http, email: str) -> None:
    fields = {"email": email, "password": PASSWORD, "next": "/account"}
    signed = await submit(client, "/sign-in", "/sign-in", fields)
    assert signed.status_code == 302, signed.text


@pytest.mark.parametrize(
    ("action", "fields", "back"),
    [
        ("/applications/a1/withdraw", {}, "/applications/a1"),
        ("/applications/a1/resubmit", {}, "/applications/a1"),
        ("/grants/g1/renew", {}, "/grants"),
        ("/closeouts/c1/attest", {}, "/grants"),
        ("/keys", {}, "/keys"),
        ("/keys/k1/revoke", {}, "/keys"),
        ("/inbox/read-all", {}, "/inbox"),
        # The tier chosen in the form comes back with the address.
        (
            "/models/acme/sample/apply",
            {"tier": "public"},
            "/models/acme/sample/apply%3Ftier%3Dpublic",
        ),
        ("/account/standing/x1/appeal", {}, "/account/standing"),
        ("/ops/appeals/p1/decide", {}, "/ops/appeals"),
        ("/ops/applications/bulk", {}, "/ops"),
        ("/ops/applications/a1/decide", {}, "/ops/applications/a1"),
        ("/ops/incidents/i1/triage", {}, "/ops/incidents/i1"),
        ("/ops/releases/acme/sample/1.0/promote", {}, "/ops/releases/acme/sample/1.0"),
        # The email stays one path segment, as the console links it.
        ("/ops/accounts/a%2Bb@x.example/enforce", {}, "/ops/accounts/a%2Bb@x.example"),
    ],
)
async def test_a_signed_out_form_comes_back_to_its_page(
    client: Http, action: str, fields: dict[str, str], back: str
) -> None:
    answer = await submit(client, "/sign-in", action, fields)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == f"/sign-in?next={back}"


async def test_next_keeps_a_versions_plus_sign(client: Http) -> None:
    answer = await client.get("/ops/releases/acme/sample/1.0+cu121", headers=HTML)
    assert answer.headers["location"] == "/sign-in?next=/ops/releases/acme/sample/1.0%2Bcu121"


async def test_a_caller_that_is_not_a_browser_gets_401(client: Http) -> None:
    for path in ("/account", "/ops", "/keys"):
        answer = await client.get(path, headers={"accept": "application/json"})
        assert answer.status_code == 401, path
        assert answer.json()["error"] == "sign_in_required"


async def test_the_guard_runs_before_the_query_is_read(client: Http, runtime: Runtime) -> None:
    # A bad page number is the signed-in viewer's 400; a signed-out one is asked to sign in.
    signed_out = await client.get("/applications?page=0", headers=HTML)
    assert signed_out.headers["location"] == "/sign-in?next=/applications"
    await make_account(runtime, "ada@uni.example")
    await sign_in(client, "ada@uni.example")
    signed_in = await client.get("/applications?page=0", headers=HTML)
    assert signed_in.status_code == 400


async def test_operator_pages_refuse_others_and_open_for_operators(
    client: Http, runtime: Runtime
) -> None:
    await make_account(runtime, "ada@uni.example")
    await sign_in(client, "ada@uni.example")
    for path in ("/ops", "/ops/webhooks", "/ops/releases", "/ops/appeals", "/ops/incidents"):
        refused = await client.get(path, headers=HTML)
        assert refused.status_code == 403, path
        assert "this page is for operators" in refused.text
    token = await csrf_token(client, "/account")
    posted = await client.post("/ops/applications/bulk", data={"_csrf_token": token}, headers=HTML)
    assert posted.status_code == 403

    await client.post("/sign-out", data={"_csrf_token": token}, headers=HTML)
    await make_account(runtime, "ops@lab.example", operator=True)
    await sign_in(client, "ops@lab.example")
    for path in ("/ops", "/ops/webhooks", "/ops/releases", "/ops/appeals", "/ops/incidents"):
        assert (await client.get(path, headers=HTML)).status_code == 200, path


async def test_a_suspended_operator_is_refused(client: Http, runtime: Runtime) -> None:
    operator_id = await make_account(runtime, "ops@lab.example", operator=True)
    await sign_in(client, "ops@lab.example")
    async with writing(runtime) as session:
        row = await session.get(Account, operator_id)
        assert row is not None
        row.status = "suspended"
    refused = await client.get("/ops", headers=HTML)
    assert refused.status_code == 403
    assert "your account is suspended" in refused.text
