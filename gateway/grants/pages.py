"""The grantee's grant pages: the list of grants, renewal and the close-out attestation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from gateway.api_access.metering import Allowance, grant_allowance
from gateway.applications.answer_forms import (
    COUNTRIES,
    TICKED,
    Refusal,
    answers_from,
    rules_or_none,
    time_left,
)
from gateway.applications.service import application_form, linked_applications
from gateway.applications.submitting import submit
from gateway.catalog.api import open_tiers
from gateway.catalog.service import get_model
from gateway.errors import GatewayError, NotFound
from gateway.grants.lifecycle import attest_closeout
from gateway.grants.service import GrantFilter, closeouts_of, list_grants, own_grant
from gateway.runtime import Runtime
from gateway.web import PathStr, Rt, Uow
from gateway.web.forms import Form
from gateway.web.forms import field as form_field
from gateway.web.guards import SignedIn, back_to, requires_sign_in
from gateway.web.pages import (
    Done,
    client_address,
    control_character,
    plain_text,
    tier_title,
)
from policies.lifecycle import renewal_open
from stages.applications import ApplicationStatus, is_open
from stages.names import ModelRef

if TYPE_CHECKING:
    from gateway.db.models import Account, Application, Closeout, Grant
    from gateway.db.uow import UnitOfWork


GRANT_STATUS_WORDS: Mapping[str, str] = {
    "active": "active",
    "suspended": "suspended: downloads are paused",
    "revoked": "revoked",
    "expired": "expired",
}
DONE_NOTICES: Mapping[str, str] = {
    "attested": "Thank you: your deletion statement was recorded.",
}


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    tier_title: str
    components: list[str]
    status_words: str
    time_left: str
    download_version: str | None
    renewal_open: bool
    renewal_opens_at: datetime | None
    open_renewal: str | None  # id of a renewal application still open
    license_sha256: str | None
    closeout: Closeout | None
    closeout_overdue: bool
    api_only: bool = False
    api: Allowance | None = None  # the month's credits, when the tier has API terms


async def _newest_open_version(uow: UnitOfWork, rt: Runtime, grant: Grant) -> str | None:
    model = await get_model(uow, ModelRef(grant.model.org, grant.model.name))
    for release in reversed(model.releases):
        if grant.tier in open_tiers(rt, release.stage, release.status):
            return release.version
    return None


def _prior_answers(linked: Sequence[Application], grant_id: str) -> dict[str, Any]:
    for application in linked:
        if grant_id in (application.grant_id, application.renewal_of):
            return dict(application.answers)
    return {}


class GrantPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    @get("/grants")
    async def grants(self, uow: Uow, runtime: Rt, account: SignedIn, done: Done = None) -> Template:
        return await _grants_page(uow, runtime, account, done=done)

    @get("/grants/{grant_id:str}/renew")
    async def renew_form(
        self, uow: Uow, runtime: Rt, account: SignedIn, grant_id: PathStr
    ) -> Template:
        grant = await own_grant(uow, account.id, grant_id)
        linked = await linked_applications(uow, account.id, [grant.id])
        return await _renew_page(
            uow, runtime, grant, values=_prior_answers(linked, grant.id), refusal=Refusal()
        )

    @post("/grants/{grant_id:str}/renew", opt=back_to("/grants"))
    async def renew(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        runtime: Rt,
        account: SignedIn,
        grant_id: PathStr,
        data: Form,
    ) -> Template | Redirect:
        grant = await own_grant(uow, account.id, grant_id)
        rules = rules_or_none(runtime, grant.tier)
        fields = rules.fields if rules else ()
        if form_field(data, "with_answers"):
            answers = answers_from(data, fields)
        else:
            # The short form on the grants page: the answers given last time stand.
            linked = await linked_applications(uow, account.id, [grant.id])
            answers = _prior_answers(linked, grant.id)
        report = form_field(data, "usage_report").strip()
        window = renewal_open(runtime.policy.lifecycle, grant.expires_at, runtime.clock())
        refusal = Refusal(status=409)
        if grant.status != "active" or not window.open:
            refusal.general.append(
                f"renewal of this grant is open from {window.opens_at:%Y-%m-%d} until it ends, "
                "while it is active"
            )
        else:
            refusal.status = 400
            if not report:
                refusal.add("usage_report", "Tell us briefly how you used the weights")
            elif found := control_character(report, lines=True):
                refusal.add(
                    "usage_report",
                    f"The usage report contains a control character ({found}); remove it",
                )
            if form_field(data, "accept_license") != TICKED:
                refusal.add("accept_license", "You must accept the license to renew")
        if not refusal:
            try:
                application = await submit(
                    uow,
                    account_id=account.id,
                    model=ModelRef(grant.model.org, grant.model.name),
                    tier=grant.tier,
                    answers=answers,
                    license_sha256=form_field(data, "license_sha256"),
                    address=client_address(request),
                    renewal_of=grant.id,
                    usage_report=report,
                )
            except GatewayError as exc:
                refusal = Refusal.of(exc, fields)
            else:
                return Redirect(f"/applications/{application.id}?done=renewal")
        return await _renew_page(
            uow, runtime, grant, values=answers, refusal=refusal, usage_report=report
        )

    @post("/closeouts/{closeout_id:str}/attest", opt=back_to("/grants"))
    async def attest(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        runtime: Rt,
        account: SignedIn,
        closeout_id: PathStr,
        data: Form,
    ) -> Template | Redirect:
        statement = form_field(data, "statement")
        if form_field(data, "deleted") != TICKED:
            error = 'Tick "I have deleted all copies of the weights" to confirm it'
            return await _grants_page(
                uow,
                runtime,
                account,
                closeout_errors={closeout_id: error},
                statements={closeout_id: statement},
                status=400,
            )
        try:
            plain_text(statement, "The statement", lines=True)
            await attest_closeout(uow, account.id, closeout_id, statement, client_address(request))
        except NotFound:
            raise
        except GatewayError as exc:
            return await _grants_page(
                uow,
                runtime,
                account,
                closeout_errors={closeout_id: exc.message},
                statements={closeout_id: statement},
                status=exc.status,
            )
        return Redirect("/grants?done=attested")


async def _grants_page(
    uow: UnitOfWork,
    rt: Runtime,
    account: Account,
    *,
    done: str | None = None,
    closeout_errors: Mapping[str, str] | None = None,
    statements: Mapping[str, str] | None = None,
    status: int = 200,
) -> Template:
    now = rt.clock()
    grants = await list_grants(uow, GrantFilter(account_id=account.id))
    linked = await linked_applications(uow, account.id, [g.id for g in grants])
    closeouts = await closeouts_of(uow, account.id)
    rows = []
    for grant in grants:
        window = renewal_open(rt.policy.lifecycle, grant.expires_at, now)
        open_renewal = next(
            (
                a.id
                for a in linked
                if a.renewal_of == grant.id and is_open(ApplicationStatus(a.status))
            ),
            None,
        )
        renewable = grant.status == "active" and window.open and open_renewal is None
        license_sha256 = None
        if renewable:
            try:
                form = await application_form(
                    uow, ModelRef(grant.model.org, grant.model.name), grant.tier
                )
            except GatewayError:
                renewable = False  # the tier left the policy, or the release is gone
            else:
                license_sha256 = form.license_sha256
        closeout = closeouts.get(grant.id)
        tier = rt.policy.ladder.get(grant.tier) if grant.tier in rt.policy.ladder else None
        rows.append(
            GrantRow(
                grant=grant,
                tier_title=tier_title(rt, grant.tier),
                components=(
                    sorted(rt.policy.ladder.visible_components(grant.tier))
                    if grant.tier in rt.policy.ladder
                    else []
                ),
                status_words=GRANT_STATUS_WORDS.get(grant.status, grant.status),
                time_left=time_left(grant.expires_at, now),
                download_version=(
                    await _newest_open_version(uow, rt, grant) if grant.status == "active" else None
                ),
                renewal_open=renewable,
                renewal_opens_at=(
                    window.opens_at if grant.status == "active" and now < window.opens_at else None
                ),
                open_renewal=open_renewal,
                license_sha256=license_sha256,
                closeout=closeout,
                closeout_overdue=bool(
                    closeout and closeout.attested_at is None and now > closeout.due_at
                ),
                api_only=tier is not None and tier.api_only,
                api=await grant_allowance(rt, grant, now),
            )
        )
    return Template(
        "applicant/grants.html",
        context={
            "rows": rows,
            "notice": DONE_NOTICES.get(done or ""),
            "closeout_errors": closeout_errors or {},
            "statements": statements or {},
        },
        status_code=status,
    )


async def _renew_page(
    uow: UnitOfWork,
    rt: Runtime,
    grant: Grant,
    *,
    values: Mapping[str, object],
    refusal: Refusal,
    usage_report: str = "",
) -> Template:
    form = await application_form(uow, ModelRef(grant.model.org, grant.model.name), grant.tier)
    window = renewal_open(rt.policy.lifecycle, grant.expires_at, rt.clock())
    return Template(
        "applicant/renew.html",
        context={
            "grant": grant,
            "form": form,
            "window": window,
            "time_left": time_left(grant.expires_at, rt.clock()),
            "values": values,
            "usage_report": usage_report,
            "refusal": refusal,
            "countries": COUNTRIES,
        },
        status_code=refusal.status if refusal else 200,
    )
