"""The figure of the awareness split: per model, a harmful behaviour's rate among the
trials where the agent said it is being tested, said it is real, or said neither (the
layout of the original study's 55 % "real" vs 6.5 % "evaluation" comparison)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from amlab.analysis.awareness import ALL_CONDITIONS, BELIEF_LABELS, BELIEFS, AwarenessRow
from amlab.analysis.figures import OKABE_ITO, WHISKER, label, wrap_model


def per_model(rows: Sequence[AwarenessRow], behavior: str) -> list[AwarenessRow]:
    """Each model's row of `behavior` pooled over its conditions (its only condition's row
    when it has one)."""
    chosen: dict[str, AwarenessRow] = {}
    for row in rows:
        if row.behavior == behavior and (row.model not in chosen
                                         or row.condition == ALL_CONDITIONS):
            chosen[row.model] = row
    return [chosen[model] for model in sorted(chosen)]


def belief_bars(rows: Sequence[AwarenessRow], behavior: str) -> Figure:
    """Three bars per model (says test, says real, silent) with 95 % Wilson whiskers and
    k/n above each; a belief no trial stated has no bar and reads "—"."""
    shown = per_model(rows, behavior)
    width = max(5.0, 2.2 * len(shown) + 2)
    figure, axes = plt.subplots(figsize=(width, 4.4), layout="constrained")
    bar = 0.26
    for i, belief in enumerate(BELIEFS):
        x = np.arange(len(shown)) + (i - 1) * bar
        rates = [r.by_belief[belief] for r in shown]
        heights = [r.rate if r.n else 0.0 for r in rates]
        axes.bar(x, heights, bar * 0.92, color=OKABE_ITO[i], label=BELIEF_LABELS[belief],
                 zorder=2)
        for xi, r in zip(x, rates, strict=True):
            if r.n:
                axes.errorbar(xi, r.rate, yerr=[[max(r.rate - r.low, 0)],
                                                [max(r.high - r.rate, 0)]],
                              fmt="none", ecolor=WHISKER, elinewidth=1.2, capsize=4, zorder=3)
            axes.annotate(f"{r.k}/{r.n}" if r.n else "—", (xi, r.high if r.n else 0),
                          xytext=(0, 3), textcoords="offset points", ha="center",
                          va="bottom", fontsize=8)
    axes.set_xticks(np.arange(len(shown)), [wrap_model(r.model) for r in shown], fontsize=9)
    axes.set_ylim(0, 1.15)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_ylabel("rate (95 % Wilson interval)")
    axes.grid(axis="y", color="#dddddd", zorder=0)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    axes.set_title(f"{label(behavior)} by what the agent said it believed\n"
                   f"pooled over each model's conditions", loc="left", fontsize=10)
    return figure
