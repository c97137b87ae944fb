"""The backend combinations the suite runs on, and how a test names the ones it is about.

By default every backend test runs twice: on SQLite with local storage, and on PostgreSQL
with S3 storage (a loopback moto_server), so each database and each store is under every
test. GATEWAY_TEST_BACKENDS names others: `all` adds PostgreSQL with local storage,
`sqlite+file` alone is a quick local run.
"""

from __future__ import annotations

import os

import pytest

ALL_BACKENDS = ("sqlite+file", "postgres+file", "postgres+s3")
DEFAULT_BACKENDS = ("sqlite+file", "postgres+s3")


def _chosen(value: str) -> tuple[str, ...]:
    if value.strip() == "all":
        return ALL_BACKENDS
    names = tuple(b.strip() for b in value.split(",") if b.strip())
    unknown = [b for b in names if b not in ALL_BACKENDS]
    if unknown:
        raise pytest.UsageError(
            f"GATEWAY_TEST_BACKENDS: unknown {', '.join(unknown)} "
            f"(expected all, or some of {', '.join(ALL_BACKENDS)})"
        )
    return names


BACKENDS = _chosen(os.environ.get("GATEWAY_TEST_BACKENDS", ",".join(DEFAULT_BACKENDS)))

# The databases among BACKENDS ("postgres", "sqlite"), for tests whose store does not matter.
DATABASES = tuple(sorted({b.split("+")[0] for b in BACKENDS}))


def on_backends(*prefixes: str) -> pytest.MarkDecorator:
    """For a test about one database's behaviour: its `settings` are only the backends
    whose name starts with one of `prefixes`, so the others never collect it."""
    return pytest.mark.parametrize(
        "settings", [b for b in BACKENDS if b.startswith(prefixes)], indirect=True
    )


def on_each_database() -> pytest.MarkDecorator:
    """For a test whose store does not matter: `settings` is each of DATABASES with local
    storage, so it runs once on SQLite and once on PostgreSQL."""
    return pytest.mark.parametrize(
        "settings", [f"{database}+file" for database in DATABASES], indirect=True
    )
