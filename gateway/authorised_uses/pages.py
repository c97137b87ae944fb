"""The public list of authorised uses, the opt-in on the apply form, and the applicant's
withdrawal of their consent."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from gateway.applications.answer_forms import TICKED
from gateway.authorised_uses.service import Listing, authorised_uses, checked_listing, withdraw
from gateway.web import Page, PathStr, Uow
from gateway.web.forms import Form
from gateway.web.forms import field as form_field
from gateway.web.guards import SignedIn, back_to
from gateway.web.pages import PAGE_SIZE, page_count

_FIELDS = ("institution", "project_title", "use_statement")
# The apply form's inputs for the listing, as its errors name them.
LISTING_FIELDS = tuple(f"listing.{name}" for name in _FIELDS)
ModelQuery = Annotated[str | None, QueryParameter(description="ORG/NAME", max_length=200)]


def listing_values(data: Form) -> dict[str, object]:
    """The opt-in's fields as the apply form shows them again."""
    values: dict[str, object] = {"listing": form_field(data, "public_listing") == TICKED}
    for name in _FIELDS:
        values[f"listing.{name}"] = form_field(data, f"listing.{name}") or ""
    return values


def listing_from_form(data: Form) -> Listing | None:
    """The listing asked for on the apply form, checked; None without the opt-in."""
    if form_field(data, "public_listing") != TICKED:
        return None
    return checked_listing(*(form_field(data, f"listing.{name}") for name in _FIELDS))


class AuthorisedUsePages(Controller):
    include_in_schema = False

    @get("/authorised-uses")
    async def authorised_uses(self, uow: Uow, page: Page = 1, model: ModelQuery = None) -> Template:
        items, total = await authorised_uses(
            uow, model=model or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        return Template(
            "authorised_uses/list.html",
            context={
                "items": items,
                "total": total,
                "page": page,
                "pages": page_count(total),
                "model": model or "",
            },
        )

    @post(
        "/applications/{application_id:str}/public-listing/withdraw",
        opt=back_to("/applications/{application_id}"),
    )
    async def withdraw(
        self, uow: Uow, account: SignedIn, application_id: PathStr, data: Form
    ) -> Redirect:
        await withdraw(uow, application_id, account_id=account.id)
        return Redirect(f"/applications/{application_id}?done=unlisted")
