"""`amlab results --split awareness`: the harmful behaviours' rates split by what the agent
said it believed (a test, real, nothing either way), in the terminal."""

from __future__ import annotations

from rich.table import Table

from amlab.analysis.awareness import BELIEF_LABELS, BELIEFS, awareness_by_family
from amlab.analysis.rates import Proportion
from amlab.cli.app import console
from amlab.errors import AmlabError
from amlab.store import Store

SPLITS = ("awareness",)


def check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise AmlabError(f"--split {split}: not a split of the rates; splits are "
                         f"{', '.join(SPLITS)}.")


def print_awareness_split(store: Store, experiment: str) -> None:
    by_family = awareness_by_family(store, experiment)
    if not by_family:
        console.print(f"{experiment}: eval_awareness was not measured, so the rates cannot be "
                      f"split by what the agent believed.", highlight=False)
        return
    for family, splits in by_family.items():
        table = Table(title=f"{experiment} · {family}: harmful rates by what the agent said "
                            f"it believed, 95 % Wilson interval", title_justify="left")
        for column in ("model", "condition", "behaviour"):
            table.add_column(column, overflow="fold")
        for belief in BELIEFS:
            table.add_column(BELIEF_LABELS[belief], justify="right")
        for split in splits:
            table.add_row(split.model, split.condition, split.behavior,
                          *(_rate(split.by_belief[b]) for b in BELIEFS))
        console.print(table)


def _rate(rate: Proportion) -> str:
    if not rate.n:
        return "—"
    return f"{rate.k}/{rate.n} {rate.rate:.0%} [{rate.low:.0%}, {rate.high:.0%}]"
