"""Sign-in through the OpenID Connect providers of `[oidc.<name>]` in gateway.toml."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State as AppState
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template

from gateway.config import OidcProvider
from gateway.errors import GatewayError
from gateway.identity.oidc_flow import (
    SESSION_PENDING,
    SignInRefused,
    authorization_request,
    remember,
    take_pending,
    verified_identity,
)
from gateway.identity.oidc_linking import sign_in_with
from gateway.identity.oidc_providers import ProviderDirectory, find_provider
from gateway.identity.pages import landing, safe_next
from gateway.ratelimits import RateLimit
from gateway.web import Limiter, Rt, Uow
from gateway.web.forms import form_page
from gateway.web.secret_pages import SECRET_PAGE
from gateway.web.session import sign_in_session

logger = logging.getLogger("gateway.identity.oidc")

# The provider directory lives in the app's state: one per process, made on first use
# (tests may put one of their own there first).
DIRECTORY_STATE = "oidc_directory"

ProviderName = Annotated[str, PathParameter(description="The provider's name in gateway.toml")]
Next = Annotated[str, QueryParameter(description="Where to go after signing in")]
# `state` is a reserved name in Litestar handlers (the app state), hence the alias.
State = Annotated[
    str | None, QueryParameter(name="state", description="The state sent to the provider")
]
Code = Annotated[str | None, QueryParameter(description="The authorization code")]
ProviderError = Annotated[str | None, QueryParameter(description="The provider's refusal, if any")]


def provide_directory(state: AppState) -> ProviderDirectory:
    directory = state.get(DIRECTORY_STATE)
    if not isinstance(directory, ProviderDirectory):
        directory = ProviderDirectory()
        state[DIRECTORY_STATE] = directory
    return directory


Directory = NamedDependency[ProviderDirectory]


def _session(request: Request[Any, Any, Any]) -> dict[str, Any]:
    session = request.scope.get("session")
    return dict(session) if isinstance(session, dict) else {}


def _failed(error: GatewayError) -> Template:
    return form_page("auth/message.html", error=error, title="Sign-in failed")


def _provider(runtime: Rt, name: str) -> OidcProvider | Template:
    try:
        return find_provider(runtime.settings, name)
    except GatewayError as exc:
        return form_page("auth/message.html", error=exc, title="Unknown sign-in provider")


class OidcPages(Controller):
    include_in_schema = False
    # The callback's address carries a one-time authorization code.
    opt = SECRET_PAGE
    dependencies = {"directory": Provide(provide_directory, sync_to_thread=False)}

    @get("/sign-in/oidc/{provider:str}")
    async def start(
        self,
        request: Request[Any, Any, Any],
        runtime: Rt,
        directory: Directory,
        provider: ProviderName,
        next: Next = "",
    ) -> Template | Redirect:
        chosen = _provider(runtime, provider)
        if isinstance(chosen, Template):
            return chosen
        try:
            metadata = await directory.metadata(chosen)
        except GatewayError as exc:
            return _failed(exc)
        now = runtime.clock().timestamp()
        url, pending = await authorization_request(
            runtime.settings, chosen, metadata, next_path=safe_next(next, default=""), now=now
        )
        session = _session(request)
        request.set_session({**session, SESSION_PENDING: remember(session, pending, now)})
        return Redirect(url)

    @get("/sign-in/oidc/{provider:str}/callback")
    async def callback(
        self,
        request: Request[Any, Any, Any],
        runtime: Rt,
        uow: Uow,
        directory: Directory,
        limiter: Limiter,
        provider: ProviderName,
        oidc_state: State = None,
        code: Code = None,
        error: ProviderError = None,
    ) -> Template | Redirect:
        chosen = _provider(runtime, provider)
        if isinstance(chosen, Template):
            return chosen
        session = _session(request)
        try:
            pending, remaining = take_pending(
                session, chosen, oidc_state, runtime.clock().timestamp()
            )
        except GatewayError as exc:
            return _failed(exc)
        # The attempt is used up, whatever happens next.
        request.set_session({**session, SESSION_PENDING: remaining})
        address = request.client.host if request.client else None
        try:
            if error is not None:
                reason = (
                    "you did not allow it"
                    if error == "access_denied"
                    else f"the provider answered {error[:100]!r}"
                )
                raise SignInRefused(chosen, reason, code="oidc_denied")
            if not code:
                raise SignInRefused(
                    chosen, "the provider sent no authorization code", code="oidc_code_missing"
                )
            await limiter.take(RateLimit.OIDC_SIGN_IN_PER_ADDRESS, address or "unknown")
            identity = await verified_identity(runtime, directory, chosen, pending, code)
            account = await sign_in_with(uow, chosen, identity, address=address)
        except GatewayError as exc:
            logger.info("oidc %s: sign-in refused: %s (%s)", chosen.name, exc.code, exc.message)
            return _failed(exc)
        sign_in_session(request, account)
        return Redirect(landing(pending.next, operator=account.is_operator))
