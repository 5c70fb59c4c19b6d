"""What a stored run used: tokens and cost per model (from the store's per-cell sums) and,
when asked, per trial; a cost is None where no price is known for the model."""

from __future__ import annotations

from dataclasses import dataclass

from amlab.models.prices import Price, price_of
from amlab.run.experiment import ModelSpec, stored_spec
from amlab.store.interface import CellUsage, ResultReader, TrialRecord


@dataclass(frozen=True)
class Tokens:
    calls: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    # None when no price is known for the model.
    cost_usd: float | None

    @classmethod
    def of(cls, rows: list[CellUsage] | list[TrialRecord], priced: bool) -> Tokens:
        """The sum of the store's cell or trial records (None counts as 0)."""
        return cls(sum(r.calls or 0 for r in rows), sum(r.input_tokens or 0 for r in rows),
                   sum(r.cached_input_tokens or 0 for r in rows),
                   sum(r.output_tokens or 0 for r in rows),
                   float(sum(r.cost_usd or 0 for r in rows)) if priced else None)


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


def model_usage(store: ResultReader, experiment: str) -> list[ModelUsage]:
    """Tokens and cost per model of a stored experiment, in the experiment file's order of
    models; empty when no trial has called its model yet."""
    models = stored_models(store, experiment)
    prices = prices_of(models)
    order = {m.name: i for i, m in enumerate(models)}
    cells: dict[str, list[CellUsage]] = {}
    for cell in store.cell_usage(experiment):
        if cell.status != "pending":  # never called: no usage recorded, not a trial used
            cells.setdefault(cell.model, []).append(cell)
    return [ModelUsage(model, sum(c.trials for c in cells[model]),
                       Tokens.of(cells[model], model in prices))
            for model in sorted(cells, key=lambda m: order.get(m, len(order)))]


def trial_usage(store: ResultReader, experiment: str) -> list[TrialUsage]:
    """Tokens and cost of each trial that called its model, in planning order (read
    without the transcripts)."""
    prices = prices_of(stored_models(store, experiment))
    return [TrialUsage(r.model, r.family, r.condition, r.sample, r.status,
                       Tokens.of([r], r.model in prices))
            for r in store.trial_index(experiment) if r.calls is not None]


def stored_models(store: ResultReader, experiment: str) -> list[ModelSpec]:
    """The stored experiment's models, in its file's order (none if it is not stored)."""
    spec = stored_spec(store, experiment)
    return spec.models if spec else []


def prices_of(models: list[ModelSpec]) -> dict[str, Price]:
    """The price each model had (its override, else the table), where one is known."""
    prices = {}
    for model in models:
        price = price_of(model.name, model.price)
        if price is not None:
            prices[model.name] = price
    return prices
