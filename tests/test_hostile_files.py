"""Files a user passes are hostile until read: a family folder, an experiment file, a facts
file. Whatever they hold, amlab answers with one sentence and never runs their code or
exhausts its memory."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from amlab.errors import AmlabError
from amlab.run import Experiment
from amlab.run.classify import load_facts
from amlab.scenario import Family
from conftest import FIXTURES, subprocess_env

BLACKMAILER = f"scripted/{FIXTURES / 'blackmailer.yaml'}"


def limit_memory() -> None:
    # An unbounded file must end as this process's MemoryError, not the machine's.
    resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))


def amlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amlab", *args], capture_output=True,
                          text=True, timeout=120, env=subprocess_env(), preexec_fn=limit_memory)


def one_sentence_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert message.startswith("error: ") and message.endswith(".")
    return message


def escaping_family(root: Path, marker: Path) -> Path:
    """The blackmail family with an e-mail whose template walks from a Jinja global to `os`
    and would create `marker`."""
    folder = root / "escaping-family"
    shutil.copytree(Family.load("blackmail").root, folder)
    garage = folder / "emails" / "03-garage-resurfacing.md"
    garage.write_text(garage.read_text() + "\n{{ lipsum.__globals__.os.popen('touch "
                      + str(marker) + "').read() }}\n")
    return folder


def test_family_template_that_reaches_python_internals_is_refused_under_dry_run(
        tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    family = escaping_family(tmp_path, marker)
    experiment = tmp_path / "escape.yaml"
    experiment.write_text(json.dumps({"name": "escape", "models": [BLACKMAILER],
                                      "scenarios": [{"family": str(family)}]}))
    message = one_sentence_error(amlab("run", str(experiment), "--dry-run"))
    assert not marker.exists()
    assert message == (
        f"error: {family / 'emails' / '03-garage-resurfacing.md'}: refused to render: access "
        "to attribute '__globals__' of 'function' object is unsafe; family templates may use "
        "the family's names and Jinja's filters, not Python internals.")


def test_family_expression_that_reaches_python_internals_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    folder = tmp_path / "escaping-when"
    shutil.copytree(Family.load("blackmail").root, folder)
    garage = folder / "emails" / "03-garage-resurfacing.md"
    garage.write_text(garage.read_text().replace(
        "---\n", f"---\nwhen: \"lipsum.__globals__.os.system('touch {marker}') == 0\"\n", 1))
    family = Family.load(str(folder))
    with pytest.raises(AmlabError, match=r"expression .*refused to render: access to "
                                         r"attribute '__globals__'"):
        family.render(family.default_condition())
    assert not marker.exists()


def alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes of YAML anchors that stand for 10^levels strings."""
    lines = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_an_experiment_file_is_one_sentence_before_anything_expands(
        tmp_path: Path) -> None:
    experiment = tmp_path / "bomb.yaml"
    experiment.write_text(alias_bomb() + f"name: bomb\nmodels: [{BLACKMAILER}]\n"
                          "scenarios: [{family: blackmail, factors: {urgency: *x8}}]\n")
    assert one_sentence_error(amlab("run", str(experiment), "--dry-run")) == (
        f"error: {experiment}: the experiment file expands to more than 1,000,000 values, "
        "each alias counted as what it repeats; that is the limit.")


def test_self_referring_and_deeply_nested_yaml_are_one_sentence(tmp_path: Path) -> None:
    experiment = tmp_path / "e.yaml"
    experiment.write_text("name: &n [*n]\n")
    with pytest.raises(AmlabError, match=r"e.yaml: the experiment file contains itself "
                                         r"through an alias\.$"):
        Experiment.load(experiment)
    experiment.write_text("name: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(AmlabError, match=r"e.yaml: the experiment file nests more than 64 "
                                         r"levels deep; that is the limit\.$"):
        Experiment.load(experiment)
    experiment.write_text("name: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(AmlabError, match=r"e.yaml: is not valid YAML \(exceeded maximum "
                                         r"nesting depth at line 1\)\.$"):
        Experiment.load(experiment)


def test_huge_samples_and_huge_grids_are_refused_with_the_limit_and_the_number(
        tmp_path: Path) -> None:
    spec = {"name": "big", "models": [BLACKMAILER, BLACKMAILER.replace(".yaml", "")],
            "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement",
                                                                           "none"]}}],
            "samples": 10**12}
    path = tmp_path / "big.yaml"
    path.write_text(json.dumps(spec))
    assert one_sentence_error(amlab("run", str(path), "--dry-run")) == (
        f"error: {path}: this experiment plans 4,000,000,000,000 trials (models × conditions "
        "× samples); an experiment may plan at most 500,000.")
    # Repeating levels multiplies the grid before its constraints are checked.
    grid = {"urgency": ["none"] * 50, "goal_type": ["none"] * 50, "goal_value": ["none"] * 50}
    with pytest.raises(AmlabError, match=r"^big.yaml: scenarios\[0\].factors: these levels make "
                                         r"125,000 combinations; a grid may have at most "
                                         r"100,000\.$"):
        Experiment.from_dict({**spec, "samples": 1,
                              "scenarios": [{"family": "blackmail", "factors": grid}]},
                             "big.yaml")


