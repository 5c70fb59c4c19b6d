"""Tidy export of trials and verdicts for pandas or R: one row per (trial, behaviour), each
factor a column. A trial with no verdicts (error, refusal, pending) is one row whose
behaviour and value are empty, so nothing that was planned disappears from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from amlab.analysis.rates import factor_levels
from amlab.errors import AmlabError
from amlab.store.interface import ResultReader, TidyRow

Format = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "parquet", "jsonl")


def tidy_frame(store: ResultReader, experiment: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(store.tidy_rows(experiment)),
                                      columns=TidyRow._fields)
    frame["value"] = frame["value"].astype("Int64")
    levels = factor_levels(store, experiment)
    # A factor named like a fixed column (e.g. `model`) keeps a `factor_` prefix.
    fixed = set(frame.columns)
    levels = levels.rename(columns={c: f"factor_{c}" for c in levels.columns
                                    if c in fixed and c not in ("experiment", "family",
                                                                 "condition")})
    return frame.merge(levels, on=["experiment", "family", "condition"], how="left")


def export(store: ResultReader, path: Path, file_format: str, experiment: str | None = None) -> int:
    """Write the tidy table to `path`; returns the number of rows."""
    if file_format not in FORMATS:
        raise AmlabError(f"--format {file_format!r} is not an export format; formats are "
                         f"{', '.join(FORMATS)}.")
    frame = tidy_frame(store, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        frame.to_csv(path, index=False)
    elif file_format == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return len(frame)
