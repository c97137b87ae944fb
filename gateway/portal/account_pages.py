"""The signed-in account's own pages."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template
from sqlalchemy import select

from gateway.db.models import Notification
from gateway.notify.service import in_inbox
from gateway.web import Db
from gateway.web.guards import SignedIn, requires_sign_in


class AccountPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    @get("/account")
    async def account(self, db: Db, account: SignedIn) -> Template:
        notes = (
            await db.scalars(
                select(Notification)
                .where(in_inbox(account.id))
                .order_by(Notification.created_at.desc())
                .limit(20)
            )
        ).all()
        return Template("account/home.html", context={"account": account, "notifications": notes})
