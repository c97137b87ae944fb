"""The operator console (/ops): the review queue and application decisions."""

from __future__ import annotations

from litestar import Controller


class OpsPages(Controller):
    include_in_schema = False
