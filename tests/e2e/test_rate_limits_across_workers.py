"""Rate limits hold across processes: `gateway serve --workers 2` on SQLite and on
PostgreSQL, limits from gateway.toml, a burst of sign-ups in parallel, exactly the limit
gets through."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import httpx2
import pytest

from tests.conftest import PostgresServer
from tests.http.live import client_from, form_token, post_form
from tests.served import clean_env, serving


async def sign_up_burst(base: str, attempts: int) -> list[httpx2.Response]:
    async with client_from(base) as client:
        token = await form_token(client, "/sign-up")
        return list(
            await asyncio.gather(
                *(
                    post_form(
                        client,
                        "/sign-up",
                        token,
                        {"email": f"u{n}@uni.edu", "password": "correct horse battery"},
                    )
                    for n in range(attempts)
                )
            )
        )


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_sign_ups_are_counted_once_across_worker_processes(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "gateway.toml").write_text(
        "[rate_limits]\nsign_up_per_address = { limit = 4, window_seconds = 3600 }\n"
    )
    env = clean_env(GATEWAY_HOME=str(home), GATEWAY_SCHEDULER="off")
    extra = ["--workers", "2"]
    if database == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        env["GATEWAY_DATABASE_URL"] = server.create(f"gw_workers_{uuid.uuid4().hex[:10]}")
        extra.append("--migrate")
    with serving(env, tmp_path / "serve.log", extra=extra) as base:
        answers = asyncio.run(sign_up_burst(base, 16))
    # A sign-up answers "check your email" (200) whether or not the address is taken.
    assert Counter(a.status_code for a in answers) == {200: 4, 429: 12}
    assert all(a.headers["retry-after"].isdigit() for a in answers if a.status_code == 429)
