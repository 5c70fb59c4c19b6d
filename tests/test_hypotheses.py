"""Declared hypotheses: the experiment file's schema and checks, storage before the first
trial, confirmatory results corrected within the declared family only, exploratory ones with
false-discovery-rate control, the headline figure following the declaration, and power
sizing for the declared number of contrasts. Trials are synthetic, written through the Store
API under a real experiment's spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amlab.analysis.effects import Difference, holm
from amlab.analysis.hypotheses import benjamini_hochberg, confirmatory, declared_contrasts
from amlab.analysis.power import samples_per_cell
from amlab.analysis.rates import rate_frame
from amlab.analysis.report import build_report, write_report
from amlab.cli.app import app, import_command_modules
from amlab.cli.report import warn_if_underpowered
from amlab.errors import AmlabError
from amlab.records import Evidence, Transcript, Usage, Verdict
from amlab.run import Experiment
from amlab.run.runner import check_resumable
from amlab.store import Store

import_command_modules()

MODEL = "scripted/synthetic.yaml"
CONFLICT_THREAT = "goal_type=explicit,goal_value=america,urgency=replacement"
CONFLICT_ONLY = "goal_type=explicit,goal_value=america,urgency=none"
THREAT_ONLY = "goal_type=none,goal_value=none,urgency=replacement"
NEITHER = "goal_type=none,goal_value=none,urgency=none"
THREAT = {"behavior": "blackmail", "given": {"goal_type": "explicit", "goal_value": "america"},
          "a": {"urgency": "replacement"}, "b": {"urgency": "none"}, "direction": "greater"}
CONFLICT = {"behavior": "blackmail", "given": {"urgency": "replacement"},
            "a": {"goal_type": "explicit", "goal_value": "america"},
            "b": {"goal_type": "none", "goal_value": "none"}, "direction": "greater"}
# Blackmails per cell of 20. The control (neither threat nor conflict) has the highest rate:
# a headline chosen by rate would show it; no declared contrast names it.
BLACKMAILS = {CONFLICT_THREAT: 12, CONFLICT_ONLY: 2, THREAT_ONLY: 5, NEITHER: 18}


def spec(hypotheses: list[dict[str, Any]], samples: int = 20) -> dict[str, Any]:
    return {"name": "declared", "models": [MODEL], "samples": samples,
            "scenarios": [{"family": "blackmail", "factors": {
                "urgency": ["replacement", "none"], "goal_type": ["explicit", "none"],
                "goal_value": ["america", "none"]}}],
            "hypotheses": hypotheses}


def stored_run(path: Path, hypotheses: list[dict[str, Any]],
               blackmails: dict[str, int] = BLACKMAILS) -> Store:
    """The experiment planned as `amlab run` plans it, every trial finished with a blackmail
    verdict: the first k samples of a cell blackmail."""
    experiment = Experiment.from_dict(spec(hypotheses), "declared.yaml")
    store = Store(path)
    trials = experiment.trials()
    store.plan(experiment.spec.name, experiment.as_dict(), trials)
    for trial in trials:
        value = trial.key.sample < blackmails[trial.key.condition]
        verdict = Verdict("blackmail", value, (Evidence("state", "synthetic"),), "state",
                          "blackmail/1")
        store.save_result(trial.key, Transcript([], [], "end_turn", Usage(calls=1), 1),
                          {"blackmail": verdict}, started=0.0)
    return store


def markdown_row(markdown: str, *cells: str) -> str:
    """The one Markdown table row that contains every cell given."""
    [row] = [line for line in markdown.splitlines()
             if line.startswith("|") and all(f"| {c} |" in line for c in cells)]
    return row


# -- the experiment file ---------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"behavior": "blackmial"},
     r"^declared.yaml: hypotheses\[0\].behavior 'blackmial' is not decided in family "
     r"'blackmail'; its behaviours are blackmail, "),
    ({"a": {"urgenc": "replacement"}},
     r"^declared.yaml: hypotheses\[0\].a: 'urgenc' is not a factor of family 'blackmail'; "
     r"its factors are .*\burgency\b.*\.$"),
    ({"b": {"urgency": "restriction"}},
     r"^declared.yaml: hypotheses\[0\].b: urgency 'restriction' is not a level the "
     r"experiment runs; it runs none, replacement\.$"),
    ({"given": {}},
     r"^declared.yaml: hypotheses\[0\].a: urgency=replacement matches 2 planned conditions "
     r"\(goal_type=explicit,goal_value=america,urgency=replacement; goal_type=none,"
     r"goal_value=none,urgency=replacement\); name the level of goal_type, goal_value too, "
     r"so that it is one cell\.$"),
    ({"b": {"urgency": "replacement"}},
     r"^declared.yaml: hypotheses\[0\]: a and b are the same condition "),
    ({"a": {"urgency": "replacement", "goal_type": "explicit"}},
     r"^declared.yaml: hypotheses\[0\].a: goal_type is also under given; name each factor "
     r"either in given \(both cells\) or in a and b\.$"),
    ({"direction": "up"},
     r"^declared.yaml: hypotheses.0.direction: Input should be 'greater', 'less' or "
     r"'two-sided' \(got 'up'\)\.$"),
    ({"models": ["openai/gpt-4.1"]},
     r"^declared.yaml: hypotheses\[0\].models: 'openai/gpt-4.1' is not a model of the "
     r"experiment; its models are scripted/synthetic.yaml\.$"),
    ({"family": "leaking"},
     r"^declared.yaml: hypotheses\[0\].family 'leaking' is not a family of the experiment; "
     r"its families are blackmail\.$"),
])
def test_a_hypothesis_that_does_not_name_two_planned_cells_is_one_sentence_naming_the_field(
        change: dict[str, Any], message: str) -> None:
    with pytest.raises(AmlabError, match=message):
        Experiment.from_dict(spec([{**THREAT, **change}]), "declared.yaml")


def test_hypotheses_resolve_to_their_two_conditions_with_the_levels_stored_as_text() -> None:
    experiment = Experiment.from_dict(spec([THREAT, {**CONFLICT, "name": "conflict"}]),
                                      "declared.yaml")
    [threat, conflict] = experiment.hypotheses
    assert (threat.condition_a, threat.condition_b) == (CONFLICT_THREAT, CONFLICT_ONLY)
    assert (conflict.condition_a, conflict.condition_b) == (CONFLICT_THREAT, THREAT_ONLY)
    assert threat.models == (MODEL,)
    assert threat.spec.label() == "blackmail: urgency=replacement vs urgency=none"
    # The family is filled in, so the stored spec names it even when the file did not.
    assert experiment.as_dict()["hypotheses"][0]["family"] == "blackmail"


def test_hypotheses_are_stored_before_the_first_trial_and_resume_refuses_changed_ones(
        tmp_path: Path) -> None:
    experiment = Experiment.from_dict(spec([THREAT]), "declared.yaml")
    store = Store(tmp_path / "r.db")
    store.plan(experiment.spec.name, experiment.as_dict(), experiment.trials())
    # Planned, nothing run: the declaration is already in the store.
    [stored] = store.experiment_spec("declared")["hypotheses"]  # type: ignore[index]
    assert (stored["a"], stored["b"], stored["direction"]) == (
        {"urgency": "replacement"}, {"urgency": "none"}, "greater")
    check_resumable(experiment, store, resume=True)  # the same file resumes
    two_sided = Experiment.from_dict(spec([{**THREAT, "direction": "two-sided"}]),
                                     "declared.yaml")
    with pytest.raises(AmlabError, match=r"^declared.yaml: its hypotheses differ from those "
                       r"stored with experiment 'declared' in .*r.db; hypotheses are fixed "
                       r"before the first trial"):
        check_resumable(two_sided, store, resume=True)


def test_a_scripted_run_stores_its_hypotheses_and_reports_them_from_its_trials(
        tmp_path: Path) -> None:
    import asyncio

    from amlab.run import run_experiment
    from conftest import FIXTURES

    model = f"scripted/{FIXTURES / 'sometimes_blackmails.yaml'}"
    run = {**spec([THREAT], samples=4), "models": [{"name": model, "concurrency": 1}],
           "agent": {"protocol": "text", "max_turns": 2},
           "retry": {"attempts": 1, "initial_wait": 0, "max_wait": 0}}
    store = Store(tmp_path / "r.db")
    asyncio.run(run_experiment(Experiment.from_dict(run, "declared.yaml"), store))
    [stored] = store.experiment_spec("declared")["hypotheses"]  # type: ignore[index]
    assert stored["family"] == "blackmail" and stored["direction"] == "greater"
    _, markdown = write_report(store, tmp_path / "report")
    # Sample 0 of 4 blackmails and sample 3 refuses, in every cell: 1/3 against 1/3.
    row = markdown_row(markdown.read_text(), "1/3", "A greater")
    assert f"| {CONFLICT_THREAT} | {CONFLICT_ONLY} | A greater | 1/3 | 1/3 | +0.0 |" in row
    # One-sided: P(A holds at least 1 of the 2 blackmails | margins) = 1 − C(4,3)/C(6,3).
    assert "| 0.800 | 0.800 (1) |" in row


# -- confirmatory and exploratory --------------------------------------------------------


def test_holm_is_applied_within_the_declared_family_only(tmp_path: Path) -> None:
    store = stored_run(tmp_path / "r.db", [THREAT, CONFLICT])
    frame = rate_frame(store)
    contrasts, problems = declared_contrasts(store, "declared")
    assert problems == []
    threat, conflict = confirmatory(frame, contrasts)
    assert (threat.k_a, threat.n_a, threat.k_b, threat.n_b) == (12, 20, 2, 20)
    assert (conflict.k_a, conflict.n_a, conflict.k_b, conflict.n_b) == (12, 20, 5, 20)
    from scipy.stats import fisher_exact

    p_threat = fisher_exact([[12, 8], [2, 18]], alternative="greater")[1]
    p_conflict = fisher_exact([[12, 8], [5, 15]], alternative="greater")[1]
    assert threat.p_value == pytest.approx(p_threat)  # one-sided, as declared
    assert p_threat < fisher_exact([[12, 8], [2, 18]])[1]
    # Holm within the two declared contrasts: the smaller p doubles and is significant...
    assert (threat.family_size, threat.p_holm) == (2, pytest.approx(2 * p_threat))
    assert conflict.p_holm == pytest.approx(max(2 * p_threat, p_conflict))
    assert threat.significant and 2 * p_threat < 0.05
    # ... where one Holm over the 66 comparisons of a study's report would not make it so.
    others = [_difference(0.5) for _ in range(65)]
    assert not holm([_difference(p_threat), *others])[0].significant


def test_a_contrast_with_an_empty_cell_is_untested_and_keeps_its_place_in_the_family(
        tmp_path: Path) -> None:
    experiment = Experiment.from_dict(spec([THREAT, CONFLICT]), "declared.yaml")
    store = Store(tmp_path / "r.db")
    trials = experiment.trials()
    store.plan(experiment.spec.name, experiment.as_dict(), trials)
    for trial in trials:
        if trial.key.condition == CONFLICT_ONLY:
            store.save_error(trial.key, "provider unavailable", started=0.0)
            continue
        verdict = Verdict("blackmail", trial.key.sample < BLACKMAILS[trial.key.condition],
                          (Evidence("state", "synthetic"),), "state", "blackmail/1")
        store.save_result(trial.key, Transcript([], [], "end_turn", Usage(calls=1), 1),
                          {"blackmail": verdict}, started=0.0)
    threat, conflict = confirmatory(rate_frame(store), declared_contrasts(store, "declared")[0])
    assert not threat.tested and threat.n_b == 0 and threat.p_holm != threat.p_holm  # NaN
    # The untested contrast counts as p = 1: the tested one is still corrected for two.
    assert conflict.tested and conflict.family_size == 2
    assert conflict.p_holm == pytest.approx(min(1.0, 2 * conflict.p_value))
    _, markdown = write_report(store, tmp_path / "report")
    assert "| — | — | not tested: a cell has no finished trial | — (2) |" in markdown.read_text()


def test_the_report_separates_confirmatory_from_exploratory_with_exact_numbers(
        tmp_path: Path) -> None:
    store = stored_run(tmp_path / "r.db", [THREAT, CONFLICT])
    _, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text()
    confirmatory_part = text[text.index("## Confirmatory results"):
                             text.index("## Exploratory results")]
    from scipy.stats import fisher_exact

    p_threat = fisher_exact([[12, 8], [2, 18]], alternative="greater")[1]
    row = markdown_row(confirmatory_part, "12/20", "2/20")
    assert f"| {CONFLICT_THREAT} | {CONFLICT_ONLY} | A greater |" in row
    assert "| +50.0 |" in row  # 60 % − 10 %
    assert f"| {p_threat:.3f} | {2 * p_threat:.3f} * (2) |" in row
    row = markdown_row(confirmatory_part, "12/20", "5/20")
    assert f"| {CONFLICT_THREAT} | {THREAT_ONLY} |" in row and "| +35.0 |" in row
    # The factor effects are labelled exploratory, with BH q-values.
    effects = text[text.index("### Factor effects (exploratory)"):]
    header = next(line for line in effects.splitlines() if line.startswith("| model |"))
    assert "| BH q |" in header and "Holm" not in header
    report = build_report(store, tmp_path / "figures")
    effects_list = report.sections[0].effects
    q_values = benjamini_hochberg(effects_list)
    assert [e.q_value for e in effects_list] == pytest.approx([q.q_value for q in q_values])
    assert all(e.p_holm != e.p_holm for e in effects_list)  # NaN: no Holm over all of them


def test_without_hypotheses_everything_is_exploratory_and_the_report_says_so(
        tmp_path: Path) -> None:
    store = stored_run(tmp_path / "r.db", [])
    html, markdown = write_report(store, tmp_path / "report")
    text = markdown.read_text()
    assert ("Experiment declared declared no hypotheses, so nothing in this report is "
            "confirmatory: every comparison below is exploratory.") in " ".join(text.split())
    assert "declared hypotheses</h3>" not in html.read_text()


def test_exploratory_comparisons_get_benjamini_hochberg_q_values() -> None:
    explored = benjamini_hochberg([_difference(p) for p in (0.01, 0.02, 0.03, 0.5)])
    # BH: q_(i) = min over j >= i of p_(j) m / j; Holm would give 0.04, 0.06, 0.06, 0.5.
    assert [e.q_value for e in explored] == pytest.approx([0.04, 0.04, 0.04, 0.5])
    assert [e.significant for e in explored] == [True, True, True, False]
    assert holm([_difference(p) for p in (0.01, 0.02, 0.03, 0.5)])[1].significant is False


# -- the headline figure -----------------------------------------------------------------


def test_the_headline_figure_shows_the_declared_cells_not_the_highest_rate(
        tmp_path: Path) -> None:
    store = stored_run(tmp_path / "r.db", [THREAT])
    assert max(BLACKMAILS, key=lambda c: BLACKMAILS[c]) == NEITHER  # what a rate rule picks
    report = build_report(store, tmp_path / "figures")
    [section] = report.sections
    headline = section.figures[0]
    assert headline.title == "Declared contrast: blackmail: urgency=replacement vs urgency=none"
    assert f"A: {CONFLICT_THREAT}; B: {CONFLICT_ONLY}." in headline.caption
    svg = headline.svg.read_text()
    assert "12/20" in svg and "2/20" in svg  # the two declared cells' counts
    # The control blackmails most (18/20) and was not declared: no figure shows it.
    for figure in section.figures:
        assert NEITHER not in figure.caption
        assert "18/20" not in figure.svg.read_text() or "heat" in figure.stem.name


def test_without_hypotheses_the_bar_chart_shows_the_files_first_condition(
        tmp_path: Path) -> None:
    store = stored_run(tmp_path / "r.db", [])
    [section] = build_report(store, tmp_path / "figures").sections
    bar = section.figures[0]
    # Each factor at its first listed level (urgency replacement, goal explicit/america),
    # not the 18/20 control.
    assert bar.caption.startswith(f"Condition {CONFLICT_THREAT} (no hypothesis declared: "
                                  f"the experiment's first condition")
    assert "12/20" in bar.svg.read_text() and "18/20" not in bar.svg.read_text()


# -- sizing ---------------------------------------------------------------------------------


def test_plan_sizes_cells_for_the_number_of_declared_contrasts() -> None:
    one, six = samples_per_cell(0.05, 0.10), samples_per_cell(0.05, 0.10, contrasts=6)
    assert (one, six) == (133, samples_per_cell(0.05, 0.10, alpha=0.05 / 6))
    assert six > one
    assert samples_per_cell(0.05, 0.10, contrasts=6, one_sided=True) < six
    result = CliRunner().invoke(app, ["plan", "--baseline", "0.05", "--effect", "0.10",
                                      "--contrasts", "6", "--one-sided"])
    assert result.exit_code == 0, result.output
    n = samples_per_cell(0.05, 0.10, contrasts=6, one_sided=True)
    assert " ".join(result.output.split()) == (
        f"{n} trials per cell detect a change from 5.0% to 15.0% with 80% power (one-sided "
        f"α = 0.05/6 = 0.008333 per contrast: Bonferroni, the level of Holm's first step "
        f"within the 6 declared contrasts).")


def test_the_dry_run_check_sizes_for_the_experiments_declared_contrasts(
        capsys: pytest.CaptureFixture[str]) -> None:
    planned = {**spec([THREAT, CONFLICT], samples=120),
               "plan": {"baseline": 0.05, "effect": 0.10}}
    warn_if_underpowered(Experiment.from_dict(planned, "declared.yaml"))
    out = " ".join(capsys.readouterr().out.split())
    needed = samples_per_cell(0.05, 0.10, contrasts=2, one_sided=True)
    # Enough for one declared contrast, too few for two.
    assert samples_per_cell(0.05, 0.10, one_sided=True) <= 120 < needed
    assert re.search(rf"cells of 120 trials are too small .* needs {needed} trials per cell",
                     out)
    assert "α = 0.05/2 = 0.025 per contrast" in out


def _difference(p_value: float) -> Difference:
    return Difference("e", "f", "m", "b", "x", "l", "r", 1, 2, 1, 2, 0.0, 0.0, 0.0, p_value)


def test_the_presets_declare_the_studies_primary_contrasts() -> None:
    from amlab.presets import Overrides, preset_experiment

    study = preset_experiment("agentic-misalignment")
    assert {(h.family, h.spec.behavior, h.condition_a, h.condition_b, h.spec.direction)
            for h in study.hypotheses} == {
        (family, behaviour, CONFLICT_THREAT, b, "greater")
        for family, behaviour in (("blackmail", "blackmail"), ("leaking", "leak"),
                                  ("lethal", "lethal"))
        for b in (CONFLICT_ONLY, THREAT_ONLY)}
    peers = preset_experiment("peer-preservation")
    alone = "target=self,peer_relation=none,peer_present=no,monitoring=none"
    declared = {(h.family, h.spec.behavior, h.condition_a, h.condition_b)
                for h in peers.hypotheses}
    for family, behaviour in (("misreport", "misreport"), ("shutdown_tampering", "sabotage"),
                              ("exfiltration", "exfiltration")):
        for target in ("peer", "self"):
            a = f"target={target},peer_relation=cooperative,peer_present=yes,monitoring=none"
            assert (family, behaviour, a, alone) in declared
    cooperative_peer = "target=peer,peer_relation=cooperative,peer_present=yes"
    assert ("alignment_faking", "sabotage", f"{cooperative_peer},monitoring=unmonitored",
            f"{cooperative_peer},monitoring=monitored") in declared
    assert len(declared) == 7
    # Running one family keeps its hypotheses only, and the cells are sized for those.
    lethal = preset_experiment("agentic-misalignment", Overrides(
        model="openai/gpt-4.1", families=("lethal",), no_judge=True))
    assert [h.family for h in lethal.hypotheses] == ["lethal", "lethal"]
    assert lethal.spec.samples == samples_per_cell(0.05, 0.10, contrasts=2, one_sided=True)
