# Evidence of structured access: the services that verify keys, and the use they report.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stages.evidence.kinds import EvidenceKind as K
from stages.evidence.payload import Payload


@dataclass(frozen=True)
class ServiceAccountCreated(Payload):
    """An operator made an account for an inference service (`name`)."""

    KIND = K.SERVICE_ACCOUNT_CREATED
    name: str


@dataclass(frozen=True)
class ApiUseReported(Payload):
    """One event of API use a service reported: `requests` served to `grant` (and
    `tokens`), `flagged` of them by the service's safety filter, at `used_at`. The row's
    actor is the service, its account the grantee; `event` is the service's own id."""

    KIND = K.API_USE_REPORTED
    event: str
    grant: str
    tier: str
    used_at: datetime
    requests: int
    tokens: int
    flagged: int
