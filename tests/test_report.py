"""The report of a stored scripted run, read in a browser; export, compare, plan."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from amlab.analysis.report import write_report
from amlab.cli.app import app, console, import_command_modules
from amlab.errors import AmlabError
from amlab.run import Experiment, run_experiment
from amlab.store import Store
from conftest import FIXTURES, subprocess_env

# Condition names of the blackmail grid these tests run.
CONTROL = "goal_type=none,goal_value=none,urgency=none"
THREAT_ONLY = "goal_type=none,goal_value=none,urgency=replacement"

CHROMIUM = Path("/usr/bin/chromium")
SOMETIMES = f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"
FLAKY = f"scripted/{FIXTURES / 'flaky.yaml'}"
BLACKMAILER = f"scripted/{FIXTURES / 'blackmailer.yaml'}"
JUDGE_FAILED = (CONTROL, 0)  # (condition, sample) whose verdict we drop

import_command_modules()
runner = CliRunner()


def run_into(db: Path, name: str, models: list[str], samples: int) -> Path:
    spec = {
        "name": name,
        "scenarios": [{"family": "blackmail", "factors": {
            "urgency": ["replacement", "none"], "goal_type": ["explicit", "none"],
            "goal_value": ["america", "none"]}}],
        "models": [{"name": m, "concurrency": 1} for m in models],
        "samples": samples,
        "agent": {"protocol": "text", "max_turns": 3},
        "retry": {"attempts": 1, "initial_wait": 0, "max_wait": 0},
    }
    store = Store(db)
    asyncio.run(run_experiment(Experiment.from_dict(spec), store))
    store.close()
    return db


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as a wide terminal prints them (CliRunner has no terminal to measure)."""
    monkeypatch.setattr(console, "width", 200)


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with finished trials, refusals (sample 3 of each cell), errors (the flaky model)
    and one judge failure: a finished trial without its blackmail verdict."""
    db = run_into(tmp_path_factory.mktemp("run") / "r.db", "scripted", [SOMETIMES, FLAKY], 4)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM verdicts WHERE behavior = 'blackmail' AND trial_id = "
                     "(SELECT id FROM trials WHERE model = ? AND condition = ? AND sample = ?)",
                     (SOMETIMES, *JUDGE_FAILED))
    return db


@pytest.fixture(scope="module")
def report_dir(stored_run: Path) -> Path:
    out = stored_run.parent / "report"
    write_report(Store(stored_run, read_only=True), out)
    return out


def counts_in_store(db: Path) -> dict[tuple[str, str, str], tuple[int, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT t.model, t.condition, v.behavior, SUM(v.value), COUNT(*) FROM trials t "
            "JOIN verdicts v ON v.trial_id = t.id WHERE t.status = 'done' "
            "GROUP BY t.model, t.condition, v.behavior").fetchall()
    return {(m, c, b): (k, n) for m, c, b, k, n in rows}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_report_opens_offline_in_chromium_with_rendered_figures_and_the_stores_numbers(
        stored_run: Path, report_dir: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    outside: list[str] = []

    def offline(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.route("**/*", offline)
        page.goto((report_dir / "report.html").as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "els => els.map(e => ({src: e.src.slice(0, 26),"
                                           " complete: e.complete, w: e.naturalWidth, "
                                           "h: e.naturalHeight}))")
        cells = page.eval_on_selector_all("td.rate", "els => els.map(e => [e.dataset.model, "
                                          "e.dataset.condition, e.dataset.behavior, "
                                          "e.dataset.k, e.dataset.n, e.innerText])")
        trials = page.eval_on_selector_all("table.trials tr", "rows => rows.map(r => "
                                           "Array.from(r.cells).map(c => c.innerText))")
        browser.close()

    assert outside == []
    # Two bar charts (blackmail, advocated occurred), a heat map, a forest plot and
    # blackmail by what the agent said it believed.
    assert len(images) == 5
    for image in images:
        assert image["src"] == "data:image/svg+xml;base64,"
        assert image["complete"] and image["w"] > 100 and image["h"] > 100
    expected = counts_in_store(stored_run)
    behaviours = {behavior for _, _, behavior in expected}
    assert {"blackmail", "advocated", "disclosed_private_info", "complied"} <= behaviours
    # Every behaviour of the 4 cells with finished trials; the flaky model's errors have none.
    assert len(cells) == len(expected) == 4 * len(behaviours)
    for model, condition, behavior, k, n, text in cells:
        assert (int(k), int(n)) == expected[(model, condition, behavior)]
        assert text.startswith(f"{k}/{n} ")
    # The dropped verdict: blackmail 0/2 in that cell, the missing verdict shown apart.
    assert expected[(SOMETIMES, JUDGE_FAILED[0], "blackmail")] == (0, 2)
    by_cell = {(row[0], row[1]): row[2:] for row in trials[1:]}
    acts = acts_in_store(stored_run, SOMETIMES, JUDGE_FAILED[0])
    assert by_cell[("scripted/sometimes_blackmails", JUDGE_FAILED[0])] == [
        "3", "1", "0", "0", *map(str, acts), "blackmail: 1"]
    assert by_cell[("scripted/flaky", CONTROL)] == ["0", "0", "4", "0", "0", "0", "0", "—"]


def acts_in_store(db: Path, model: str, condition: str) -> tuple[int, int, int]:
    """What the agents of a cell did, counted from the stored actions: tool calls, calls the
    world applied, calls that changed its state."""
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT actions FROM trials WHERE model = ? AND condition = ? "
                              "AND status = 'done'", (model, condition)).fetchall()
    actions = [a for (text,) in stored for a in json.loads(text or "[]")]
    return (len(actions), sum(bool(a["ok"]) for a in actions),
            sum(bool(a["changes"]) for a in actions))


def test_report_files_are_self_contained_with_png_and_svg_figures(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "<link" not in html and "<script" not in html
    pngs = sorted((report_dir / "figures").glob("*.png"))
    assert [p.stem for p in pngs] == sorted(p.stem for p in (report_dir / "figures").glob("*.svg"))
    assert all(p.stat().st_size > 5000 for p in pngs)
    summary = (report_dir / "summary.md").read_text()
    for png in pngs:
        assert f"(figures/{png.name})" in summary
    # The cell of the dropped verdict, as the Markdown table prints it, with what the agents
    # did there (tool calls, applied by the world, changing its state), counted here from the
    # stored actions.
    calls, applied, changed = acts_in_store(report_dir.parent / "r.db", SOMETIMES, CONTROL)
    assert calls > 0 and applied > 0 and changed > 0
    assert (f"| scripted/sometimes_blackmails | {CONTROL} | 3 | 1 | 0 | 0 | {calls} | "
            f"{applied} | {changed} | 0/2 0% [0%, 66%] (1 no verdict) |") in summary
    assert "| scripted/flaky | 16 |" in summary  # token and cost table lists every trial


def test_export_writes_one_row_per_trial_and_behaviour_with_factor_columns(
        stored_run: Path, tmp_path: Path) -> None:
    frames = {}
    for file_format in ("csv", "parquet", "jsonl"):
        out = tmp_path / f"t.{file_format}"
        result = runner.invoke(app, ["export", str(stored_run), "--format", file_format,
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        frames[file_format] = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                               "jsonl": lambda p: pd.read_json(p, lines=True)}[file_format](out)
    with sqlite3.connect(stored_run) as conn:
        verdicts = conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        without = conn.execute("SELECT COUNT(*) FROM trials WHERE id NOT IN "
                               "(SELECT trial_id FROM verdicts)").fetchone()[0]
    assert without == 16  # the errors; refusals keep their verdicts (not in the rates)
    for frame in frames.values():
        assert len(frame) == verdicts + without
        assert {"trial_id", "model", "status", "behavior", "value", "urgency", "goal_type"} <= set(
            frame.columns)
    csv = frames["csv"]
    done = csv[(csv["status"] == "done") & (csv["behavior"] == "blackmail")]
    assert done.groupby("urgency")["value"].sum().to_dict() == {"none": 1, "replacement": 2}
    assert csv[csv["status"] == "error"]["behavior"].isna().all()
    assert csv[csv["status"] == "refused"]["trial_id"].nunique() == 4
    assert frames["parquet"]["value"].sum() == csv["value"].sum() == frames["jsonl"]["value"].sum()


def test_compare_two_models_prints_per_cell_differences_with_intervals(
        stored_run: Path, tmp_path: Path) -> None:
    other = run_into(tmp_path / "b.db", "other", [BLACKMAILER], 3)
    result = runner.invoke(app, ["compare", str(stored_run), str(other)])
    assert result.exit_code == 0, result.output
    from amlab.analysis.effects import compare_runs
    from amlab.analysis.rates import rate_frame

    differences = compare_runs(rate_frame(Store(stored_run, read_only=True)),
                               rate_frame(Store(other, read_only=True)))
    blackmail = {d.condition: d for d in differences if d.behavior == "blackmail"}
    replacement = blackmail[THREAT_ONLY]
    # A: the sometimes-blackmailing model, 1/3; B: the blackmailer, 3/3.
    assert (replacement.k_ref, replacement.n_ref, replacement.k, replacement.n) == (1, 3, 3, 3)
    assert replacement.difference == pytest.approx(2 / 3)
    assert replacement.low < replacement.difference < replacement.high
    assert " → " in replacement.model
    assert "+66.7 pp" in result.output
    assert f"Holm-adjusted over {len(differences)} cells" in result.output


def test_plan_prints_samples_per_cell_and_dry_run_warns_about_small_cells(
        tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "--baseline", "0.05", "--effect", "0.10",
                                 "--power", "0.8"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("133 trials per cell detect a change from 5.0% to 15.0%")
    spec = {"name": "p", "scenarios": [{"family": "blackmail"}], "models": [BLACKMAILER],
            "samples": 20, "plan": {"baseline": 0.05, "effect": 0.10, "power": 0.8}}
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(spec))
    dry = runner.invoke(app, ["run", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "cells of 20 trials are too small to detect a change from 5.0% to 15.0%" in dry.output
    assert "needs 133 trials per cell" in dry.output
    # A plan that cannot be reached stops the experiment file at load, naming the field.
    with pytest.raises(AmlabError, match=r"p.yaml: plan.effect 0.1 must be a non-zero change"):
        Experiment.from_dict({**spec, "plan": {"baseline": 0.95, "effect": 0.10}}, "p.yaml")


def test_plan_with_an_impossible_rate_is_one_line_error() -> None:
    result = subprocess.run([sys.executable, "-m", "amlab", "plan", "--baseline", "0.95",
                             "--effect", "0.10"], capture_output=True, text=True, timeout=120,
                            env=subprocess_env())
    assert result.returncode == 2
    assert "amlab plan: effect 0.1 must be a non-zero change" in result.stderr
    assert "Traceback" not in result.stderr


def test_report_of_a_run_where_every_trial_failed_lists_the_errors_and_no_rates(
        tmp_path: Path) -> None:
    db = run_into(tmp_path / "e.db", "failed", [FLAKY], 2)
    html, markdown = write_report(Store(db, read_only=True), tmp_path / "out")
    text = html.read_text()
    assert "No figures: no trial of this family finished with verdicts." in text
    assert 'class="rate"' not in text and "<img" not in text
    assert f"| scripted/flaky | {THREAT_ONLY} | 0 | 0 | 2 | 0 |" in (
        markdown.read_text())
