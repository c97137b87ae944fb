"""Sample release folders and publishing shortcuts for tests."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.publishing.service import Published, PublishRequest, publish_release
from gateway.runtime import Runtime
from stages.names import parse_model_ref
from tests.units import within

LICENSE_TEXT = "Sample Model License\n\nUse it kindly.\n"


def make_folder(root: Path, files: dict[str, bytes] | None = None) -> Path:
    """A release folder with weights, code, a model card and a config."""
    root.mkdir(parents=True, exist_ok=True)
    contents = files or {
        "model.safetensors": os.urandom(300_000),
        "shards/model-00002.safetensors": os.urandom(70_000),
        "modeling.py": b"print('hello')\n",
        "README.md": b"# Sample model\n",
        "config.json": b'{"layers": 2}\n',
        "notes.txt": b"other things\n",
    }
    for rel, data in contents.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def make_license(root: Path, text: str = LICENSE_TEXT) -> Path:
    path = root / "LICENSE.txt"
    path.write_text(text)
    return path


async def publish(
    rt: Runtime, tmp_path: Path, model: str = "acme/sample", version: str = "1.0"
) -> Published:
    folder = make_folder(tmp_path / f"src-{model.replace('/', '-')}-{version}")
    request = PublishRequest(
        model=parse_model_ref(model),
        version=version,
        folder=folder,
        license_file=make_license(tmp_path),
    )
    return await within(rt, lambda uow: publish_release(uow, request, actor="test"))
