"""Sign-up, sign-in, email verification, password reset, first-operator setup, and the
signed-in account's own page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from gateway.errors import GatewayError
from gateway.identity import service
from gateway.notify.service import inbox_latest
from gateway.web import Limiter, Rt, Uow
from gateway.web.forms import Form, field, form_page
from gateway.web.guards import SignedIn, requires_sign_in
from gateway.web.secret_pages import SECRET_PAGE
from gateway.web.session import Viewer, sign_in_session

Token = Annotated[str, QueryParameter(description="The secret from the link")]
Next = Annotated[str, QueryParameter(description="Where to go after signing in")]


def _address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def safe_next(target: str, *, default: str = "/account") -> str:
    # Only paths on this site: never an open redirect to another host.
    return target if target.startswith("/") and not target.startswith("//") else default


def landing(target: str, *, operator: bool) -> str:
    """Where a sign-in goes: a safe `next` if one was given, else the account's home
    (the console for an operator)."""
    return safe_next(target, default="/ops" if operator else "/account")


def _setup_used() -> Template:
    return form_page("auth/setup_used.html", status=400)


class AuthPages(Controller):
    include_in_schema = False
    # Tokens ride in these pages' addresses and forms; passwords in their posts.
    opt = SECRET_PAGE

    @get("/sign-up")
    async def sign_up_form(self) -> Template:
        return form_page("auth/sign_up.html")

    @post("/sign-up")
    async def sign_up(
        self, request: Request[Any, Any, Any], uow: Uow, limiter: Limiter, data: Form
    ) -> Template:
        try:
            address = await service.sign_up(
                uow,
                limiter,
                email=field(data, "email"),
                password=field(data, "password"),
                display_name=field(data, "display_name"),
                affiliation=field(data, "affiliation"),
                address=_address(request),
            )
        except GatewayError as exc:
            return form_page("auth/sign_up.html", values=data, error=exc)
        # The same answer whether or not the address already had an account.
        return form_page(
            "auth/message.html",
            title="Check your email",
            message=f"We sent a message to {address}. Open the link in it to confirm the "
            "address and sign in; the link works once, for three days.",
        )

    @get("/sign-in")
    async def sign_in_form(self, next: Next = "") -> Template:
        return form_page("auth/sign_in.html", next=safe_next(next, default=""), providers=[])

    @post("/sign-in")
    async def sign_in(
        self, request: Request[Any, Any, Any], uow: Uow, limiter: Limiter, data: Form
    ) -> Template | Redirect:
        target = safe_next(field(data, "next"), default="")
        try:
            account = await service.sign_in(
                uow,
                limiter,
                email=field(data, "email"),
                password=field(data, "password"),
                address=_address(request),
            )
        except GatewayError as exc:
            return form_page(
                "auth/sign_in.html",
                values=data,
                error=exc,
                next=target,
                providers=uow.rt.settings.oidc,
            )
        sign_in_session(request, account)
        return Redirect(landing(target, operator=account.is_operator))

    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect("/")

    @get("/verify-email")
    async def verify_email_form(self, token: Token) -> Template:
        # Confirming takes a press of a button: a mail scanner that opens the link
        # must not use it up.
        return form_page("auth/verify.html", token=token)

    @post("/verify-email")
    async def verify_email(
        self, request: Request[Any, Any, Any], uow: Uow, data: Form
    ) -> Template | Redirect:
        try:
            account = await service.verify_email(
                uow, field(data, "token"), address=_address(request)
            )
        except GatewayError as exc:
            return form_page("auth/message.html", error=exc, title="Email not confirmed")
        sign_in_session(request, account)
        return Redirect("/account?confirmed=1")

    @post("/verify-email/resend")
    async def resend(self, uow: Uow, viewer: Viewer) -> Redirect:
        if viewer is not None:
            await service.resend_verification(uow, viewer.id)
        return Redirect("/account?resent=1")

    @get("/forgot-password")
    async def forgot_form(self) -> Template:
        return form_page("auth/forgot.html")

    @post("/forgot-password")
    async def forgot(
        self, request: Request[Any, Any, Any], runtime: Rt, limiter: Limiter, data: Form
    ) -> Template:
        try:
            address = await service.request_password_reset(
                limiter, field(data, "email"), _address(request)
            )
        except GatewayError as exc:
            return form_page("auth/forgot.html", values=data, error=exc)
        answer = form_page(
            "auth/message.html",
            title="Check your email",
            message="If an account exists for that address, a reset link is on its way. "
            "It works once, for one hour.",
        )
        if address is not None:
            # After the answer is sent: its timing says nothing about the account.
            answer.background = BackgroundTask(service.send_password_reset, runtime, address)
        return answer

    @get("/reset-password")
    async def reset_form(self, token: Token) -> Template:
        return form_page("auth/reset.html", token=token)

    @post("/reset-password")
    async def reset(
        self, request: Request[Any, Any, Any], uow: Uow, data: Form
    ) -> Template | Redirect:
        token = field(data, "token")
        try:
            account = await service.reset_password(
                uow, token, field(data, "password"), address=_address(request)
            )
        except GatewayError as exc:
            return form_page("auth/reset.html", error=exc, token=token)
        sign_in_session(request, account)
        return Redirect("/account?reset=1")

    @get("/setup")
    async def setup_form(self, uow: Uow, token: Token) -> Template:
        if await service.setup_link_used(uow, token):
            return _setup_used()
        return form_page("auth/setup.html", token=token)

    @post("/setup")
    async def setup(
        self, request: Request[Any, Any, Any], uow: Uow, data: Form
    ) -> Template | Redirect:
        token = field(data, "token")
        if await service.setup_link_used(uow, token):
            return _setup_used()
        try:
            account = await service.create_first_operator(
                uow,
                token,
                email=field(data, "email"),
                password=field(data, "password"),
                display_name=field(data, "display_name"),
            )
        except GatewayError as exc:
            return form_page("auth/setup.html", values=data, error=exc, token=token)
        sign_in_session(request, account)
        return Redirect("/ops")


class AccountPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    @get("/account")
    async def account(self, uow: Uow, account: SignedIn) -> Template:
        notes = await inbox_latest(uow, account.id)
        return Template("account/home.html", context={"account": account, "notifications": notes})
