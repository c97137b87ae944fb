"""Reports of GitHub's secret scanning (the partner program): GitHub finds API keys in
public repositories, gists and packages, and POSTs them here, signed; every active one is
revoked at once, its owner told where it leaked, and GitHub told which were real.

Rules of this module:
- A report is believed only when `Github-Public-Key-Signature` is an ECDSA P-256 SHA-256
  signature, by the key `Github-Public-Key-Identifier` names, over the body exactly as
  received. Anything else (no headers, a malformed or wrong signature, a key not in
  GitHub's list) is refused before the database is touched, and changes nothing.
- The key list (`secret_scanning_keys_url`, or `secret_scanning_keys_file` instead) is
  read once and kept for an hour. A key id it does not hold (GitHub rotated its keys)
  reads it again, but never more often than once a minute, whatever the outcome: a
  report naming made-up keys cannot make the gateway hammer GitHub.
- A list that cannot be read is a KeyListUnavailable (503), never a 401: a real report
  must be sent again later, not dropped. A list read before stays in use meanwhile, for
  the keys it holds.
- The list, like every answer from outside, is held to jsonlimits.PROVIDER_ANSWER while
  it is read and before it is parsed.
- A token that is a key of this gateway, active or already revoked, is a `true_positive`
  in the answer; anything else (unknown, not shaped like a key) is a `false_positive`.
  The revoking, telling and recording is found.py's `revoke_found`, as for anyone's report.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import httpx2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.config import Settings
from gateway.credentials.api_key_format import is_well_formed, key_digest
from gateway.db.uow import UnitOfWork
from gateway.errors import InvalidInput, Unavailable
from gateway.input_files import read_input_file
from gateway.jsonlimits import (
    PROVIDER_ANSWER,
    JsonRefused,
    limited_client,
    parse_json,
    read_limited,
)
from gateway.keys.found import MAX_KEYS, MAX_URL_CHARS, Sighting, revoke_found
from gateway.keys.service import Unauthenticated
from gateway.text import clean_text
from stages import evidence as ev

logger = logging.getLogger("gateway.keys.secret_scanning")

KEY_LIST_TTL_SECONDS: Final = 3600.0
# The least time between two reads of the key list for a key id it does not hold.
KEY_REFETCH_SECONDS: Final = 60.0
HTTP_TIMEOUT_SECONDS: Final = 10.0
# GitHub's key ids are 64 hex digits; anything much longer is not one.
MAX_KEY_ID_CHARS: Final = 200
MAX_SOURCE_CHARS: Final = 100
FINDER: Final = "GitHub's secret scanning"
KIND: Final = "key.leaked"

Label = Literal["true_positive", "false_positive"]


class KeyListUnavailable(Unavailable):
    part = "secret scanning key list"
    retry_after_seconds = 60

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="secret_scanning_keys_unavailable")


@dataclass(frozen=True)
class SecretMatch:
    """One secret GitHub found (an item of its report): `token`, its `type` as registered
    with GitHub, the public `url` where it was seen and the kind of content (`source`:
    `commit`, `gist_content`...)."""

    token: str
    type: str
    url: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class TokenLabel:
    """GitHub's token verification format, one a match: the token as sent, its type, and
    whether it is a key of this gateway (active or already revoked: `true_positive`)."""

    token_raw: str
    token_type: str
    label: Label


@dataclass
class _Cached:
    keys: dict[str, ec.EllipticCurvePublicKey]
    fetched_at: float


class ScanningKeyList:
    """GitHub's public secret scanning keys by id, read from the configured list and kept.

    One per process (the app factory puts it in the app's state); `http` makes the HTTP
    client of each read (tests may pass their own), `monotonic` is the clock of the TTL.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ttl_seconds: float = KEY_LIST_TTL_SECONDS,
        refetch_seconds: float = KEY_REFETCH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        http: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        self.url = settings.secret_scanning_keys_url
        self.file = settings.secret_scanning_keys_file
        self.ttl_seconds = ttl_seconds
        self.refetch_seconds = refetch_seconds
        self._monotonic = monotonic
        self._http = http or http_client
        self._cached: _Cached | None = None
        self._attempted_at: float | None = None
        self._failure: str | None = None
        # One read at a time: reports that arrive together wait for the same one.
        self._lock = asyncio.Lock()

    @property
    def source(self) -> str:
        """Where the list is read from, as messages name it."""
        return str(self.file) if self.file is not None else self.url

    async def key(self, key_id: str) -> ec.EllipticCurvePublicKey | None:
        """The public key `key_id` names; None if the list, read lately, does not hold it."""
        async with self._lock:
            now = self._monotonic()
            cached = self._cached
            if (
                cached is None
                or now - cached.fetched_at >= self.ttl_seconds
                or key_id not in cached.keys
            ):
                await self._read_if_due(now)
            cached = self._cached
            held = cached.keys.get(key_id) if cached is not None else None
            if held is None and self._failure is not None:
                raise KeyListUnavailable(f"{self.source}: {self._failure}")
            return held

    async def _read_if_due(self, now: float) -> None:
        if self._attempted_at is not None and now - self._attempted_at < self.refetch_seconds:
            return
        # Counted before the read: a read that fails waits its turn like one that works.
        self._attempted_at = now
        try:
            keys = parse_key_list(await self._document())
        except KeyListUnavailable as exc:
            logger.warning("secret scanning keys: %s", exc.message)
            self._failure = exc.detail
            return
        self._cached = _Cached(keys, now)
        self._failure = None

    async def _document(self) -> bytes:
        if self.file is not None:
            try:
                return read_input_file(
                    self.file, what="secret scanning key list", max_bytes=PROVIDER_ANSWER.max_bytes
                )
            except InvalidInput as exc:
                raise KeyListUnavailable(exc.message) from exc
        try:
            async with (
                self._http() as client,
                client.stream("GET", self.url, headers={"accept": "application/json"}) as answer,
            ):
                if answer.status_code != 200:
                    raise KeyListUnavailable(f"{self.url} answered HTTP {answer.status_code}")
                return await read_limited(answer, PROVIDER_ANSWER)
        except httpx2.HTTPError as exc:
            raise KeyListUnavailable(f"{self.url} did not answer ({exc})") from exc
        except JsonRefused as exc:
            raise KeyListUnavailable(f"{self.url}: {exc}") from exc


def http_client() -> httpx2.AsyncClient:
    """A client for the key list: its answer bounded by PROVIDER_ANSWER, 10 s timeouts,
    redirects not followed (the list is fetched from the URL configured, nowhere else)."""
    return limited_client(
        PROVIDER_ANSWER,
        timeout=httpx2.Timeout(HTTP_TIMEOUT_SECONDS),
        follow_redirects=False,
        headers={"User-Agent": "release-gateway-secret-scanning/1"},
    )


def parse_key_list(document: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-256 keys of a `{"public_keys": [{"key_identifier", "key"}]}` list, by id.

    Entries of another kind of key are skipped (a list may grow new ones); a list with
    none usable is a KeyListUnavailable.
    """
    try:
        body = parse_json(document, PROVIDER_ANSWER)
    except JsonRefused as exc:
        raise KeyListUnavailable(str(exc)) from exc
    entries = body.get("public_keys") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise KeyListUnavailable('not a key list: expected {"public_keys": [...]}')
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for number, entry in enumerate(entries, 1):
        key = _p256_key(entry)
        if key is None:
            logger.warning("secret scanning keys: entry %d is not a P-256 public key", number)
            continue
        keys[entry["key_identifier"]] = key
    if not keys:
        raise KeyListUnavailable("the list holds no P-256 public key")
    return keys


def _p256_key(entry: object) -> ec.EllipticCurvePublicKey | None:
    if not isinstance(entry, Mapping):
        return None
    key_id, pem = entry.get("key_identifier"), entry.get("key")
    if not isinstance(key_id, str) or not key_id or not isinstance(pem, str):
        return None
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):  # not PEM, or a kind of key this build cannot read
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


async def verify_report(
    keys: ScanningKeyList, body: bytes, *, key_id: str | None, signature: str | None
) -> None:
    """Return if `signature` is GitHub's, by key `key_id`, over `body`; raise otherwise."""
    if not key_id or not signature:
        raise Unauthenticated(
            "a secret scanning report must be signed: send the Github-Public-Key-Identifier "
            "and Github-Public-Key-Signature headers",
            code="signature_missing",
        )
    if len(key_id) > MAX_KEY_ID_CHARS:
        raise InvalidInput(
            f"Github-Public-Key-Identifier is at most {MAX_KEY_ID_CHARS} characters",
            code="signature_malformed",
        )
    try:
        der = base64.b64decode(signature, validate=True)
        # A signature that is not even DER is refused before the key list is read for it.
        decode_dss_signature(der)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            "Github-Public-Key-Signature is not a base64 DER ECDSA signature",
            code="signature_malformed",
        ) from exc
    public_key = await keys.key(key_id)
    if public_key is None:
        raise Unauthenticated(
            "Github-Public-Key-Identifier names no key in GitHub's secret scanning key list",
            code="signature_key_unknown",
        )
    try:
        public_key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise Unauthenticated(
            "Github-Public-Key-Signature does not sign this body with that key",
            code="signature_invalid",
        ) from exc


def _checked(matches: Sequence[SecretMatch]) -> list[SecretMatch]:
    if not matches:
        raise InvalidInput("a report names at least one match", code="no_tokens")
    if len(matches) > MAX_KEYS:
        raise InvalidInput(
            f"at most {MAX_KEYS} matches a report, not {len(matches)}", code="too_many_tokens"
        )
    return [
        SecretMatch(
            token=match.token,
            type=match.type,
            url=clean_text(
                match.url,
                field=f"the url of match {number}",
                max_length=MAX_URL_CHARS,
                multiline=False,
            ),
            source=clean_text(
                match.source,
                field=f"the source of match {number}",
                max_length=MAX_SOURCE_CHARS,
                multiline=False,
            ),
        )
        for number, match in enumerate(matches, 1)
    ]


async def report_from_github(
    uow: UnitOfWork,
    keys: ScanningKeyList,
    body: bytes,
    matches: Sequence[SecretMatch],
    *,
    key_id: str | None,
    signature: str | None,
) -> list[TokenLabel]:
    """Check the report's signature over `body`, then revoke every active key among
    `matches` (each owner told where it leaked) and label each match for GitHub."""
    await verify_report(keys, body, key_id=key_id, signature=signature)
    checked = _checked(matches)
    digests = {
        match.token: key_digest(match.token) for match in checked if is_well_formed(match.token)
    }
    # Where each key was seen first, when a report names it more than once.
    seen: dict[str, Sighting] = {}
    for match in checked:
        if match.token in digests:
            seen.setdefault(
                digests[match.token],
                Sighting(
                    found_at=match.url,
                    finder=FINDER,
                    source=match.source,
                    kind=KIND,
                    actor=ev.SECRET_SCANNING,
                ),
            )
    known = (await revoke_found(uow, seen)).known if seen else frozenset()
    return [
        TokenLabel(
            token_raw=match.token,
            token_type=match.type,
            label="true_positive" if digests.get(match.token) in known else "false_positive",
        )
        for match in checked
    ]
