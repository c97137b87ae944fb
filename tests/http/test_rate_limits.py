"""Rate limits over a real server, with requests truly in parallel: of N attempts over a
limit of L exactly L get through and the rest get 429 with Retry-After, on every backend.
Portal forms and the JSON API alike; and a stranger's wrong passwords never lock the
owner out."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select, update

from gateway.app import create_app
from gateway.config import Settings
from gateway.db.models import Account, ApiKey, Incident
from gateway.identity.passwords import hash_password
from gateway.keys.service import create_key
from gateway.ratelimits import Pace, RateLimits, Window
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.grantees import grantee, open_release
from tests.http.live import HTML, client_from, form_token, post_form, served
from tests.units import within, writing

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
WRONG = "not the password at all"
# Slow enough that no delay runs out while a burst is being answered.
NO_PACE = Pace(free=1000, first_delay=600, max_delay=600, forget=86400)
WIDE = Window(limit=1000, seconds=3600)


# A minute into the current hour: every window of the tests (10, 15 or 60 minutes) began
# exactly a minute ago, so a refusal must say to retry in the window's length less 60 s.
INTO_WINDOW = 60


class Clock:
    def __init__(self) -> None:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.now = hour + timedelta(seconds=INTO_WINDOW)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Live:
    base: str
    runtime: Runtime
    clock: Clock

    def client(self, address: str = "127.0.0.2") -> httpx2.AsyncClient:
        return client_from(self.base, address)


@asynccontextmanager
async def live(settings: Settings, **rules: Window | Pace) -> AsyncIterator[Live]:
    """The gateway served with these rate limits over the defaults, on a clock we move."""
    app = create_app(settings=replace(settings, rate_limits=replace(RateLimits(), **rules)))
    runtime: Runtime = app.state.runtime
    clock = Clock()
    runtime.clock = clock
    async with served(app) as base:
        yield Live(base, runtime, clock)


async def burst(*requests: Awaitable[httpx2.Response]) -> list[httpx2.Response]:
    return list(await asyncio.gather(*requests))


def statuses(responses: list[httpx2.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def assert_refusals(
    responses: list[httpx2.Response], *, html: bool, says: str, window: int | None
) -> None:
    """Every 429 says why, as a page or as JSON, and when to retry: the end of the
    `window` (its seconds) the clock is a minute into; None for a paced rule."""
    refused = [r for r in responses if r.status_code == 429]
    assert refused
    for response in refused:
        if window is not None:
            assert int(response.headers["retry-after"]) == window - INTO_WINDOW
        if html:
            assert response.headers["content-type"].startswith("text/html")
            assert says in response.text
        else:
            body = response.json()
            assert body["error"] == "rate_limited"
            assert body["status"] == 429
            assert says in body["message"]


async def account_with_password(rt: Runtime, email: str) -> str:
    account = await create_account(rt, email, operator=False, actor="test")
    async with writing(rt) as session:
        await session.execute(
            update(Account)
            .where(Account.id == account.id)
            .values(password_hash=hash_password(PASSWORD), email_verified_at=rt.clock())
        )
    return account.id


async def count(rt: Runtime, model: Any) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


# --- sign-in ------------------------------------------------------------------------------


async def test_sign_in_per_address_holds_under_concurrency(settings: Settings) -> None:
    async with live(
        settings, sign_in_per_address=Window(limit=5, seconds=900), sign_in_failures=NO_PACE
    ) as gw:
        await account_with_password(gw.runtime, "ada@uni.edu")
        async with gw.client("127.0.0.2") as spray, gw.client("127.0.0.3") as owner:
            token = await form_token(spray, "/sign-in")
            answers = await burst(
                *(
                    post_form(
                        spray, "/sign-in", token, {"email": f"u{n}@uni.edu", "password": WRONG}
                    )
                    for n in range(16)
                )
            )
            assert statuses(answers) == {401: 5, 429: 11}
            assert_refusals(
                answers,
                html=True,
                says="too many unsuccessful sign-in attempts from this address",
                window=900,
            )
            # The address is refused even with a correct password; another address is not.
            token_here = await form_token(spray, "/sign-in")
            right = {"email": "ada@uni.edu", "password": PASSWORD}
            assert (await post_form(spray, "/sign-in", token_here, right)).status_code == 429
            owner_token = await form_token(owner, "/sign-in")
            assert (await post_form(owner, "/sign-in", owner_token, right)).status_code == 302


async def test_a_correct_password_does_not_count_against_the_address(settings: Settings) -> None:
    async with live(
        settings, sign_in_per_address=Window(limit=3, seconds=900), sign_in_failures=NO_PACE
    ) as gw:
        await account_with_password(gw.runtime, "ada@uni.edu")
        async with gw.client() as lab:
            token = await form_token(lab, "/sign-in")
            right = {"email": "ada@uni.edu", "password": PASSWORD}
            answers = await burst(*(post_form(lab, "/sign-in", token, right) for _ in range(3)))
            assert statuses(answers) == {302: 3}
            # Sequentially, a shared address signs in as often as it likes.
            for _ in range(6):
                token = await form_token(lab, "/sign-in")
                assert (await post_form(lab, "/sign-in", token, right)).status_code == 302
            token = await form_token(lab, "/sign-in")
            wrong = {"email": "ada@uni.edu", "password": WRONG}
            assert [
                (await post_form(lab, "/sign-in", token, wrong)).status_code for _ in range(4)
            ] == [401, 401, 401, 429]


async def test_wrong_passwords_from_a_stranger_do_not_lock_the_owner_out(
    settings: Settings,
) -> None:
    async with live(
        settings,
        sign_in_failures=Pace(free=5, first_delay=30, max_delay=900, forget=86400),
        sign_in_per_address=WIDE,
    ) as gw:
        await account_with_password(gw.runtime, "ada@uni.edu")
        wrong = {"email": "ada@uni.edu", "password": WRONG}
        right = {"email": "ada@uni.edu", "password": PASSWORD}
        async with gw.client("127.0.0.2") as stranger, gw.client("127.0.0.3") as owner:
            token = await form_token(stranger, "/sign-in")
            answers = await burst(
                *(post_form(stranger, "/sign-in", token, wrong) for _ in range(20))
            )
            # Exactly the free attempts reach the password check; the rest wait.
            assert statuses(answers) == {401: 5, 429: 15}
            assert_refusals(
                answers,
                html=True,
                says="too many wrong passwords for this account from this address",
                window=None,
            )
            assert {int(r.headers["retry-after"]) for r in answers if r.status_code == 429} == {30}

            # The owner, from an address with no failures, signs in at once.
            owner_token = await form_token(owner, "/sign-in")
            signed_in = await post_form(owner, "/sign-in", owner_token, right)
            assert signed_in.status_code == 302
            assert "ada@uni.edu" in (await owner.get("/account", headers=HTML)).text

            # The stranger is slowed down, each wait twice the last, but never locked out.
            waits = []
            for _ in range(3):
                refused = await post_form(stranger, "/sign-in", token, wrong)
                assert refused.status_code == 429
                waits.append(int(refused.headers["retry-after"]))
                gw.clock.advance(waits[-1])
                assert (await post_form(stranger, "/sign-in", token, wrong)).status_code == 401
            assert waits == [30, 60, 120]

            # The same person at that address, with the right password, gets in after the
            # wait, and that ends the slow-down there.
            refused = await post_form(stranger, "/sign-in", token, right)
            assert refused.status_code == 429
            gw.clock.advance(int(refused.headers["retry-after"]))
            assert (await post_form(stranger, "/sign-in", token, right)).status_code == 302
            token = await form_token(stranger, "/sign-in")
            assert (await post_form(stranger, "/sign-in", token, wrong)).status_code == 401


# --- sign-up and password reset -------------------------------------------------------------


async def test_sign_up_per_address_holds_under_concurrency(settings: Settings) -> None:
    async with live(settings, sign_up_per_address=Window(limit=3, seconds=3600)) as gw:
        async with gw.client() as client:
            token = await form_token(client, "/sign-up")
            answers = await burst(
                *(
                    post_form(
                        client,
                        "/sign-up",
                        token,
                        {"email": f"u{n}@uni.edu", "password": PASSWORD, "display_name": "U"},
                    )
                    for n in range(12)
                )
            )
        # A sign-up answers "check your email" (200) whether or not the address is taken.
        assert statuses(answers) == {200: 3, 429: 9}
        assert_refusals(answers, html=True, says="too many sign-ups from this address", window=3600)
        assert await count(gw.runtime, Account) == 3


async def test_password_reset_per_email_and_per_address_hold_under_concurrency(
    settings: Settings,
) -> None:
    async with live(
        settings,
        password_reset_per_address=Window(limit=6, seconds=3600),
        password_reset_per_email=Window(limit=2, seconds=3600),
    ) as gw:
        await account_with_password(gw.runtime, "ada@uni.edu")
        async with gw.client("127.0.0.2") as one, gw.client("127.0.0.3") as other:
            token = await form_token(one, "/forgot-password")
            same_email = await burst(
                *(
                    post_form(one, "/forgot-password", token, {"email": "ada@uni.edu"})
                    for _ in range(10)
                )
            )
            # Six pass the address's count, and of those two the email's.
            assert statuses(same_email) == {200: 2, 429: 8}
            assert_refusals(
                same_email, html=True, says="too many password resets asked", window=3600
            )
            reasons = Counter(
                "email" if "for this email address" in r.text else "address"
                for r in same_email
                if r.status_code == 429
            )
            assert reasons == {"address": 4, "email": 4}
            token = await form_token(other, "/forgot-password")
            many_emails = await burst(
                *(
                    post_form(other, "/forgot-password", token, {"email": f"u{n}@uni.edu"})
                    for n in range(10)
                )
            )
            assert statuses(many_emails) == {200: 6, 429: 4}
            assert_refusals(
                many_emails,
                html=True,
                says="too many password resets asked from this address",
                window=3600,
            )


# --- incidents, applications, keys, manifests --------------------------------------------------

REPORT = {
    "category": "leak",
    "description": "The full weights of acme/sample 1.0 are posted on a public file host.",
    "release": "acme/sample:1.0",
}


async def test_incident_reports_hold_under_concurrency_across_form_and_api(
    settings: Settings, tmp_path: Path
) -> None:
    async with live(settings, incident_reports_per_address=Window(limit=4, seconds=3600)) as gw:
        await open_release(gw.runtime, tmp_path)
        async with gw.client() as client:
            token = await form_token(client, "/report")
            answers = await burst(
                *(client.post("/api/v1/incidents", json=REPORT) for _ in range(6)),
                *(post_form(client, "/report", token, REPORT) for _ in range(6)),
            )
        api, form = answers[:6], answers[6:]
        passed = statuses(api)[201] + statuses(form)[303]
        assert passed == 4
        assert statuses(answers)[429] == 8
        assert_refusals(api, html=False, says="too many reports from this address", window=3600)
        assert_refusals(form, html=True, says="too many reports from this address", window=3600)
        assert await count(gw.runtime, Incident) == 4


async def test_found_key_reports_hold_under_concurrency_across_form_and_api(
    settings: Settings,
) -> None:
    async with live(settings, found_key_reports_per_address=Window(limit=4, seconds=3600)) as gw:
        async with gw.client() as client:
            token = await form_token(client, "/report-key")
            found = {"keys": "rgk_000000000000000000000000000000"}
            answers = await burst(
                *(
                    client.post("/api/v1/credentials/revoke", json={"keys": [found["keys"]]})
                    for _ in range(6)
                ),
                *(post_form(client, "/report-key", token, found) for _ in range(6)),
            )
        api, form = answers[:6], answers[6:]
        assert statuses(api)[200] + statuses(form)[303] == 4
        assert statuses(answers)[429] == 8
        says = "too many reports of found keys from this address"
        assert_refusals(api, html=False, says=says, window=3600)
        assert_refusals(form, html=True, says=says, window=3600)


async def test_applications_per_account_hold_under_concurrency(
    settings: Settings, tmp_path: Path
) -> None:
    async with live(settings, applications_per_account=Window(limit=3, seconds=3600)) as gw:
        await open_release(gw.runtime, tmp_path, to="public")
        account = await account_with_password(gw.runtime, "pat@example.com")
        secret = (
            await within(
                gw.runtime,
                lambda uow: create_key(
                    uow, account_id=account, scopes=["apply"], days=None, name="", actor="t"
                ),
            )
        ).secret
        auth = {"authorization": f"Bearer {secret}"}
        async with gw.client() as client:
            form = (
                await client.get("/api/v1/models/acme/sample/application-form/public", headers=auth)
            ).json()
            body = {
                "model": "acme/sample",
                "tier": "public",
                "license_sha256": form["license_sha256"],
                "answers": {"intended_use": "research", "agree_acceptable_use": True},
            }
            answers = await burst(
                *(client.post("/api/v1/applications", json=body, headers=auth) for _ in range(10))
            )
        # Three reach the service (one is approved, the others find it already granted or
        # open); seven never get that far.
        assert statuses(answers)[429] == 7
        assert 201 in statuses(answers)
        assert_refusals(
            answers, html=False, says="too many applications from this account", window=3600
        )


async def test_key_creation_per_account_holds_under_concurrency(
    settings: Settings, tmp_path: Path
) -> None:
    async with live(settings, keys_per_account=Window(limit=3, seconds=3600)) as gw:
        await open_release(gw.runtime, tmp_path)
        alice = await grantee(gw.runtime)
        async with gw.client() as client:
            answers = await burst(
                *(
                    client.post("/api/v1/keys", json={"scopes": ["download"]}, headers=alice.auth)
                    for _ in range(10)
                )
            )
        assert statuses(answers) == {201: 3, 429: 7}
        assert_refusals(
            answers, html=False, says="too many API keys created by this account", window=3600
        )
        assert await count(gw.runtime, ApiKey) == 1 + 3


async def test_manifests_per_key_hold_under_concurrency(settings: Settings, tmp_path: Path) -> None:
    async with live(settings, manifests_per_key=Window(limit=3, seconds=600)) as gw:
        await open_release(gw.runtime, tmp_path)
        alice = await grantee(gw.runtime)
        url = "/api/v1/models/acme/sample/releases/1.0/downloads"
        async with gw.client() as client:
            answers = await burst(*(client.post(url, headers=alice.auth) for _ in range(10)))
            assert statuses(answers) == {200: 3, 429: 7}
            assert_refusals(
                answers,
                html=False,
                says="too many download manifests asked with this API key",
                window=600,
            )
            # The count is per key: another key of the same account has its own.
            other = await within(
                gw.runtime,
                lambda uow: create_key(
                    uow,
                    account_id=alice.account_id,
                    scopes=["download"],
                    days=None,
                    name="second",
                    actor="test",
                ),
            )
            fresh = {"authorization": f"Bearer {other.secret}"}
            assert (await client.post(url, headers=fresh)).status_code == 200


async def signed_in(client: httpx2.AsyncClient, email: str) -> None:
    token = await form_token(client, "/sign-in")
    answer = await post_form(client, "/sign-in", token, {"email": email, "password": PASSWORD})
    assert answer.status_code == 302


async def test_portal_key_creation_and_applying_are_limited_with_a_page(
    settings: Settings, tmp_path: Path
) -> None:
    async with live(
        settings,
        keys_per_account=Window(limit=2, seconds=3600),
        applications_per_account=Window(limit=1, seconds=3600),
    ) as gw:
        await open_release(gw.runtime, tmp_path, to="public")
        await account_with_password(gw.runtime, "pat@example.com")
        async with gw.client() as client:
            await signed_in(client, "pat@example.com")
            token = await form_token(client, "/keys")
            keys = await burst(
                *(
                    post_form(client, "/keys", token, {"scopes": "download", "name": f"k{n}"})
                    for n in range(6)
                )
            )
            assert statuses(keys) == {201: 2, 429: 4}
            assert_refusals(
                keys, html=True, says="too many API keys created by this account", window=3600
            )
            assert all("Too many attempts" in r.text for r in keys if r.status_code == 429)

            page = "/models/acme/sample/apply?tier=public"
            token = await form_token(client, page)
            shown = (await client.get(page, headers=HTML)).text
            license_field = re.search(r'name="license_sha256" value="([0-9a-f]{64})"', shown)
            assert license_field
            fields = {
                "tier": "public",
                "license_sha256": license_field.group(1),
                "answer.intended_use": "research",
                "answer.agree_acceptable_use": "on",
                "accept_license": "on",
            }
            applied = await post_form(client, page, token, fields)
            assert applied.status_code == 302
            again = await post_form(client, page, token, fields)
            assert again.status_code == 429
            assert_refusals(
                [again], html=True, says="too many applications from this account", window=3600
            )
