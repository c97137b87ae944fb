"""Sorting published files into components."""

import re
from importlib import resources

import pytest

from policies import ComponentRule, PublishRules, classify, load_policy, parse_override

DEFAULT_RULES = load_policy(
    resources.files("policies").joinpath("default.toml").read_text(), "default.toml"
).publish


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("model.safetensors", "weights"),
        ("shards/model-00001-of-00002.safetensors", "weights"),
        ("pytorch_model.bin", "weights"),
        ("model.Q4_K_M.gguf", "weights"),
        ("checkpoint.pt", "weights"),
        ("checkpoint.pth", "weights"),
        ("model.onnx", "weights"),
        ("modeling.py", "code"),
        ("src/pkg/layers.py", "code"),
        ("README.md", "model_card"),
        ("docs/README.md", "model_card"),
        ("MODEL_CARD.md", "model_card"),
        ("config.json", "config"),
        ("generation_config.yaml", "config"),
        ("conf/train.yml", "config"),
        ("tokenizer.model", "config"),
        ("eval/run.py", "eval_tools"),
        ("eval/tasks/mmlu.json", "eval_tools"),
        ("data_manifest.json", "data_manifest"),
        ("LICENSE", "other"),
        ("notes.txt", "other"),
        # Matching is case-sensitive, whatever the platform.
        ("readme.md", "other"),
        ("MODEL.SAFETENSORS", "other"),
        # "eval/*" is a path glob: an eval folder further down is not the eval tree.
        ("tools/eval/run.py", "code"),
    ],
)
def test_default_rules(path: str, component: str) -> None:
    assert classify(path, DEFAULT_RULES) == component


RULES = PublishRules(
    rules=(
        ComponentRule("*.json", "config"),
        ComponentRule("special.json", "weights"),  # never reached: the rule above wins
        ComponentRule("docs/*.md", "model_card"),
    ),
    default_component="other",
)


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("special.json", "config"),
        ("docs/guide.md", "model_card"),
        ("guide.md", "other"),
        ("x/docs/guide.md", "other"),
    ],
)
def test_first_match_wins_and_path_globs_match_the_whole_path(path: str, component: str) -> None:
    assert classify(path, RULES) == component


def test_overrides_win_over_policy_rules() -> None:
    overrides = [ComponentRule("special.json", "weights"), ComponentRule("*.md", "code")]
    assert classify("special.json", RULES, overrides) == "weights"
    assert classify("other.json", RULES, overrides) == "config"
    assert classify("docs/guide.md", RULES, overrides) == "code"


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../outside.bin", "a/../../b.bin"])
def test_paths_outside_the_release_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="expected a relative path inside the release"):
        classify(path, DEFAULT_RULES)


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("*.json=config", ComponentRule("*.json", "config")),
        (" extra/*.bin = weights ", ComponentRule("extra/*.bin", "weights")),
        ("a=b=eval_tools", ComponentRule("a=b", "eval_tools")),
    ],
)
def test_parse_override(spec: str, rule: ComponentRule) -> None:
    assert parse_override(spec) == rule


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("config", "invalid component override 'config': expected GLOB=COMPONENT"),
        ("=config", "invalid component override '=config': the glob before '=' is empty"),
        (
            "*.json=",
            "invalid component override '*.json=': expected a component name matching "
            "[a-z][a-z0-9_]* after '=', got ''",
        ),
        (
            "*.json=Config",
            "invalid component override '*.json=Config': expected a component name matching "
            "[a-z][a-z0-9_]* after '=', got 'Config'",
        ),
    ],
)
def test_parse_override_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_override(spec)
