"""The app factory: all wiring (settings, runtime, DI, templates, error handling) lives here."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.logging.config import LoggingConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Scope
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway import __version__
from gateway.api_access.api import ApiAccessController
from gateway.api_access.front import VerifyInFront
from gateway.api_reference import openapi_config
from gateway.applications.api import ApplicationsController
from gateway.applications.pages import ApplicationPages
from gateway.applications.review_pages import OpsPages
from gateway.authorised_uses.api import AuthorisedUsesController
from gateway.authorised_uses.pages import AuthorisedUsePages
from gateway.catalog.api import CatalogController
from gateway.catalog.pages import CatalogPages
from gateway.config import Settings, load_settings
from gateway.downloads.api import DownloadsController
from gateway.downloads.pages import DownloadPages
from gateway.enforcement.pages import EnforcementPages
from gateway.errors import (
    DatabaseUnavailable,
    Denied,
    GatewayError,
    StorageUnavailable,
    Unavailable,
)
from gateway.evidence_log.api import EvidenceLogController
from gateway.grants.pages import GrantPages
from gateway.health import healthz, readyz, release_signing_key
from gateway.identity.oidc_pages import OidcPages
from gateway.identity.pages import AccountPages, AuthPages
from gateway.identity.sessions import SessionStore
from gateway.incidents.api import IncidentsController
from gateway.incidents.pages import IncidentPages
from gateway.keys.api import KeysController
from gateway.keys.auth import provide_caller, provide_grantee
from gateway.keys.found_api import FoundKeysController
from gateway.keys.found_pages import FoundKeyPages
from gateway.keys.pages import KeyPages
from gateway.keys.secret_scanning import ScanningKeyList
from gateway.keys.secret_scanning_api import KEY_LIST_STATE, SecretScanningController
from gateway.metrics import registry as metrics_registry
from gateway.metrics.api import metrics
from gateway.metrics.middleware import RequestMetrics
from gateway.metrics.processes import mark_stopped
from gateway.notify.pages import InboxPages
from gateway.notify.webhook_pages import WebhookPages
from gateway.operator_api import operator_api
from gateway.ratelimits import DatabaseRateLimitStore, RateLimiter
from gateway.runtime import Runtime, build_runtime
from gateway.staging.evaluation_pages import EvaluationPages
from gateway.staging.evaluations_api import EvaluationsController
from gateway.staging.pages import ReleaseOpsPages
from gateway.storage import StorageError
from gateway.transparency.api import TransparencyController
from gateway.transparency.ops_pages import TransparencyOpsPages
from gateway.transparency.pages import TransparencyPages
from gateway.usage.pages import UsagePages
from gateway.web.csrf import SessionCsrfMiddleware
from gateway.web.filters import register_filters
from gateway.web.guards import provide_account, provide_operator
from gateway.web.headers import security_headers
from gateway.web.request_guard import RequestGuard
from gateway.web.secret_pages import SecretPageHeaders
from gateway.web.session import SessionMiddleware, provide_viewer
from gateway.web.unit import provide_unit
from gateway.web.unread import count_unread

HERE = Path(__file__).parent
logger = logging.getLogger("gateway")


async def _provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


async def _provide_limiter(state: State) -> RateLimiter:
    limiter: RateLimiter = state.limiter
    return limiter


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith(("/api/", "/d/", "/.well-known/", "/schema", "/metrics")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _error(request: Request[Any, Any, Any], status: int, code: str, message: str) -> Response[Any]:
    if _wants_html(request):
        return Template(
            "error.html",
            context={"status": status, "code": code, "message": message},
            status_code=status,
        )
    return Response(
        {"error": code, "message": message, "status": status},
        status_code=status,
        media_type=MediaType.JSON,
    )


def _on_gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    if isinstance(exc, Unavailable):
        return _on_unavailable(request, exc)
    if isinstance(exc, Denied):
        # Every refusal with an access reason reaches this one handler, whoever raised it.
        metrics_registry.ACCESS_REFUSALS.labels(exc.reason.value).inc()
    response = _error(request, exc.status, exc.code, exc.message)
    hint = getattr(exc, "hint", None)
    if hint and isinstance(response.content, dict):
        response.content["hint"] = hint
    problems = getattr(exc, "problems", None)
    if problems and isinstance(response.content, dict):
        response.content["problems"] = [{"field": p.field, "message": p.message} for p in problems]
    if exc.status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="release-gateway"'
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["retry-after"] = str(retry_after)
    size = getattr(exc, "size", None)
    if exc.status == 416 and size is not None:
        response.headers["content-range"] = f"bytes */{size}"
    return response


def _on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        details = exc.extra if isinstance(exc.extra, list) else []
        parts = [
            f"{d.get('key', '?')}: {d.get('message', '')}" for d in details if isinstance(d, dict)
        ]
        message = "invalid request" + (": " + "; ".join(parts) if parts else "")
        return _error(request, 400, "invalid_request", message)
    if isinstance(exc, NotAuthorizedException) and str(exc.detail).startswith("/sign-in"):
        if _wants_html(request):
            return Redirect(exc.detail)
        return _error(request, 401, "sign_in_required", "sign in to see this page")
    if isinstance(exc, NotFoundException):
        return _error(request, 404, "not_found", f"nothing at {request.url.path}")
    if exc.status_code == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        said = f" (at most {limit // (1024 * 1024)} MiB)" if limit else ""
        return _error(
            request,
            413,
            "request_too_large",
            f"the request is larger than this address takes{said}",
        )
    response = _error(request, exc.status_code, "http_error", exc.detail)
    # Litestar's own headers: `Allow` on a 405, for one.
    response.headers.update(exc.headers or {})
    return response


def _on_unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Any]:
    # The cause (hosts, buckets, driver words) goes to the log and /readyz, not to callers.
    logger.warning("%s %s: %s", request.method, request.url.path, exc.message)
    response = _error(request, exc.status, exc.code, exc.public_message)
    response.headers["retry-after"] = str(exc.retry_after_seconds)
    return response


def _on_storage_error(request: Request[Any, Any, Any], exc: StorageError) -> Response[Any]:
    # A storage error that reaches a request is the store failing, never the caller's input.
    return _on_unavailable(request, StorageUnavailable(str(exc)))


def _on_pool_timeout(request: Request[Any, Any, Any], exc: PoolTimeout) -> Response[Any]:
    # Every pooled connection stayed busy for the pool's whole timeout.
    return _on_unavailable(request, DatabaseUnavailable(f"no free connection: {exc}"))


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # A bug, not bad input: keep the traceback in the log, never in the answer.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(
        request, 500, "internal_error", "the gateway failed to handle this request; it was logged"
    )


# Paths that carry no cookies: bearer-key API calls, downloads, health, public keys.
_COOKIELESS = [
    "^/api/",
    "^/d/",
    "^/healthz",
    "^/readyz",
    "^/metrics",
    "^/\\.well-known/",
    "^/static/",
    "^/schema",
]


_COOKIELESS_PATH = re.compile("|".join(_COOKIELESS))


def _cookieless(scope: Scope) -> bool:
    return bool(_COOKIELESS_PATH.match(scope["path"]))


def _proxy_headers(trusted: tuple[str, ...]) -> list[Callable[[ASGIApp], ASGIApp]]:
    """Behind trusted proxies, the client's address (and scheme) from X-Forwarded-*, for
    every per-address rule; none trusted, the headers are ignored."""
    if not trusted:
        return []
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    def middleware(app: ASGIApp) -> ASGIApp:
        wrapped: ASGIApp = wrap_asgi_with_proxy_headers(app, list(trusted))
        return wrapped

    return [middleware]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Litestar:
    """Build the gateway app. Tests pass a runtime; `gateway serve` lets it read settings."""
    if runtime is None:
        runtime = build_runtime(settings or load_settings())
    return serve_with(build_app(runtime), runtime)


def serving_app() -> VerifyInFront:
    """The app of one `gateway serve` worker: create_app's behind key verification's
    plain requests (gateway/api_access/front.py), and the worker's collector tuned for
    serving once it has started (see `_freeze_heap`)."""
    app = create_app()
    app.on_startup.append(_freeze_heap)
    return VerifyInFront(app)


def app_shape(settings: Settings) -> tuple[bool, bool, tuple[str, ...]]:
    """What of the settings is built into the app itself (cookies, headers, proxies); the
    rest is read from the runtime at each request. Apps of one shape can serve any runtime
    with those settings, one after another (see `serve_with`)."""
    return (
        settings.secure_cookies,
        settings.public_url.startswith("https://"),
        settings.trusted_proxies,
    )


def serve_with(app: Litestar, runtime: Runtime) -> Litestar:
    """Point `app` (from `build_app`, of `runtime`'s shape) at `runtime`: its state starts
    over, with the runtime, a rate limiter on its database and its own scanning key list."""
    if app_shape(runtime.settings) != app.state[_SHAPE_STATE]:
        raise ValueError("the app was built for other cookie, header or proxy settings")
    rt = runtime
    store = app.stores.get("sessions")
    assert isinstance(store, SessionStore)
    store.rt = rt
    shape = app.state[_SHAPE_STATE]
    app.state.clear()
    app.state.update(
        {
            _SHAPE_STATE: shape,
            "runtime": rt,
            # Counts in the database, so every worker and replica shares them. The clock
            # is read through the runtime at each attempt, so a clock set later counts too.
            "limiter": RateLimiter(
                DatabaseRateLimitStore(rt.engine),
                rt.settings.rate_limits,
                clock=lambda: rt.clock(),  # noqa: PLW0108
            ),
            # GitHub's secret scanning keys, read on first use and kept per process.
            KEY_LIST_STATE: ScanningKeyList(rt.settings),
            _SCHEDULER_STATE: [],
        }
    )
    return app


_SHAPE_STATE = "app_shape"
_SCHEDULER_STATE = "scheduler"


def _runtime_of(app: Litestar) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def _remove_stale_uploads(app: Litestar) -> None:
    # Debris of publishes killed while this gateway was down; never fatal at start.
    try:
        await asyncio.to_thread(_runtime_of(app).storage.remove_stale_uploads)
    except StorageError as exc:
        logger.warning("could not remove interrupted uploads: %s", exc)


async def _start_jobs(app: Litestar) -> None:
    rt = _runtime_of(app)
    if rt.settings.scheduler:
        from gateway.jobs.scheduler import start_scheduler

        app.state[_SCHEDULER_STATE].append(start_scheduler(rt))


async def _listen_for_changes(app: Litestar) -> None:
    # PostgreSQL: hear other replicas' changes; the caches stay off until it hears.
    _runtime_of(app).changes.listen()


async def _freeze_heap(app: Litestar) -> None:
    # What start-up built (the routes, the models, the policy) lives as long as the
    # process: out of the collector's sight, a full collection walks only what requests
    # made, so it no longer stalls every request for tens of milliseconds.
    # The youngest generation is collected every 10,000 allocations, not 700: a request
    # makes a few thousand objects, nearly all gone by its end.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def _close_runtime(app: Litestar) -> None:
    for running in app.state[_SCHEDULER_STATE]:
        running.shutdown(wait=False)
    await _runtime_of(app).close()
    mark_stopped()


def _configure_templates(engine: JinjaTemplateEngine) -> None:
    register_filters(engine.engine)


def build_app(runtime: Runtime) -> Litestar:
    """The app's routes, middleware and templates for the `app_shape` of `runtime`'s
    settings; it serves once `serve_with` has given it a runtime (this one or another)."""
    secure, https, trusted = app_shape(runtime.settings)
    session_store = SessionStore(runtime)
    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics,
            release_signing_key,
            CatalogController,
            CatalogPages,
            AuthPages,
            OidcPages,
            AccountPages,
            ApplicationPages,
            GrantPages,
            KeyPages,
            DownloadPages,
            EvaluationPages,
            InboxPages,
            OpsPages,
            ReleaseOpsPages,
            UsagePages,
            TransparencyPages,
            FoundKeyPages,
            FoundKeysController,
            SecretScanningController,
            TransparencyOpsPages,
            AuthorisedUsePages,
            AuthorisedUsesController,
            TransparencyController,
            WebhookPages,
            EnforcementPages,
            IncidentPages,
            IncidentsController,
            EvidenceLogController,
            DownloadsController,
            EvaluationsController,
            KeysController,
            ApiAccessController,
            ApplicationsController,
            operator_api(),
            create_static_files_router(
                path="/static", directories=[HERE / "static"], include_in_schema=False
            ),
        ],
        dependencies={
            "runtime": Provide(_provide_runtime),
            "uow": Provide(provide_unit),
            "caller": Provide(provide_caller),
            "grantee": Provide(provide_grantee),
            "viewer": Provide(provide_viewer),
            "account": Provide(provide_account),
            "operator": Provide(provide_operator),
            "limiter": Provide(_provide_limiter),
        },
        state=State({_SHAPE_STATE: (secure, https, trusted)}),
        # Sessions live in the database, so every replica knows every session.
        stores={"sessions": session_store},
        # The metrics around everything else, so a request refused by a middleware counts.
        # The guard next: a malformed request must not reach the session store either.
        # The session next: the CSRF token lives in it.
        middleware=[
            *_proxy_headers(trusted),
            RequestMetrics(),
            RequestGuard(),
            SessionMiddleware(session_store, secure=secure, skip=_cookieless),
            SessionCsrfMiddleware(skip=_cookieless),
            SecretPageHeaders(),
        ],
        before_request=count_unread,
        before_send=[security_headers(https=https)],
        on_startup=[_remove_stale_uploads, _start_jobs, _listen_for_changes],
        on_shutdown=[_close_runtime],
        template_config=TemplateConfig(
            directory=HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=_configure_templates,
        ),
        exception_handlers={
            GatewayError: _on_gateway_error,
            StorageError: _on_storage_error,
            PoolTimeout: _on_pool_timeout,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
        openapi_config=openapi_config(__version__),
        # Litestar keeps its own logger; the root logger (the gateway's lines, the
        # scheduler's) is `gateway serve --log-level`'s to set.
        logging_config=LoggingConfig(configure_root_logger=False),
    )
