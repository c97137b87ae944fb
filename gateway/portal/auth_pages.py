"""Sign-up, sign-in, email verification, password reset and first-operator setup."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from gateway.errors import GatewayError
from gateway.identity import service
from gateway.portal.forms import field, form_page
from gateway.portal.session import Viewer, sign_in_session
from gateway.web import Limiter, Rt

Form = URLEncodedBody[dict[str, Any]]
Token = Annotated[str, QueryParameter(description="The secret from the link")]
Next = Annotated[str, QueryParameter(description="Where to go after signing in")]


def _address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def safe_next(target: str) -> str:
    # Only paths on this site: never an open redirect to another host.
    return target if target.startswith("/") and not target.startswith("//") else "/account"


class AuthPages(Controller):
    include_in_schema = False

    @get("/sign-up")
    async def sign_up_form(self) -> Template:
        return form_page("auth/sign_up.html")

    @post("/sign-up")
    async def sign_up(
        self, request: Request[Any, Any, Any], runtime: Rt, limiter: Limiter, data: Form
    ) -> Template | Redirect:
        try:
            account = await service.sign_up(
                runtime,
                limiter,
                email=field(data, "email"),
                password=field(data, "password"),
                display_name=field(data, "display_name"),
                affiliation=field(data, "affiliation"),
                address=_address(request),
            )
        except GatewayError as exc:
            return form_page("auth/sign_up.html", values=data, error=exc)
        sign_in_session(request, account)
        return Redirect("/account?welcome=1")

    @get("/sign-in")
    async def sign_in_form(self, next: Next = "/account") -> Template:
        return form_page("auth/sign_in.html", next=safe_next(next), providers=[])

    @post("/sign-in")
    async def sign_in(
        self, request: Request[Any, Any, Any], runtime: Rt, limiter: Limiter, data: Form
    ) -> Template | Redirect:
        target = safe_next(field(data, "next") or "/account")
        try:
            account = await service.sign_in(
                runtime,
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
                providers=runtime.settings.oidc,
            )
        sign_in_session(request, account)
        return Redirect(target)

    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect("/")

    @get("/verify-email")
    async def verify_email(self, runtime: Rt, token: Token) -> Template:
        try:
            account = await service.verify_email(runtime, token)
        except GatewayError as exc:
            return form_page("auth/message.html", error=exc, title="Email not confirmed")
        return form_page(
            "auth/message.html",
            title="Email confirmed",
            message=f"{account.email} is confirmed. You can now apply for access to releases.",
        )

    @post("/verify-email/resend")
    async def resend(self, runtime: Rt, viewer: Viewer) -> Redirect:
        if viewer is not None:
            await service.resend_verification(runtime, viewer.id)
        return Redirect("/account?resent=1")

    @get("/forgot-password")
    async def forgot_form(self) -> Template:
        return form_page("auth/forgot.html")

    @post("/forgot-password")
    async def forgot(
        self, request: Request[Any, Any, Any], runtime: Rt, limiter: Limiter, data: Form
    ) -> Template:
        try:
            await service.request_password_reset(
                runtime, limiter, field(data, "email"), _address(request)
            )
        except GatewayError as exc:
            return form_page("auth/forgot.html", values=data, error=exc)
        return form_page(
            "auth/message.html",
            title="Check your email",
            message="If an account exists for that address, a reset link is on its way. "
            "It works once, for one hour.",
        )

    @get("/reset-password")
    async def reset_form(self, token: Token) -> Template:
        return form_page("auth/reset.html", token=token)

    @post("/reset-password")
    async def reset(
        self, request: Request[Any, Any, Any], runtime: Rt, data: Form
    ) -> Template | Redirect:
        token = field(data, "token")
        try:
            account = await service.reset_password(runtime, token, field(data, "password"))
        except GatewayError as exc:
            return form_page("auth/reset.html", error=exc, token=token)
        sign_in_session(request, account)
        return Redirect("/account?reset=1")

    @get("/setup")
    async def setup_form(self, token: Token) -> Template:
        return form_page("auth/setup.html", token=token)

    @post("/setup")
    async def setup(
        self, request: Request[Any, Any, Any], runtime: Rt, data: Form
    ) -> Template | Redirect:
        token = field(data, "token")
        try:
            account = await service.create_first_operator(
                runtime,
                token,
                email=field(data, "email"),
                password=field(data, "password"),
                display_name=field(data, "display_name"),
            )
        except GatewayError as exc:
            return form_page("auth/setup.html", values=data, error=exc, token=token)
        sign_in_session(request, account)
        return Redirect("/ops")
