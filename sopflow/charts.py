"""Charts as self-contained SVG images, for artifacts the Prefect UI shows as pictures (no network, no fonts).

`chart_svg` draws one or more series over labelled periods, as lines or grouped bars, with optional
horizontal reference lines (a target, a capacity); `chart_markdown` makes it a Markdown image, drawn in a
Markdown artifact of the Prefect UI.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape

from sopflow.forms import shown

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 56
COLOURS = ("#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626")


def _nice(value: float) -> float:
    """The round number (1, 2, 2.5 or 5 times a power of ten) at or above `value`, for the top of an axis."""
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _scale(values: Sequence[float]) -> tuple[float, float]:
    """The value axis' bottom and top: from 0 (or the lowest negative) to a round number above the highest value."""
    low, high = min([0.0, *values]), max([0.0, *values])
    return low, (_nice(high * 1.05) if high > 0 else 1.0)


def chart_svg(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    kind: str = "line",
    unit: str = "",
    references: Mapping[str, float] | None = None,
) -> str:
    """An SVG chart of `series` (name → one value per label, None for no value) with dashed `references`."""
    references = dict(references or {})
    values = [v for points in series.values() for v in points if v is not None] + list(references.values())
    low, high = _scale(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)

    def y(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    def x(index: int) -> float:
        return LEFT + step * (index + 0.5)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
             f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{y(low)}" x2="{WIDTH - RIGHT}" y2="{y(low)}" stroke="#64748b"/>']
    for tick in (low, (low + high) / 2, high):
        parts.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{escape(shown(round(tick, 1)))}'
                     f'{escape(unit)}</text>')
    for index, label in enumerate(labels):
        parts.append(f'<text x="{x(index):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>')
    bar_w = step * 0.8 / max(len(series), 1)
    for number, (name, points) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        if kind == "bar":
            for index, value in enumerate(points):
                if value is not None:
                    left = x(index) - step * 0.4 + bar_w * number
                    top, bottom = sorted((y(value), y(0)))
                    parts.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{bar_w:.1f}" height="{bottom - top:.1f}" '
                                 f'fill="{colour}"><title>{escape(name)} {escape(labels[index])}: '
                                 f'{escape(shown(value))}{escape(unit)}</title></rect>')
        else:
            drawn = [(x(i), y(v)) for i, v in enumerate(points) if v is not None]
            if drawn:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                             + " ".join(f"{px:.1f},{py:.1f}" for px, py in drawn) + '"/>')
                parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in drawn]
        parts.append(_legend(number, name, colour))
    for number, (name, value) in enumerate(references.items(), start=len(series)):
        colour = COLOURS[number % len(COLOURS)]
        parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" y2="{y(value):.1f}" '
                     f'stroke="{colour}" stroke-dasharray="6 4"/>')
        parts.append(_legend(number, f"{name} ({shown(value)}{unit})", colour))
    parts.append("</svg>")
    return "".join(parts)


def _legend(number: int, name: str, colour: str) -> str:
    left = LEFT + 170 * number
    return (f'<rect x="{left}" y="{HEIGHT - 22}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 14}" y="{HEIGHT - 13}">{escape(name)}</text>')


def data_uri(svg: str) -> str:
    """`svg` as a data: URL, for a Markdown image."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def chart_markdown(alt: str, svg: str) -> str:
    """`svg` as a Markdown image: the Prefect UI draws it in a Markdown artifact (an image artifact would also
    print its whole data: URL under the picture)."""
    return f"![{alt.replace(']', ')')}]({data_uri(svg)})"
