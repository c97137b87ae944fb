"""Files attached to a release as promotion evidence: one size limit for the console form,
the operator API and the CLI, and the checks a file passes before it is stored.

An uploaded file is read up to the limit and one byte more, never further: a larger one
is refused (413) without being held in memory whole."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from litestar.datastructures import UploadFile

from gateway.errors import InvalidInput, TooLarge
from gateway.input_files import read_input_file

# Evaluation reports and model cards are documents, not weights: a few MiB at most. The
# console form shows this limit, and the CLI holds files to the same one.
EVIDENCE_FILE_MAX_BYTES = 20 * 1024 * 1024
EVIDENCE_FILE_LIMIT_TEXT = "20 MiB"
# A form that carries the file: the file, and a few short fields besides.
EVIDENCE_BODY_MAX_BYTES = EVIDENCE_FILE_MAX_BYTES + 64 * 1024
# The column that keeps the file's name.
_NAME_MAX_LENGTH = 300


@dataclass(frozen=True)
class EvidenceFile:
    """An attached file as it arrived: the name it had (no folders) and its bytes."""

    name: str
    content: bytes

    @classmethod
    def named(cls, name: str, content: bytes) -> EvidenceFile:
        """The file with only the last part of `name`, as browsers and shells may send paths."""
        base = PureWindowsPath(PurePosixPath(name).name).name.strip()
        return cls(base, content)

    def check(self) -> None:
        """Raise InvalidInput unless the file can be kept as it is."""
        if not self.name or any(ord(c) < 32 or ord(c) == 127 for c in self.name):
            raise InvalidInput(
                "the attached file needs a name without control characters",
                code="invalid_evidence",
            )
        if len(self.name) > _NAME_MAX_LENGTH:
            raise InvalidInput(
                f"the attached file's name is at most {_NAME_MAX_LENGTH} characters",
                code="invalid_evidence",
            )
        if not self.content:
            raise InvalidInput(f"the attached file {self.name} is empty", code="invalid_evidence")
        if len(self.content) > EVIDENCE_FILE_MAX_BYTES:
            raise TooLarge(
                f"the attached file {self.name} is larger than the limit of "
                f"{EVIDENCE_FILE_LIMIT_TEXT}",
                code="evidence_file_too_large",
            )


def read_evidence_file(path: Path) -> EvidenceFile:
    """A file named on the command line, read as a regular file within the limit."""
    content = read_input_file(path, what="evidence", max_bytes=EVIDENCE_FILE_MAX_BYTES)
    return EvidenceFile.named(path.name, content)


async def read_upload(value: object) -> EvidenceFile | None:
    """The file of a multipart form's `file` field, read no further than one byte over
    the limit (so `check` refuses a larger one); None when no file was chosen (browsers
    send an empty part)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if not isinstance(value, UploadFile):
        raise InvalidInput("`file` must be a file part of the form", code="invalid_evidence")
    try:
        if not value.filename:
            return None
        content = await value.read(EVIDENCE_FILE_MAX_BYTES + 1)
    finally:
        await value.close()
    return EvidenceFile.named(value.filename, content)
