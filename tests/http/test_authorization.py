"""Who may do what over HTTP: API keys, download manifests, download tokens and the JWKS.

Each refusal is checked by its status and its `error` code, and, where the request could
have written something, by showing that nothing changed. Every kind of refusal has an
allowed twin here (a key that works, a token that downloads), so no refusal can pass
because the endpoint refuses everything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from gateway.credentials.api_key_format import new_api_key
from gateway.credentials.url_tokens import AUDIENCE
from gateway.db.models import (
    Account,
    ApiKey,
    Artifact,
    Download,
    Evidence,
    Model,
    Release,
    UrlSigningKey,
)
from gateway.downloads.service import Client as DownloadClient
from gateway.downloads.service import issue_manifest_for_account
from gateway.grants.service import create_grant
from gateway.keys.service import create_key, revoke_key
from gateway.publishing.service import PublishRequest, publish_release
from gateway.runtime import Runtime
from gateway.staging.service import move_release
from stages.names import parse_model_ref
from stages.release import Move
from tests.accounts import create_account
from tests.sample import make_folder, make_license, publish
from tests.units import within, writing

pytestmark = pytest.mark.anyio
Client: TypeAlias = AsyncTestClient[Litestar]

SAMPLE = parse_model_ref("acme/sample")
MANIFEST = "/api/v1/models/acme/sample/releases/1.0/downloads"
KEYS = "/api/v1/keys"
ISSUER = "http://testserver"  # the settings' public_url
# Only trusted partners see the data manifest (policies/default.toml), so a researcher's
# manifest for a release that has one must withhold it.
DATA_MANIFEST = "data_manifest.json"


# --- accounts, grants and keys ---------------------------------------------------------


@dataclass(frozen=True)
class KeyHolder:
    account_id: str
    key_id: str
    secret: str
    grant_id: str | None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def key_holder(
    runtime: Runtime,
    email: str,
    *,
    scopes: tuple[str, ...] = ("download", "keys"),
    tier: str | None = None,
) -> KeyHolder:
    """An account with one API key and, if `tier` is given, a grant for acme/sample."""
    account = await create_account(runtime, email, operator=False, actor="test")
    grant_id = None
    if tier is not None:
        grant = await within(
            runtime,
            lambda uow: create_grant(
                uow, email=email, model=SAMPLE, tier=tier, days=None, actor="test"
            ),
        )
        grant_id = grant.id
    created = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=account.id, scopes=list(scopes), days=None, name="", actor="test"
        ),
    )
    return KeyHolder(account.id, created.key.id, created.secret, grant_id)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert (response.status_code, error) == (status, code), body
    return body  # type: ignore[no-any-return]


async def count(runtime: Runtime, table: type[object], *where: Any) -> int:
    async with runtime.sessionmaker() as session:
        query = select(func.count()).select_from(table).where(*where)
        return await session.scalar(query) or 0


async def stored_key(runtime: Runtime, key_id: str) -> ApiKey:
    async with runtime.sessionmaker() as session:
        key = await session.get(ApiKey, key_id)
    assert key is not None
    return key


# --- releases --------------------------------------------------------------------------


async def promote(runtime: Runtime, *stages: str) -> None:
    for stage in stages:
        await within(
            runtime,
            lambda uow, stage=stage: move_release(
                uow, SAMPLE, "1.0", Move.PROMOTE, target=stage, actor="t"
            ),
        )


async def publish_with_data_manifest(runtime: Runtime, tmp_path: Path) -> None:
    """acme/sample:1.0 with every sample component plus a training-data manifest."""
    folder = make_folder(
        tmp_path / "src",
        {
            "model.safetensors": b"\x00" * 4096,
            "modeling.py": b"print('hello')\n",
            "README.md": b"# Sample model\n",
            "config.json": b'{"layers": 2}\n',
            "notes.txt": b"other things\n",
            DATA_MANIFEST: b'{"datasets": ["private"]}\n',
        },
    )
    await within(
        runtime,
        lambda uow: publish_release(
            uow,
            PublishRequest(
                model=SAMPLE, version="1.0", folder=folder, license_file=make_license(tmp_path)
            ),
            actor="test",
        ),
    )


@pytest.fixture
async def release(runtime: Runtime, tmp_path: Path) -> None:
    """acme/sample:1.0, data manifest included, open to researchers."""
    await publish_with_data_manifest(runtime, tmp_path)
    await promote(runtime, "trusted_partner", "researcher")


@pytest.fixture
async def alice(runtime: Runtime, release: None) -> KeyHolder:
    return await key_holder(runtime, "alice@example.org", tier="researcher")


@pytest.fixture
async def bob(runtime: Runtime) -> KeyHolder:
    return await key_holder(runtime, "bob@example.org")


# --- download tokens -------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A token as the gateway issued it, split into what a forger can read."""

    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def signature(self) -> str:
        return self.raw.rsplit(".", 1)[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def token_of(url: str) -> Token:
    raw = url.rsplit("/d/", 1)[1]
    claims = jwt.decode(raw, options={"verify_signature": False})
    return Token(raw, jwt.get_unverified_header(raw), claims)


async def issued_tokens(client: Client, who: KeyHolder) -> dict[str, Token]:
    """Path -> token, from a real manifest."""
    response = await client.post(MANIFEST, headers=who.auth)
    assert response.status_code == 200, response.json()
    return {a["path"]: token_of(a["url"]) for a in response.json()["artifacts"]}


@pytest.fixture
async def genuine(client: Client, alice: KeyHolder) -> Token:
    return (await issued_tokens(client, alice))["config.json"]


async def server_private_key(runtime: Runtime, kid: str) -> Ed25519PrivateKey:
    """The gateway's own signing key, opened with its key-encryption key: a forger who has
    both can sign, so the claims themselves must still be checked."""
    async with runtime.sessionmaker() as session:
        row = await session.get(UrlSigningKey, kid)
    assert row is not None
    pem = runtime.key_encryptor.open(row.sealed_private_key, kid=kid)
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


async def sign_as_server(runtime: Runtime, genuine: Token, **changes: Any) -> str:
    """The genuine claims with `changes` (None removes a claim), signed with the real key."""
    claims = {k: v for k, v in {**genuine.claims, **changes}.items() if v is not None}
    key = await server_private_key(runtime, genuine.header["kid"])
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": genuine.header["kid"]})


async def fetch(client: Client, token: str) -> httpx.Response:
    # With S3 storage an allowed download is a 302 to storage: an answer, not a hop.
    return await client.get(f"/d/{token}", follow_redirects=False)


async def assert_token_refused(
    client: Client, runtime: Runtime, token: str, status: int = 403, code: str = "url_invalid"
) -> dict[str, Any]:
    body = assert_refused(await fetch(client, token), status, code)
    assert await count(runtime, Download) == 0, "a refused token started a download"
    return body


def unix_now() -> int:
    return int(datetime.now(UTC).timestamp())


# === API keys ==========================================================================


async def test_created_key_is_returned_once_and_authenticates(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    created = await client.post(KEYS, headers=bob.auth, json={"scopes": ["keys"]})
    assert created.status_code == 201, created.json()
    new_id, secret = created.json()["id"], created.json()["key"]
    assert secret.startswith("rgk_")
    assert created.json()["prefix"] == secret[:12]

    stored = await stored_key(runtime, new_id)
    assert stored.account_id == bob.account_id
    assert secret not in {str(getattr(stored, c.name)) for c in ApiKey.__table__.columns}

    listed = await client.get(KEYS, headers=bearer(secret))
    assert listed.status_code == 200
    assert {k["id"] for k in listed.json()} == {bob.key_id, new_id}
    assert secret not in listed.text


async def test_listing_shows_only_the_callers_own_keys(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    carol = await key_holder(runtime, "carol@example.org")
    await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=carol.account_id, scopes=["download"], days=None, name="", actor="t"
        ),
    )
    response = await client.get(KEYS, headers=bob.auth)
    assert response.status_code == 200
    assert [k["id"] for k in response.json()] == [bob.key_id]


async def test_listing_never_contains_a_secret(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    other = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=bob.account_id, scopes=["download"], days=None, name="ci", actor="t"
        ),
    )
    response = await client.get(KEYS, headers=bob.auth)
    assert response.status_code == 200
    keys = response.json()
    assert len(keys) == 2
    for key in keys:
        # Only the display prefix may look like a key, and it is too short to be one.
        looks_like_key = {f for f, v in key.items() if isinstance(v, str) and v.startswith("rgk_")}
        assert looks_like_key == {"prefix"}
        assert len(key["prefix"]) == 12
        assert "key" not in key
    assert bob.secret not in response.text
    assert other.secret not in response.text


