"""The report's plot: accuracy against mean tokens per problem, one marker per configuration.

Each configuration (strategy, budget) gets one colour, shared across runs; each run gets one marker shape.
Error bars are Wilson 95% intervals; the dashed step line is each run's Pareto frontier (the best accuracy
reachable for at most that many tokens per problem).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed, safe in threads and on servers

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ponder.bench.stats import ConfigStats

MARKERS = ["o", "s", "^", "D", "v", "P"]
FONT = 9
LABEL_WIDTH = 100  # characters of a legend line: what fits the 8-inch figure at FONT points


def _tick(x: float, _pos) -> str:
    return f"{x:,.0f}" if x >= 1 else f"{x:g}"


def wrap_label(label: str, width: int = LABEL_WIDTH) -> str:
    """A configuration's label on lines of at most ``width`` characters, broken after its commas
    (a spec has no spaces for textwrap to break at; a piece longer than ``width`` keeps a line)."""
    lines: list[str] = []
    for piece in label.replace(",", ",\0").split("\0"):
        if lines and len(lines[-1]) + len(piece) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return "\n".join(lines)


def plot_accuracy_vs_tokens(series: list[tuple[str, list[ConfigStats]]], title: str, path: Path) -> Path:
    """series: [(run name, its configurations)], drawn on one axes. Writes a PNG and returns its path."""
    fig = accuracy_vs_tokens_figure(series, title)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def accuracy_vs_tokens_figure(series: list[tuple[str, list[ConfigStats]]], title: str) -> Figure:
    labels = list(dict.fromkeys(c.label for _, cs in series for c in cs))
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    color = {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}
    # the legend goes below the axes (long specs would squeeze them from the side): one entry per
    # configuration, a long one wrapped to the figure's width
    shown = {lab: wrap_label(lab) for lab in labels}
    rows = sum(shown[lab].count("\n") + 1 for lab in labels)
    rows += (len(series) if len(series) > 1 else 0) + len(series) + 1
    fig, ax = plt.subplots(figsize=(8, 4.6 + 0.2 * rows), dpi=150, layout="constrained")
    x_max = max(max(c.mean_tokens, 1.0) for _, cs in series for c in cs) * 1.35
    for r, (run, stats) in enumerate(series):
        marker = MARKERS[r % len(MARKERS)]
        # several runs: nudge each run's points sideways by ~1.5% (a few pixels on the log axis) so the
        # error bars of one configuration do not hide each other; exact values are in the tables
        dodge = 1.015 ** (r - (len(series) - 1) / 2)
        for c in stats:
            x, y = max(c.mean_tokens, 1.0) * dodge, 100 * c.accuracy
            yerr = [[y - 100 * c.ci_low], [100 * c.ci_high - y]]
            ax.errorbar([x], [y], yerr=yerr, fmt=marker, color=color[c.label], markersize=7,
                        markeredgecolor="black", markeredgewidth=0.6, capsize=3, elinewidth=1.2, zorder=3)
        front = sorted((max(c.mean_tokens, 1.0) * dodge, 100 * c.accuracy) for c in stats if c.pareto)
        if front:
            front.append((x_max, front[-1][1]))  # the frontier holds on to the right edge
            xs, ys = zip(*front)
            ax.step(xs, ys, where="post", color="0.35", linestyle=(0, (4, 2)) if r == 0 else (0, (1, 1.5)),
                    linewidth=1.2, zorder=2)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())
    xs_all = [max(c.mean_tokens, 1.0) for _, cs in series for c in cs]
    ax.set_xlim(min(xs_all) / 1.35, x_max)
    lows = [100 * c.ci_low for _, cs in series for c in cs]
    highs = [100 * c.ci_high for _, cs in series for c in cs]
    ax.set_ylim(max(-2.0, min(lows) - 5), min(102.0, max(highs) + 5))
    ax.set_xlabel("mean tokens per problem (prompt + completion, log scale)", fontsize=10)
    ax.set_ylabel("accuracy (%)", fontsize=10)
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=10)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, which="major", alpha=0.3)

    handles = [Line2D([], [], marker="o", linestyle="", color=color[lab], markeredgecolor="black",
                      markeredgewidth=0.6, markersize=7, label=shown[lab]) for lab in labels]
    if len(series) > 1:
        handles += [Line2D([], [], marker=MARKERS[r % len(MARKERS)], linestyle="", color="0.6",
                           markeredgecolor="black", markersize=7, label=f"run: {run}")
                    for r, (run, _) in enumerate(series)]
    for r, (run, _) in enumerate(series):
        style = (0, (4, 2)) if r == 0 else (0, (1, 1.5))
        name = "Pareto frontier" + (f" ({run})" if len(series) > 1 else "")
        handles.append(Line2D([], [], color="0.35", linestyle=style, linewidth=1.2, label=name))
    handles.append(Line2D([], [], marker="|", linestyle="", color="0.35", markersize=12,
                          label="bars: Wilson 95% CI"))
    # "outside": constrained layout makes room for the legend below the axes, so it covers no point
    fig.legend(handles=handles, loc="outside lower center", fontsize=FONT, frameon=False,
               title="configuration", title_fontsize=FONT, alignment="left", ncols=1)
    return fig
