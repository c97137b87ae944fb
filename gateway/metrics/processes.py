"""Metrics across the worker processes of `gateway serve --workers N`.

prometheus_client's multiprocess mode: each worker writes its values to files in one
folder, and the worker that answers a scrape sums them. The folder is
`GATEWAY_HOME/metrics/`, emptied when `gateway serve` starts, before any worker forks:
files of an earlier run would add old counts to the new ones. One process alone (one
worker, a test, a command) keeps its values in memory and needs none of this.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"


class TooLate(RuntimeError):
    """prometheus_client was imported before the folder was chosen."""


def share_between_workers(home: Path, workers: int) -> Path | None:
    """Before the workers start: with several, empty `home/metrics` of stale files and
    point every worker at it (the workers inherit the environment); with one, make sure
    none is configured, so its values stay in its memory."""
    if workers == 1:
        os.environ.pop(FOLDER_ENV, None)
        return None
    # The client reads the variable once, when first imported: a worker forked from a
    # process that imported it earlier would keep its values in memory, unseen by the
    # others, and every scrape would show one worker's counts.
    if "prometheus_client" in sys.modules:
        raise TooLate("prometheus_client was imported before the metrics folder was chosen")
    folder = home / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[FOLDER_ENV] = str(folder)
    return folder


def shared_folder() -> str | None:
    """The folder this process's metrics are written to, if they are shared."""
    return os.environ.get(FOLDER_ENV) or None


def mark_stopped() -> None:
    """A worker that stops drops its live gauges (the pool's), as the client's docs say to
    do for each process that exits; its counters stay in the sums."""
    folder = shared_folder()
    if folder is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]
