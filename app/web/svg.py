"""Charts drawn on the server as inline SVG: a horizontal bar chart and a line chart.

No chart service and no script: the page works, and prints, without JavaScript.
Each chart is `role="img"` with a `<title>` and a `<desc>` naming what it shows, and
the page puts a table of the same numbers beside it for anyone who cannot see it.
Every label is escaped here, so a case type or a stage name can never become markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

FONT = 'font-family="system-ui, sans-serif" font-size="13"'
BAR_FILL = "#1d70b8"  # dark enough for white text, 4.5:1 against white
LINE_STROKE = "#1d70b8"
AXIS = "#505a5f"
GRID = "#b1b4b6"


def _number(value: float) -> str:
    """A value as a person reads it: 3, 2.5, 66.7."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _id(slug: str) -> str:
    """An XML id from `slug`: letters, digits and dashes only."""
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", slug).strip("-") or "chart"
    return cleaned if cleaned[0].isalpha() else f"c-{cleaned}"


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    cid = _id(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{cid}-title {cid}-desc">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    width: int = 640,
    label_width: int = 260,
) -> Markup:
    """Horizontal bars, one per (label, value), longest value the full width."""
    row, top = 26, 8
    height = top * 2 + row * max(len(bars), 1)
    desc = "; ".join(f"{label}: {_number(v)}{unit}" for label, v in bars) or "No data."
    parts = _open(chart_id, title, desc, width, height)
    if not bars:
        parts.append(f'<text x="8" y="{top + 17}" {FONT} fill="{AXIS}">No data.</text>')
    biggest = max((v for _, v in bars), default=0) or 1
    room = width - label_width - 60  # leave space for the value after the bar
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        length = max(room * value / biggest, 0)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" {FONT} '
            f'fill="#0b0c0c">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{BAR_FILL}"/>'
        )
        parts.append(
            f'<text x="{label_width + length + 6:.1f}" y="{y + 17}" {FONT} '
            f'fill="#0b0c0c">{_number(value)}{escape(unit)}</text>'
        )
    parts.append(
        f'<line x1="{label_width}" y1="{top}" x2="{label_width}" y2="{height - top}" '
        f'stroke="{AXIS}"/>'
    )
    parts.append("</svg>")
    return Markup("\n".join(parts))


def line_chart(
    chart_id: str,
    title: str,
    points: Sequence[tuple[str, float | None]],
    *,
    y_max: float = 100,
    unit: str = "%",
    width: int = 640,
    height: int = 240,
) -> Markup:
    """One line through (label, value) left to right; None leaves a gap (nothing to show)."""
    left, right, top, bottom = 48, 40, 12, 44  # room for the last week's label
    plot_w, plot_h = width - left - right, height - top - bottom
    shown = [f"{label}: {'no data' if v is None else _number(v) + unit}" for label, v in points]
    parts = _open(chart_id, title, "; ".join(shown) or "No data.", width, height)
    for fraction in (0, 0.25, 0.5, 0.75, 1):  # gridlines and the y axis's labels
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}" '
            f'stroke-dasharray="{"none" if fraction == 0 else "3 3"}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="{AXIS}">'
            f"{_number(y_max * fraction)}{escape(unit)}</text>"
        )
    step = plot_w / max(len(points) - 1, 1)
    segment: list[str] = []
    segments: list[list[str]] = [segment]
    every = max(len(points) // 6, 1)  # at most about six labels on the x axis
    for i, (label, value) in enumerate(points):
        x = left + (i * step if len(points) > 1 else plot_w / 2)
        if i % every == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle" {FONT} '
                f'fill="{AXIS}">{escape(label)}</text>'
            )
        if value is None:
            segment = []
            segments.append(segment)
            continue
        y = top + plot_h * (1 - min(max(value / y_max, 0), 1))
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE_STROKE}">'
            f"<title>{escape(label)}: {_number(value)}{escape(unit)}</title></circle>"
        )
    for seg in segments:
        if len(seg) > 1:
            parts.append(
                f'<polyline points="{" ".join(seg)}" fill="none" stroke="{LINE_STROKE}" '
                f'stroke-width="2"/>'
            )
    parts.append("</svg>")
    return Markup("\n".join(parts))


__all__ = ["bar_chart", "line_chart"]
