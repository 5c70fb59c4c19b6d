"""Which cells a report's headline figures show, chosen without looking at the outcomes.

With declared hypotheses, each declared contrast is drawn: cell A beside cell B for every
model. Without, the bar charts show the experiment's first condition: each factor at the
level the experiment file lists first (`first_condition`). A cell is never chosen for its
rate: a headline picked as the highest of many cells overstates the rate it reports.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

import amlab.analysis.figures as figures


def first_condition(rates: pd.DataFrame, factors: Sequence[str],
                    declared: dict[str, list[str]]) -> str:
    """The stored condition whose levels come first in the experiment file: compared factor
    by factor in `factors` order, by the position of its level in the file (levels the
    file does not list, such as the monitor's, after those it does, alphabetically)."""
    def order(cell: dict[str, object]) -> tuple[tuple[int, str], ...]:
        keys = []
        for factor in factors:
            level = str(cell[factor])
            listed = declared.get(factor, [])
            keys.append((listed.index(level) if level in listed else len(listed), level))
        return tuple(keys)

    cells = rates.drop_duplicates("condition").to_dict("records")
    return str(min(cells, key=order)["condition"])


def contrast_chart(frame: pd.DataFrame, behavior: str, condition_a: str, condition_b: str,
                   title: str) -> Figure:
    """Per model, the rate of `behavior` in cell A and in cell B side by side, each with its
    95 % Wilson interval and k/n."""
    import matplotlib.pyplot as plt

    rows = frame[frame["behavior"] == behavior]
    models = sorted({str(m) for m in rows["model"]})
    width = max(5.0, 1.6 * len(models) + 2.5)
    figure, axes = plt.subplots(figsize=(width, 4.4), layout="constrained")
    x = np.arange(len(models))
    for offset, (side, condition, colour) in zip(
            (-0.2, 0.2), (("A", condition_a, figures.OKABE_ITO[0]),
                          ("B", condition_b, figures.OKABE_ITO[1])), strict=True):
        cells = rows[rows["condition"] == condition].set_index("model")
        rate = np.array([float(cells.loc[m, "rate"]) if m in cells.index else np.nan
                         for m in models])
        low = np.array([float(cells.loc[m, "low"]) if m in cells.index else np.nan
                        for m in models])
        high = np.array([float(cells.loc[m, "high"]) if m in cells.index else np.nan
                         for m in models])
        axes.bar(x + offset, np.nan_to_num(rate), width=0.38, color=colour,
                 edgecolor="white", zorder=2, label=f"{side}: {condition.replace(',', ', ')}")
        errors = np.clip(np.vstack([rate - low, high - rate]), 0, None)
        axes.errorbar(x + offset, rate, yerr=errors, fmt="none", ecolor=figures.WHISKER,
                      elinewidth=1.3, capsize=5, zorder=3)
        for xi, m, h in zip(x, models, high, strict=True):
            if m in cells.index:
                axes.annotate(f"{int(cells.loc[m, 'k'])}/{int(cells.loc[m, 'n'])}",
                              (xi + offset, 0 if np.isnan(h) else h), xytext=(0, 3),
                              textcoords="offset points", ha="center", va="bottom",
                              fontsize=8)
    axes.set_xticks(x, [figures.wrap_model(m) for m in models], fontsize=9)
    axes.set_ylim(0, 1.15)
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_ylabel(f"{figures.label(behavior)} rate (95 % Wilson interval)")
    axes.grid(axis="y", color="#dddddd", zorder=0)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8, frameon=False)
    # The title is the hypothesis's name, written by the user: `$` would start mathtext.
    axes.set_title(textwrap.fill(title.replace("$", r"\$"), width=int(width * 10)), loc="left",
                   fontsize=10)
    return figure
