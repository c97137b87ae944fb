"""The operator console: the review queue, its filters and pages, bulk decisions, the
application page and its decisions, and who may see any of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.applications import deciding, service, submitting
from gateway.db.models import Account, Application, ApplicationEvent, Grant, Notification
from gateway.identity.passwords import hash_password
from gateway.runtime import Runtime
from stages.applications import ApplicationMove
from stages.names import parse_model_ref
from tests.accounts import create_account
from tests.http.portal import HTML, Http, csrf_token, submit
from tests.sample import publish
from tests.units import within, writing

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
MODEL = parse_model_ref("acme/sample")
OTHER = parse_model_ref("acme/other")
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
# trusted_partner is reviewed by hand, with review_days = 10, in the default policy.
PARTNER_ANSWERS = {"organisation": "Lab", "intended_use": "red-team evaluation"}
ROW = re.compile(r'name="ids" value="([0-9a-f-]{36})"')


async def make_account(rt: Runtime, email: str, *, operator: bool = False) -> str:
    account = await create_account(rt, email, operator=operator, actor="t")
    async with writing(rt) as session:
        row = await session.get(Account, account.id)
        assert row is not None
        row.password_hash = hash_password(PASSWORD)
        row.affiliation = f"{email.split('@', maxsplit=1)[0].title()} Institute"
    return account.id


async def sign_in(client: Http, email: str) -> None:
    signed = await submit(
        client, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD, "next": "/ops"}
    )
    assert signed.status_code == 302, signed.text


async def sign_in_operator(client: Http, rt: Runtime) -> str:
    account_id = await make_account(rt, "ops@lab.example", operator=True)
    await sign_in(client, "ops@lab.example")
    return account_id


async def license_of(rt: Runtime, tier: str = "trusted_partner") -> str:
    form = await within(rt, lambda uow: service.application_form(uow, MODEL, tier))
    return form.license_sha256


async def apply(
    rt: Runtime,
    email: str,
    at: datetime,
    *,
    tier: str = "trusted_partner",
    model: str = "acme/sample",
    answers: dict[str, object] | None = None,
) -> str:
    """An application by a new (or existing) account, submitted at `at`."""
    async with rt.sessionmaker() as session:
        existing = await session.scalar(select(Account.id).where(Account.email == email))
    account_id = existing or await make_account(rt, email)
    ref = parse_model_ref(model)
    form = await within(rt, lambda uow: service.application_form(uow, ref, tier))
    rt.clock = lambda: at
    application = await within(
        rt,
        lambda uow: submitting.submit(
            uow,
            account_id=account_id,
            model=ref,
            tier=tier,
            answers=answers or PARTNER_ANSWERS,
            license_sha256=form.license_sha256,
            address="203.0.113.7",
        ),
    )
    return application.id


def set_clock(client: Http, now: datetime) -> None:
    client.app.state.runtime.clock = lambda: now


def rows(page: str) -> list[str]:
    """The application ids of the queue's rows, top to bottom."""
    return ROW.findall(page)


async def status_of(rt: Runtime, application_id: str) -> str:
    async with rt.sessionmaker() as session:
        application = await session.get(Application, application_id)
    assert application is not None
    return application.status


