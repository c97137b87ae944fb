"""What every command shares: loading the runtime, running a service call, and turning the
gateway's errors into a message and an exit code instead of a traceback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from gateway.cli.server_choice import chosen_server
from gateway.config import ConfigError, Settings, load_settings
from gateway.db.migrate import pending_revisions

# Re-exported: commands open their unit of work through here, importing no gateway.db.
from gateway.db.uow import UnitOfWork as UnitOfWork  # noqa: PLC0414
from gateway.db.uow import in_unit as in_unit  # noqa: PLC0414
from gateway.db.uow import run_unit as run_unit  # noqa: PLC0414
from gateway.errors import GatewayError
from gateway.runtime import Runtime, build_runtime
from gateway.storage import SourceUnreadable, StorageError
from stages.names import InvalidName

T = TypeVar("T")

# Markup is off: names, paths and messages are printed as they are, never as rich tags.
# Into a pipe or a file, tables are laid out wide so that ids and hashes stay whole.
_PIPED_WIDTH = 240
out = Console(
    highlight=False,
    soft_wrap=True,
    markup=False,
    width=None if sys.stdout.isatty() else _PIPED_WIDTH,
)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text("error: ", style="bold red") + Text(message))
    sys.exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print the gateway's own errors as one clear line and exit with their code."""
    try:
        yield
    except GatewayError as exc:
        fail(exc.message, exc.exit_code)
    except (ConfigError, InvalidName) as exc:
        fail(str(exc), 2)
    except SourceUnreadable as exc:
        fail(str(exc), 2)
    except StorageError as exc:
        # Anything else from storage is the store failing (a bad input is SourceUnreadable).
        fail(f"storage unreachable: {exc}", 5)


def settings() -> Settings:
    with reported_errors():
        return load_settings()


def refuse_local() -> None:
    """End a command that would act on the local database although --server was given."""
    if chosen_server() is None:
        return
    fail(
        f"`{click.get_current_context().command_path}` does not work with --server; run it "
        "where the gateway's database is, or without --server",
        2,
    )


def run(call: Callable[[Runtime], Awaitable[T]], *, check_migrations: bool = True) -> T:
    """Build the runtime, run one async service call in it, and close it. Under
    `gateway --server`, a command that reached here has no remote form: it stops."""
    refuse_local()
    with reported_errors():
        config = load_settings()
        if check_migrations:
            ensure_schema(config)
        runtime = build_runtime(config)

        async def go() -> T:
            try:
                return await call(runtime)
            finally:
                await runtime.close()

        return asyncio.run(go())


def run_in_unit(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """`run` one service call in one unit of work, committed when it returns."""
    return run(in_unit(work))


def ensure_schema(config: Settings) -> None:
    """Embedded SQLite migrates itself; PostgreSQL must be migrated on purpose."""
    from gateway.db.migrate import upgrade

    config.home.mkdir(parents=True, exist_ok=True)
    pending = pending_revisions(config.database_url)
    if not pending:
        return
    if config.is_sqlite:
        upgrade(config.database_url)
        return
    fail(
        f"the database has {len(pending)} pending migration(s) ({', '.join(pending)}); "
        "run `gateway db upgrade` (or `gateway serve --migrate`) first",
        2,
    )


def parse_or_fail(parser: Callable[[str], T], text: str) -> T:
    try:
        return parser(text)
    except (InvalidName, ValueError) as exc:
        raise click.BadParameter(str(exc)) from exc
