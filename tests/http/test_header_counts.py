"""The page header's inbox link and its unread count: shown to a signed-in person on every
page, counted with one query per page, only their own unread inbox entries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.db.models import Account, Notification
from gateway.notify.service import notify
from gateway.runtime import Runtime
from tests.http.portal import HTML, Http, submit
from tests.http.test_ops_pages import apply, make_account, sign_in
from tests.sample import publish
from tests.units import writing

pytestmark = pytest.mark.anyio
_COUNT = re.compile(
    r'<a href="/inbox" class="inbox-link">Inbox(?: <span class="count">(\d+)</span>'
    r'<span class="visually-hidden"> unread</span>)?</a>'
)


def header_count(page: str) -> int | None:
    """The unread count the header shows: None without an inbox link, 0 without a count."""
    found = _COUNT.search(page)
    if found is None:
        return None
    return int(found.group(1) or 0)


async def tell(rt: Runtime, email: str, subject: str, *, mail_only: bool = False) -> None:
    async with writing(rt) as session:
        account = await session.scalar(select(Account).where(Account.email == email))
        assert account is not None
        if mail_only:
            # What a one-time link leaves: a row that exists only to be mailed.
            session.add(
                Notification(
                    account_id=account.id,
                    kind="test",
                    subject=subject,
                    body=subject,
                    created_at=rt.clock(),
                    email_status="pending",
                    mail_only=True,
                )
            )
            return
        notify(
            session,
            rt.settings,
            account_id=account.id,
            kind="test",
            subject=subject,
            body=subject,
            link=None,
            now=rt.clock(),
        )


async def test_the_header_counts_the_signed_in_accounts_unread_inbox_entries(
    client: Http, runtime: Runtime
) -> None:
    assert header_count((await client.get("/", headers=HTML)).text) is None
    await make_account(runtime, "ada@lab.example")
    await make_account(runtime, "bob@lab.example")
    await sign_in(client, "ada@lab.example")
    assert header_count((await client.get("/", headers=HTML)).text) == 0
    await tell(runtime, "ada@lab.example", "one")
    await tell(runtime, "ada@lab.example", "two")
    await tell(runtime, "ada@lab.example", "a link only for the mailbox", mail_only=True)
    await tell(runtime, "bob@lab.example", "not hers")
    for path in ("/", "/account", "/keys", "/applications"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 200, path
        assert header_count(page.text) == 2, path
    read = await submit(client, "/inbox", "/inbox/read-all", {})
    assert read.status_code == 302
    assert header_count((await client.get("/account", headers=HTML)).text) == 0


async def test_the_count_is_one_query_per_page_and_none_for_api_calls(
    client: Http, runtime: Runtime
) -> None:
    await make_account(runtime, "ada@lab.example")
    await sign_in(client, "ada@lab.example")
    for number in range(5):
        await tell(runtime, "ada@lab.example", f"note {number}")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The header's query: a count of the unread (the account page reads its own).
        words = " ".join(statement.lower().split())
        if "from notifications" in words and "read_at is null" in words:
            statements.append(words)

    engine = client.app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = await client.get("/account", headers=HTML)
        assert header_count(page.text) == 5
        assert len(statements) == 1
        assert statements[0].startswith("select count(")
        statements.clear()
        # Not a page: no count.
        await client.get("/static/gateway.css")
        await client.get("/account", headers={"accept": "application/json"})
        assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def test_an_operator_sees_a_new_application_in_the_header(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await make_account(runtime, "ops@lab.example", operator=True)
    await sign_in(client, "ops@lab.example")
    assert header_count((await client.get("/ops", headers=HTML)).text) == 0
    application_id = await apply(runtime, "ada@corp.example", runtime.clock())
    queue = await client.get("/ops", headers=HTML)
    assert header_count(queue.text) == 1
    inbox = await client.get("/inbox", headers=HTML)
    assert "New application: acme/sample, trusted_partner tier" in inbox.text
    assert f"/ops/applications/{application_id}" in inbox.text
