"""`gateway serve` is quiet by default: the first-operator link is not buried under the
scheduler's routine lines, and `--log-level` changes what is shown."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.cli.serve import log_config
from tests.served import clean_env, serving

# What APScheduler says at INFO for every job it is given.
ROUTINE = "Added job"


def _served_log(tmp_path: Path, *extra: str) -> str:
    home = tmp_path / "home"
    env = clean_env(GATEWAY_HOME=str(home))
    log = tmp_path / "serve.log"
    with serving(env, log, extra=extra):
        pass
    return log.read_text()


def test_by_default_the_setup_link_is_not_buried(tmp_path: Path) -> None:
    output = _served_log(tmp_path)
    assert "No operator yet. Open this one-time link" in output
    assert "/setup?token=" in output
    assert ROUTINE not in output
    assert "apscheduler" not in output


def test_debug_shows_the_schedulers_lines(tmp_path: Path) -> None:
    output = _served_log(tmp_path, "--log-level", "debug")
    assert ROUTINE in output
    # The summary and the link are printed whatever the level.
    assert "/setup?token=" in output


def test_warning_shows_no_info_line_from_any_process(tmp_path: Path) -> None:
    output = _served_log(tmp_path, "--log-level", "warning")
    assert "INFO" not in output
    assert "/setup?token=" in output


def test_an_unknown_level_is_refused() -> None:
    result = CliRunner().invoke(main, ["serve", "--log-level", "loud"])
    assert result.exit_code == 2
    assert "Invalid value for '--log-level'" in result.output
    assert "debug" in result.output


def _shown(config: dict[str, Any], logger: str, level: int) -> bool:
    """Whether a line of `level` from `logger` passes the levels `config` sets."""
    loggers = config["loggers"]
    name = logger
    while name and name not in loggers:
        name = name.rpartition(".")[0]
    setting = loggers[name]["level"] if name else config["root"]["level"]
    return level >= logging.getLevelName(setting)


@pytest.mark.parametrize(
    ("level", "gateway_info", "gateway_warning", "scheduler_info", "scheduler_warning"),
    [
        ("debug", True, True, True, True),
        ("info", True, True, False, True),
        ("warning", False, True, False, True),
        ("error", False, False, False, False),
        ("INFO", True, True, False, True),
    ],
)
def test_each_level_lets_through_what_it_says(
    level: str,
    gateway_info: bool,
    gateway_warning: bool,
    scheduler_info: bool,
    scheduler_warning: bool,
) -> None:
    config = log_config(level)
    assert _shown(config, "gateway.jobs", logging.INFO) is gateway_info
    assert _shown(config, "gateway", logging.WARNING) is gateway_warning
    assert _shown(config, "apscheduler.scheduler", logging.INFO) is scheduler_info
    assert _shown(config, "apscheduler.executors", logging.WARNING) is scheduler_warning
