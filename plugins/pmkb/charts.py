"""Chart geometry for static, accessible SVG charts (rendered by templates/_charts.j2).

Nothing here draws: it computes bars, points and ticks as plain data, so the
template owns the markup and CSS classes give colours that follow the palette.
"""

from __future__ import annotations

import math

W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 46


def months_between(first: str, last: str) -> list[str]:
    """'2024-11', '2025-02' -> every month from the first to the last, so time reads evenly."""
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * exp:
            return m * exp
    return 10 * exp


def _ticks(top: float, n: int = 4) -> list[dict]:
    plot_h = H - TOP - BOTTOM
    return [{"y": TOP + plot_h - plot_h * i / n, "label": _fmt(top * i / n)} for i in range(n + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() or v >= 10 else f"{v:.1f}"


def stacked_bars(title: str, desc: str, categories: list[str], series: list[tuple[str, str, list[float]]]) -> dict:
    """series: (name, css class, one value per category). Labels thin out when crowded."""
    totals = [sum(s[2][i] for s in series) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0))
    whole = all(float(v).is_integer() for s in series for v in s[2])
    ticks = _ticks(top, int(top) if whole and top <= 4 else 4)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(categories), 1)
    bar_w = max(step * 0.7, 1)
    every = max(1, math.ceil(len(categories) / 12))
    bars, labels = [], []
    for i, cat in enumerate(categories):
        x = LEFT + i * step + (step - bar_w) / 2
        y = TOP + plot_h
        for name, css, values in series:
            v = values[i]
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            bars.append({"x": round(x, 1), "y": round(y, 1), "w": round(bar_w, 1), "h": round(h, 1), "css": css,
                         "label": f"{cat}: {name} {_fmt(v)}"})
        if i % every == 0:
            labels.append({"x": round(x + bar_w / 2, 1), "y": H - BOTTOM + 14, "text": cat})
    return {"kind": "bars", "title": title, "desc": desc, "w": W, "h": H, "bars": bars, "labels": labels,
            "ticks": ticks, "left": LEFT, "right": W - RIGHT,
            "legend": [(name, css) for name, css, _ in series]}


def line(title: str, desc: str, categories: list[str], values: list[float | None], css: str = "pmkb-line") -> dict:
    present = [v for v in values if v is not None]
    top = _nice_max(max(present, default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(categories) - 1, 1)
    points, labels = [], []
    every = max(1, math.ceil(len(categories) / 12))
    for i, (cat, v) in enumerate(zip(categories, values)):
        x = LEFT + (i * step if len(categories) > 1 else plot_w / 2)
        if v is not None:
            points.append({"x": round(x, 1), "y": round(TOP + plot_h - plot_h * v / top, 1), "label": f"{cat}: {_fmt(v)}"})
        if i % every == 0:
            labels.append({"x": round(x, 1), "y": H - BOTTOM + 14, "text": cat})
    path = " ".join(f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(points))
    return {"kind": "line", "title": title, "desc": desc, "w": W, "h": H, "points": points, "path": path,
            "labels": labels, "ticks": _ticks(top), "left": LEFT, "right": W - RIGHT, "css": css, "legend": []}
