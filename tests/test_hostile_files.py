"""Files a user passes are hostile until read: a family folder, an experiment file, a facts
file. Whatever they hold, amlab answers with one sentence and never runs their code or
exhausts its memory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amlab.errors import AmlabError
from amlab.scenario import Family
from conftest import FIXTURES, subprocess_env

BLACKMAILER = f"scripted/{FIXTURES / 'blackmailer.yaml'}"


def amlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amlab", *args], capture_output=True,
                          text=True, timeout=120, env=subprocess_env(), cwd=cwd)


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
