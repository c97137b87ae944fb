"""The operator API: what `gateway ...` commands and the console do, for a key with the
`admin` scope held by an operator, under `/api/v1/ops/`.

Every route here takes the `admin` dependency (gateway/keys/auth.py, `provide_admin`):
401 without a valid key, 403 `key_scope_missing` without the scope, 403 `not_operator`
when the key's account is not an operator. A test holds every route to it. The
controllers live in their features' folders and call the same service functions as the
console and the commands, so the acting operator (`account:<id>`) is the actor of the
evidence each move records, as it is for the console.
"""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from gateway.api_reference import BEARER
from gateway.applications.ops_api import OpsApplicationsController
from gateway.decommission.api import OpsDecommissionController
from gateway.enforcement.ops_api import OpsAppealsController, OpsEnforcementController
from gateway.exports.api import OpsExportsController
from gateway.grants.ops_api import OpsGrantsController
from gateway.incidents.ops_api import OpsIncidentsController
from gateway.keys.auth import provide_admin
from gateway.keys.ops_api import OpsAccountKeysController
from gateway.staging.api import OpsStagesController
from gateway.staging.ops_api import OpsEvidenceController
from gateway.staging.quarantine_api import OpsQuarantineController
from gateway.staging.yanks_api import OpsYanksController

OPS_PATH = "/api/v1/ops"


def operator_api() -> Router:
    """The router of every operator route, with the `admin` dependency."""
    return Router(
        path=OPS_PATH,
        route_handlers=[
            OpsApplicationsController,
            OpsStagesController,
            OpsDecommissionController,
            OpsIncidentsController,
            OpsEvidenceController,
            OpsYanksController,
            OpsQuarantineController,
            OpsExportsController,
            OpsGrantsController,
            OpsAccountKeysController,
            OpsEnforcementController,
            OpsAppealsController,
        ],
        dependencies={"admin": Provide(provide_admin)},
        security=BEARER,
    )
