"""GitHub's secret scanning reports keys it found in public, signed with ECDSA P-256 by a key
from its published list: a signed report revokes every active key at once, tells each owner
where it leaked and records it, and labels every match for GitHub; an unsigned, forged or
tampered report is refused and changes nothing; a key list that cannot be read is a 503.

The tests play GitHub: a key pair of their own, its list in a file or served by a real
HTTP server on 127.0.0.1, and reports signed with it."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.config import Settings, Webhook
from gateway.credentials.api_key_format import key_digest, new_api_key
from gateway.db.models import ApiKey, Evidence, Notification, WebhookDelivery
from gateway.keys.secret_scanning import ScanningKeyList
from gateway.keys.secret_scanning_api import KEY_LIST_STATE
from gateway.keys.service import create_key, revoke_key
from gateway.runtime import Runtime
from tests.accounts import create_account
from tests.backends import on_each_database
from tests.http.portal import Http, Mailbox
from tests.units import reading, within

pytestmark = [pytest.mark.anyio, on_each_database()]
REPORT = "/api/v1/secret-scanning/github"
WHERE = "https://github.com/octo/app/blob/0123abc/config.py"


class GitHub:
    """A stand-in for GitHub's secret scanning: a P-256 key pair and the list naming it."""

    def __init__(self, key_id: str = "a1" * 32) -> None:
        self.key_id = key_id
        self.private = ec.generate_private_key(ec.SECP256R1())

    def entry(self) -> dict[str, Any]:
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"key_identifier": self.key_id, "key": pem.decode(), "is_current": True}

    def signature(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "Github-Public-Key-Identifier": self.key_id,
            "Github-Public-Key-Signature": self.signature(body),
        }


def key_list(*signers: GitHub) -> bytes:
    return json.dumps({"public_keys": [s.entry() for s in signers]}).encode()


def report_body(*tokens: str, url: str = WHERE, source: str = "commit") -> bytes:
    return json.dumps(
        [{"token": t, "type": "gateway_key", "url": url, "source": source} for t in tokens]
    ).encode()


class KeyListServer:
    """GitHub's key list URL on a free loopback port: serves `document`, or answers
    `status` instead when set; `hits` counts the requests."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.status: int | None = None
        self.hits = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/meta/public_keys/secret_scanning"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.hits += 1
                status = served.status or 200
                body = served.document if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

        return Handler


class Clock:
    """The key list's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Owner:
    account_id: str
    email: str
    key: str


async def owner(rt: Runtime, email: str) -> Owner:
    account = await create_account(rt, email, operator=False, actor="test")
    created = await within(
        rt,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=("download",), days=None, name="ci", actor="test"
        ),
    )
    return Owner(account.id, email, created.secret)


async def revoked(rt: Runtime, *owners: Owner) -> list[bool]:
    async with reading(rt) as session:
        keys = {
            k.secret_sha256: k
            for k in await session.scalars(
                select(ApiKey).where(ApiKey.secret_sha256.in_([key_digest(o.key) for o in owners]))
            )
        }
    return [keys[key_digest(o.key)].revoked_at is not None for o in owners]


async def rows(rt: Runtime, model: Any, *where: Any) -> list[Any]:
    async with reading(rt) as session:
        return list(await session.scalars(select(model).where(*where)))


@pytest.fixture
def github() -> GitHub:
    return GitHub()


@pytest.fixture
def key_server(github: GitHub) -> Iterator[KeyListServer]:
    server = KeyListServer(key_list(github))
    yield server
    server.stop()


async def serving(app: Litestar) -> AsyncIterator[Http]:
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
def key_file(github: GitHub, tmp_path: Path) -> Path:
    path = tmp_path / "secret-scanning-keys.json"
    path.write_bytes(key_list(github))
    return path


@pytest.fixture
async def client(settings: Settings, key_file: Path) -> AsyncIterator[Http]:
    """The gateway reading GitHub's keys from a file, with a webhook that hears every event."""
    hook = Webhook(url="http://127.0.0.1:9/hooks", secret="s" * 16, allow_private=True)
    app = create_app(
        settings=replace(settings, secret_scanning_keys_file=key_file, webhooks=(hook,))
    )
    async for client in serving(app):
        yield client