async def test_the_queue_lists_applications_awaiting_review_oldest_first_with_overdue_flags(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    newest = await apply(runtime, "new@corp.example", T0 + timedelta(days=5))
    oldest = await apply(runtime, "old@corp.example", T0)
    middle = await apply(runtime, "mid@corp.example", T0 + timedelta(days=1))
    decided = await apply(runtime, "done@corp.example", T0 - timedelta(days=1))
    await within(
        runtime,
        lambda uow: deciding.decide(uow, decided, ApplicationMove.DENY, operator="t", reason="no"),
    )
    await sign_in_operator(client, runtime)

    set_clock(client, T0 + timedelta(days=11))
    page = await client.get("/ops", headers=HTML)
    assert page.status_code == 200
    assert rows(page.text) == [oldest, middle, newest]
    assert "3 applications awaiting review" in page.text
    assert "oldest first" in page.text
    assert "old@corp.example" in page.text
    assert "Old Institute" in page.text
    assert "acme/sample" in page.text
    assert "trusted partner" in page.text
    # Submitted 11 and 10 days ago against review_days = 10: only the first is late.
    assert page.text.count("OVERDUE") == 1
    first_row = page.text.split(f'value="{oldest}"', 1)[1].split("</tr>", 1)[0]
    assert "OVERDUE" in first_row
    assert '<td class="num">11</td>' in first_row
    assert "2030-03-01 09:00 UTC" in first_row

    set_clock(client, T0 + timedelta(days=16))
    later = await client.get("/ops", headers=HTML)
    assert later.text.count("OVERDUE") == 3
    assert decided not in later.text


async def test_the_queue_filters_by_status_model_tier_and_overdue(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await publish(runtime, tmp_path, model="acme/other")
    late = await apply(runtime, "late@corp.example", T0)
    other = await apply(runtime, "other@corp.example", T0 + timedelta(days=3), model="acme/other")
    researcher = await apply(
        runtime,
        "res@corp.example",
        T0 + timedelta(days=4),
        tier="researcher",
        answers={
            "affiliation": "Corp Research",
            "country": "FR",
            "research_purpose": "interpretability",
            "agree_no_redistribution": True,
        },
    )
    denied = await apply(runtime, "denied@corp.example", T0 + timedelta(days=2))
    await within(
        runtime,
        lambda uow: deciding.decide(
            uow, denied, ApplicationMove.DENY, operator="t", reason="not a partner"
        ),
    )
    await sign_in_operator(client, runtime)
    set_clock(client, T0 + timedelta(days=12))

    everything = await client.get("/ops", headers=HTML)
    assert rows(everything.text) == [late, other, researcher]
    by_model = await client.get("/ops?model=acme/other", headers=HTML)
    assert rows(by_model.text) == [other]
    assert 'value="acme/other"' in by_model.text
    by_tier = await client.get("/ops?tier=researcher", headers=HTML)
    assert rows(by_tier.text) == [researcher]
    assert '<option value="researcher" selected>' in by_tier.text
    by_status = await client.get("/ops?status=denied", headers=HTML)
    assert rows(by_status.text) == [denied]
    assert '<option value="denied" selected>' in by_status.text
    # Only `late` is past trusted_partner's 10 days; researcher's review_days is 14.
    overdue = await client.get("/ops?overdue=1", headers=HTML)
    assert rows(overdue.text) == [late]
    assert "overdue only" in overdue.text
    combined = await client.get("/ops?model=acme/sample&tier=trusted_partner", headers=HTML)
    assert rows(combined.text) == [late]

    for bad, message in (
        ("status=lost", "unknown status &#39;lost&#39;"),
        ("tier=vip", "unknown tier &#39;vip&#39;"),
        ("model=no-slash", "invalid model name"),
    ):
        refused = await client.get(f"/ops?{bad}", headers=HTML)
        assert refused.status_code == 400, bad
        assert message in refused.text
        assert rows(refused.text) == []


async def test_the_queue_pages_through_every_application_fifty_at_a_time(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    made = [
        await apply(runtime, f"p{n:02d}@corp.example", T0 + timedelta(minutes=n)) for n in range(60)
    ]
    await sign_in_operator(client, runtime)
    set_clock(client, T0 + timedelta(days=1))

    first = await client.get("/ops", headers=HTML)
    assert rows(first.text) == made[:50]
    assert "60 applications awaiting review" in first.text
    assert "Page 1 of 2" in first.text
    assert 'href="/ops?page=2"' in first.text
    second = await client.get("/ops?page=2", headers=HTML)
    assert rows(second.text) == made[50:]
    assert "Page 2 of 2" in second.text
    assert 'href="/ops?page=2"' not in second.text.split('<nav class="pager', 1)[1]
    assert 'rel="prev"' in second.text
    # Page links keep the filters.
    filtered = await client.get("/ops?tier=trusted_partner&model=acme/sample", headers=HTML)
    assert "/ops?model=acme%2Fsample&amp;tier=trusted_partner&amp;page=2" in filtered.text
    beyond = await client.get("/ops?page=3", headers=HTML)
    assert beyond.status_code == 200
    assert rows(beyond.text) == []
    assert "No applications on this page" in beyond.text
    assert (await client.get("/ops?page=0", headers=HTML)).status_code == 400


async def test_bulk_deny_gives_every_selected_applicant_the_one_reason(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    first = await apply(runtime, "a@corp.example", T0)
    second = await apply(runtime, "b@corp.example", T0 + timedelta(hours=1))
    kept = await apply(runtime, "c@corp.example", T0 + timedelta(hours=2))
    closed = await apply(runtime, "d@corp.example", T0 + timedelta(hours=3))
    await within(
        runtime,
        lambda uow: deciding.decide(
            uow, closed, ApplicationMove.APPROVE, operator="t", reason=None
        ),
    )
    await sign_in_operator(client, runtime)

    no_reason = await submit(
        client, "/ops", "/ops/applications/bulk", {"ids": [first, second], "move": "deny"}
    )
    assert no_reason.status_code == 400
    assert "a reason is required to deny" in no_reason.text
    # The selection survives the refusal, and nothing was decided.
    assert f'value="{first}" aria-label' in no_reason.text
    assert re.search(rf'value="{first}"[^>]*checked', no_reason.text)
    assert await status_of(runtime, first) == "submitted"
    nothing = await submit(
        client, "/ops", "/ops/applications/bulk", {"move": "deny", "reason": "x"}
    )
    assert nothing.status_code == 400
    assert "select at least one application" in nothing.text
    odd = await submit(
        client, "/ops", "/ops/applications/bulk", {"ids": [first], "move": "withdraw"}
    )
    assert odd.status_code == 400
    assert "unknown decision" in odd.text

    denied = await submit(
        client,
        "/ops",
        "/ops/applications/bulk",
        {
            "ids": [first, second, closed, "no-such-application"],
            "move": "deny",
            "reason": "The partner programme is full this quarter.",
        },
    )
    assert denied.status_code == 200
    assert "Deny: 2 done, 2 refused" in denied.text
    outcomes = {
        application_id: denied.text.split(application_id, 1)[1].split("</tr>", 1)[0]
        for application_id in (first, second, closed, "no-such-application")
    }
    assert 'now <span class="status app-status-denied">denied</span>' in outcomes[first]
    assert "denied" in outcomes[second]
    assert "cannot deny an application that is approved" in outcomes[closed]
    assert "no application no-such-application" in outcomes["no-such-application"]
    assert await status_of(runtime, first) == "denied"
    assert await status_of(runtime, second) == "denied"
    assert await status_of(runtime, kept) == "submitted"
    assert await status_of(runtime, closed) == "approved"
    async with runtime.sessionmaker() as session:
        reasons = (
            await session.scalars(
                select(Application.decision_reason).where(Application.id.in_([first, second]))
            )
        ).all()
        note = await session.scalar(
            select(Notification)
            .join(Account)
            .where(Account.email == "b@corp.example")
            .order_by(Notification.id.desc())
        )
    assert reasons == ["The partner programme is full this quarter."] * 2
    assert note is not None
    assert "The partner programme is full this quarter." in note.body
    queue = await client.get("/ops", headers=HTML)
    assert rows(queue.text) == [kept]


async def test_bulk_approve_issues_a_grant_for_each(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    ids = [await apply(runtime, f"g{n}@corp.example", T0 + timedelta(hours=n)) for n in range(3)]
    await sign_in_operator(client, runtime)
    approved = await submit(
        client, "/ops", "/ops/applications/bulk", {"ids": ids[:2], "move": "approve"}
    )
    assert approved.status_code == 200
    assert "Approve: 2 done" in approved.text
    async with runtime.sessionmaker() as session:
        grants = await session.scalar(select(func.count()).select_from(Grant))
    assert grants == 2
    assert [await status_of(runtime, i) for i in ids] == ["approved", "approved", "submitted"]


async def test_the_application_page_shows_the_applicant_the_answers_and_the_history(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    await publish(runtime, tmp_path, model="acme/other")
    earlier = await apply(runtime, "eve@corp.example", T0, model="acme/other")
    await within(
        runtime,
        lambda uow: deciding.decide(
            uow, earlier, ApplicationMove.DENY, operator="t", reason="unknown partner"
        ),
    )
    current = await apply(
        runtime,
        "eve@corp.example",
        T0 + timedelta(days=2),
        answers={"organisation": "Eve Labs", "intended_use": "Safety\nevaluations <b>now</b>"},
    )
    await sign_in_operator(client, runtime)
    set_clock(client, T0 + timedelta(days=13))

    page = await client.get(f"/ops/applications/{current}", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "eve@corp.example" in text
    assert "not verified" in text
    assert "Eve Institute" in text
    assert "Account status" in text
    assert 'Organisation</dt><dd class="answer">Eve Labs' in text
    assert "Safety\nevaluations &lt;b&gt;now&lt;/b&gt;" in text
    assert 'Your role</dt><dd class="answer">(not answered)' in text
    assert await license_of(runtime) in text
    assert "203.0.113.7" in text
    assert "2030-03-03 09:00 UTC" in text
    # Timeline, review clock and the other application with its decision.
    assert "submit</strong> by eve@corp.example" in text
    assert "OVERDUE" in text
    assert "11 days waiting" in text
    assert f"/ops/applications/{earlier}" in text
    assert "unknown partner" in text
    assert "No grants." in text
    # The operator's moves from "submitted", each its own form with the CSRF field.
    assert text.count(f'action="/ops/applications/{current}/decide"') == 4
    for move in ("start_review", "request_changes", "approve", "deny"):
        assert f'name="move" value="{move}"' in text
    assert text.count('name="_csrf_token"') >= 4
    missing = await client.get("/ops/applications/nope", headers=HTML)
    assert missing.status_code == 404


async def test_decisions_on_the_application_page(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    application_id = await apply(runtime, "fay@corp.example", T0)
    operator_id = await sign_in_operator(client, runtime)
    page = f"/ops/applications/{application_id}"
    action = f"{page}/decide"

    reviewing = await submit(client, page, action, {"move": "start_review"})
    assert reviewing.status_code == 302
    assert reviewing.headers["location"] == f"{page}?moved=start_review"
    shown = await client.get(reviewing.headers["location"], headers=HTML)
    assert "Done: the application is now under review." in shown.text
    assert 'name="move" value="start_review"' not in shown.text

    no_reason = await submit(client, page, action, {"move": "deny", "reason": "   "})
    assert no_reason.status_code == 409
    assert "a reason is required to deny an application" in no_reason.text
    assert await status_of(runtime, application_id) == "under_review"
    illegal = await submit(client, page, action, {"move": "start_review"})
    assert illegal.status_code == 409
    assert "cannot start reviewing an application that is under review" in illegal.text
    applicants_move = await submit(client, page, action, {"move": "withdraw"})
    assert applicants_move.status_code == 400
    assert "unknown decision" in applicants_move.text

    changes = await submit(
        client, page, action, {"move": "request_changes", "reason": "Name your organisation."}
    )
    assert changes.status_code == 302
    assert await status_of(runtime, application_id) == "changes_requested"
    waiting = await client.get(page, headers=HTML)
    assert "No operator decision is open" in waiting.text
    too_late = await submit(client, page, action, {"move": "approve"})
    assert too_late.status_code == 409
    assert "cannot approve an application that is waiting for changes" in too_late.text

    fay = await make_account_id(runtime, "fay@corp.example")
    await within(
        runtime,
        lambda uow: deciding.act_as_applicant(
            uow,
            fay,
            application_id,
            ApplicationMove.RESUBMIT,
            answers={"organisation": "Fay Org", "intended_use": "evaluation"},
        ),
    )
    approved = await submit(client, page, action, {"move": "approve", "reason": "Welcome."})
    assert approved.status_code == 302
    final = await client.get(approved.headers["location"], headers=HTML)
    assert "Done: the application is now approved." in final.text
    assert "Welcome." in final.text
    assert "by ops@lab.example" in final.text
    async with runtime.sessionmaker() as session:
        application = await session.get(Application, application_id)
        moves = (
            await session.scalars(
                select(ApplicationEvent.move)
                .where(ApplicationEvent.application_id == application_id)
                .order_by(ApplicationEvent.id)
            )
        ).all()
    assert application is not None
    assert application.decided_by == f"account:{operator_id}"
    assert application.grant_id is not None
    assert moves == ["submit", "start_review", "request_changes", "resubmit", "approve"]


async def make_account_id(rt: Runtime, email: str) -> str:
    async with rt.sessionmaker() as session:
        account_id = await session.scalar(select(Account.id).where(Account.email == email))
    assert account_id is not None
    return account_id


async def test_the_console_is_for_operators_only(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    application_id = await apply(runtime, "gil@corp.example", T0)
    page = f"/ops/applications/{application_id}"

    signed_out = await client.get("/ops", headers=HTML)
    assert signed_out.status_code == 302
    assert signed_out.headers["location"] == "/sign-in?next=/ops"
    detail = await client.get(page, headers=HTML)
    assert detail.headers["location"] == f"/sign-in?next={page}"

    await sign_in(client, "gil@corp.example")
    token = await csrf_token(client, "/account")
    for path in ("/ops", page, "/ops?status=approved"):
        refused = await client.get(path, headers=HTML)
        assert refused.status_code == 403, path
        assert "gil@corp.example" not in refused.text.split("<main", 1)[1]
    posts = {
        f"{page}/decide": {"move": "approve"},
        "/ops/applications/bulk": {"ids": application_id, "move": "approve"},
    }
    for path, fields in posts.items():
        refused = await client.post(path, data={**fields, "_csrf_token": token}, headers=HTML)
        assert refused.status_code == 403, path
    assert await status_of(runtime, application_id) == "submitted"


async def test_decisions_without_a_valid_csrf_token_are_refused(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    application_id = await apply(runtime, "hal@corp.example", T0)
    await sign_in_operator(client, runtime)
    await client.get("/ops", headers=HTML)
    for path, fields in {
        f"/ops/applications/{application_id}/decide": {"move": "approve"},
        "/ops/applications/bulk": {"ids": application_id, "move": "approve"},
    }.items():
        missing = await client.post(path, data=fields, headers=HTML)
        assert missing.status_code == 403, path
        forged = await client.post(path, data={**fields, "_csrf_token": "forged"}, headers=HTML)
        assert forged.status_code == 403, path
    assert await status_of(runtime, application_id) == "submitted"
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Grant)) == 0


async def test_the_queue_searches_by_the_applicants_email_or_name(
    client: Http, runtime: Runtime, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path)
    ada = await apply(runtime, "ada@corp.example", T0)
    grace = await apply(runtime, "grace_h@navy.example", T0 + timedelta(days=1))
    other = await apply(runtime, "graceXh@navy.example", T0 + timedelta(days=2))
    async with writing(runtime) as session:
        row = await session.scalar(select(Account).where(Account.email == "ada@corp.example"))
        assert row is not None
        row.display_name = "Augusta Ada King"
    await sign_in_operator(client, runtime)
    set_clock(client, T0 + timedelta(days=3))

    by_email = await client.get("/ops?applicant=NAVY", headers=HTML)
    assert rows(by_email.text) == [grace, other]
    assert 'value="NAVY"' in by_email.text
    assert "applicant matching" in by_email.text
    by_name = await client.get("/ops?applicant=augusta", headers=HTML)
    assert rows(by_name.text) == [ada]
    # _ and % are the characters themselves, not wildcards.
    assert rows((await client.get("/ops?applicant=grace_", headers=HTML)).text) == [grace]
    assert rows((await client.get("/ops?applicant=%25", headers=HTML)).text) == []
    # The search is kept with the other filters, in page links and the bulk form.
    both = await client.get("/ops?applicant=navy&tier=trusted_partner", headers=HTML)
    assert rows(both.text) == [grace, other]
    assert '<input type="hidden" name="applicant" value="navy">' in both.text
    too_long = await client.get("/ops?applicant=" + "a" * 321, headers=HTML)
    assert too_long.status_code == 400
    assert "at most 320 characters" in too_long.text
