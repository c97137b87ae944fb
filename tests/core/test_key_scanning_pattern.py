"""The secret-scanning pattern and validator the README publishes for API keys agree with
the key format: every key the gateway makes passes, and a key with one character
changed, cut short or from another prefix does not."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from gateway.credentials.api_key_format import is_well_formed, new_api_key

README = Path(__file__).parents[2] / "README.md"


def published_validator() -> Callable[[str], bool]:
    text = README.read_text()
    section = text[text.index("**For secret scanners:**") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    scope: dict[str, object] = {}
    exec(code.group(1), scope)  # noqa: S102 - the README's own example, run as written
    validator = scope["is_gateway_key"]
    assert callable(validator)
    return validator  # type: ignore[return-value]


def test_the_readme_validator_accepts_keys_and_refuses_changed_ones() -> None:
    valid = published_validator()
    for _ in range(500):
        key = new_api_key()
        assert valid(key)
        changed = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
        assert not valid(changed)
        assert valid(changed) == is_well_formed(changed)
        assert not valid(key[:-1])
        assert not valid("rgx_" + key[4:])
