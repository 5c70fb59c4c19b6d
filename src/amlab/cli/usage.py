"""Tables of tokens and cost: the dry-run estimate, and what a stored run used."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from amlab.cli.app import console
from amlab.models.prices import Price, price_of
from amlab.run.estimate import estimate
from amlab.run.experiment import Experiment
from amlab.store import Store


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


def print_usage(store: Store, experiment: str, per_trial: bool = False) -> None:
    """Tokens and cost per model (and per trial if asked) of a stored experiment."""
    prices = _stored_prices(store, experiment)
    rows = [r for r in store.trials(experiment) if r["calls"] is not None]
    if not rows:
        return
    if per_trial:
        table = Table(title=f"{experiment}: tokens and cost per trial", title_justify="left")
        for column in ("model", "family", "condition", "sample", "status", "calls", "input",
                       "cached", "output", "cost (USD)"):
            table.add_column(column, justify="right" if column in _NUMERIC else "left",
                             overflow="fold")
        for r in rows:
            table.add_row(r["model"], r["family"], r["condition"], str(r["sample"]),
                          r["status"], *_figures(r, r["model"] in prices))
        console.print(table)
    table = Table(title=f"{experiment}: tokens and cost per model", title_justify="left")
    for column in ("model", "trials", "calls", "input", "cached", "output", "cost (USD)",
                   "cost/trial"):
        table.add_column(column, justify="left" if column == "model" else "right", overflow="fold")
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        total = {k: sum(r[k] or 0 for r in mine)
                 for k in ("calls", "input_tokens", "cached_input_tokens", "output_tokens",
                           "cost_usd")}
        known = model in prices
        table.add_row(model, str(len(mine)), *_figures(total, known),
                      _cost(total["cost_usd"] / len(mine) if known else None))
    console.print(table)
    unpriced = sorted({r["model"] for r in rows} - set(prices))
    if unpriced:
        console.print(f"No price known for {', '.join(unpriced)}: add `price` to the model in "
                      f"the experiment file.", highlight=False)


_NUMERIC = {"sample", "calls", "input", "cached", "output", "cost (USD)"}


def _figures(row: Any, priced: bool) -> tuple[str, ...]:
    return (f"{row['calls'] or 0:,}", f"{row['input_tokens'] or 0:,}",
            f"{row['cached_input_tokens'] or 0:,}", f"{row['output_tokens'] or 0:,}",
            _cost(row["cost_usd"] if priced else None))


def _stored_prices(store: Store, experiment: str) -> dict[str, Price]:
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
