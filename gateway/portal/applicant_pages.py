"""The applicant's portal pages: apply, applications, grants, keys, downloads, inbox."""

from __future__ import annotations

from litestar import Controller


class ApplicantPages(Controller):
    include_in_schema = False
