"""Operators hear of applications awaiting review: an inbox entry each, in the submitting
transaction, mailed at once or gathered into one daily digest; never the answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.applications import service, submitting
from gateway.applications.operator_notices import send_operator_digests
from gateway.config import ConfigError, Settings, load_settings
from gateway.db.models import Account, Notification
from gateway.errors import Conflict
from gateway.jobs.registry import BY_NAME, run_job
from gateway.notify.delivery import deliver_due_email
from gateway.runtime import Runtime, build_runtime
from stages.names import parse_model_ref
from tests.accounts import create_account
from tests.fixtures.smtp import SmtpTestServer
from tests.sample import publish
from tests.units import within, writing

pytestmark = pytest.mark.anyio
MODEL = parse_model_ref("acme/sample")
PARTNER = {"organisation": "Lab", "intended_use": "red-team evaluation of refusals"}
PUBLIC = {"intended_use": "research", "agree_acceptable_use": True}


async def account(rt: Runtime, email: str, *, operator: bool = False, name: str = "") -> str:
    created = await create_account(rt, email, operator=operator, actor="t", display_name=name)
    async with writing(rt) as session:
        await session.execute(
            update(Account).where(Account.id == created.id).values(email_verified_at=rt.clock())
        )
    return created.id


async def apply(rt: Runtime, account_id: str, tier: str = "trusted_partner") -> str:
    form = await within(rt, lambda uow: service.application_form(uow, MODEL, tier))
    application = await within(
        rt,
        lambda uow: submitting.submit(
            uow,
            account_id=account_id,
            model=MODEL,
            tier=tier,
            answers=PARTNER if tier == "trusted_partner" else PUBLIC,
            license_sha256=form.license_sha256,
            address="192.0.2.1",
        ),
    )
    return application.id


async def notices(rt: Runtime, email: str) -> list[Notification]:
    """The operator notices in the inbox of `email`."""
    async with rt.sessionmaker() as session:
        rows = await session.scalars(
            select(Notification)
            .join(Account, Account.id == Notification.account_id)
            .where(
                Account.email == email,
                Notification.kind.like("ops.%"),
                Notification.mail_only.is_(False),
            )
            .order_by(Notification.id)
        )
        return list(rows.all())


@pytest.fixture
async def mailing(
    settings: Settings, smtp_server: SmtpTestServer, tmp_path: Path
) -> tuple[Runtime, SmtpTestServer]:
    rt = build_runtime(replace(settings, smtp_url=smtp_server.url()))
    await publish(rt, tmp_path)
    yield rt, smtp_server  # type: ignore[misc]
    await rt.close()


def mails_to(server: SmtpTestServer, email: str) -> list[tuple[str, str]]:
    return [
        (str(m.message["Subject"]), m.message.get_content())
        for m in server.received
        if email in m.rcpt_tos
    ]


async def test_every_active_operator_is_told_and_mailed_of_an_application_to_review(
    mailing: tuple[Runtime, SmtpTestServer],
) -> None:
    rt, smtp = mailing
    await account(rt, "olga@ops.example", operator=True)
    await account(rt, "oscar@ops.example", operator=True)
    held = await account(rt, "sam@ops.example", operator=True)
    async with writing(rt) as session:
        await session.execute(update(Account).where(Account.id == held).values(status="suspended"))
    ada = await account(rt, "ada@lab.example", name="Ada Lovelace")
    application_id = await apply(rt, ada)

    for operator in ("olga@ops.example", "oscar@ops.example"):
        [note] = await notices(rt, operator)
        assert note.kind == "ops.application_submitted"
        assert note.link == f"{rt.settings.public_url}/ops/applications/{application_id}"
        assert "Ada Lovelace (ada@lab.example)" in note.body
        assert "trusted_partner tier of acme/sample" in note.body
    assert await notices(rt, "sam@ops.example") == []
    assert await notices(rt, "ada@lab.example") == []

    await deliver_due_email(rt)
    [(subject, body)] = mails_to(smtp, "olga@ops.example")
    assert subject == "New application: acme/sample, trusted_partner tier"
    assert f"/ops/applications/{application_id}" in body
    # Who and what, never the answers nor anything secret.
    assert "red-team" not in body
    assert len(mails_to(smtp, "oscar@ops.example")) == 1
    assert mails_to(smtp, "sam@ops.example") == []


async def test_no_notice_for_an_approval_on_the_spot_an_own_application_or_a_refusal(
    mailing: tuple[Runtime, SmtpTestServer],
) -> None:
    rt, _ = mailing
    olga = await account(rt, "olga@ops.example", operator=True)
    await account(rt, "oscar@ops.example", operator=True)
    ada = await account(rt, "ada@lab.example")
    await apply(rt, ada, tier="public")  # approved at once: nothing to review
    assert await notices(rt, "olga@ops.example") == []
    await apply(rt, olga)  # an operator's own application: the others are told
    assert await notices(rt, "olga@ops.example") == []
    assert len(await notices(rt, "oscar@ops.example")) == 1
    # Refused before it is written: no notice either (one transaction).
    bea = await account(rt, "bea@lab.example")
    with pytest.raises(Conflict):
        await within(
            rt,
            lambda uow: submitting.submit(
                uow,
                account_id=bea,
                model=MODEL,
                tier="trusted_partner",
                answers=PARTNER,
                license_sha256="0" * 64,
                address=None,
            ),
        )
    assert len(await notices(rt, "oscar@ops.example")) == 1


async def test_the_daily_digest_mails_each_operator_one_summary_once(
    mailing: tuple[Runtime, SmtpTestServer],
) -> None:
    rt, smtp = mailing
    rt.settings = replace(rt.settings, operator_notices="daily")
    await account(rt, "olga@ops.example", operator=True)
    first = await apply(rt, await account(rt, "ada@lab.example"))
    second = await apply(rt, await account(rt, "bea@lab.example"))
    # The inbox hears at once; the mail waits for the digest.
    assert len(await notices(rt, "olga@ops.example")) == 2
    await deliver_due_email(rt)
    assert mails_to(smtp, "olga@ops.example") == []

    # Not before the oldest entry held is a day old.
    start = rt.clock()
    rt.clock = lambda: start + timedelta(hours=23)
    assert await run_job(rt, BY_NAME["notify.operator_digest"]) == "0 operator digest(s) mailed"
    rt.clock = lambda: start + timedelta(days=1)
    outcome = await run_job(rt, BY_NAME["notify.operator_digest"])
    assert outcome == "1 operator digest(s) mailed"
    await deliver_due_email(rt)
    [(subject, body)] = mails_to(smtp, "olga@ops.example")
    assert subject == "2 new applications to review"
    assert f"/ops/applications/{first}" in body
    assert f"/ops/applications/{second}" in body
    assert "ada@lab.example" in body
    assert "bea@lab.example" in body
    assert "red-team" not in body
    # The digest is mail only: the inbox still holds the two entries, and no third.
    assert len(await notices(rt, "olga@ops.example")) == 2

    # Each entry is in one digest: nothing new, nothing mailed.
    assert await within(rt, send_operator_digests) == 0
    third = await apply(rt, await account(rt, "cy@lab.example"))
    assert await within(rt, send_operator_digests) == 0  # held since a moment ago
    rt.clock = lambda: start + timedelta(days=2)
    assert await within(rt, send_operator_digests) == 1
    await deliver_due_email(rt)
    latest_subject, latest = mails_to(smtp, "olga@ops.example")[-1]
    assert latest_subject == "1 new application to review"
    assert f"/ops/applications/{third}" in latest
    assert f"/ops/applications/{first}" not in latest


async def test_the_digest_setting_is_read_and_checked(tmp_path: Path) -> None:
    assert load_settings({"GATEWAY_HOME": str(tmp_path)}).operator_notices == "immediate"
    (tmp_path / "gateway.toml").write_text('operator_notices = "daily"\n')
    assert load_settings({"GATEWAY_HOME": str(tmp_path)}).operator_notices == "daily"
    with pytest.raises(ConfigError, match="GATEWAY_OPERATOR_NOTICES: expected immediate or daily"):
        load_settings({"GATEWAY_HOME": str(tmp_path), "GATEWAY_OPERATOR_NOTICES": "hourly"})
    (tmp_path / "gateway.toml").write_text("operator_notices = true\n")
    with pytest.raises(ConfigError, match="operator_notices: expected a string"):
        load_settings({"GATEWAY_HOME": str(tmp_path)})
