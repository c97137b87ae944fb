"""Portal pages of the catalog, rendered server-side."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.runtime import Runtime
from tests.sample import publish
from tests.units import within, writing

pytestmark = pytest.mark.anyio
Client = AsyncTestClient  # type: ignore[type-arg]
HTML = {"accept": "text/html"}


async def test_home_lists_models_with_stage_and_status(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    empty = await client.get("/", headers=HTML)
    assert "No models have been published yet" in empty.text
    await publish(runtime, tmp_path)
    page = await client.get("/", headers=HTML)
    assert page.status_code == 200
    assert 'href="/models/acme/sample/releases/1.0"' in page.text
    assert "stage-draft" in page.text
    assert "status-active" in page.text


async def test_release_page_shows_artifacts_license_tiers_and_verification(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    published = await publish(runtime, tmp_path)
    page = await client.get("/models/acme/sample/releases/1.0", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "model.safetensors" in text
    assert "Sample Model License" in text
    assert "Trusted partner" in text
    assert "model_signing verify key sample --signature sample.sig" in text
    assert "http://testserver/api/v1/models/acme/sample/releases/1.0/signature" in text
    assert published.manifest_sha256 in text
    assert "published as a draft" in text
    assert 'href="/models/acme/sample/apply"' in text


async def test_release_page_shows_the_stage_timeline(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.staging.service import move_release
    from stages.names import parse_model_ref
    from stages.release import Move

    await publish(runtime, tmp_path)
    model = parse_model_ref("acme/sample")
    await within(
        runtime,
        lambda uow: move_release(
            uow, model, "1.0", Move.PROMOTE, target="trusted_partner", actor="op"
        ),
    )
    await within(
        runtime,
        lambda uow: move_release(
            uow, model, "1.0", Move.ROLLBACK, target="draft", actor="op", reason="card fix"
        ),
    )
    page = await client.get("/models/acme/sample/releases/1.0", headers=HTML)
    assert "promote: draft → trusted partner" in page.text
    assert "rollback: trusted partner → draft. Reason: card fix" in page.text


async def test_model_page(client: Client, runtime: Runtime, tmp_path: Path) -> None:
    await publish(runtime, tmp_path)
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    assert "Releases" in page.text
    assert "1.0" in page.text


async def test_missing_pages_are_html_for_browsers(client: Client) -> None:
    page = await client.get("/models/acme/none/releases/1.0", headers=HTML)
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "no model acme/none" in page.text
    other = await client.get("/no/such/page", headers=HTML)
    assert other.status_code == 404
    assert "Not found" in other.text
    stylesheet = await client.get("/static/gateway.css")
    assert stylesheet.status_code == 200


# --- the model card and the way to ask for access ----------------------------------------


async def publish_card(
    rt: Runtime, tmp_path: Path, version: str, card: bytes, *, to: str | None = None
) -> None:
    """Publish acme/sample:`version` with `card` as its README.md, promoted up to `to`."""
    from gateway.publishing.service import PublishRequest, publish_release
    from gateway.staging.service import move_release
    from stages.names import parse_model_ref
    from stages.release import Move
    from tests.sample import make_folder, make_license

    model = parse_model_ref("acme/sample")
    files = {"model.safetensors": os.urandom(1000), "README.md": card}
    folder = make_folder(tmp_path / f"card-{version}", files)
    request = PublishRequest(model, version, folder, make_license(tmp_path))
    await within(rt, lambda uow: publish_release(uow, request, actor="test"))
    for stage in rt.policy.ladder.names if to else ():
        await within(
            rt,
            lambda uow, stage=stage: move_release(
                uow, model, version, Move.PROMOTE, target=stage, actor="test"
            ),
        )
        if stage == to:
            break


def card_of(page: str) -> str:
    """The rendered card on a model page."""
    return page.split('<article class="model-card">', 1)[1].split("</article>", 1)[0]


async def test_the_model_page_shows_the_card_of_the_newest_open_release(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    marker = os.urandom(6).hex()
    await publish_card(
        runtime,
        tmp_path,
        "1.0",
        f"# Sample {marker}\n\nA **small** model.\n\n## Intended use\n\n- tests\n".encode(),
        to="public",
    )
    await publish_card(runtime, tmp_path, "1.1", b"# Draft card, not yet shown\n")
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    card = card_of(page.text)
    # The page's h1 is the model and its h2 the card: the card's headings sit below.
    assert f"<h3>Sample {marker}</h3>" in card
    assert "<h4>Intended use</h4>" in card
    assert "A <strong>small</strong> model." in card
    assert "<li>tests</li>" in card
    assert "From release 1.0, <code>README.md</code>" in page.text
    # The draft is open to no one: its card does not speak for the model.
    assert "Draft card" not in page.text


async def test_model_card_md_is_the_card_before_readme_and_the_root_before_folders(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.publishing.service import PublishRequest, publish_release
    from gateway.staging.service import move_release
    from stages.names import parse_model_ref
    from stages.release import Move
    from tests.sample import make_folder, make_license

    files = {
        "model.safetensors": os.urandom(1000),
        "docs/README.md": b"# The docs\n",
        "README.md": b"# The readme\n",
        "MODEL_CARD.md": b"# The card\n",
    }
    model = parse_model_ref("acme/sample")
    folder = make_folder(tmp_path / "cards", files)
    await within(
        runtime,
        lambda uow: publish_release(
            uow, PublishRequest(model, "1.0", folder, make_license(tmp_path)), actor="test"
        ),
    )
    await within(
        runtime,
        lambda uow: move_release(
            uow, model, "1.0", Move.PROMOTE, target="trusted_partner", actor="t"
        ),
    )
    page = (await client.get("/models/acme/sample", headers=HTML)).text
    assert "<h3>The card</h3>" in card_of(page)
    assert "<code>MODEL_CARD.md</code>" in page


async def test_a_model_with_only_a_draft_shows_no_card(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    await publish_card(runtime, tmp_path, "1.0", b"# Secret draft card\n")
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    assert "Secret draft card" not in page.text
    assert "No model card yet" in page.text


HOSTILE_CARD = b"""# Card

