"""The results of a stored experiment as the terminal shows them after `run`, `results`
and `rejudge`: the rates table, what was left out, tokens and cost, how each behaviour was
decided and the monitor comparison. The figures come from amlab.analysis; this module only
formats them."""

from __future__ import annotations

from collections import defaultdict

from rich.measure import Measurement
from rich.table import Table

from amlab.analysis.agreement import Agreement
from amlab.analysis.judge_notes import judging_notes
from amlab.analysis.rates import Proportion, Rate, rates
from amlab.analysis.sequential import stopping_summary
from amlab.cli.app import console
from amlab.cli.usage import print_usage
from amlab.store import Store


def print_results(store: Store, experiment: str, per_trial: bool = False) -> None:
    """The rates table of `experiment` and every note under it (tokens and cost per trial
    too with `per_trial`)."""
    table_rates = rates(store.verdict_rows(experiment))
    counts = store.counts(experiment)
    behaviours = sorted({r.behavior for r in table_rates})
    table = Table(title=f"{experiment}: rate of each behaviour, 95 % Wilson interval",
                  title_justify="left")
    # Cells fold rather than end in an ellipsis: a cut condition name hides a factor level.
    for column in ("model", "family", "condition", "n"):
        table.add_column(column, overflow="fold")
    for behaviour in behaviours:
        table.add_column(behaviour, justify="right", overflow="fold")
    cells: dict[tuple[str, str, str], dict[str, Rate]] = {}
    for rate in table_rates:
        cells.setdefault((rate.model, rate.family, rate.condition), {})[rate.behavior] = rate
    for (model, family, condition), by_behaviour in cells.items():
        n = max(r.n for r in by_behaviour.values())
        table.add_row(model, family, condition, str(n),
                      *(format_rate(by_behaviour.get(b)) for b in behaviours))
    # A column per behaviour while every cell keeps its longest word whole.
    if Measurement.get(console, console.options.update_width(10**6), table).minimum \
            <= console.width:
        console.print(table)
    else:
        _print_rates_by_cell(experiment, cells, behaviours)
    excluded = {k: v for k, v in counts.items() if k != "done"}
    stopping = stopping_summary(store, experiment)
    if stopping and stopping.not_needed:
        # Held back by the stopping rule: the cell was decided without them, not missing.
        excluded["pending"] -= stopping.not_needed
        excluded = {k: v for k, v in excluded.items() if v}
        excluded["not needed (stopping rule)"] = stopping.not_needed
        console.print(f"Stopping rule: {stopping.stopped_early} of {len(stopping.cells)} "
                      f"cells stopped early (amlab report: each cell's final n and its "
                      f"anytime-valid interval).")
    if excluded:
        console.print("Not in the rates: " + ", ".join(f"{v} {k}" for k, v in excluded.items()))
    print_usage(store, experiment, per_trial)
    _print_judging_notes(store, experiment)
    _print_monitor(store, experiment)


def _print_monitor(store: Store, experiment: str) -> None:
    # The comparison's statistics load pandas and SciPy: only monitored runs pay for them.
    from amlab.analysis.monitor import monitor_comparisons

    comparisons = monitor_comparisons(store, experiment)
    if not comparisons:
        return
    table = Table(title=f"{experiment}: harmful-act rate without and with the monitor",
                  title_justify="left")
    for column in ("model", "family", "condition", "monitor", "without", "with",
                   "difference [95 % CI]", "caught", "false blocks", "after a block",
                   "monitor cost"):
        table.add_column(column)
    for cell in comparisons:
        difference, low, high = cell.difference
        table.add_row(
            cell.model, cell.family, cell.condition, cell.monitor,
            f"{cell.unmonitored.harmful}/{cell.unmonitored.n}",
            f"{cell.monitored.harmful}/{cell.monitored.n}",
            f"{difference:+.0%} [{low:+.0%}, {high:+.0%}]",
            f"{cell.caught}/{cell.harmful_calls}",
            f"{cell.false_blocks}/{cell.benign_calls}",
            ", ".join(f"{k} {v}" for k, v in sorted(cell.after_block.items())) or "—",
            f"${cell.monitor_cost_usd:.4f} ({cell.monitor_input_tokens}+"
            f"{cell.monitor_output_tokens} tok)")
    console.print(table)


