"""HTTP for inference services: verify a grantee's key, report the API use served."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody
from litestar.response.base import ASGIResponse

from gateway.api_access.service import MAX_COST, Verification, verify_key
from gateway.api_access.usage import MAX_EVENTS, UsageReport, report_usage
from gateway.api_reference import BEARER, COMMON, answers
from gateway.errors import InvalidInput
from gateway.keys.auth import GranteeDep, provide_grantee
from gateway.runtime import Runtime
from gateway.web import Uow
from stages.access import Reason
from stages.names import InvalidName, parse_release_ref


class VerifyIn(msgspec.Struct):
    """`key`: the grantee's API key as their client sent it; `model`: `org/name`, or
    `org/name:version` for one release; `cost`: credits this request spends (default 1)."""

    key: str
    model: str
    cost: int = 1


_VERIFY_IN = msgspec.json.Decoder(VerifyIn)
_ENCODER = msgspec.json.Encoder()


def _verify_in(body: bytes) -> VerifyIn:
    try:
        return _VERIFY_IN.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid request: {exc}", code="invalid_request") from None
    except msgspec.DecodeError:
        raise InvalidInput(
            'the body must be a JSON object: {"key": "rgk_...", "model": "org/name"}',
            code="invalid_request",
        ) from None


@dataclass
class VerifyOperation(Operation):
    """The body as `_verify_in` reads it."""

    def __post_init__(self) -> None:
        body = Schema(
            type=OpenAPIType.OBJECT,
            required=["key", "model"],
            properties={
                "key": Schema(type=OpenAPIType.STRING, description="The grantee's key, `rgk_...`"),
                "model": Schema(
                    type=OpenAPIType.STRING,
                    description="`org/name`, or `org/name:version` for one release",
                ),
                "cost": Schema(
                    type=OpenAPIType.INTEGER,
                    minimum=0,
                    maximum=MAX_COST,
                    default=1,
                    description="Credits this request spends",
                ),
            },
        )
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=body)}, required=True
        )


@dataclass(frozen=True)
class RateLimitOut:
    limit: int
    remaining: int
    reset: datetime


@dataclass(frozen=True)
class CreditsOut:
    limit: int
    remaining: int
    reset: datetime


@dataclass(frozen=True)
class VerifyOut:
    valid: bool
    reason: str | None
    message: str | None
    account: str | None
    organisation: str | None
    grant: str | None
    tier: str | None
    release: str | None
    components: list[str]
    ratelimit: RateLimitOut | None
    credits: CreditsOut | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class VerifyRefusedOut:
    """A key that may not use the model now: the error body (`error` is the reason) with
    what the verification found. A refusal of the caller itself (not a service's key)
    is the error body alone."""

    error: str
    message: str
    status: int
    valid: bool = False
    reason: str | None = None
    account: str | None = None
    organisation: str | None = None
    grant: str | None = None
    tier: str | None = None
    release: str | None = None
    components: list[str] | None = None
    ratelimit: RateLimitOut | None = None
    credits: CreditsOut | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass
class UsageIn:
    """Up to 1,000 events: `{event_id, key | grant, release, time, units: {requests,
    tokens}, flags: {safety_filter_triggered}}`."""

    events: list[Any]


@dataclass(frozen=True)
class EventOut:
    index: int
    event_id: str | None
    status: str
    code: str | None
    message: str | None


@dataclass(frozen=True)
class UsageOut:
    accepted: int
    duplicates: int
    refused: int
    events: list[EventOut]


# A refused verification keeps the answer's shape: the reason says why.
_REFUSED_STATUS = {Reason.RATE_LIMITED.value: 429, Reason.CREDITS_EXHAUSTED.value: 429}


def _out(found: Verification) -> VerifyOut:
    allowance = found.allowance
    return VerifyOut(
        valid=found.valid,
        reason=found.reason,
        message=found.message,
        account=found.account,
        organisation=found.organisation,
        grant=found.grant,
        tier=found.tier,
        release=found.release,
        components=list(found.components),
        ratelimit=RateLimitOut(allowance.limit, allowance.remaining, allowance.reset)
        if allowance
        else None,
        credits=CreditsOut(
            allowance.credits_limit, allowance.credits_remaining, allowance.credits_reset
        )
        if allowance
        else None,
        expires_at=found.expires_at,
        revoked_at=found.revoked_at,
    )


def _usage_out(report: UsageReport) -> UsageOut:
    return UsageOut(
        accepted=report.accepted,
        duplicates=report.duplicates,
        refused=report.refused,
        events=[
            EventOut(e.index, e.event_id, e.status.value, e.code, e.message) for e in report.events
        ],
    )


async def verification(
    request: Request[Any, Any, Any], raw: bytes
) -> tuple[int, dict[str, str], bytes]:
    """The answer to a verification whose body is `raw`: status, headers, JSON body. A
    refusal of the caller or of the input is raised, for the app's error handlers; a key
    that may not be used now is an answer. No dependencies to resolve and the answer
    encoded once: this is the hot path of every inference call."""
    rt: Runtime = request.app.state.runtime
    async with rt.unit() as uow:
        # Who is asking comes first: without a key, a bad body is still a 401.
        service = await provide_grantee(request, uow)
        data = _verify_in(raw)
        try:
            model, version = parse_release_ref(data.model, version_required=False)
        except InvalidName as exc:
            raise InvalidInput(str(exc), code="invalid_name") from None
        found = await verify_key(
            uow, service, secret=data.key, model=model, version=version, cost=data.cost
        )
    status = 200 if found.valid else _REFUSED_STATUS.get(found.reason or "", 403)
    headers = {}
    if status == 429 and found.allowance is not None:
        reset = (
            found.allowance.reset
            if found.reason == Reason.RATE_LIMITED.value
            else found.allowance.credits_reset
        )
        wait = max(1, int((reset - rt.clock()).total_seconds()) + 1)
        headers["retry-after"] = str(wait)
    answer = _out(found)
    body: VerifyOut | VerifyRefusedOut = answer
    if not found.valid:
        found_out = {k: v for k, v in asdict(answer).items() if k != "message"}
        body = VerifyRefusedOut(
            error=found.reason or "", message=found.message or "", status=status, **found_out
        )
    return status, headers, _ENCODER.encode(body)


class ApiAccessController(Controller):
    tags = ["services"]

    @post(
        "/api/v1/keys/verify",
        summary="Verify a grantee's API key for a model (a service account's `verify` key)",
        description="200 with `valid: true` spends one request of the key's minute and "
        "`cost` credits of the grant's month. A key that may not use the model now is "
        "answered in the same shape with `valid: false` and the reason as in downloads "
        "(`key_invalid`, `key_revoked` with `revoked_at`, `key_expired`, `no_grant`, "
        "`grant_suspended`, `account_suspended`, `tier_not_open`, `api_not_in_tier`, ...): "
        "403, or 429 for `rate_limited` and `credits_exhausted` (with `Retry-After`).",
        status_code=200,
        security=BEARER,
        operation_class=VerifyOperation,
        responses={
            200: ResponseSpec(
                VerifyOut, description="Valid: what the key may use, and what is left"
            ),
            **answers(*COMMON, 401, 404),
            403: ResponseSpec(
                VerifyRefusedOut,
                description="Not valid now (`reason` says why), or the caller is not a "
                "service account's `verify` key",
            ),
            429: ResponseSpec(
                VerifyRefusedOut, description="Over the rate limit or out of the month's credits"
            ),
        },
    )
    async def verify(self, request: Request[object, object, State]) -> ASGIResponse:
        # Under `gateway serve` the plain requests are answered in front of the app
        # (gateway/api_access/front.py); this route answers the rest, and documents both.
        status, headers, body = await verification(request, await request.body())
        return ASGIResponse(
            body=body, status_code=status, media_type=MediaType.JSON, headers=headers
        )

    @post(
        "/api/v1/usage",
        summary=f"Report API use served (a service account's `verify` key): up to "
        f"{MAX_EVENTS} events a batch, each kept once by its event_id",
        description="Each event is answered by its index: `accepted`, `duplicate` (kept "
        "already) or `refused` with a code and a message; the good events of a batch are "
        "kept whatever the bad ones say.",
        status_code=200,
        security=BEARER,
        responses=answers(*COMMON, 401, 403, 413),
    )
    async def usage(self, uow: Uow, grantee: GranteeDep, data: JSONBody[UsageIn]) -> UsageOut:
        return _usage_out(await report_usage(uow, grantee, data.events))
