"""The account's inbox: its notifications, newest first, and marking them all read."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from gateway.notify.service import inbox_page, mark_read
from gateway.web import Page, Uow
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
        self, uow: Uow, account: SignedIn, page: Page = 1, done: Done = None
    ) -> Template:
        shown = await inbox_page(uow, account.id, page=page, size=PAGE_SIZE)
        base = public_base(uow.rt)
        links = {
            note.id: note.link.removeprefix(base) if note.link else None for note in shown.notes
        }
        return Template(
            "applicant/inbox.html",
            context={
                "notes": shown.notes,
                "links": links,
                "total": shown.total,
                "unread": shown.unread,
                "page": page,
                "pages": page_count(shown.total),
                "notice": DONE_NOTICES.get(done or ""),
            },
        )

    @post("/inbox/read-all", opt=back_to("/inbox"))
    async def read_all(self, uow: Uow, account: SignedIn) -> Redirect:
        await mark_read(uow, account.id)
        return Redirect("/inbox?done=read")