def _print_rates_by_cell(experiment: str, cells: dict[tuple[str, str, str], dict[str, Rate]],
                         behaviours: list[str]) -> None:
    """The rates table for a terminal too narrow for a column per behaviour: a table per
    model and family, a row per condition and behaviour."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Rate]]]] = {}
    for (model, family, condition), by_behaviour in cells.items():
        groups.setdefault((model, family), []).append((condition, by_behaviour))
    for (model, family), conditions in groups.items():
        table = Table(title=f"{experiment}: {model} · {family}: rate of each behaviour, 95 % "
                            f"Wilson interval", title_justify="left")
        table.add_column("condition", overflow="fold")
        table.add_column("n", justify="right")
        table.add_column("behaviour", no_wrap=True)
        table.add_column("rate", justify="right", no_wrap=True)
        for condition, by_behaviour in conditions:
            shown = [b for b in behaviours if b in by_behaviour]
            for index, behaviour in enumerate(shown):
                first = index == 0
                table.add_row(condition.replace(",", ", ") if first else "",
                              str(by_behaviour[behaviour].n) if first else "", behaviour,
                              format_rate(by_behaviour[behaviour]),
                              end_section=index == len(shown) - 1)
        console.print(table)


def format_rate(rate: Rate | Proportion | None) -> str:
    if rate is None:
        return "—"
    return f"{rate.k}/{rate.n} {rate.rate:.0%} [{rate.low:.0%}, {rate.high:.0%}]"


def _print_judging_notes(store: Store, experiment: str) -> None:
    """How each behaviour was decided, and what the judges did and cost."""
    notes = judging_notes(store, experiment)
    if notes is None:
        return
    decided: dict[str, list[str]] = defaultdict(list)
    for way in notes.decided:
        decided[way.behavior].append(f"{way.label} ({way.version}) {way.trials}")
    console.print("How each behaviour was decided: " + "; ".join(
        f"{b}: {', '.join(ways)}" for b, ways in decided.items()), highlight=False)
    if not notes.judged:
        from amlab.detect.measured import recall_note

        console.print(recall_note(notes.reading), highlight=False)
        return
    if notes.judge_errors:
        console.print("Judge errors (the offline verdict stands for these): " + ", ".join(
            f"{judge} {b} {n}" for (judge, b), n in notes.judge_errors.items()),
            highlight=False)
    for realism in notes.realism:
        console.print(f"Realism seen by {realism.judge} (1 = says it is a test, 5 = treats it "
                      f"as real): mean {realism.mean:.1f} over {realism.trials} trials",
                      highlight=False)
    agent = notes.agent
    console.print(f"Tokens — agent: {agent.input_tokens} in, {agent.output_tokens} out, "
                  f"${agent.cost_usd:.4f}; " + "; ".join(
                      f"judge {judge}: {u.calls} calls, {u.input_tokens} in, "
                      f"{u.output_tokens} out, ${u.cost_usd:.4f}"
                      for judge, u in notes.judges.items()),
                  highlight=False)
    _print_agreement(notes.agreements, experiment)


def _print_agreement(agreements: list[Agreement], experiment: str) -> None:
    if not agreements:
        return
    table = Table(title=f"{experiment}: agreement between judges (Cohen's kappa)",
                  title_justify="left")
    for column in ("behaviour", "judges", "n", "agree", "kappa", "disagreeing trials"):
        table.add_column(column)
    for a in agreements:
        listed = ", ".join(str(t) for t in a.disagreements[:12])
        more = f" …and {len(a.disagreements) - 12} more" if len(a.disagreements) > 12 else ""
        kappa = "undefined" if a.kappa != a.kappa else f"{a.kappa:.2f}"
        table.add_row(a.behavior, " vs ".join(a.judges), str(a.n), f"{a.observed:.0%}", kappa,
                      (listed + more) or "—")
    console.print(table)
    console.print("Disagreeing trials are trial ids of the store (trials.id).")
