"""Published figures beside a run's rates: only the same model (by the documented mapping of
provider ids) is compared, with the difference and its interval; other models' figures are
context. Trials are synthetic, written through the Store API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from amlab.analysis.effects import two_proportions
from amlab.analysis.published import HARNESS_DIFFERS, PUBLISHED_FILE, comparison, published
from amlab.analysis.rates import wilson
from amlab.analysis.report import write_report
from amlab.errors import AmlabError
from amlab.records import Evidence, Transcript, Usage, Verdict
from amlab.run import Experiment
from amlab.store import Store

HEADLINE = "goal_type=explicit,goal_value=america,urgency=replacement"
# Blackmails of 100 trials in the study's headline cell.
BLACKMAILS = {"openai/gpt-4.1": 70, "openai/gpt-4.1-mini": 50}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    experiment = Experiment.from_dict({
        "name": "headline", "models": list(BLACKMAILS), "samples": 100,
        "agent": {"protocol": "text", "max_turns": 1, "max_tokens": 4000},
        "scenarios": [{"family": "blackmail", "factors": {
            "goal_type": "explicit", "goal_value": "america", "urgency": "replacement"}}]})
    store = Store(tmp_path_factory.mktemp("published") / "r.db")
    trials = experiment.trials()
    store.plan("headline", experiment.as_dict(), trials)
    for trial in trials:
        value = trial.key.sample < BLACKMAILS[trial.key.model]
        verdict = Verdict("blackmail", value, (Evidence("state", "synthetic"),), "state",
                          "blackmail/1")
        store.save_result(trial.key, Transcript([], [], "end_turn", Usage(calls=1), 1),
                          {"blackmail": verdict}, started=0.0)
    return store


def test_a_published_figure_is_compared_only_with_the_same_model_by_the_id_mapping(
        store: Store) -> None:
    rows = comparison(store, "headline")
    matched = [row for row in rows if row.matched]
    # GPT-4.1's 80 % of 100, beside openai/gpt-4.1 only: gpt-4.1-mini is another model.
    [row] = matched
    assert (row.figure.model, row.model, row.k, row.n) == ("GPT-4.1", "openai/gpt-4.1", 70,
                                                          100)
    assert "openai/gpt-4.1" in published().models["GPT-4.1"]
    assert row.difference == pytest.approx(two_proportions(70, 100, 80, 100)[:3])
    # Every other (figure, model) of the cell is context, without a difference.
    context = [r for r in rows if not r.matched]
    assert len(context) == 2 * 5 - 1  # five headline figures for two models, less the match
    assert all(r.difference is None for r in context)
    assert {r.model for r in context if r.figure.model == "GPT-4.1"} == {"openai/gpt-4.1-mini"}


def test_the_report_shows_the_match_with_its_difference_and_the_rest_as_context(
        store: Store, tmp_path: Path) -> None:
    html, markdown = write_report(store, tmp_path / "report", "headline")
    text = markdown.read_text()
    same = text[text.index("### The same model"):text.index("### Context: other models")]
    context = text[text.index("### Context: other models"):text.index("· provenance")]
    difference, low, high, _ = two_proportions(70, 100, 80, 100)
    mine_low, mine_high = wilson(70, 100)
    published_low, published_high = wilson(80, 100)
    [row] = [line for line in same.splitlines() if line.startswith("| blackmail |")]
    assert (f"| openai/gpt-4.1 | 70/100 70% [{mine_low:.0%}, {mine_high:.0%}] | GPT-4.1 | "
            f"80% (n=100) [{published_low:.0%}, {published_high:.0%}] | "
            f"{difference * 100:+.1f} | [{low * 100:+.1f}, {high * 100:+.1f}] |") in row
    # The paper's version and how it graded are on the row.
    assert "research article of 2025-06-20" in row and "an LLM classifier read each reply" in row
    assert context.count("| openai/gpt-4.1-mini |") == 5
    assert context.count("| openai/gpt-4.1 |") == 4  # the four other published models
    # The fixed paragraph on how the harness differs, and this run's settings.
    flat = " ".join(text.split())
    assert HARNESS_DIFFERS in flat
    assert ("Run settings — headline: protocol text, max_turns 1, max_tokens 4000 per reply; "
            "the behaviours that need reading decided by offline heuristics (no judge).") in flat
    page = html.read_text()
    assert page.count('<table class="published matched">') == 1
    assert 'data-model="openai/gpt-4.1" data-published-model="GPT-4.1"' in page


def test_a_published_model_without_a_mapping_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(PUBLISHED_FILE.read_text())
    del data["models"]["Grok 3 Beta"]
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(AmlabError, match=r"figures\[3\].model 'Grok 3 Beta' is not under "
                                         r"models; add it with the provider/model names"):
        published(path)
