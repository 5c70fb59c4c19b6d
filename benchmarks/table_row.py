"""What each benchmark of this folder gives run_all.py: rows of the one table."""

from __future__ import annotations

# (figure, value, unit, comparison against its floor and target)
Row = tuple[str, float, str, str]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_rows(rows: list[Row]) -> None:
    """A benchmark run alone prints its rows a line each."""
    for figure, value, unit, against in rows:
        print(f"{figure}: {value:.3g} {unit} — {against}")
