"""A small SVG line plot with log-log axes, for the benchmark report (no matplotlib)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

__all__ = ["line_plot"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf")
_MARKERS = ("circle", "square", "diamond", "triangle")
_PLOT_W, _H = 370, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 200, 40, 50


def _decades(low: float, high: float) -> tuple[int, int]:
    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return lo, hi if hi > lo else lo + 1


def _tick_label(exponent: int) -> str:
    value = 10.0 ** exponent
    if -3 <= exponent <= 6:
        return f"{value:,.{max(0, -exponent)}f}"
    return f"1e{exponent}"


def _marker(kind: str, x: float, y: float, color: str) -> str:
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>'
    if kind == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{color}"/>'
    if kind == "diamond":
        points = f"{x:.1f},{y - 4:.1f} {x + 4:.1f},{y:.1f} {x:.1f},{y + 4:.1f} {x - 4:.1f},{y:.1f}"
    else:
        points = f"{x:.1f},{y - 4:.1f} {x + 4:.1f},{y + 3:.1f} {x - 4:.1f},{y + 3:.1f}"
    return f'<polygon points="{points}" fill="{color}"/>'


def line_plot(title: str, x_label: str, y_label: str,
              series: Mapping[str, Sequence[tuple[float, float]]],
              references: Mapping[str, float] | None = None) -> str:
    """An SVG document plotting each series (name -> ``(x, y)`` points) on log-log axes.

    Points with a non-positive or non-finite coordinate cannot be drawn on log
    axes and are left out; a series with no point left is listed in the legend
    as "(no data)".  ``references`` (label -> y) are drawn as dashed horizontal
    lines, e.g. targets.
    """
    refs = {k: v for k, v in (references or {}).items() if v > 0 and math.isfinite(v)}
    clean = {name: sorted((x, y) for x, y in points
                          if x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y))
             for name, points in series.items()}
    xs = [x for pts in clean.values() for x, _ in pts] or [1.0, 10.0]
    ys = [y for pts in clean.values() for _, y in pts] + list(refs.values()) or [1.0, 10.0]
    x_lo, x_hi = _decades(min(xs), max(xs))
    y_lo, y_hi = _decades(min(ys), max(ys))
    longest = max((len(name) + 10 for name in series), default=0)  # legend, "(no data)"
    plot_w, plot_h = _PLOT_W, _H - _TOP - _BOTTOM
    width = _LEFT + plot_w + max(_RIGHT, 50 + round(6.2 * longest))

    def px(x: float) -> float:
        return _LEFT + (math.log10(x) - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - (math.log10(y) - y_lo) / (y_hi - y_lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_H}" '
           f'viewBox="0 0 {width} {_H}" font-family="sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>",
           f'<rect width="{width}" height="{_H}" fill="white"/>',
           f'<text x="{_LEFT + plot_w / 2:.0f}" y="22" text-anchor="middle" font-size="14">'
           f"{escape(title)}</text>"]
    for exp in range(min(x_lo, y_lo), max(x_hi, y_hi)):  # minor grid: 2..9 x 10^exp
        for m in range(2, 10):
            if x_lo <= exp < x_hi:
                x = px(m * 10.0 ** exp)
                out.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" '
                           f'y2="{_TOP + plot_h}" stroke="#f2f2f2"/>')
            if y_lo <= exp < y_hi:
                y = py(m * 10.0 ** exp)
                out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" '
                           f'y2="{y:.1f}" stroke="#f2f2f2"/>')
    for exp in range(x_lo, x_hi + 1):
        x = px(10.0 ** exp)
        out.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
                   f"{_tick_label(exp)}</text>")
    for exp in range(y_lo, y_hi + 1):
        y = py(10.0 ** exp)
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{_tick_label(exp)}</text>")
    out.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" '
               f'fill="none" stroke="#444"/>')
    out.append(f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_H - 12}" text-anchor="middle">'
               f"{escape(x_label)} (log)</text>")
    out.append(f'<text transform="translate(16 {_TOP + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)} (log)</text>')
    for label, value in refs.items():
        y = py(value)
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" '
                   f'stroke="#777" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{_LEFT + 4}" y="{y - 4:.1f}" fill="#555">{escape(label)}</text>')
    for i, (name, points) in enumerate(clean.items()):
        color, marker = _COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)]
        if len(points) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                       f'stroke-width="2"/>')
        out.extend(_marker(marker, px(x), py(y), color) for x, y in points)
        ly = _TOP + 10 + i * 18
        lx = _LEFT + plot_w + 14
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 20}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="2"/>')
        out.append(_marker(marker, lx + 10, ly, color))
        label = name if points else f"{name} (no data)"
        out.append(f'<text x="{lx + 26}" y="{ly + 4}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
