# Sorting published files into components.
#
# Rules:
# - Paths are POSIX paths relative to the release root.
# - Overrides (from the operator's command line) are tried before the policy's rules;
#   the first rule that matches wins; a file no rule matches gets the default component.
# - A glob without "/" matches the file's basename anywhere in the tree ("README.md"
#   also finds "docs/README.md"); a glob with "/" matches the whole relative path.
#   Matching is fnmatch's, case-sensitive on every platform so results never depend on
#   where publish ran.

import posixpath
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

from policies.schema import ComponentRule, PublishRules

_COMPONENT_NAME = re.compile(r"[a-z][a-z0-9_]*")


def classify(path: str, rules: PublishRules, overrides: Sequence[ComponentRule] = ()) -> str:
    """The component the file at relative `path` belongs to."""
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"expected a relative path inside the release, got {path!r}")
    basename = posixpath.basename(path)
    for rule in (*overrides, *rules.rules):
        subject = path if "/" in rule.glob else basename
        if fnmatchcase(subject, rule.glob):
            return rule.component
    return rules.default_component


def parse_override(spec: str) -> ComponentRule:
    """A rule from a command-line override such as "*.json=config"."""
    glob, sep, component = spec.rpartition("=")
    glob, component = glob.strip(), component.strip()
    if not sep:
        raise ValueError(f"invalid component override {spec!r}: expected GLOB=COMPONENT")
    if not glob:
        raise ValueError(f"invalid component override {spec!r}: the glob before '=' is empty")
    if not _COMPONENT_NAME.fullmatch(component):
        raise ValueError(
            f"invalid component override {spec!r}: expected a component name "
            f"matching [a-z][a-z0-9_]* after '=', got {component!r}"
        )
    return ComponentRule(glob=glob, component=component)
