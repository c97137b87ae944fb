"""What the pages and commands read of enforcement: an account's standing, the actions
against it with their appeals, the ladder's suggested next step, the appeals waiting for
a decision, and the operators' list of accounts.

The ladder, a suspension's length and the appeal window are policy
(policies/enforcement.py); the statuses and their moves are stages/enforcement.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from gateway.db.models import Account, Appeal, EnforcementAction, Incident
from gateway.db.uow import UnitOfWork
from gateway.enforcement import repository
from gateway.errors import InvalidInput, NotFound
from gateway.identity.accounts import normalise_email
from gateway.identity.repository import search_accounts
from gateway.pagination import Keyset, Page, decode_cursor, page_of
from policies.enforcement import AppealWindow, PastAction, Suggestion, appeal_window, next_step
from policies.schema import EnforcementRules
from stages.enforcement import AccountStatus, AppealStatus, EnforcementStep
from stages.incidents import IncidentStatus, Severity

_SUSPEND = EnforcementStep.SUSPEND.value
_TERMINATE = EnforcementStep.TERMINATE.value
_NOUNS = {"warn": "warning", "suspend": "suspension", "terminate": "termination"}


@dataclass(frozen=True)
class ActionRecord:
    """An action against an account as its pages show it: its appeal, whether it still
    holds the account in its status, and whether it may be appealed now."""

    action: EnforcementAction
    appeal: Appeal | None
    in_force: bool
    window: AppealWindow

    @property
    def step(self) -> EnforcementStep:
        return EnforcementStep(self.action.action)

    @property
    def overturned(self) -> bool:
        return self.appeal is not None and self.appeal.status == AppealStatus.OVERTURNED.value


@dataclass(frozen=True)
class AppealRecord:
    """An appeal with the action it is against and the account that made it."""

    appeal: Appeal
    action: EnforcementAction
    account: Account


@dataclass(frozen=True)
class Standing:
    """An account, every action against it, and the ladder's suggested next step."""

    account: Account
    actions: list[ActionRecord]
    suggestion: Suggestion


async def standing(uow: UnitOfWork, email: str) -> Standing:
    """The account's standing, as the operator console and `gateway enforce show` show it."""
    account = await account_by_email(uow, normalise_email(email), lock=False)
    return Standing(
        account,
        await list_actions(uow, account.id),
        await suggestion_for(uow, account.id),
    )


async def suggest(uow: UnitOfWork, email: str, *, incident_id: str | None = None) -> Suggestion:
    """The step the policy's ladder suggests next for the account, and why."""
    account = await account_by_email(uow, normalise_email(email), lock=False)
    incident = await incident_by_ref(uow, incident_id) if incident_id else None
    return await suggestion_for(uow, account.id, incident=incident)


async def suggestion_for(
    uow: UnitOfWork, account_id: str, *, incident: Incident | None = None
) -> Suggestion:
    """The ladder's next step for an account: from its actions not overturned, and the worst
    severity among the confirmed incidents linked to it (and `incident`, if given)."""
    return next_step(
        uow.rt.policy.enforcement,
        await _history(uow, account_id),
        await _worst_severity(uow, account_id, incident),
    )


async def _history(uow: UnitOfWork, account_id: str) -> list[PastAction]:
    return [
        PastAction(EnforcementStep(step), overturned=status == AppealStatus.OVERTURNED.value)
        for step, status in await repository.history(uow.session, account_id)
    ]


async def _worst_severity(
    uow: UnitOfWork, account_id: str, incident: Incident | None
) -> Severity | None:
    # Confirmed and not yet resolved: a resolved incident has had its response already, and
    # would otherwise keep pushing every later suggestion up the ladder.
    severities = [
        Severity(value) for value in await repository.confirmed_severities(uow.session, account_id)
    ]
    if (
        incident is not None
        and incident.severity
        and incident.status != IncidentStatus.DISMISSED.value
    ):
        severities.append(Severity(incident.severity))
    return max(severities, default=None)


async def list_actions(uow: UnitOfWork, account_id: str) -> list[ActionRecord]:
    """Every action against the account, newest first, with its appeal and appeal window."""
    session = uow.session
    status = await repository.account_status(session, account_id)
    rows = await repository.actions_with_appeals(session, account_id)
    now = uow.rt.clock()
    rules = uow.rt.policy.enforcement
    return [
        ActionRecord(
            action=action,
            appeal=appeal,
            in_force=in_force(action, status or ""),
            window=window(rules, action, now, appealed=appeal is not None),
        )
        for action, appeal in rows
    ]


