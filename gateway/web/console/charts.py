"""Charts drawn on the server as inline SVG (issue 12 item 3): no JavaScript, no CDN, nothing fetched by the browser.

An intranet console must render without internet access and under a strict Content-Security-Policy (no inline
script, no inline style), so a chart is plain SVG elements whose colours come from classes in the console's own
stylesheet (``.series-0`` … ``.series-5``). Every chart is an ``<svg role="img">`` with a ``<title>`` and a
``<desc>`` summarising it for screen readers; pages also give the figures as a table beside it.

Pure functions of their numbers (no Flask, no store): text is escaped here, and the result is safe markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

_W: Final = 640
_H: Final = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 16, 48


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label (None: no value)."""

    name: str
    values: Sequence[float | None]


def nice_max(value: float) -> float:
    """The axis top: the next 1, 2, 2.5 or 5 × 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _axis(top: float, width: int, height: int) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i / 4
        y = height - _BOTTOM - (height - _TOP - _BOTTOM) * i / 4
        label = f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    return parts


def _labels(labels: Sequence[str], x_of: list[float], height: int) -> list[str]:
    step = max(1, math.ceil(len(labels) / 10))  # at most ~10 labels under the axis
    return [
        f'<text class="tick" x="{x:.1f}" y="{height - _BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, x_of, strict=True))
        if i % step == 0 or i == len(labels) - 1
    ]


def _legend(series: Sequence[Series], height: int) -> list[str]:
    parts, x = [], _LEFT
    for i, s in enumerate(series):
        parts.append(f'<rect class="series-{i % 6}" x="{x}" y="{height - 18}" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{x + 14}" y="{height - 9}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return parts


def _svg(title: str, desc: str, parts: list[str], width: int, height: int) -> Markup:
    body = "".join(parts)
    return Markup(  # noqa: S704 - every text above went through html.escape
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="c-{id(parts)}-t" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="c-{id(parts)}-t">{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>{body}</svg>"
    )


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, width: int = _W, height: int = _H
) -> Markup:
    """Stacked bars, one per label (days, agencies, buckets)."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = plot_w / max(1, len(labels))
    bar = max(2.0, slot * 0.7)
    parts = _axis(top, width, height)
    x_of = [_LEFT + slot * (i + 0.5) for i in range(len(labels))]
    for i, x in enumerate(x_of):
        base = height - _BOTTOM
        for k, s in enumerate(series):
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(
                f'<rect class="series-{k % 6}" x="{x - bar / 2:.1f}" y="{base:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}"><title>{escape(labels[i])} · {escape(s.name)}: {value:g}</title></rect>'
            )
    parts += _labels(labels, x_of, height) + _legend(series, height)
    return _svg(title, _describe(labels, series), parts, width, height)


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, width: int = _W, height: int = _H
) -> Markup:
    """Lines over labels (a share or a count over days); a None value breaks the line."""
    top = nice_max(max((v for s in series for v in s.values if v is not None), default=0))
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = plot_w / max(1, len(labels))
    x_of = [_LEFT + slot * (i + 0.5) for i in range(len(labels))]
    parts = _axis(top, width, height)
    for k, s in enumerate(series):
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            y = height - _BOTTOM - plot_h * value / top
            runs[-1].append(f"{x_of[i]:.1f},{y:.1f}")
            parts.append(
                f'<circle class="series-{k % 6}" cx="{x_of[i]:.1f}" cy="{y:.1f}" r="2.5">'
                f"<title>{escape(labels[i])} · {escape(s.name)}: {value:g}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline class="line series-{k % 6}" points="{" ".join(run)}"/>')
    parts += _labels(labels, x_of, height) + _legend(series, height)
    return _svg(title, _describe(labels, series), parts, width, height)


def _describe(labels: Sequence[str], series: Sequence[Series]) -> str:
    """A short summary for screen readers: each series' total and its highest point."""
    out = []
    for s in series:
        values = [(v, labels[i]) for i, v in enumerate(s.values) if v is not None]
        if not values:
            continue
        peak = max(values)
        out.append(f"{s.name}: total {sum(v for v, _ in values):g}, highest {peak[0]:g} ({peak[1]})")
    return "; ".join(out) or "no data"


__all__ = ["Series", "bar_chart", "line_chart", "nice_max"]
