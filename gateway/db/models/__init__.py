"""The mapped tables, one module per area. Importing this package maps every table, so
`Base.metadata` is complete for Alembic's comparison with the migrations; import the
classes from here.

- base: `Base`, and `NAME`, the length of identifiers
- accounts: Account, AccountToken, OidcIdentity, WebSession
- catalog: Model, License, Release, Component, Artifact, StageChange, Approval, Recall,
  Decommission
- evidence: Evidence (append-only), EvidenceAttachment, and the log over it:
  EvidenceUnsealed, EvidenceLeaf, EvidenceNode, EvidenceCheckpoint, EvidenceLogKey
- access: Grant, GrantNotice, Closeout, ApiKey, UrlSigningKey, Download, QuotaUsage
- applications: Application, ApplicationEvent, PublicUse
- notify: Notification, WebhookDelivery, WebhookEndpoint
- incidents: Incident, IncidentEvent, IncidentAccount
- enforcement: EnforcementAction, Appeal
- ratelimits: RateLimitCounter
- jobs: JobRun
- usage: UsageDaily, UsageProgress
- transparency: TransparencyReport
- api_usage: ApiUsageEvent

A relationship to a class of another module names it in its annotation only; the name is
resolved once every module here is imported, so the modules never import each other.
"""

from gateway.db.models.access import (
    ApiKey,
    Closeout,
    Download,
    Grant,
    GrantNotice,
    QuotaUsage,
    UrlSigningKey,
)
from gateway.db.models.accounts import Account, AccountToken, OidcIdentity, WebSession
from gateway.db.models.api_usage import ApiUsageEvent
from gateway.db.models.applications import Application, ApplicationEvent, PublicUse
from gateway.db.models.base import Base
from gateway.db.models.catalog import (
    Approval,
    Artifact,
    Component,
    Decommission,
    License,
    Model,
    Recall,
    Release,
    StageChange,
)
from gateway.db.models.enforcement import Appeal, EnforcementAction
from gateway.db.models.evidence import (
    Evidence,
    EvidenceAttachment,
    EvidenceCheckpoint,
    EvidenceLeaf,
    EvidenceLogKey,
    EvidenceNode,
    EvidenceUnsealed,
)
from gateway.db.models.incidents import Incident, IncidentAccount, IncidentEvent
from gateway.db.models.jobs import JobRun
from gateway.db.models.notify import Notification, WebhookDelivery, WebhookEndpoint
from gateway.db.models.ratelimits import RateLimitCounter
from gateway.db.models.transparency import TransparencyReport
from gateway.db.models.usage import UsageDaily, UsageProgress

__all__ = [
    "Account",
    "AccountToken",
    "ApiKey",
    "ApiUsageEvent",
    "Appeal",
    "Application",
    "ApplicationEvent",
    "Approval",
    "Artifact",
    "Base",
    "Closeout",
    "Component",
    "Decommission",
    "Download",
    "EnforcementAction",
    "Evidence",
    "EvidenceAttachment",
    "EvidenceCheckpoint",
    "EvidenceLeaf",
    "EvidenceLogKey",
    "EvidenceNode",
    "EvidenceUnsealed",
    "Grant",
    "GrantNotice",
    "Incident",
    "IncidentAccount",
    "IncidentEvent",
    "JobRun",
    "License",
    "Model",
    "Notification",
    "OidcIdentity",
    "PublicUse",
    "QuotaUsage",
    "RateLimitCounter",
    "Recall",
    "Release",
    "StageChange",
    "TransparencyReport",
    "UrlSigningKey",
    "UsageDaily",
    "UsageProgress",
    "WebSession",
    "WebhookDelivery",
    "WebhookEndpoint",
]
