"""Plots for the HTML report, as inline SVG strings (matplotlib, the ``report`` extra).

Every function returns an ``<svg>`` element (no XML prolog) or raises
:class:`~convbert_export.errors.MissingDependencyError` with the one-line install hint, which
the HTML renderer prints in place of the plots. matplotlib is imported on first use with the
non-interactive Agg backend; nothing here touches a display or the network.
"""

from __future__ import annotations

import io
import math
import re

from ..errors import MissingDependencyError

MISSING = "plots need matplotlib: pip install 'convbert-export[report]' (the JSON and Markdown reports do not)"


def available() -> bool:
    try:
        _pyplot()
    except MissingDependencyError:
        return False
    return True


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(MISSING) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "convbert-export"})
    return plt


def _svg(fig) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)
    return text


def _figure(width: float = 5.2, height: float = 2.6):
    plt = _pyplot()
    return plt.subplots(figsize=(width, height))


def _atol_line(draw, ax, atol: float | None) -> None:
    """The tolerance as a dashed line (not when it is effectively off, as for int8)."""
    if atol and 0 < atol < 1e8:
        draw(atol, color="#c44e52", linestyle="--", linewidth=1, label=f"atol {atol:g}")
        ax.legend(frameon=False)


def error_histogram(edges: list[float], counts: list[int], zeros: int, atol: float | None, title: str) -> str:
    """Absolute errors on a log axis; the exact matches (error 0) are counted in the title."""
    fig, ax = _figure()
    step = 4  # the report's 20 bins per decade drawn as 5, which reads better
    counts = [sum(counts[i:i + step]) for i in range(0, len(counts), step)]
    edges = [edges[min(i, len(edges) - 1)] for i in range(0, len(edges) + step - 1, step)][: len(counts) + 1]
    lefts = edges[:-1]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    ax.bar(lefts, counts, width=widths, align="edge", color="#4c72b0", edgecolor="none")
    ax.set_xscale("log")
    if any(counts):
        ax.set_yscale("log")
    _atol_line(ax.axvline, ax, atol)
    ax.set_xlabel("|export - reference|")
    ax.set_ylabel("values")
    ax.set_title(f"{title} ({zeros} exactly equal)" if zeros else title)
    return _svg(fig)


def error_by_length(points: list[tuple[int, float]], atol: float | None, title: str) -> str:
    """Max absolute error per validation case against the case's sequence length."""
    fig, ax = _figure()
    xs = [p[0] for p in points]
    ys = [max(p[1], 1e-12) for p in points]
    ax.scatter(xs, ys, s=14, color="#4c72b0")
    ax.set_yscale("log")
    _atol_line(ax.axhline, ax, atol)
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("max |diff| in the case")
    ax.set_title(title)
    return _svg(fig)


def delta_bars(models: list[str], metrics: list[str], deltas: dict, intervals: dict, title: str) -> str:
    """Grouped bars: per metric, each variant's difference to the reference, with its interval."""
    fig, ax = _figure(5.6, 2.8)
    count = max(len(models), 1)
    width = 0.8 / count
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    for j, model in enumerate(models):
        xs = [i + (j - (count - 1) / 2) * width for i in range(len(metrics))]
        ys = [_finite(deltas[model].get(m)) for m in metrics]
        errs = [[_yerr(y, intervals[model].get(m), 0) for y, m in zip(ys, metrics)],
                [_yerr(y, intervals[model].get(m), 1) for y, m in zip(ys, metrics)]]
        ax.bar(xs, ys, width=width, label=model, color=colors[j % len(colors)], yerr=errs, capsize=2,
               error_kw={"linewidth": 0.8})
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics)
    ax.set_ylabel("variant - reference")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def latency_by_batch(series: dict[str, list[tuple[int, float]]], title: str) -> str:
    """Latency (ms) against batch size, one line per model."""
    fig, ax = _figure()
    for name, points in series.items():
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency p50 (ms)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def _finite(value) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def _yerr(y: float, interval, side: int) -> float:
    if not interval or interval[0] is None or not all(math.isfinite(v) for v in interval):
        return 0.0
    return max(0.0, y - interval[0]) if side == 0 else max(0.0, interval[1] - y)
