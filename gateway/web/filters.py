"""Jinja filters for the portal templates."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment


def human_size(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def register_filters(env: Environment) -> None:
    env.filters["human_size"] = human_size
    env.filters["when"] = when
    env.filters["stage_label"] = lambda s: s.replace("_", " ")
