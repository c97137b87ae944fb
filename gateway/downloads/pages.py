"""The download page of a release: a manifest with signed links, or why there is none."""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from gateway.catalog.api import model_ref
from gateway.downloads.api import client_of
from gateway.downloads.service import issue_manifest_for_account
from gateway.errors import Denied
from gateway.web import Name, Org, Uow, Version
from gateway.web.guards import WITH_QUERY, SignedIn, requires_sign_in
from gateway.web.pages import (
    public_base,
    tier_title,
)
from gateway.web.secret_pages import SECRET_PAGE


class DownloadPages(Controller):
    include_in_schema = False
    guards = [requires_sign_in]

    # Download links are bearer secrets.
    @get(
        "/models/{org:str}/{name:str}/releases/{version:str}/download",
        opt={**SECRET_PAGE, **WITH_QUERY},
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        account: SignedIn,
        org: Org,
        name: Name,
        version: Version,
    ) -> Template:
        runtime = uow.rt
        ref = model_ref(org, name)
        context: dict[str, Any] = {
            "model": str(ref),
            "version": version,
            "base_url": public_base(runtime),
            "folder": f"{ref.name}-{version}",
            "manifest": None,
            "refusal": None,
        }
        try:
            manifest = await issue_manifest_for_account(
                uow, account, ref, version, client=client_of(request)
            )
        except Denied as exc:
            context["refusal"] = exc
            return Template("applicant/download.html", context=context, status_code=exc.status)
        now = runtime.clock()
        first_expiry = min((a.expires_at for a in manifest.artifacts), default=None)
        context.update(
            manifest=manifest,
            tier_title=tier_title(runtime, manifest.tier),
            expires_at=first_expiry,
            minutes_left=(
                max(1, math.floor((first_expiry - now).total_seconds() / 60))
                if first_expiry
                else None
            ),
        )
        return Template("applicant/download.html", context=context)
