"""External evaluators' JSON API: `POST .../releases/{version}/evaluations` with a
grantee's API key (an evaluators tier), as JSON (`name`, `result`, `note`) or a multipart
form with a `file` (the report), held to the console's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import State

from gateway.api_reference import BEARER, COMMON, answers
from gateway.catalog.api import model_ref
from gateway.keys.auth import GranteeDep
from gateway.staging.evaluations import submit_evaluation
from gateway.staging.evidence_files import EVIDENCE_BODY_MAX_BYTES
from gateway.staging.ops_api import EvidenceOperation, EvidenceOut, evidence_in
from gateway.web import Name, Org, Uow, Version


@dataclass
class EvaluationIn:
    """`name` and `result` are lower-case labels (letters, digits, `.`, `_`, `-`), as the
    policy's gates name them: e.g. red-team / pass."""

    name: str
    result: str
    note: str | None = None


class EvaluationsController(Controller):
    tags = ["evaluations"]

    @post(
        "/api/v1/models/{org:str}/{name:str}/releases/{version:str}/evaluations",
        summary="Submit an evaluation result as an external evaluator (counted by the gates)",
        status_code=201,
        security=BEARER,
        request_max_body_size=EVIDENCE_BODY_MAX_BYTES,
        operation_class=EvidenceOperation,
        responses=answers(*COMMON, 401, 403, 404, 413),
    )
    async def submit(
        self,
        request: Request[Any, Any, State],
        uow: Uow,
        grantee: GranteeDep,
        org: Org,
        name: Name,
        version: Version,
    ) -> Response[EvidenceOut]:
        data, upload = await evidence_in(request, EvaluationIn)
        row = await submit_evaluation(
            uow,
            grantee,
            model_ref(org, name),
            version,
            name=data.name,
            result=data.result,
            file=upload,
            note=data.note,
        )
        return Response(EvidenceOut.of(row), status_code=201)
