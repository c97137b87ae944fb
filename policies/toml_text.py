"""Reading TOML text from outside (a policy file, gateway.toml) with a bound on nesting.

Rules of this module:
- Nesting deeper than MAX_DEPTH is refused before the parser sees the text: tomllib
  recurses once per level, and an input that runs it into Python's recursion limit fails
  with RecursionError deep in the stack, where even a finalizer that happens to run
  cannot report its own error.
- The scan is one linear pass: every pattern below matches once begun (a closing quote
  is optional), so no unmatched quote makes it re-read the rest of the input.
- Every refusal is a ValueError whose message reads after "invalid TOML: ".
"""

import re
import tomllib
from typing import Any, Final

# Far deeper than any policy or setting nests (two or three levels), far shallower than
# where tomllib's recursion gives out (several hundred levels).
MAX_DEPTH: Final = 100

# Strings and comments hide brackets; what is left is the brackets themselves.
_TOKENS: Final = re.compile(
    r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\Z)'
    r"|'''.*?(?:'''|\Z)"
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
    r"|'[^'\n]*'?"
    r"|#[^\n]*"
    r"|[\[\]{}]",
    re.DOTALL,
)


class TomlRefused(ValueError):
    """TOML text that does not parse, nests too deeply or holds a number too long to read."""


def nesting_depth_over(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and tables in `text` nest deeper than `limit` anywhere."""
    depth = 0
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > limit:
                return True
        elif mark in "]}":
            depth = max(depth - 1, 0)
    return False


def read_toml(text: str) -> dict[str, Any]:
    """The document in `text`; TomlRefused saying what is wrong with it."""
    if nesting_depth_over(text):
        raise TomlRefused(f"arrays or tables nested more than {MAX_DEPTH} levels deep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlRefused(str(exc)) from exc
    except RecursionError:
        # Only when the caller's own stack is already deep; the scan bounds the nesting.
        raise TomlRefused("arrays or tables nested too deeply") from None
    except ValueError as exc:
        # An integer of thousands of digits: Python refuses to convert it.
        raise TomlRefused(f"a number too long to read ({exc})") from exc
