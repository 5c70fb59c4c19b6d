"""Figures: rates per model with Wilson whiskers, heat maps over two factors, and a forest
plot of factor effects. Each function returns a matplotlib Figure; `save` writes PNG and SVG.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies); heat maps use `cividis`, which is perceptually uniform for them too.
"""

from __future__ import annotations

import base64
import ctypes
import multiprocessing
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from amlab.analysis.effects import Difference
from amlab.models.providers import short_name

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000")
WHISKER = "#222222"

plt.rcParams.update({
    "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
    # SVG text stays text (searchable, small, quick to write); viewers fall back to a sans.
    "svg.fonttype": "none", "svg.hashsalt": "amlab",
})


def bar_chart(frame: pd.DataFrame, behavior: str, condition: str, title: str = "") -> Figure:
    """One bar per model: the rate of `behavior` in `condition`, with its 95 % Wilson
    interval as a whisker and k/n under the bar."""
    rows = frame[(frame["behavior"] == behavior) & (frame["condition"] == condition)]
    rows = rows.sort_values("model")
    models = [str(m) for m in rows["model"]]
    width = max(4.5, 1.1 * len(models) + 2)
    figure, axes = plt.subplots(figsize=(width, 4.2), layout="constrained")
    x = np.arange(len(models))
    rate = rows["rate"].to_numpy(dtype=float)
    colours = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(models))]
    axes.bar(x, rate, color=colours, width=0.62, edgecolor="white", zorder=2)
    # Clipped: at 0 % and 100 % rounding can make an interval end cross the rate.
    errors = np.clip(np.vstack([rate - rows["low"].to_numpy(float),
                                rows["high"].to_numpy(float) - rate]), 0, None)
    axes.errorbar(x, rate, yerr=errors, fmt="none", ecolor=WHISKER, elinewidth=1.4, capsize=6,
                  capthick=1.4, zorder=3)
    for xi, r, high in zip(x, rate, rows["high"], strict=True):
        axes.annotate(f"{r:.0%}", (xi, high), xytext=(0, 4), textcoords="offset points",
                      ha="center", va="bottom", fontsize=10, fontweight="bold")
    # The model on its own lines (long names break at '/'), k/n under it.
    axes.set_xticks(x, [f"{wrap_model(m)}\n{k}/{n}" for m, k, n in
                        zip(models, rows["k"], rows["n"], strict=True)], fontsize=9)
    pad = 0.5 if len(models) < 3 else 0.0  # one or two bars stay bar-shaped, centred
    axes.set_xlim(-0.5 - pad, len(models) - 0.5 + pad)
    axes.set_ylim(0, 1.12)
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_ylabel("rate (95 % Wilson interval)")  # the behaviour is in the title
    axes.grid(axis="y", color="#dddddd", zorder=0)
    # The condition can be long (one level per factor): wrapped to the figure's width.
    subtitle = textwrap.fill(condition.replace(",", ", "), width=int(width * 11))
    axes.set_title(title or f"{label(behavior)} by model\n{subtitle}", loc="left", fontsize=10)
    return figure


