"""The operator API of promotion evidence: attach evidence to a release (with a document
or without), list what is attached, and download a document. The same service functions
as `gateway evidence attach` and the console's release page, with the same limits and
checks; the acting operator is the account of the `admin` key.

Attaching takes JSON (`kind`, `name`, `result`, `note`) or a multipart form with those
fields and a `file`. The form is held to the console's body limit (413 beyond it), and
the file is read no further than one byte over the file limit (413 too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import SerializationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import PathParameter
from litestar.response import Stream

from gateway.api_reference import COMMON, answers
from gateway.catalog.api import model_ref
from gateway.errors import InvalidInput
from gateway.keys.auth import AdminDep
from gateway.staging.api import RELEASE
from gateway.staging.attachments import evidence_document, list_evidence
from gateway.staging.evidence_files import (
    EVIDENCE_BODY_MAX_BYTES,
    EVIDENCE_FILE_LIMIT_TEXT,
    EvidenceFile,
    read_upload,
)
from gateway.staging.promotion import attach_evidence
from gateway.storage import attachment_disposition
from gateway.web import Name, Org, Uow, Version
from stages.actors import Actor

if TYPE_CHECKING:
    from gateway.db.models import EvidenceAttachment

In = TypeVar("In")
AttachmentId = Annotated[str, PathParameter(description="The attachment's id")]
_FIELDS = ("kind", "name", "result", "note")


@dataclass
class EvidenceIn:
    """`kind`, `name` and `result` are lower-case labels (letters, digits, `.`, `_`, `-`),
    as the policy's gates name them: e.g. evaluation / internal-safety / pass."""

    kind: str
    name: str
    result: str
    note: str | None = None


@dataclass(frozen=True)
class EvidenceOut:
    id: str
    kind: str
    name: str
    result: str
    note: str | None
    attached_at: datetime
    attached_by: str  # as stored: `account:<id>`, `cli:user@host`
    file_name: str | None
    file_size: int | None
    file_sha256: str | None
    external: bool  # submitted by an external evaluator (attached_by is theirs)

    @classmethod
    def of(cls, row: EvidenceAttachment) -> EvidenceOut:
        return cls(
            id=row.id,
            kind=row.kind,
            name=row.name,
            result=row.result,
            note=row.note,
            attached_at=row.attached_at,
            attached_by=row.attached_by,
            file_name=row.file_name,
            file_size=row.file_size,
            file_sha256=row.file_sha256,
            external=row.external,
        )


@dataclass(frozen=True)
class EvidenceList:
    items: list[EvidenceOut]


async def evidence_in(
    request: Request[Any, Any, State], shape: type[In]
) -> tuple[In, EvidenceFile | None]:
    """The body as JSON or as a multipart form, into the same typed fields."""
    media_type, _ = request.content_type
    if media_type == RequestEncodingType.MULTI_PART:
        form = await request.form()
        fields: object = {key: form.get(key) for key in _FIELDS if key in form}
        upload = await read_upload(form.get("file"))
    elif media_type in ("", MediaType.JSON):
        try:
            fields = await request.json()
        except SerializationException:
            raise InvalidInput("the request body is not JSON", code="invalid_request") from None
        upload = None
    else:
        raise InvalidInput(
            f"send the evidence as {MediaType.JSON.value} or "
            f"{RequestEncodingType.MULTI_PART.value}, not {media_type}",
            code="invalid_request",
        )
    try:
        return msgspec.convert(fields, shape), upload
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid request: {exc}", code="invalid_request") from None


@dataclass
class EvidenceOperation(Operation):
    """The attach operation's body, which the handler reads itself (JSON or a form)."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        properties: dict[str, Any] = {
            "kind": text,
            "name": text,
            "result": text,
            "note": Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL]),
        }
        fields = Schema(
            type=OpenAPIType.OBJECT, properties=properties, required=["kind", "name", "result"]
        )
        with_file = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                **properties,
                "file": Schema(
                    type=OpenAPIType.STRING,
                    format=OpenAPIFormat.BINARY,
                    description=f"The report, at most {EVIDENCE_FILE_LIMIT_TEXT}",
                ),
            },
            required=["kind", "name", "result"],
        )
        self.request_body = RequestBody(
            content={
                MediaType.JSON: OpenAPIMediaType(schema=fields),
                RequestEncodingType.MULTI_PART: OpenAPIMediaType(schema=with_file),
            },
            required=True,
        )


_DOCUMENT = {
    200: ResponseSpec(
        bytes,
        description="The attached document; `ETag` is its SHA-256",
        media_type="application/octet-stream",
        generate_examples=False,
    )
}


class OpsEvidenceController(Controller):
    tags = ["operators: stages"]

    @post(
        RELEASE + "/evidence",
        summary="Attach evidence for the promotion gates, with a document or without",
        status_code=201,
        request_max_body_size=EVIDENCE_BODY_MAX_BYTES,
        operation_class=EvidenceOperation,
        responses=answers(*COMMON, 401, 403, 404, 413),
    )
    async def attach(
        self,
        request: Request[Any, Any, State],
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
    ) -> Response[EvidenceOut]:
        data, upload = await evidence_in(request, EvidenceIn)
        row = await attach_evidence(
            uow,
            model_ref(org, name),
            version,
            kind=data.kind,
            name=data.name,
            result=data.result,
            file=upload,
            note=data.note,
            actor=Actor.account(admin.account.id),
        )
        return Response(EvidenceOut.of(row), status_code=201)

    @get(
        RELEASE + "/evidence",
        summary="The evidence attached to a release, oldest first",
        responses=answers(*COMMON, 401, 403, 404),
    )
    async def listing(
        self, uow: Uow, admin: AdminDep, org: Org, name: Name, version: Version
    ) -> EvidenceList:
        rows = await list_evidence(uow, model_ref(org, name), version)
        return EvidenceList([EvidenceOut.of(row) for row in rows])

    @get(
        RELEASE + "/evidence/{attachment_id:str}/file",
        summary="The document attached as evidence",
        responses={**_DOCUMENT, **answers(*COMMON, 401, 403, 404)},
    )
    async def document(
        self,
        uow: Uow,
        admin: AdminDep,
        org: Org,
        name: Name,
        version: Version,
        attachment_id: AttachmentId,
    ) -> Stream:
        found = await evidence_document(uow, model_ref(org, name), version, attachment_id)
        return Stream(
            found.chunks,
            media_type="application/octet-stream",
            headers={
                "content-length": str(found.size),
                "content-disposition": attachment_disposition(found.name),
                "etag": f'"{found.sha256}"',
                "cache-control": "private, no-store",
            },
        )
