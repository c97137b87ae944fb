"""Browser security headers: every HTML page the gateway serves carries them, and no
template holds script, styles or event handlers inline (the policy would block them).

The page test walks the portal as a visitor, an applicant with a grant and an
application, and an operator, following every link on every page, and then checks that
each page route of the app was reached at least once, so a new page cannot slip by.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.applications import service as applications
from gateway.applications import submitting
from gateway.config import Settings
from gateway.db.models import Account
from gateway.grants.service import create_grant
from gateway.identity.passwords import hash_password
from gateway.incidents import reporting
from gateway.runtime import Runtime
from gateway.transparency import service as transparency
from gateway.web.headers import CONTENT_SECURITY_POLICY, security_headers
from stages.actors import Actor
from tests.accounts import create_account
from tests.grantees import MODEL, open_release
from tests.http.portal import HTML, Http, submit
from tests.units import within, writing

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
TEMPLATES = Path(__file__).parents[2] / "gateway" / "templates"
# Links the walk does not follow: they change state, leave the pages, or are files.
NOT_PAGES = ("/sign-out", "/static/", "/.well-known/", "/d/", "/api/", "/schema/")


def check_page_headers(path: str, headers: dict[str, str]) -> None:
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, path
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers.get("x-frame-options") == "DENY", path
    assert headers.get("x-content-type-options") == "nosniff", path
    assert headers.get("referrer-policy"), path


async def account_with_password(rt: Runtime, email: str, *, operator: bool = False) -> str:
    account = await create_account(rt, email, operator=operator, actor="test")
    async with writing(rt) as session:
        row = await session.get_one(Account, account.id)
        row.password_hash = hash_password(PASSWORD)
        row.affiliation = "Test Institute"
    return account.id


async def sign_in(client: Http, email: str) -> None:
    signed = await submit(
        client, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD, "next": "/"}
    )
    assert signed.status_code == 302, signed.text


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href and href.startswith("/") and not href.startswith("//"):
            self.links.append(href.split("#", 1)[0])


async def walk(client: Http, seeds: list[str], seen: dict[str, int]) -> None:
    """Visit `seeds` and every same-site link found, checking each HTML answer."""
    queue = list(seeds)
    while queue and len(seen) < 400:
        path = queue.pop(0)
        if path in seen or path.startswith(NOT_PAGES):
            continue
        response = await client.get(path, headers=HTML)
        seen[path] = response.status_code
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        check_page_headers(path, dict(response.headers))
        parser = _Links()
        parser.feed(response.text)
        queue += [link for link in parser.links if link not in seen]


def page_routes(client: Http) -> dict[str, re.Pattern[str]]:
    """Every GET route of the app that renders a page, as a pattern over paths."""
    routes: dict[str, re.Pattern[str]] = {}
    for route in client.app.routes:
        path = route.path
        if path.startswith(NOT_PAGES) or path in {"/healthz", "/readyz", "/metrics"}:
            continue
        methods = getattr(route, "methods", set())
        if "GET" not in methods:
            continue
        pattern = re.sub(r"\{[^}:]+:path\}", ".+", path)
        pattern = re.sub(r"\{[^}]+\}", "[^/?]+", pattern)
        routes[path] = re.compile(f"^{pattern}(\\?.*)?$")
    return routes


async def test_every_html_page_sends_the_browser_security_headers(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    await open_release(runtime, tmp_path)
    await account_with_password(runtime, "ops@lab.example", operator=True)
    applicant = await account_with_password(runtime, "rita@uni.example")
    grant = await within(
        runtime,
        lambda uow: create_grant(
            uow, email="rita@uni.example", model=MODEL, tier="researcher", days=None, actor="t"
        ),
    )
    form = await within(
        runtime, lambda uow: applications.application_form(uow, MODEL, "trusted_partner")
    )
    await within(
        runtime,
        lambda uow: submitting.submit(
            uow,
            account_id=applicant,
            model=MODEL,
            tier="trusted_partner",
            answers={"organisation": "Lab", "intended_use": "red-team evaluation"},
            license_sha256=form.license_sha256,
            address="203.0.113.7",
        ),
    )
    incident = await within(
        runtime,
        lambda uow: reporting.report(
            uow,
            model=MODEL,
            version="1.0",
            category="misuse",
            description="Seen on a public mirror.",
            links=[],
            contact=None,
            reporter_account_id=None,
            address="203.0.113.9",
        ),
    )
    # Two published transparency reports that do not overlap: every model's, one model's.
    runtime.key_encryptor.create_if_missing()
    for period, model in (("2026-Q2", "acme/sample"), ("2026-Q3", None)):
        draft = await within(
            runtime,
            lambda uow, p=period, m=model: transparency.build(uow, p, m, actor=Actor.account("t")),
        )
        await within(
            runtime,
            lambda uow, d=draft.id: transparency.publish(uow, d, actor=Actor.account("t")),
        )
    # Pages that are reached from a mail or a form, not from a link, and error pages.
    seeds = [
        "/",
        "/sign-up",
        "/sign-in",
        "/forgot-password",
        "/reset-password?token=not-a-token",
        "/verify-email?token=not-a-token",
        "/setup?token=not-a-token",
        "/sign-in/oidc/nowhere",
        "/sign-in/oidc/nowhere/callback",
        "/report",
        "/report/thanks?code=" + incident.tracking_code,
        f"/report/status?code={incident.tracking_code}",
        "/no/such/page",
        "/schema",
        "/schema/swagger",
        # Linked only near a grant's end and from the account search.
        f"/grants/{grant.id}/renew",
        "/ops/accounts/rita@uni.example",
    ]
    visited: dict[str, int] = {}
    for email in (None, "rita@uni.example", "ops@lab.example"):
        async with AsyncTestClient(app=create_app(settings=settings)) as client:
            client.follow_redirects = False
            routes = page_routes(client)
            if email is not None:
                await sign_in(client, email)
            seen: dict[str, int] = {}
            await walk(client, ["/account", "/ops", *seeds], seen)
            visited.update(seen)

    reached = {route for route, pattern in routes.items() if any(pattern.match(p) for p in visited)}
    assert set(routes) - reached == set()
    assert visited["/no/such/page"] == 404


async def test_hsts_is_sent_only_when_the_public_url_is_https(settings: Settings) -> None:
    for public_url, expected in (("http://testserver", None), ("https://gw.example", True)):
        app = create_app(settings=replace(settings, public_url=public_url))
        async with AsyncTestClient(app=app) as client:
            for path in ("/", "/healthz"):
                response = await client.get(path, headers=HTML)
                hsts = response.headers.get("strict-transport-security")
                if expected:
                    assert hsts is not None
                    assert "max-age=31536000" in hsts
                else:
                    assert hsts is None


async def test_json_answers_are_not_sniffed_and_carry_no_page_policy(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings=settings)) as client:
        response = await client.get("/api/v1/models")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


async def test_an_answer_that_set_its_own_referrer_policy_keeps_it() -> None:
    hook = security_headers(https=False)
    message: dict[str, object] = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"referrer-policy", b"no-referrer"),
        ],
    }
    await hook(message, {})  # type: ignore[arg-type]
    headers = message["headers"]
    assert isinstance(headers, list)
    referrers = [value for name, value in headers if name == b"referrer-policy"]
    assert referrers == [b"no-referrer"]
    assert (b"x-frame-options", b"DENY") in headers

    plain: dict[str, object] = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html")],
    }
    await hook(plain, {})  # type: ignore[arg-type]
    assert (b"referrer-policy", b"strict-origin-when-cross-origin") in plain["headers"]  # type: ignore[operator]


# What the Content-Security-Policy blocks in a page: inline <script> or <style>, style and
# on* event attributes, javascript: URLs.
_INLINE = (
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    re.compile(r"<style\b", re.IGNORECASE),
    re.compile(r"<[a-z][^>]*\s(on[a-z]+|style)\s*=", re.IGNORECASE),
    re.compile(r"javascript:", re.IGNORECASE),
)


def inline_code(text: str) -> list[str]:
    return [match.group(0) for pattern in _INLINE for match in pattern.finditer(text)]


@pytest.mark.parametrize(
    ("snippet", "inline"),
    [
        ('<script src="/static/app.js"></script>', False),
        ("<script>alert(1)</script>", True),
        ('<script type="module">go()</script>', True),
        ('<button onclick="go()">Go</button>', True),
        ('<p style="color: red">x</p>', True),
        ("<style>p { color: red }</style>", True),
        ('<a href="javascript:go()">go</a>', True),
        ('<form method="post" action="/sign-in" class="stack">', False),
        ('<a href="/models/{{ m.org }}">model style guide</a>', False),
    ],
)
def test_the_inline_code_check_finds_what_the_policy_blocks(snippet: str, inline: bool) -> None:
    assert bool(inline_code(snippet)) is inline


def test_no_template_holds_inline_script_styles_or_handlers() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 30
    found = {str(path.relative_to(TEMPLATES)): inline_code(path.read_text()) for path in templates}
    assert {name: hits for name, hits in found.items() if hits} == {}