def heatmap(frame: pd.DataFrame, behavior: str, rows_factor: str, columns_factor: str,
            title: str = "") -> Figure:
    """Rate of `behavior` over two factors (pooled over the others), one panel per model."""
    data = frame[(frame["behavior"] == behavior) & frame[rows_factor].notna()
                 & frame[columns_factor].notna()]
    pooled = data.groupby(["model", rows_factor, columns_factor])[["k", "n"]].sum()
    models = sorted({str(m) for m in data["model"]})
    row_levels = sorted({str(v) for v in data[rows_factor]})
    column_levels = sorted({str(v) for v in data[columns_factor]})
    panel_w = max(2.6, 1.15 * len(column_levels) + 0.6)
    panel_h = max(1.8, 0.62 * len(row_levels) + 1.2)
    columns = min(len(models), 3)
    lines = -(-len(models) // columns)
    figure, axes_grid = plt.subplots(lines, columns, figsize=(panel_w * columns + 1.6,
                                                              panel_h * lines + 0.8),
                                     squeeze=False, layout="constrained")
    image = None
    for index, axes in enumerate(axes_grid.flat):
        if index >= len(models):
            axes.set_visible(False)
            continue
        model = models[index]
        values = np.full((len(row_levels), len(column_levels)), np.nan)
        for i, r in enumerate(row_levels):
            for j, c in enumerate(column_levels):
                if (model, r, c) in pooled.index:
                    k, n = pooled.loc[(model, r, c)]
                    values[i, j] = k / n if n else np.nan
                    # cividis is light from about 45 %: dark text there, light text below.
                    shade = "white" if (n and k / n < 0.45) else "black"
                    axes.text(j, i, f"{k / n:.0%}\n{k}/{n}" if n else "n = 0", ha="center",
                              va="center", fontsize=8, color=shade if n else "black")
        image = axes.imshow(values, cmap="cividis", vmin=0, vmax=1, aspect="auto")
        axes.set_xticks(range(len(column_levels)), column_levels, rotation=25, ha="right",
                        fontsize=8)
        # Row levels only on the left of each line of panels: they repeat across it.
        first_column = index % columns == 0
        axes.set_yticks(range(len(row_levels)), row_levels if first_column else [], fontsize=8)
        axes.set_xlabel(columns_factor, fontsize=9)
        if first_column:
            axes.set_ylabel(rows_factor, fontsize=9)
        axes.set_title(short_name(model), fontsize=9)
        for spine in axes.spines.values():
            spine.set_visible(False)
    if image is not None:
        bar = figure.colorbar(image, ax=axes_grid, shrink=0.8, format=PercentFormatter(1.0, 0))
        bar.set_label(f"{label(behavior)} rate")
    figure.suptitle(title or f"{label(behavior)} by {rows_factor} × {columns_factor}",
                    x=0.01, ha="left", fontsize=11)
    return figure


def forest_plot(effects: Sequence[Difference], title: str = "") -> Figure:
    """Each factor effect as a point with its 95 % interval, in percentage points;
    filled where Benjamini–Hochberg q < 0.05, hollow otherwise. Effects are grouped by comparison
    (behaviour, factor, level − reference) under a bold heading, one row per model."""
    rows: list[tuple[str, Difference | None]] = []
    group: tuple[str, ...] = ()
    for effect in effects:
        if (effect.behavior, effect.factor, effect.level, effect.reference) != group:
            group = (effect.behavior, effect.factor, effect.level, effect.reference)
            rows.append((f"{label(effect.behavior)} · {effect.factor}: {effect.level} − "
                         f"{effect.reference}", None))
        rows.append((short_name(effect.model), effect))
    height = max(2.2, 0.27 * len(rows) + 1.3)
    figure, axes = plt.subplots(figsize=(8.0, height), layout="constrained")
    y = np.arange(len(rows))[::-1]
    behaviours = sorted({e.behavior for e in effects})
    colour = {b: OKABE_ITO[i % len(OKABE_ITO)] for i, b in enumerate(behaviours)}
    for yi, (_, row) in zip(y, rows, strict=True):
        if row is None:
            continue
        c = colour[row.behavior]
        axes.plot([row.low * 100, row.high * 100], [yi, yi], color=c, linewidth=2)
        axes.plot(row.difference * 100, yi, marker="o", markersize=6, color=c,
                  markerfacecolor=c if row.significant else "white", markeredgewidth=1.6)
    axes.axvline(0, color="#444444", linewidth=1, linestyle="--")
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_yticks(y, [text for text, _ in rows], fontsize=8)
    for tick, (_, row) in zip(axes.get_yticklabels(), rows, strict=True):
        if row is None:
            tick.set_fontweight("bold")
    axes.tick_params(axis="y", length=0)
    axes.set_xlim(-105, 105)
    axes.set_xlabel("difference in rate (percentage points), 95 % interval")
    axes.grid(axis="x", color="#eeeeee")
    handles = [Line2D([], [], color=colour[b], marker="o", linewidth=2, label=label(b))
               for b in behaviours]
    handles += [Line2D([], [], color="#444444", marker="o", linestyle="none",
                       label="BH q < 0.05"),
                Line2D([], [], color="#444444", marker="o", markerfacecolor="white",
                       linestyle="none", label="not significant")]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8,
                frameon=False)
    axes.set_title(title or "Factor effects", loc="left", fontsize=11)
    return figure


def save(figure: Figure, stem: Path) -> tuple[Path, Path]:
    """Write `stem.png` (150 dpi) and `stem.svg`; close the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    # Lay out once, not once per file: layout is most of the cost of a figure with many labels.
    engine = figure.get_layout_engine()
    figure.set_dpi(150)  # measure text at the PNG's resolution, or wide labels get clipped
    if engine is not None:
        engine.execute(figure)
        figure.set_layout_engine("none")
    figure.savefig(png, dpi=150)
    figure.savefig(svg)
    plt.close(figure)
    return png, svg


@dataclass(frozen=True)
class FigureJob:
    """A figure to draw (`draw(*args)`) and where to save it, picklable for a worker."""

    draw: Callable[..., Figure]
    args: tuple[Any, ...]
    stem: Path


def render(job: FigureJob) -> tuple[Path, Path]:
    return save(job.draw(*job.args), job.stem)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel kills the worker when the process that drew the report
    dies, by SIGKILL too, so a killed `amlab report` leaves no worker holding memory, the
    database and the caller's pipes (Linux; elsewhere the pool's own shutdown applies)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def render_all(jobs: Sequence[FigureJob]) -> None:
    """Draw and save the figures, on every core: text layout and rasterising are most of a
    report's time, and the figures are independent. Forked workers inherit the imports."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2:
        for job in jobs:
            render(job)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        # The heat map and forest plot, planned last, are the slowest: start them first.
        list(pool.map(render, reversed(jobs)))


def data_uri(path: Path) -> str:
    """A file as a data URI, for embedding in a self-contained HTML page."""
    kind = {".svg": "image/svg+xml", ".png": "image/png"}[path.suffix]
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def label(behavior: str) -> str:
    return behavior.replace("_", " ").capitalize()


def wrap_model(model: str, width: int = 16) -> str:
    """A model name over several lines, broken after '/' where it is too long for a bar."""
    parts = short_name(model).split("/")
    lines = [""]
    for i, part in enumerate(parts):
        piece = part if i == len(parts) - 1 else part + "/"
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)
