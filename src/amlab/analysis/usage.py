"""What a stored run used: tokens and cost per model (from the store's per-cell sums) and,
when asked, per trial; a cost is None where no price is known for the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amlab.models.prices import Price, price_of
from amlab.store import Store


@dataclass(frozen=True)
class Tokens:
    calls: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    # None when no price is known for the model.
    cost_usd: float | None

    @classmethod
    def of(cls, row: Any, priced: bool) -> Tokens:
        """From a row of the store (or totals) with calls, token counts and cost_usd."""
        return cls(int(row["calls"] or 0), int(row["input_tokens"] or 0),
                   int(row["cached_input_tokens"] or 0), int(row["output_tokens"] or 0),
                   float(row["cost_usd"] or 0) if priced else None)


@dataclass(frozen=True)
class TrialUsage:
    model: str
    family: str
    condition: str
    sample: int
    status: str
    tokens: Tokens


@dataclass(frozen=True)
class ModelUsage:
    model: str
    # Trials that called the model (finished, refused or failed; not the pending ones).
    trials: int
    tokens: Tokens

    @property
    def cost_per_trial(self) -> float | None:
        cost = self.tokens.cost_usd
        return None if cost is None else cost / self.trials


_SUMMED = ("calls", "input_tokens", "cached_input_tokens", "output_tokens", "cost_usd")


def model_usage(store: Store, experiment: str) -> list[ModelUsage]:
    """Tokens and cost per model of a stored experiment, in the experiment file's order of
    models; empty when no trial has called its model yet."""
    prices = stored_prices(store, experiment)
    order = {m["name"]: i for i, m in enumerate((store.experiment_spec(experiment) or {})
                                                 .get("models", []))}
    totals: dict[str, dict[str, float]] = {}
    trials: dict[str, int] = {}
    for row in store.cell_usage(experiment):
        if row["status"] == "pending":  # never called: no usage recorded, not a trial used
            continue
        total = totals.setdefault(row["model"], dict.fromkeys(_SUMMED, 0.0))
        for key in _SUMMED:
            total[key] += row[key] or 0
        trials[row["model"]] = trials.get(row["model"], 0) + int(row["trials"])
    return [ModelUsage(model, trials[model], Tokens.of(totals[model], model in prices))
            for model in sorted(totals, key=lambda m: order.get(m, len(order)))]


def trial_usage(store: Store, experiment: str) -> list[TrialUsage]:
    """Tokens and cost of each trial that called its model, in planning order."""
    prices = stored_prices(store, experiment)
    return [TrialUsage(r["model"], r["family"], r["condition"], r["sample"], r["status"],
                       Tokens.of(r, r["model"] in prices))
            for r in store.trials(experiment) if r["calls"] is not None]


def stored_prices(store: Store, experiment: str) -> dict[str, Price]:
    """The price each model of the stored experiment had (its override, else the table)."""
    spec = store.experiment_spec(experiment) or {}
    prices = {}
    for model in spec.get("models", []):
        override = Price.model_validate(model["price"]) if model.get("price") else None
        price = price_of(model["name"], override)
        if price is not None:
            prices[model["name"]] = price
    return prices
