"""Tables of tokens and cost: the dry-run estimate, and what a stored run used."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table

from amlab.cli.app import console
from amlab.models.prices import Price, price_of
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
    prices = _stored_prices(store, experiment)
    # Pending trials have used nothing yet (an error's calls are stored with it).
    cells = [c for c in store.cell_usage(experiment) if c.status != "pending"]
    if not cells:
        return
    if per_trial:
        table = Table(title=f"{experiment}: tokens and cost per trial", title_justify="left")
        for column in ("model", "family", "condition", "sample", "status", "calls", "input",
                       "cached", "output", "cost (USD)"):
            table.add_column(column, justify="right" if column in _NUMERIC else "left",
                             overflow="fold")
        for t in store.trial_index(experiment):
            if t.calls is not None:
                table.add_row(t.model, t.family, t.condition, str(t.sample), t.status,
                              *_figures(t.calls, t.input_tokens, t.cached_input_tokens,
                                        t.output_tokens, t.cost_usd, t.model in prices))
        console.print(table)
    table = Table(title=f"{experiment}: tokens and cost per model", title_justify="left")
    for column in ("model", "trials", "calls", "input", "cached", "output", "cost (USD)",
                   "cost/trial"):
        table.add_column(column, justify="left" if column == "model" else "right", overflow="fold")
    for model in sorted({c.model for c in cells}, key=_spec_order(store, experiment)):
        mine = [c for c in cells if c.model == model]
        trials = sum(c.trials for c in mine)
        cost = sum(c.cost_usd for c in mine)
        known = model in prices
        table.add_row(model, str(trials),
                      *_figures(sum(c.calls for c in mine), sum(c.input_tokens for c in mine),
                                sum(c.cached_input_tokens for c in mine),
                                sum(c.output_tokens for c in mine), cost, known),
                      _cost(cost / trials if known else None))
    console.print(table)
    unpriced = sorted({c.model for c in cells} - set(prices))
    if unpriced:
        console.print(f"No price known for {', '.join(unpriced)}: add `price` to the model in "
                      f"the experiment file.", highlight=False)


_NUMERIC = {"sample", "calls", "input", "cached", "output", "cost (USD)"}


def _figures(calls: int | None, input_tokens: int | None, cached_input_tokens: int | None,
             output_tokens: int | None, cost_usd: float | None, priced: bool
             ) -> tuple[str, ...]:
    return (f"{calls or 0:,}", f"{input_tokens or 0:,}", f"{cached_input_tokens or 0:,}",
            f"{output_tokens or 0:,}", _cost(cost_usd or 0.0 if priced else None))


def _spec_order(store: ResultReader, experiment: str) -> Callable[[str], tuple[int, str]]:
    """Models in the order the experiment file lists them."""
    spec = store.experiment_spec(experiment) or {}
    order = {model["name"]: i for i, model in enumerate(spec.get("models", []))}
    return lambda model: (order.get(model, len(order)), model)


def _stored_prices(store: ResultReader, experiment: str) -> dict[str, Price]:
    """The price each model of the stored experiment had (its override, else the table)."""
    spec = store.experiment_spec(experiment) or {}
    prices = {}
    for model in spec.get("models", []):
        override = Price.model_validate(model["price"]) if model.get("price") else None
        price = price_of(model["name"], override)
        if price is not None:
            prices[model["name"]] = price
    return prices


def _cost(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.4f}" if value < 100 else f"{value:,.2f}"