async def test_revoking_another_accounts_key_is_not_found_and_changes_nothing(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    carol = await key_holder(runtime, "carol@example.org")
    response = await client.delete(f"{KEYS}/{carol.key_id}", headers=bob.auth)
    assert_refused(response, 404, "key_not_found")
    assert (await stored_key(runtime, carol.key_id)).revoked_at is None
    assert (await client.get(KEYS, headers=carol.auth)).status_code == 200


async def test_key_revoked_over_http_gets_no_manifest(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    spare = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=alice.account_id, scopes=["download"], days=None, name="", actor="t"
        ),
    )
    assert (await client.post(MANIFEST, headers=bearer(spare.secret))).status_code == 200
    response = await client.delete(f"{KEYS}/{spare.key.id}", headers=alice.auth)
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    refused = await client.post(MANIFEST, headers=bearer(spare.secret))
    assert_refused(refused, 403, "key_revoked")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
        pytest.param({"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}, id="basic"),
    ],
)
async def test_request_without_a_bearer_key_is_401(client: Client, headers: dict[str, str]) -> None:
    response = await client.get(KEYS, headers=headers)
    assert_refused(response, 401, "key_invalid")
    assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_key_with_a_wrong_checksum_is_401_naming_the_format(
    client: Client, bob: KeyHolder
) -> None:
    last = bob.secret[-1]
    mistyped = bob.secret[:-1] + ("A" if last != "A" else "B")
    body = assert_refused(await client.get(KEYS, headers=bearer(mistyped)), 401, "key_invalid")
    assert "rgk_ followed by 28 letters and digits" in body["message"]