async def test_a_signed_report_revokes_its_keys_tells_their_owners_and_labels_each(
    client: Http, runtime: Runtime, github: GitHub, mailbox: Mailbox
) -> None:
    ada = await owner(runtime, "ada@uni.example")
    bob = await owner(runtime, "bob@lab.example")
    eve = await owner(runtime, "eve@lab.example")
    [bobs_key] = await rows(runtime, ApiKey, ApiKey.account_id == bob.account_id)
    await within(
        runtime,
        lambda uow: revoke_key(uow, account_id=bob.account_id, key_id=bobs_key.id, actor="test"),
    )
    unknown = new_api_key()
    body = report_body(ada.key, bob.key, unknown, "rgk_not-a-key", ada.key)

    answer = await client.post(REPORT, content=body, headers=github.headers(body))

    assert answer.status_code == 200, answer.text
    assert answer.json() == [
        {"token_raw": ada.key, "token_type": "gateway_key", "label": "true_positive"},
        {"token_raw": bob.key, "token_type": "gateway_key", "label": "true_positive"},
        {"token_raw": unknown, "token_type": "gateway_key", "label": "false_positive"},
        {"token_raw": "rgk_not-a-key", "token_type": "gateway_key", "label": "false_positive"},
        {"token_raw": ada.key, "token_type": "gateway_key", "label": "true_positive"},
    ]
    assert await revoked(runtime, ada, bob, eve) == [True, True, False]
    [note] = await rows(runtime, Notification, Notification.account_id == ada.account_id)
    assert note.kind == "key.leaked"
    assert f"GitHub's secret scanning reported finding your API key {ada.key[:12]}…" in note.body
    assert f"at {WHERE} (in commit)" in note.body
    assert ada.key not in note.body
    [mail] = mailbox.to(ada.email)
    assert WHERE in mail
    # Bob's key was revoked before: known, so true_positive, but nothing more to tell.
    assert await rows(runtime, Notification, Notification.account_id == bob.account_id) == []
    [hook] = await rows(runtime, WebhookDelivery, WebhookDelivery.event == "key.leaked")
    assert (hook.payload["account"], hook.payload["found_at"], hook.payload["source"]) == (
        ada.account_id,
        WHERE,
        "commit",
    )
    evidence = await rows(
        runtime, Evidence, Evidence.kind == "key.revoked", Evidence.data["found"].as_boolean()
    )
    assert [(e.actor, e.account_id, e.data["found_at"], e.data["source"]) for e in evidence] == [
        ("system:secret-scanning", ada.account_id, WHERE, "commit")
    ]
    # GitHub sends a report again (a retry): still labelled, nothing more revoked or told.
    again = await client.post(REPORT, content=body, headers=github.headers(body))
    assert [m["label"] for m in again.json()] == [m["label"] for m in answer.json()]
    assert len(await rows(runtime, Notification, Notification.kind == "key.leaked")) == 1


def _forged(github: GitHub, body: bytes) -> dict[str, str]:
    other = GitHub(key_id=github.key_id)  # claims GitHub's key id, signs with its own key
    return other.headers(body)


def _unknown_key(github: GitHub, body: bytes) -> dict[str, str]:
    other = GitHub(key_id="b2" * 32)
    return other.headers(body)


def _tampered(github: GitHub, body: bytes) -> dict[str, str]:
    return github.headers(body.replace(b"commit", b"commits"))


def _without(name: str) -> Any:
    def headers(github: GitHub, body: bytes) -> dict[str, str]:
        sent = github.headers(body)
        del sent[name]
        return sent

    return headers


def _signature(value: str) -> Any:
    def headers(github: GitHub, body: bytes) -> dict[str, str]:
        return {**github.headers(body), "Github-Public-Key-Signature": value}

    return headers


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        (_forged, 401, "signature_invalid"),
        (_tampered, 401, "signature_invalid"),
        (_unknown_key, 401, "signature_key_unknown"),
        (_without("Github-Public-Key-Signature"), 401, "signature_missing"),
        (_without("Github-Public-Key-Identifier"), 401, "signature_missing"),
        (_signature("not base64!"), 400, "signature_malformed"),
        (_signature(base64.b64encode(b"not DER").decode()), 400, "signature_malformed"),
    ],
    ids=["forged", "tampered", "unknown-key", "no-signature", "no-key-id", "not-b64", "not-der"],
)
async def test_a_report_not_signed_by_github_is_refused_and_changes_nothing(
    client: Http, runtime: Runtime, github: GitHub, headers: Any, status: int, code: str
) -> None:
    ada = await owner(runtime, "ada@uni.example")
    body = report_body(ada.key)
    answer = await client.post(REPORT, content=body, headers=headers(github, body))
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code
    assert "Github-Public-Key-" in answer.json()["message"]
    assert await revoked(runtime, ada) == [False]
    assert await rows(runtime, Notification, Notification.account_id == ada.account_id) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"token": "rgk_x", "type": "t"}', "Expected `array`, got `object`"),
        (b'[{"type": "t", "url": "u"}]', "missing required field `token`"),
        (b'[{"token": 7, "type": "t"}]', "Expected `str`, got `int`"),
        (b"[]", "a report names at least one match"),
        (report_body(*["rgk_x"] * 1001), "at most 1000 matches a report, not 1001"),
        (report_body("rgk_x", url="https://a\nb"), "the url of match 1 may not contain"),
        (b"[" * 40 + b"]" * 40, "nests deeper than 32 levels"),
        (b'[{"token": "rgk_x", "type": "t"', "Input data was truncated"),
    ],
    ids=["object", "no-token", "number", "empty", "too-many", "url-breaks", "deep", "cut"],
)
async def test_a_signed_report_of_the_wrong_shape_is_refused_whole(
    client: Http, runtime: Runtime, github: GitHub, body: bytes, message: str
) -> None:
    ada = await owner(runtime, "ada@uni.example")
    answer = await client.post(REPORT, content=body, headers=github.headers(body))
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]
    assert await revoked(runtime, ada) == [False]


