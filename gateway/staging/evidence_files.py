"""Files attached to a release as promotion evidence: one size limit for the console form
and the CLI, and the checks a file passes before it is stored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from gateway.errors import InvalidInput
from gateway.input_files import read_input_file

# Evaluation reports and model cards are documents, not weights: a few MiB at most. The
# console form shows this limit, and the CLI holds files to the same one.
EVIDENCE_FILE_MAX_BYTES = 20 * 1024 * 1024
EVIDENCE_FILE_LIMIT_TEXT = "20 MiB"
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
            raise InvalidInput(
                f"the attached file {self.name} is larger than the limit of "
                f"{EVIDENCE_FILE_LIMIT_TEXT}",
                code="evidence_file_too_large",
            )


def read_evidence_file(path: Path) -> EvidenceFile:
    """A file named on the command line, read as a regular file within the limit."""
    content = read_input_file(path, what="evidence", max_bytes=EVIDENCE_FILE_MAX_BYTES)
    return EvidenceFile.named(path.name, content)
