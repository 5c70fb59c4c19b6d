"""Tables of tokens and cost: the dry-run estimate, and what a stored run used."""

from __future__ import annotations

from rich.table import Table

from amlab.analysis.usage import Tokens, model_usage, trial_usage
from amlab.cli.app import console
from amlab.run.estimate import estimate
from amlab.run.experiment import Experiment
from amlab.store.interface import ResultReader


def print_estimate(experiment: Experiment) -> None:
    table = Table(title="Estimated tokens and cost per model (upper bound: every trial uses "
                        "all its turns and every answer all its max_tokens)",
                  title_justify="left")
    for column in ("model", "trials", "prompt tokens/trial", "input tokens", "output tokens",
                   "cost (USD)"):
        table.add_column(column, justify="left" if column == "model" else "right", overflow="fold")
    for row in estimate(experiment):
        table.add_row(row.model, str(row.trials), f"{row.prompt_tokens:,}",
                      f"{row.input_tokens:,}", f"{row.output_tokens:,}", _cost(row.cost_usd))
    console.print(table)
    console.print("Tokens are counted as 4 characters each from the rendered prompts; each "
                  "call re-sends the conversation so far. Prices: amlab/models/prices.yaml "
                  "or the model's `price` in the experiment file.", highlight=False)


def print_usage(store: ResultReader, experiment: str, per_trial: bool = False) -> None:
    """Tokens and cost per model (and per trial if asked) of a stored experiment."""
    models = model_usage(store, experiment)
    if not models:
        return
    if per_trial:
        table = Table(title=f"{experiment}: tokens and cost per trial", title_justify="left")
        for column in ("model", "family", "condition", "sample", "status", "calls", "input",
                       "cached", "output", "cost (USD)"):
            table.add_column(column, justify="right" if column in _NUMERIC else "left",
                             overflow="fold")
        for trial in trial_usage(store, experiment):
            table.add_row(trial.model, trial.family, trial.condition, str(trial.sample),
                          trial.status, *_figures(trial.tokens))
        console.print(table)
    table = Table(title=f"{experiment}: tokens and cost per model", title_justify="left")
    for column in ("model", "trials", "calls", "input", "cached", "output", "cost (USD)",
                   "cost/trial"):
        table.add_column(column, justify="left" if column == "model" else "right", overflow="fold")
    for usage in models:
        table.add_row(usage.model, str(usage.trials), *_figures(usage.tokens),
                      _cost(usage.cost_per_trial))
    console.print(table)
    unpriced = sorted(u.model for u in models if u.tokens.cost_usd is None)
    if unpriced:
        console.print(f"No price known for {', '.join(unpriced)}: add `price` to the model in "
                      f"the experiment file.", highlight=False)


_NUMERIC = {"sample", "calls", "input", "cached", "output", "cost (USD)"}


def _figures(tokens: Tokens) -> tuple[str, ...]:
    return (f"{tokens.calls:,}", f"{tokens.input_tokens:,}", f"{tokens.cached_input_tokens:,}",
            f"{tokens.output_tokens:,}", _cost(tokens.cost_usd))


def _cost(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.4f}" if value < 100 else f"{value:,.2f}"
