"""The account's inbox: its notifications, newest first, and marking them all read."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Controller, get, post
from litestar.response import Redirect, Template
from sqlalchemy import func, select, update

from gateway.db.models import Notification
from gateway.notify.service import in_inbox
from gateway.web import Db, Page, Rt
from gateway.web.guards import SignedIn, back_to, requires_sign_in
from gateway.web.pages import (
    PAGE_SIZE,
    Done,
    page_count,
    public_base,
)

DONE_NOTICES: Mapping[str, str] = {
    "read": "Every notification is marked as read.",
}


class InboxPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    @get("/inbox")
    async def inbox(
        self, db: Db, runtime: Rt, account: SignedIn, page: Page = 1, done: Done = None
    ) -> Template:
        mine = in_inbox(account.id)
        total = await db.scalar(select(func.count()).select_from(Notification).where(mine)) or 0
        unread = (
            await db.scalar(
                select(func.count())
                .select_from(Notification)
                .where(mine, Notification.read_at.is_(None))
            )
            or 0
        )
        notes = (
            await db.scalars(
                select(Notification)
                .where(mine)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        ).all()
        base = public_base(runtime)
        links = {note.id: note.link.removeprefix(base) if note.link else None for note in notes}
        return Template(
            "applicant/inbox.html",
            context={
                "notes": notes,
                "links": links,
                "total": total,
                "unread": unread,
                "page": page,
                "pages": page_count(total),
                "notice": DONE_NOTICES.get(done or ""),
            },
        )

    @post("/inbox/read-all", opt=back_to("/inbox"))
    async def read_all(self, runtime: Rt, account: SignedIn) -> Redirect:
        # No notification service marks entries read yet; this one UPDATE is all it takes.
        async with runtime.transaction() as session:
            await session.execute(
                update(Notification)
                .where(in_inbox(account.id), Notification.read_at.is_(None))
                .values(read_at=runtime.clock())
            )
        return Redirect("/inbox?done=read")
