"""Paths from the server are data: only plain relative paths inside the folder are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.client.errors import DownloadFailed
from gateway.client.paths import check_relative_path, check_unique, part_path, target_path


@pytest.mark.parametrize(
    "path", ["model.safetensors", "shards/model-00001.safetensors", "a/b/c.json", ".hidden"]
)
def test_plain_relative_paths_are_accepted(path: str) -> None:
    assert check_relative_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../outside",
        "a/./b",
        "a//b",
        "a/",
        "..",
        "C:/Windows/x",
        "c:evil",
        "a\\..\\b",
        "nul\x00byte",
        "weights.bin.part",
    ],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(DownloadFailed) as caught:
        check_relative_path(path)
    assert caught.value.exit_code == 1
    assert "unsafe file path" in caught.value.message


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "release"
    root.mkdir()
    (root / "sub").symlink_to(tmp_path)
    with pytest.raises(DownloadFailed, match="through a link"):
        target_path(root, "sub/file.bin")
    assert target_path(root, "dir/file.bin") == root / "dir" / "file.bin"


def test_part_path_sits_beside_the_file(tmp_path: Path) -> None:
    assert part_path(tmp_path / "a" / "w.bin") == tmp_path / "a" / "w.bin.part"


def test_duplicates_and_file_folder_clashes_are_refused() -> None:
    check_unique(["a/b", "a/c", "b"])
    with pytest.raises(DownloadFailed, match="twice"):
        check_unique(["a", "a"])
    with pytest.raises(DownloadFailed, match="both a file and a folder"):
        check_unique(["a", "a/b"])
