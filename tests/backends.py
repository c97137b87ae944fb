"""The backend combinations the suite runs on, and how a test names the ones it is about.

GATEWAY_TEST_BACKENDS narrows the list (e.g. `sqlite+file` for a quick local run); CI
runs them all.
"""

from __future__ import annotations

import os

import pytest

ALL_BACKENDS = ("sqlite+file", "postgres+file", "postgres+s3")
BACKENDS = tuple(
    b for b in os.environ.get("GATEWAY_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",") if b
)


def on_backends(*prefixes: str) -> pytest.MarkDecorator:
    """For a test about one database's behaviour: its `settings` are only the backends
    whose name starts with one of `prefixes`, so the others never collect it."""
    return pytest.mark.parametrize(
        "settings", [b for b in BACKENDS if b.startswith(prefixes)], indirect=True
    )