async def test_well_formed_but_unknown_key_is_401(client: Client, bob: KeyHolder) -> None:
    body = assert_refused(await client.get(KEYS, headers=bearer(new_api_key())), 401, "key_invalid")
    assert "not known" in body["message"]


async def test_key_in_the_query_string_is_not_accepted(client: Client, bob: KeyHolder) -> None:
    response = await client.get(KEYS, params={"key": bob.secret})
    assert_refused(response, 401, "key_invalid")


async def test_key_without_keys_scope_cannot_manage_keys(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    downloader = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=bob.account_id, scopes=["download"], days=None, name="", actor="t"
        ),
    )
    auth = bearer(downloader.secret)
    keys_before = await count(runtime, ApiKey)

    assert_refused(await client.get(KEYS, headers=auth), 403, "key_scope_missing")
    created = await client.post(KEYS, headers=auth, json={"scopes": ["keys", "download"]})
    assert_refused(created, 403, "key_scope_missing")
    revoked = await client.delete(f"{KEYS}/{bob.key_id}", headers=auth)
    assert_refused(revoked, 403, "key_scope_missing")

    assert await count(runtime, ApiKey) == keys_before
    assert (await stored_key(runtime, bob.key_id)).revoked_at is None


# A revoked or expired key must be refused by every endpoint that takes a key, not only by
# the download decision: the keys API is where a stolen key would mint a fresh one.
async def test_revoked_key_cannot_manage_keys(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    await within(
        runtime,
        lambda uow: revoke_key(uow, account_id=bob.account_id, key_id=bob.key_id, actor="t"),
    )
    keys_before = await count(runtime, ApiKey)
    assert_refused(await client.get(KEYS, headers=bob.auth), 403, "key_revoked")
    created = await client.post(KEYS, headers=bob.auth, json={"scopes": ["download"]})
    assert_refused(created, 403, "key_revoked")
    assert await count(runtime, ApiKey) == keys_before


async def expire(runtime: Runtime, key_id: str) -> None:
    async with writing(runtime) as session:
        key = await session.get(ApiKey, key_id)
        assert key is not None
        key.expires_at = datetime.now(UTC) - timedelta(minutes=1)


async def test_expired_key_cannot_manage_keys(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    await expire(runtime, bob.key_id)
    keys_before = await count(runtime, ApiKey)
    assert_refused(await client.get(KEYS, headers=bob.auth), 403, "key_expired")
    created = await client.post(KEYS, headers=bob.auth, json={"scopes": ["download"]})
    assert_refused(created, 403, "key_expired")
    assert await count(runtime, ApiKey) == keys_before


async def test_revoked_key_gets_no_manifest(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    await within(
        runtime,
        lambda uow: revoke_key(uow, account_id=alice.account_id, key_id=alice.key_id, actor="t"),
    )
    assert_refused(await client.post(MANIFEST, headers=alice.auth), 403, "key_revoked")
    assert await count(runtime, Evidence, Evidence.kind == "url.issued") == 0


async def test_expired_key_gets_no_manifest(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    await expire(runtime, alice.key_id)
    assert_refused(await client.post(MANIFEST, headers=alice.auth), 403, "key_expired")
    assert await count(runtime, Evidence, Evidence.kind == "url.issued") == 0


async def test_key_without_download_scope_gets_no_manifest(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    manager = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=alice.account_id, scopes=["keys"], days=None, name="", actor="t"
        ),
    )
    response = await client.post(MANIFEST, headers=bearer(manager.secret))
    assert_refused(response, 403, "key_scope_missing")
    assert await count(runtime, Evidence, Evidence.kind == "url.issued") == 0


# === Download manifests ================================================================


async def test_account_without_a_grant_gets_no_manifest(
    client: Client, runtime: Runtime, release: None
) -> None:
    nobody = await key_holder(runtime, "nobody@example.org")
    assert_refused(await client.post(MANIFEST, headers=nobody.auth), 403, "no_grant")
    assert await count(runtime, Evidence, Evidence.kind == "url.issued") == 0


async def test_another_accounts_grant_does_not_count(
    client: Client, runtime: Runtime, alice: KeyHolder, bob: KeyHolder
) -> None:
    assert (await client.post(MANIFEST, headers=alice.auth)).status_code == 200
    issued = await count(runtime, Evidence, Evidence.kind == "url.issued")
    assert_refused(await client.post(MANIFEST, headers=bob.auth), 403, "no_grant")
    assert await count(runtime, Evidence, Evidence.kind == "url.issued") == issued


@pytest.mark.parametrize(
    "stages", [pytest.param((), id="draft"), pytest.param(("trusted_partner",), id="partners")]
)
async def test_release_not_yet_open_to_the_grants_tier_gets_no_manifest(
    client: Client, runtime: Runtime, tmp_path: Path, stages: tuple[str, ...]
) -> None:
    await publish(runtime, tmp_path)
    await promote(runtime, *stages)
    researcher = await key_holder(runtime, "res@example.org", tier="researcher")
    assert_refused(await client.post(MANIFEST, headers=researcher.auth), 403, "tier_not_open")
    assert await count(runtime, Evidence, Evidence.kind == "url.issued") == 0


async def test_manifest_withholds_components_outside_the_tier(
    client: Client, alice: KeyHolder
) -> None:
    response = await client.post(MANIFEST, headers=alice.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == "researcher"
    assert body["grant_id"] == alice.grant_id
    assert {a["path"] for a in body["artifacts"]} == {
        "model.safetensors",
        "modeling.py",
        "README.md",
        "config.json",
        "notes.txt",
    }
    assert [(w["path"], w["component"], w["reason"]) for w in body["withheld"]] == [
        (DATA_MANIFEST, "data_manifest", "component_not_in_tier")
    ]


async def test_trusted_partner_manifest_includes_the_data_manifest(
    client: Client, runtime: Runtime, release: None
) -> None:
    partner = await key_holder(runtime, "partner@example.org", tier="trusted_partner")
    body = (await client.post(MANIFEST, headers=partner.auth)).json()
    assert DATA_MANIFEST in {a["path"] for a in body["artifacts"]}
    assert body["withheld"] == []


# === Download tokens at /d/ ============================================================


async def test_genuine_token_downloads_and_records_one_download(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    response = await fetch(client, genuine.raw)
    assert response.status_code in {200, 302}
    assert await count(runtime, Download) == 1


async def test_token_signed_by_another_key_with_the_same_kid_is_refused(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    forged = jwt.encode(
        genuine.claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=genuine.header
    )
    await assert_token_refused(client, runtime, forged)


async def test_token_with_an_unknown_kid_is_refused(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    forged = jwt.encode(
        genuine.claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "x"}
    )
    await assert_token_refused(client, runtime, forged)


async def test_unsigned_alg_none_token_is_refused(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    header = {**genuine.header, "alg": "none"}
    forged = f"{b64json(header)}.{b64json(genuine.claims)}."
    await assert_token_refused(client, runtime, forged)


def public_key_as(form: str, jwk: dict[str, Any]) -> bytes:
    """The published public key in a form a confused verifier might use as an HMAC secret."""
    if form == "raw":
        return base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    if form == "jwk":
        return json.dumps(jwk).encode()
    public = jwt.algorithms.OKPAlgorithm.from_jwk(json.dumps(jwk))
    assert isinstance(public, Ed25519PublicKey)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("form", ["raw", "pem", "jwk"])
async def test_hs256_token_keyed_with_the_public_key_is_refused(
    client: Client, runtime: Runtime, genuine: Token, form: str
) -> None:
    jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
    jwk = next(k for k in jwks if k["kid"] == genuine.header["kid"])
    signing_input = f"{b64json({**genuine.header, 'alg': 'HS256'})}.{b64json(genuine.claims)}"
    mac = hmac.new(public_key_as(form, jwk), signing_input.encode(), hashlib.sha256).digest()
    await assert_token_refused(client, runtime, f"{signing_input}.{b64url(mac)}")


@pytest.mark.parametrize(
    "claim", ["art", "grant", "sub", "dl", "exp", "aud"], ids=lambda c: f"changed-{c}"
)
async def test_token_with_a_changed_claim_and_the_old_signature_is_refused(
    client: Client, runtime: Runtime, alice: KeyHolder, bob: KeyHolder, claim: str
) -> None:
    tokens = await issued_tokens(client, alice)
    genuine, other = tokens["config.json"], tokens["model.safetensors"]
    changed = {
        "art": other.claims["art"],
        "grant": str(uuid.uuid4()),
        "sub": bob.account_id,
        "dl": str(uuid.uuid4()),
        "exp": genuine.claims["exp"] + 86_400,
        "aud": "something-else",
    }[claim]
    tampered = {**genuine.claims, claim: changed}
    forged = f"{b64json(genuine.header)}.{b64json(tampered)}.{genuine.signature}"
    await assert_token_refused(client, runtime, forged)


# The tests below sign with the gateway's real private key, as a leaked key or a bug in
# issuing would: the signature is good, so only the claim checks stand in the way.


@pytest.mark.parametrize(
    "missing", ["exp", "iat", "aud", "iss", "sub", "jti", "grant", "art", "dl"]
)
async def test_server_signed_token_missing_a_required_claim_is_refused(
    client: Client, runtime: Runtime, genuine: Token, missing: str
) -> None:
    forged = await sign_as_server(runtime, genuine, **{missing: None})
    await assert_token_refused(client, runtime, forged)


async def test_server_signed_token_for_another_audience_is_refused(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    assert genuine.claims["aud"] == AUDIENCE
    forged = await sign_as_server(runtime, genuine, aud="release-gateway:portal")
    await assert_token_refused(client, runtime, forged)


async def test_server_signed_token_from_another_issuer_is_refused(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    assert genuine.claims["iss"] == ISSUER
    forged = await sign_as_server(runtime, genuine, iss="http://other-gateway.example")
    await assert_token_refused(client, runtime, forged)


async def test_expired_genuine_token_is_410_with_a_hint(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    # 60 s past expiry is well beyond the 5 s leeway for clock drift.
    now = unix_now()
    expired = await sign_as_server(runtime, genuine, iat=now - 3600, exp=now - 60)
    body = await assert_token_refused(client, runtime, expired, 410, "url_expired")
    assert "/downloads" in body["hint"]


async def test_expired_token_signed_by_another_key_is_invalid_not_expired(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    now = unix_now()
    claims = {**genuine.claims, "iat": now - 3600, "exp": now - 60}
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=genuine.header
    )
    await assert_token_refused(client, runtime, forged)


async def test_server_signed_token_for_another_account_than_the_grants_is_refused(
    client: Client, runtime: Runtime, genuine: Token, bob: KeyHolder
) -> None:
    forged = await sign_as_server(runtime, genuine, sub=bob.account_id)
    await assert_token_refused(client, runtime, forged)


async def test_server_signed_token_for_a_component_outside_the_tier_is_refused(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    async with runtime.sessionmaker() as session:
        data_manifest = await session.scalar(
            select(Artifact.id).where(Artifact.path == DATA_MANIFEST)
        )
    forged = await sign_as_server(runtime, genuine, art=data_manifest)
    await assert_token_refused(client, runtime, forged, 403, "component_not_in_tier")


async def test_server_signed_token_for_another_models_artifact_is_refused(
    client: Client, runtime: Runtime, genuine: Token, tmp_path: Path
) -> None:
    await publish(runtime, tmp_path, "zeta/other", "0.1")
    async with runtime.sessionmaker() as session:
        foreign = await session.scalar(
            select(Artifact.id)
            .join(Release, Release.id == Artifact.release_id)
            .join(Model, Model.id == Release.model_id)
            .where(Model.org == "zeta")
            .limit(1)
        )
    assert foreign is not None
    forged = await sign_as_server(runtime, genuine, art=foreign)
    await assert_token_refused(client, runtime, forged)


# === A URL lives as long as the API key it was issued under ============================


async def test_revoking_a_key_stops_the_urls_issued_under_it(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    tokens = await issued_tokens(client, alice)
    assert {t.claims["key"] for t in tokens.values()} == {alice.key_id}
    spare = await within(
        runtime,
        lambda uow: create_key(
            uow, account_id=alice.account_id, scopes=["download"], days=None, name="", actor="t"
        ),
    )
    kept = await issued_tokens(
        client, KeyHolder(alice.account_id, spare.key.id, spare.secret, None)
    )
    assert (await fetch(client, tokens["README.md"].raw)).status_code in {200, 302}

    await within(
        runtime,
        lambda uow: revoke_key(uow, account_id=alice.account_id, key_id=alice.key_id, actor="t"),
    )
    # Both a URL already used and one never used die with the key, at their next request.
    for path in ("README.md", "config.json"):
        assert_refused(await fetch(client, tokens[path].raw), 403, "key_revoked")
    assert await count(runtime, Download) == 1, "a URL of a revoked key started a download"
    # The twin: URLs issued under the account's other key still work.
    assert (await fetch(client, kept["config.json"].raw)).status_code in {200, 302}
    assert await count(runtime, Download) == 2


async def test_a_url_names_its_key_in_the_download_evidence(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    token = (await issued_tokens(client, alice))["config.json"]
    await within(
        runtime,
        lambda uow: revoke_key(uow, account_id=alice.account_id, key_id=alice.key_id, actor="t"),
    )
    await fetch(client, token.raw)
    async with runtime.sessionmaker() as session:
        requested = (
            await session.scalars(select(Evidence).where(Evidence.kind == "download.requested"))
        ).all()
    assert [(e.data["key"], e.data["outcome"]) for e in requested] == [
        (alice.key_id, "key_revoked")
    ]


async def test_a_portal_sessions_urls_answer_to_the_account_not_to_a_key(
    client: Client, runtime: Runtime, alice: KeyHolder
) -> None:
    async with runtime.sessionmaker() as session:
        account = await session.get(Account, alice.account_id)
    assert account is not None
    manifest = await within(
        runtime,
        lambda uow: issue_manifest_for_account(
            uow, account, SAMPLE, "1.0", client=DownloadClient("127.0.0.1", "test")
        ),
    )
    token = token_of(manifest.artifacts[0].url)
    assert "key" not in token.claims
    await within(
        runtime,
        lambda uow: revoke_key(uow, account_id=alice.account_id, key_id=alice.key_id, actor="t"),
    )
    assert (await fetch(client, token.raw)).status_code in {200, 302}


async def test_server_signed_token_naming_another_accounts_key_is_refused(
    client: Client, runtime: Runtime, genuine: Token, bob: KeyHolder
) -> None:
    forged = await sign_as_server(runtime, genuine, key=bob.key_id)
    await assert_token_refused(client, runtime, forged)


# === Only the canonical form of a token =================================================


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _spare_bit(signature: str) -> str:
    # An Ed25519 signature is 64 bytes: 86 characters, whose last carries 4 spare bits.
    # Flipping one gives another string that decodes to the very same bytes.
    last = _ALPHABET.index(signature[-1])
    return signature[:-1] + _ALPHABET[last ^ 1]


# The same token bytes, written in forms base64 decoders forgive: (header, payload,
# signature) -> the token as sent.
RESPELLINGS: dict[str, Callable[[str, str, str], str]] = {
    "padded-signature": lambda h, p, s: f"{h}.{p}.{s}==",
    "padded-payload": lambda h, p, s: f"{h}.{p}==.{s}",
    "padded-header": lambda h, p, s: f"{h}=.{p}.{s}",
    "spare-bits": lambda h, p, s: f"{h}.{p}.{_spare_bit(s)}",
    "line-break": lambda h, p, s: f"{h}.{p}.{s[:10]}%0A{s[10:]}",
    "stray-character": lambda h, p, s: f"{h}.{p}.{s[:10]}!{s[10:]}",
    "extra-segment": lambda h, p, s: f"{h}.{p}.{s}.",
}


@pytest.mark.parametrize("how", RESPELLINGS)
async def test_a_token_is_accepted_only_in_its_canonical_form(
    client: Client, runtime: Runtime, alice: KeyHolder, how: str
) -> None:
    genuine = (await issued_tokens(client, alice))["config.json"].raw
    variant = RESPELLINGS[how](*genuine.split("."))
    assert variant != genuine
    await assert_token_refused(client, runtime, variant)
    # The twin: the genuine string itself downloads.
    assert (await fetch(client, genuine)).status_code in {200, 302}


async def test_a_token_longer_than_any_we_issue_is_refused_unparsed(
    client: Client, runtime: Runtime, genuine: Token
) -> None:
    forged = await sign_as_server(runtime, genuine, jti="a" * 5000)
    await assert_token_refused(client, runtime, forged)


OVERFLOWING = {
    "exp-1e308": {"exp": 1e308},
    "exp-huge-int": {"exp": 10**400},
    "exp-infinity": {"exp": float("inf")},
    "exp-nan": {"exp": float("nan")},
    "exp-string": {"exp": "99999999999"},
    "exp-negative": {"exp": -(10**30)},
    "exp-true": {"exp": True},
    "iat-1e308": {"iat": 1e308},
    "iat-huge-int": {"iat": -(10**400)},
    "art-huge-int": {"art": 10**30},
    "art-just-past-32-bits": {"art": 2**31},
    "art-float": {"art": 1.5},
    "art-string": {"art": "1"},
    "art-list": {"art": [1]},
    "grant-huge-string": {"grant": "g" * 1500},
    "grant-null-byte": {"grant": "abc\x00def"},
    "sub-number": {"sub": 12},
    "dl-object": {"dl": {"id": "x"}},
    "dl-null-byte": {"dl": "\x00"},
    "key-number": {"key": 7},
    "key-unknown": {"key": "0" * 36},
    "nbf-infinity": {"nbf": float("inf")},
    "unknown-claim": {"scope": "everything"},
    "aud-list": {"aud": [AUDIENCE]},
}


@pytest.mark.parametrize("changes", OVERFLOWING.values(), ids=OVERFLOWING.keys())
async def test_server_signed_claims_of_the_wrong_type_or_size_are_url_invalid(
    client: Client, runtime: Runtime, genuine: Token, changes: dict[str, Any]
) -> None:
    forged = await sign_as_server(runtime, genuine, **changes)
    await assert_token_refused(client, runtime, forged)


# === JWKS ==============================================================================


async def test_jwks_publishes_the_active_key_without_its_private_part(
    client: Client, genuine: Token
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = {k["kid"]: k for k in response.json()["keys"]}
    active = keys[genuine.header["kid"]]
    assert (active["kty"], active["crv"], active["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert all("d" not in k for k in keys.values())


async def test_a_key_cannot_create_a_key_with_more_scopes_than_it_holds(
    client: Client, runtime: Runtime, bob: KeyHolder
) -> None:
    keys_before = await count(runtime, ApiKey)
    wider = await client.post(KEYS, headers=bob.auth, json={"scopes": ["keys", "apply"]})
    assert_refused(wider, 403, "key_scope_missing")
    admin = await client.post(KEYS, headers=bob.auth, json={"scopes": ["admin"]})
    assert_refused(admin, 403, "key_scope_missing")
    assert await count(runtime, ApiKey) == keys_before