APPEAL_STATUS_FILTERS: Final = (*(status.value for status in AppealStatus), "all")
APPEALS_LISTING: Final = "appeals"


def appeal_status_filter(status: str | None) -> AppealStatus | None:
    """The appeal status a list asks for: pending when none is given, None for `all`;
    400 unknown_status for anything else."""
    status = (status or "").strip() or AppealStatus.PENDING.value
    if status not in APPEAL_STATUS_FILTERS:
        raise InvalidInput(
            f"unknown status {status!r}; expected one of {', '.join(APPEAL_STATUS_FILTERS)}",
            code="unknown_status",
        )
    return None if status == "all" else AppealStatus(status)


async def list_appeals(
    uow: UnitOfWork, status: AppealStatus | None = AppealStatus.PENDING
) -> list[AppealRecord]:
    """Appeals oldest first (the order they are decided in); None: every status."""
    rows = await repository.appeals(uow.session, status)
    return [AppealRecord(appeal, action, account) for appeal, action, account in rows]


def _appeal_keyset(record: AppealRecord) -> Keyset:
    return Keyset(record.appeal.submitted_at, record.appeal.id)


async def appeals_page(
    uow: UnitOfWork, status: AppealStatus | None, *, cursor: str | None, limit: int
) -> Page[AppealRecord]:
    """A page of appeals (the order of `list_appeals`), from `cursor` on."""
    rows = await repository.appeals_after(
        uow.session, status, decode_cursor(APPEALS_LISTING, cursor), limit
    )
    records = [AppealRecord(appeal, action, account) for appeal, action, account in rows]
    return page_of(APPEALS_LISTING, records, limit, _appeal_keyset)


async def get_appeal(uow: UnitOfWork, appeal_id: str) -> AppealRecord:
    """One appeal with its action and account; 404 appeal_not_found."""
    found = await repository.appeal_with_action(uow.session, appeal_id)
    if found is None:
        raise NotFound(f"no appeal {appeal_id}", code="appeal_not_found")
    return AppealRecord(*found)


async def find_accounts(
    uow: UnitOfWork, *, text: str, standing: str, limit: int, offset: int
) -> tuple[Sequence[Account], int]:
    """Every account, or those whose email or name holds `text`, of one standing if given
    (active, suspended or terminated), by email; and how many match in all."""
    if standing and standing not in set(AccountStatus):
        known = ", ".join(AccountStatus)
        raise InvalidInput(
            f"unknown standing {standing!r}; expected one of {known}", code="unknown_standing"
        )
    return await search_accounts(
        uow.session, text=text, status=standing or None, limit=limit, offset=offset
    )


def in_force(action: EnforcementAction, account_status: str) -> bool:
    """Whether `action` is what holds the account in its status now (a warning never is)."""
    if action.ended_at is not None:
        return False
    if action.action == _SUSPEND:
        return account_status == AccountStatus.SUSPENDED.value
    if action.action == _TERMINATE:
        return account_status == AccountStatus.TERMINATED.value
    return False


def window(
    rules: EnforcementRules, action: EnforcementAction, now: datetime, *, appealed: bool
) -> AppealWindow:
    """The action's appeal window as the account was promised it."""
    # The account was told "until appeal_until" when the action was taken; that promise
    # holds even if the policy's appeal_days has changed since.
    days = round((action.appeal_until - action.created_at) / timedelta(days=1))
    promised = replace(rules, appeal_days=days)
    return appeal_window(promised, action.created_at, now, already_appealed=appealed)


async def account_by_email(uow: UnitOfWork, address: str, *, lock: bool) -> Account:
    account = await repository.account_by_email(uow.session, address, lock=lock)
    if account is None:
        raise NotFound(f"no account {address}", code="account_not_found")
    return account


async def incident_by_ref(uow: UnitOfWork, ref: str) -> Incident:
    """An incident by its id or its tracking code."""
    ref = ref.strip()
    incident = await repository.incident_by_ref(uow.session, ref)
    if incident is None:
        raise NotFound(f"no incident {ref}", code="incident_not_found")
    return incident


def describe_step(step: str) -> str:
    """'warning', 'suspension' or 'termination'."""
    return _NOUNS.get(step, step)