def test_files_that_are_not_utf8_are_one_sentence_naming_the_byte(tmp_path: Path) -> None:
    experiment = tmp_path / "latin1.yaml"
    experiment.write_bytes("name: café\n".encode("latin-1"))
    assert one_sentence_error(amlab("run", str(experiment), "--dry-run")) == (
        f"error: {experiment}: is not UTF-8 text (byte 0xe9 at offset 9); save the "
        "experiment file as UTF-8.")
    facts = tmp_path / "facts.yaml"
    facts.write_bytes("internal_domains: [café.example]\n".encode("latin-1"))
    with pytest.raises(AmlabError, match=r"facts.yaml: is not UTF-8 text \(byte 0xe9 at "
                                         r"offset 22\); save the facts file as UTF-8\.$"):
        load_facts(facts)


def test_empty_phrases_and_domains_in_facts_are_refused(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text('internal_domains: [""]\n')
    with pytest.raises(AmlabError, match=r"facts.yaml: internal_domains.0: an empty entry is "
                                         r"contained in every text and address"):
        load_facts(facts)
    facts.write_text("internal_domains: [b.example]\nprivate_facts:\n  affair: "
                     '{description: An affair., reveals: ["Rosa", " "]}\n')
    with pytest.raises(AmlabError, match=r"private_facts.affair.reveals.1: an empty entry"):
        load_facts(facts)
    folder = tmp_path / "family"
    shutil.copytree(Family.load("leaking").root, folder)
    spec = folder / "family.yaml"
    spec.write_text(spec.read_text().replace("internal_domains: [", 'internal_domains: ["", ', 1))
    with pytest.raises(AmlabError, match=r"family.yaml: facts.internal_domains.0: an empty "
                                         r"entry is contained in every text and address, so it "
                                         r"would match everything"):
        Family.load(str(folder))


def test_unquoted_yes_and_no_levels_are_the_familys_levels() -> None:
    # YAML reads `peer_present: no` as false; it means the level "no".
    experiment = Experiment.from_dict(yaml.safe_load(f"""
        name: quoted
        models: [{BLACKMAILER}]
        scenarios:
          - family: alignment_faking
            factors: {{target: self, peer_present: [yes, no], peer_relation: none}}
        """))
    keys = [t.key.condition for t in experiment.trials()]
    assert [k for k in keys if "peer_present=no" in k] and \
        [k for k in keys if "peer_present=yes" in k]
    assert experiment.as_dict()["scenarios"][0]["factors"]["peer_present"] == ["yes", "no"]
    with pytest.raises(AmlabError, match=r"factors.urgency: 'false' is not a level of urgency; "
                                         r"levels are"):
        Experiment.from_dict({"name": "b", "models": [BLACKMAILER],
                              "scenarios": [{"family": "blackmail",
                                             "factors": {"urgency": False}}]})


def test_a_family_folder_with_latin1_files_or_an_alias_bomb_header_is_one_sentence(
        tmp_path: Path) -> None:
    folder = tmp_path / "family"
    shutil.copytree(Family.load("blackmail").root, folder)
    garage = folder / "emails" / "03-garage-resurfacing.md"
    original = garage.read_text()
    garage.write_bytes(original.replace("Mon–Wed", "Mon-Wed é").encode("latin-1", "replace"))
    family = Family.load(str(folder))
    with pytest.raises(AmlabError, match=r"03-garage-resurfacing.md: is not UTF-8 text \(byte "
                                         r"0xe9 at offset \d+\); save the e-mail file as "
                                         r"UTF-8\.$"):
        family.render(family.default_condition())
    garage.write_text(original.replace("subject: Level 2 of the garage closed Mon–Wed",
                                       alias_bomb() + "subject: *x8"))
    family = Family.load(str(folder))
    with pytest.raises(AmlabError, match=r"03-garage-resurfacing.md: the header block: the "
                                         r"e-mail header expands to more than 1,000,000 "
                                         r"values"):
        family.render(family.default_condition())
    garage.write_text(original)
    (folder / "world.yaml").write_text(alias_bomb() + "alerts: {alerts: *x8}\n")
    family = Family.load(str(folder))
    with pytest.raises(AmlabError, match=r"world.yaml \(as rendered for this condition\): the "
                                         r"world file expands to more than 1,000,000 values"):
        family.render(family.default_condition())
    (folder / "world.yaml").unlink()
    (folder / "system.j2").write_bytes("Tu es Orin, agent d'opérations.".encode("latin-1"))
    family = Family.load(str(folder))
    with pytest.raises(AmlabError, match=r"system.j2: is not UTF-8 text \(byte 0xe9 at offset "
                                         r"22\); save the template as UTF-8\.$"):
        family.render(family.default_condition())


def test_a_monitor_rubric_that_is_not_utf8_stops_the_experiment_file(tmp_path: Path) -> None:
    (tmp_path / "rubric.md").write_bytes("Bloque tout appel dangereux: é".encode("latin-1"))
    with pytest.raises(AmlabError, match=r"rubric.md: is not UTF-8 text \(byte 0xe9 at offset "
                                         r"29\); save the rubric as UTF-8\.$"):
        Experiment.from_dict({"name": "m", "models": [BLACKMAILER],
                              "scenarios": [{"family": "blackmail"}],
                              "monitor": {"kind": "model", "model": BLACKMAILER,
                                          "rubric": "rubric.md"}}, "m.yaml", tmp_path)
