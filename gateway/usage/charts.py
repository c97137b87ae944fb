"""Charts of usage as inline SVG, drawn here: a page that shows them loads nothing from
any other host, and a reader without a browser gets the same numbers in the table.

Rules: pure; every label is escaped; each bar carries its value in a <title> (shown on
hover, read by screen readers); sizes are in the SVG's own units, so it scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from markupsafe import Markup

_WIDTH: Final = 720
_HEIGHT: Final = 200
_LEFT: Final = 56  # room for the axis's numbers
_BOTTOM: Final = 28  # room for the first and last labels


def _nice(top: float) -> float:
    """A round number at or above `top` for the axis's end."""
    if top <= 0:
        return 1
    step = 10 ** (len(str(int(top))) - 1)
    for factor in (1, 2, 5, 10):
        if top <= factor * step:
            return float(factor * step)
    return float(10 * step)


def columns(
    title: str, points: Sequence[tuple[str, float]], *, unit: str = "", line: Sequence[float] = ()
) -> Markup:
    """A column per point (label, value), left to right; `line`, if given, is a second
    series of the same length drawn over the columns (e.g. distinct grantees a day)."""
    top = _nice(max([*(value for _, value in points), *line], default=0))
    inner_w, inner_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - 8
    step = inner_w / max(len(points), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_LEFT}" y1="{8 + inner_h}" x2="{_WIDTH - 8}" y2="{8 + inner_h}" '
        'stroke="#d8dde3"/>',
        f'<text x="{_LEFT - 6}" y="14" text-anchor="end" font-size="11" fill="#5b6470">'
        f"{escape(_number(top))}{escape(unit)}</text>",
        f'<text x="{_LEFT - 6}" y="{8 + inner_h}" text-anchor="end" font-size="11" '
        'fill="#5b6470">0</text>',
    ]
    for index, (label, value) in enumerate(points):
        height = inner_h * value / top
        x = _LEFT + index * step + step * 0.1
        parts.append(
            f'<rect x="{x:.1f}" y="{8 + inner_h - height:.1f}" width="{step * 0.8:.1f}" '
            f'height="{height:.1f}" fill="#1f5fbf"><title>{escape(label)}: '
            f"{escape(_number(value))}{escape(unit)}</title></rect>"
        )
    if line:
        coords = " ".join(
            f"{_LEFT + (i + 0.5) * step:.1f},{8 + inner_h - inner_h * v / top:.1f}"
            for i, v in enumerate(line)
        )
        parts.append(f'<polyline points="{coords}" fill="none" stroke="#9a6700" stroke-width="2"/>')
    if points:
        parts.append(
            f'<text x="{_LEFT}" y="{_HEIGHT - 8}" font-size="11" fill="#5b6470">'
            f"{escape(points[0][0])}</text>"
        )
        parts.append(
            f'<text x="{_WIDTH - 8}" y="{_HEIGHT - 8}" text-anchor="end" font-size="11" '
            f'fill="#5b6470">{escape(points[-1][0])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"