async def test_the_key_list_is_read_from_its_url_kept_and_read_again_when_due(
    settings: Settings, runtime: Runtime, github: GitHub, key_server: KeyListServer
) -> None:
    ada, bob = await owner(runtime, "ada@uni.example"), await owner(runtime, "bob@lab.example")
    app = create_app(settings=replace(settings, secret_scanning_keys_url=key_server.url))
    clock = Clock()
    app.state[KEY_LIST_STATE] = ScanningKeyList(app.state.runtime.settings, monotonic=clock)
    rotated = GitHub(key_id="c3" * 32)
    async for client in serving(app):
        body = report_body(ada.key)
        answer = await client.post(REPORT, content=body, headers=github.headers(body))
        assert answer.json()[0]["label"] == "true_positive"
        assert (await client.post(REPORT, content=body, headers=github.headers(body))).is_success
        assert key_server.hits == 1  # kept

        # GitHub rotates its keys: the first report by the new one, a minute or more after
        # the last read, reads the list again.
        key_server.document = key_list(github, rotated)
        clock.now += 60
        body = report_body(bob.key)
        answer = await client.post(REPORT, content=body, headers=rotated.headers(body))
        assert answer.status_code == 200, answer.text
        assert key_server.hits == 2

        # Made-up key ids read it at most once a minute, however many there are.
        for number in range(5):
            forged = GitHub(key_id=f"{number:064x}")
            refused = await client.post(REPORT, content=body, headers=forged.headers(body))
            assert refused.json()["error"] == "signature_key_unknown"
        clock.now += 59
        refused = await client.post(REPORT, content=body, headers=forged.headers(body))
        assert refused.status_code == 401
        assert key_server.hits == 2
        clock.now += 1
        refused = await client.post(REPORT, content=body, headers=forged.headers(body))
        assert refused.status_code == 401
        assert key_server.hits == 3

        # After an hour the list is read again, for a key it holds too; GitHub dropped one.
        key_server.document = key_list(rotated)
        clock.now += 3600
        refused = await client.post(REPORT, content=body, headers=github.headers(body))
        assert refused.json()["error"] == "signature_key_unknown"
        assert key_server.hits == 4
    assert await revoked(runtime, ada, bob) == [True, True]


@pytest.mark.parametrize("failure", ["closed", "500", "not-a-list"])
async def test_a_key_list_that_cannot_be_read_is_a_503_and_changes_nothing(
    settings: Settings,
    runtime: Runtime,
    github: GitHub,
    key_server: KeyListServer,
    failure: str,
) -> None:
    ada = await owner(runtime, "ada@uni.example")
    url = key_server.url
    if failure == "closed":
        key_server.stop()
    elif failure == "500":
        key_server.status = 500
    else:
        key_server.document = b'{"keys": []}'
    app = create_app(settings=replace(settings, secret_scanning_keys_url=url))
    clock = Clock()
    app.state[KEY_LIST_STATE] = ScanningKeyList(app.state.runtime.settings, monotonic=clock)
    body = report_body(ada.key)
    async for client in serving(app):
        for _ in range(2):  # the second within the minute: refused from what the first saw
            answer = await client.post(REPORT, content=body, headers=github.headers(body))
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "secret_scanning_keys_unavailable"
            assert "secret scanning key list" in answer.json()["message"]
            assert answer.headers["retry-after"] == "60"
        assert key_server.hits == (0 if failure == "closed" else 1)
        if failure != "closed":
            # Readable again, a minute later: the report GitHub sends again goes through.
            key_server.status, key_server.document = None, key_list(github)
            clock.now += 60
            answer = await client.post(REPORT, content=body, headers=github.headers(body))
            assert answer.status_code == 200, answer.text
    assert await revoked(runtime, ada) == [failure != "closed"]


async def test_a_key_file_that_is_not_a_key_list_is_a_503(
    settings: Settings, runtime: Runtime, github: GitHub, tmp_path: Path
) -> None:
    broken = tmp_path / "keys.json"
    broken.write_text('{"public_keys": [{"key_identifier": "x", "key": "not PEM"}]}')
    app = create_app(settings=replace(settings, secret_scanning_keys_file=broken))
    body = report_body(new_api_key())
    async for client in serving(app):
        answer = await client.post(REPORT, content=body, headers=github.headers(body))
    assert answer.status_code == 503
    assert answer.json()["error"] == "secret_scanning_keys_unavailable"


async def test_the_reference_documents_the_endpoint(client: Http) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    operation = doc["paths"][REPORT]["post"]
    assert {"200", "400", "401", "503"} <= set(operation["responses"])
    headers = {p["name"].lower() for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"github-public-key-identifier", "github-public-key-signature"}
