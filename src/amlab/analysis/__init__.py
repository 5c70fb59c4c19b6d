"""Statistics over stored runs."""

from amlab.analysis.rates import Rate, rates, wilson

__all__ = ["Rate", "rates", "wilson"]