<script>alert(1)</script>
<img src=x onerror=alert(2)>
<p style="color:red">styled</p>

[script](javascript:alert(3)) [data](data:text/html,hi) [rel](/sign-out) [mail](mailto:a@b.c)
[entity](&#106;avascript:alert(4)) <javascript:alert(5)> [ok](https://example.org/paper)
![tracker](https://tracker.example/pixel.png)

| left | right |
|:-----|------:|
| 1    | 2     |
"""


async def test_a_hostile_card_is_shown_as_text_with_only_web_links(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    from tests.http.test_page_headers import inline_code

    await publish_card(runtime, tmp_path, "1.0", HOSTILE_CARD, to="trusted_partner")
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    card = card_of(page.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert "&lt;img src=x onerror=alert(2)&gt;" in card
    for tag in ("<script", "<img", "<p style"):
        assert tag not in card
    hrefs = re.findall(r'href="([^"]*)"', card)
    assert hrefs == ["https://example.org/paper", "https://tracker.example/pixel.png"]
    assert 'rel="nofollow noopener noreferrer"' in card
    # Table alignment arrives as a class: an inline style would be blocked by the policy.
    assert '<th class="align-right">right</th>' in card
    assert [hit for hit in inline_code(card) if not hit.lower().startswith("javascript:")] == []
    assert not re.search(r"<[^>]+javascript:", card, re.IGNORECASE)


async def test_a_card_that_cannot_be_read_or_is_too_long_is_left_out_with_a_reason(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.catalog.model_card import CARD_MAX_BYTES

    unique = f"# Card {os.urandom(8).hex()}\n".encode()
    await publish_card(runtime, tmp_path, "1.0", unique, to="trusted_partner")
    runtime.storage.delete(hashlib.sha256(unique).hexdigest())
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    assert "The model card cannot be read right now" in page.text
    long_card = b"# Long\n\n" + b"word " * (CARD_MAX_BYTES // 5 + 1)
    await publish_card(runtime, tmp_path, "1.1", long_card, to="trusted_partner")
    page = await client.get("/models/acme/sample", headers=HTML)
    assert page.status_code == 200
    assert "The model card is too long to show here; it is part of the download." in page.text
    assert "release 1.1" in page.text


async def test_request_access_leads_to_the_apply_page_through_sign_in(
    client: Client, runtime: Runtime, tmp_path: Path
) -> None:
    from gateway.db.models import Account
    from gateway.identity.passwords import hash_password
    from tests.accounts import create_account
    from tests.http.portal import submit

    await publish(runtime, tmp_path)
    page = await client.get("/models/acme/sample", headers=HTML)
    button = '<a class="button" href="/models/acme/sample/apply">Request access'
    assert button in page.text
    assert "You sign in or create an account first" in page.text
    client.follow_redirects = False
    asked = await client.get("/models/acme/sample/apply", headers=HTML)
    assert asked.status_code == 302
    assert asked.headers["location"] == "/sign-in?next=/models/acme/sample/apply"
    form = await client.get(asked.headers["location"], headers=HTML)
    assert 'name="next" value="/models/acme/sample/apply"' in form.text
    account = await create_account(runtime, "new@example.org", operator=False, actor="test")
    async with writing(runtime) as session:
        row = await session.get_one(Account, account.id)
        row.password_hash = hash_password("correct horse battery")
    signed = await submit(
        client,
        asked.headers["location"],
        "/sign-in",
        {
            "email": "new@example.org",
            "password": "correct horse battery",
            "next": "/models/acme/sample/apply",
        },
    )
    assert signed.status_code == 302
    assert signed.headers["location"] == "/models/acme/sample/apply"
    picker = await client.get("/models/acme/sample/apply", headers=HTML)
    assert picker.status_code == 200
    again = await client.get("/models/acme/sample", headers=HTML)
    assert "Request access" in again.text
    assert "You sign in or create an account first" not in again.text
