"""Statistics over stored runs: rates with Wilson intervals, factor effects (Newcombe
intervals, Fisher p, Holm), power. Figures, the report and exports are in their own modules
(`figures`, `report`, `export`), imported on demand: they load matplotlib and Jinja2."""

from amlab.analysis.effects import (
    Difference,
    alignment_faking,
    compare_runs,
    factor_effects,
    holm,
    two_proportions,
)
from amlab.analysis.power import power_at, samples_per_cell
from amlab.analysis.rates import Rate, cell_status, rate_frame, rates, wilson, wilson_columns

__all__ = ["Difference", "Rate", "alignment_faking", "cell_status", "compare_runs",
           "factor_effects", "holm", "power_at", "rate_frame", "rates", "samples_per_cell",
           "two_proportions", "wilson", "wilson_columns"]
