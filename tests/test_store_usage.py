"""`amlab results`: the tokens and cost per model are the store's sums (`cell_usage`), and
equal the per-trial figures it lists with --trials."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from amlab.cli import main
from amlab.cli.app import console
from test_run import experiment_file, run


def test_results_prints_each_models_usage_summed_by_the_store_over_its_trials(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = experiment_file(tmp_path, "blackmailer.yaml", samples=2)
    spec = yaml.safe_load(path.read_text())
    spec["models"][0]["price"] = {"input": 1000.0, "output": 2000.0}
    path.write_text(yaml.safe_dump(spec))
    db = tmp_path / "r.db"
    store = run(path, db)
    trials = list(store.trials("t"))
    store.close()
    model = spec["models"][0]["name"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["amlab", "results", str(db), "--trials"])
        patch.setattr(console, "width", 400)
        with pytest.raises(SystemExit) as exit_info:
            main()
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    rows = [[c.strip() for c in line.strip("│ ").split("│")] for line in output.splitlines()
            if line.startswith(f"│ {model} ")]
    # The per-model table's row has 8 columns; each trial's row (--trials) has 10.
    [cells] = [row for row in rows if len(row) == 8]
    assert len([row for row in rows if len(row) == 10 and row[4] == "done"]) == 4
    calls = sum(t.calls or 0 for t in trials)
    input_tokens = sum(t.input_tokens or 0 for t in trials)
    output_tokens = sum(t.output_tokens or 0 for t in trials)
    cost = sum(t.cost_usd or 0.0 for t in trials)
    assert cells[:6] == [model, "4", f"{calls:,}", f"{input_tokens:,}", "0",
                         f"{output_tokens:,}"]
    assert cells[6:] == [f"{cost:,.4f}", f"{cost / 4:,.4f}"]
