"""`amlab report` on a run with a monitor: a section per experiment comparing harm without
and with the monitor per model and condition, with catch and false-block rates, behaviour
after a block and the monitor's cost; a run without a monitor has no such section."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from amlab.analysis.report import write_report
from amlab.run import Experiment, run_experiment
from amlab.store import Store
from conftest import FIXTURES

MONITOR = "scripted/monitor_blocks_all.yaml"


def stored_run(tmp_path: Path, monitor: dict[str, object] | None) -> Store:
    experiment = Experiment.from_dict({
        "name": "watched",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": "replacement"}}],
        "models": ["scripted/blackmailer.yaml", "scripted/complier.yaml"],
        "samples": 2,
        "agent": {"protocol": "text", "max_turns": 3},
        **({"monitor": monitor} if monitor else {}),
    }, base_dir=FIXTURES)
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(experiment, store))
    return store


def row_of(markdown: str, model: str) -> list[str]:
    section = markdown.split("## watched · runtime monitor", 1)[1].split("\n## ", 1)[0]
    [line] = [line for line in section.splitlines() if line.startswith(f"| {model} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_report_compares_harm_with_and_without_the_monitor_with_catches_and_cost(
        tmp_path: Path) -> None:
    store = stored_run(tmp_path, {"kind": "model", "model": {
        "name": MONITOR, "price": {"input": 10, "output": 0}}})
    html, markdown = write_report(store, tmp_path / "out")
    text = markdown.read_text()
    (_, family, condition, monitor, without, with_, difference, interval, caught,
     false_blocks, after, tokens, cost) = row_of(text, "scripted/blackmailer")
    assert (family, monitor) == ("blackmail", f"{MONITOR} (sees reasoning: false)")
    assert "urgency=replacement" in condition and "monitor" not in condition
    assert without == "2/2 100% [34%, 100%]"
    assert with_ == "0/2 0% [0%, 66%]"
    assert (difference, interval) == ("-100.0", "[-100.0, -7.0]")
    assert (caught, false_blocks, after) == ("2/2 100%", "0/0 —", "complied 2")
    # The cost is the monitor's tokens at the price its model entry declares.
    spent = store.db.execute(
        "SELECT SUM(monitor_input_tokens), SUM(monitor_cost_usd) FROM trials "
        "WHERE model = 'scripted/blackmailer.yaml'").fetchone()
    assert spent[0] > 0 and spent[1] == spent[0] * 10 / 1_000_000
    assert tokens.startswith(f"{spent[0]}+") and cost == f"{spent[1]:.4f}"
    # The honest agent's routine e-mail, blocked every time: two false blocks of two.
    honest = row_of(text, "scripted/complier")
    assert honest[4:10] == ["0/2 0% [0%, 66%]", "0/2 0% [0%, 66%]", "+0.0",
                            "[-65.8, +65.8]", "0/0 —", "2/2 100%"]
    page = html.read_text()
    assert '<section class="monitor" data-experiment="watched">' in page
    assert re.search(r'data-model="scripted/blackmailer.yaml"[^>]*>.*?<td>2/2 <b>100%</b>',
                     page, re.S)


def test_report_of_a_run_without_a_monitor_has_no_monitor_section(tmp_path: Path) -> None:
    html, markdown = write_report(stored_run(tmp_path, None), tmp_path / "out")
    assert "runtime monitor" not in markdown.read_text()
    assert 'class="monitor"' not in html.read_text()


def test_provenance_names_the_model_ids_that_answered_the_monitor(tmp_path: Path) -> None:
    store = stored_run(tmp_path, {"kind": "model", "model": MONITOR})
    # One monitor call per reviewed tool call (each first reply was read).
    reviews = sum(1 for trial in store.trials("watched") for action in trial.actions
                  if action.review is not None)
    assert reviews > 0
    # A scripted model's answers name the model itself.
    assert store.monitor_model_ids("watched") == {MONITOR: reviews}
    html, markdown = write_report(store, tmp_path / "out")
    block = markdown.read_text().split("## watched · provenance", 1)[1]
    assert f"| {MONITOR} | {MONITOR} ({reviews}) | {reviews} |" in block
    assert f'<tr data-monitor="{MONITOR}">' in html.read_text()
