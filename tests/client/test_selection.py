"""--components and --include."""

from __future__ import annotations

from gateway.client.selection import Selection


def test_empty_selection_takes_everything() -> None:
    selection = Selection.parse([], [])
    assert selection.everything
    assert selection.matches("anything/at/all", "other")


def test_components_are_comma_separated_and_repeatable() -> None:
    selection = Selection.parse(["weights, model_card", "config"], [])
    assert selection.components == {"weights", "model_card", "config"}
    assert selection.matches("a.safetensors", "weights")
    assert not selection.matches("run.py", "code")


def test_globs_without_a_slash_match_file_names_anywhere() -> None:
    selection = Selection.parse([], ["*.json"])
    assert selection.matches("config.json", "config")
    assert selection.matches("sub/dir/config.json", "config")
    assert not selection.matches("config.JSON", "config")  # case-sensitive everywhere


def test_globs_with_a_slash_match_the_whole_path() -> None:
    selection = Selection.parse([], ["shards/*"])
    assert selection.matches("shards/a.bin", "weights")
    assert not selection.matches("other/shards/a.bin", "weights")


def test_components_and_includes_must_both_match() -> None:
    selection = Selection.parse(["weights"], ["*-00001.*"])
    assert selection.matches("m-00001.safetensors", "weights")
    assert not selection.matches("m-00002.safetensors", "weights")
    assert not selection.matches("m-00001.json", "config")
