"""`gateway models` and `gateway release`: the catalog from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from gateway.catalog import service
from gateway.catalog.schemas import latest_release
from gateway.cli.support import err, in_unit, out, parse_or_fail, run
from gateway.publishing.service import PublishRequest, publish_release
from gateway.runtime import cli_actor
from gateway.web.filters import human_size, when
from policies.components import parse_override
from stages.names import parse_model_ref, parse_release_ref


@click.group()
def models() -> None:
    """Models in the catalog."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_list(as_json: bool) -> None:
    """List every model with its latest release: the newest active one that is not
    yanked, else the newest of all (a draft, say)."""

    rows: list[dict[str, object]] = []
    for model in run(in_unit(service.every_model)):
        releases = list(model.releases)
        latest = latest_release(releases) or (releases[-1] if releases else None)
        rows.append(
            {
                "model": model.ref,
                "releases": len(model.releases),
                "latest": latest.version if latest else None,
                "stage": latest.stage if latest else None,
                "status": latest.status if latest else None,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("No models yet. Publish one with `gateway release publish`.")
        return
    table = Table()
    for column in ("model", "releases", "latest", "stage", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c] if row[c] is not None else "—") for c in row))
    out.print(table)


@click.group()
def release() -> None:
    """Releases: list, show and publish."""


@release.command("list")
@click.argument("model", required=False)
def release_list(model: str | None) -> None:
    """List releases, of one MODEL (ORG/NAME) or of all."""
    ref = parse_or_fail(parse_model_ref, model) if model else None

    if ref is not None:
        found = [run(in_unit(lambda uow: service.get_model(uow, ref)))]
    else:
        found = run(in_unit(service.every_model))
    rows = [
        (m.ref, r.version, r.stage, r.status, human_size(r.total_size), when(r.published_at))
        for m in found
        for r in m.releases
    ]
    if not rows:
        out.print("No releases yet.")
        return
    table = Table()
    for column in ("model", "version", "stage", "status", "size", "published"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@release.command("show")
@click.argument("ref", metavar="ORG/NAME:VERSION")
@click.option("--json", "as_json", is_flag=True, help="Print the release as the API does.")
def release_show(ref: str, as_json: bool) -> None:
    """Show a release: stage, license, tiers and artifacts."""
    model, version = parse_or_fail(parse_release_ref, ref)
    assert version is not None

    detail = run(in_unit(lambda uow: service.release_detail(uow, model, version)))
    if as_json:
        from litestar.serialization import encode_json

        out.print_json(encode_json(detail).decode())
        return
    out.print(f"{detail.model}:{detail.version}", style="bold")
    out.print(f"  stage    {detail.stage} (since {when(detail.stage_changed_at)})")
    out.print(f"  status   {detail.status}")
    out.print(f"  size     {human_size(detail.total_size)} in {len(detail.artifacts)} files")
    out.print(f"  license  sha256:{detail.license_sha256}")
    out.print(f"  manifest sha256:{detail.manifest_sha256}")
    for tier in detail.tiers:
        state = "open" if tier.open else "closed"
        out.print(f"  tier {tier.tier:<16} {state:<7} {', '.join(tier.components) or '—'}")
    table = Table()
    for column in ("path", "component", "size", "sha256"):
        table.add_column(column)
    for artifact in detail.artifacts:
        table.add_row(artifact.path, artifact.component, human_size(artifact.size), artifact.sha256)
    out.print(table)


class _PublishBar:
    """Progress of a publish on stderr: bytes stored, speed and time left."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def started(self, files: int, total_bytes: int) -> None:
        self.task = self.progress.add_task(f"storing {files} files", total=total_bytes)

    def advanced(self, nbytes: int) -> None:
        assert self.task is not None
        self.progress.advance(self.task, nbytes)

    def phase(self, text: str) -> None:
        assert self.task is not None
        self.progress.update(self.task, description=text)


@release.command("publish")
@click.argument("model", metavar="ORG/NAME")
@click.argument("version")
@click.argument(
    "folder", type=click.Path(path_type=Path, file_okay=False, exists=True, readable=True)
)
@click.option(
    "--license",
    "license_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The license text the release is published under.",
)
@click.option(
    "--guidance",
    "guidance_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use guidance shown to applicants beside the license.",
)
@click.option(
    "--component",
    "components",
    multiple=True,
    metavar="GLOB=KIND",
    help="Put files matching GLOB into component KIND (before the policy's rules). Repeatable.",
)
def release_publish(
    model: str,
    version: str,
    folder: Path,
    license_file: Path,
    guidance_file: Path | None,
    components: tuple[str, ...],
) -> None:
    """Publish FOLDER as release VERSION of MODEL, signed, in stage draft.

    Every file is hashed while it is stored (one read), the release is signed in the
    OpenSSF model signing format, and nothing becomes visible unless all of it succeeds.
    """
    ref = parse_or_fail(parse_model_ref, model)
    overrides = tuple(parse_or_fail(parse_override, spec) for spec in components)
    request = PublishRequest(
        model=ref,
        version=version,
        folder=folder,
        license_file=license_file,
        guidance_file=guidance_file,
        component_overrides=overrides,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        bar = _PublishBar(progress)
        published = run(
            in_unit(lambda uow: publish_release(uow, request, actor=cli_actor(), progress=bar))
        )
    parts = ", ".join(f"{n} {k}" for k, n in published.components.items())
    out.print(
        f"Published {published.ref}: {published.artifacts} files ({parts}), "
        f"{human_size(published.total_size)}, stage draft."
    )
    out.print(f"Manifest sha256:{published.manifest_sha256}")
    out.print(f"Open it with: gateway stage promote {published.ref} --to <tier>")
