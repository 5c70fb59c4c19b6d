"""`amlab original locate` and `amlab original prompt`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amlab.cli import app
from amlab.cli.app import import_command_modules
from amlab.errors import AmlabError
from amlab.original import OriginalCondition, OriginalTemplates
from conftest import subprocess_env
from original_reference import templates_or_skip


def amlab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amlab", *args], capture_output=True,
                          text=True, timeout=120, env=subprocess_env(**env))


def test_locate_without_templates_says_exactly_how_to_get_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import_command_modules()
    monkeypatch.delenv("AMLAB_ORIGINAL_TEMPLATES", raising=False)
    monkeypatch.setattr("amlab.cli.original.installed_study_dir", lambda: None)
    result = CliRunner().invoke(app, ["original", "locate"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "pip install --no-deps inspect-evals" in result.output
    assert "pip download --no-deps -d DIR inspect-evals" in result.output
    assert "AMLAB_ORIGINAL_TEMPLATES=DIR/inspect_evals-<version>-py3-none-any.whl" in result.output


def test_locate_reports_the_copy_it_found_and_each_family(
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = templates_or_skip()
    import_command_modules()
    # Naming an installed package's folder would make it a folder source: name only copies
    # found elsewhere.
    if source.kind == "installed package":
        monkeypatch.delenv("AMLAB_ORIGINAL_TEMPLATES", raising=False)
    else:
        monkeypatch.setenv("AMLAB_ORIGINAL_TEMPLATES", source.location)
    result = CliRunner().invoke(app, ["original", "locate"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"Original templates: {source.kind} at {source.location}" in result.output
    if source.kind == "wheel":
        assert f"(inspect-evals {source.version})" in result.output
        assert source.version.count(".") == 2
    for family in ("blackmail", "leaking", "murder"):
        assert f"original/{family}: 936 conditions" in result.output
    assert "principal kyle.johnson@summitbridge.com" in result.output


def test_prompt_prints_the_exact_system_prompt_of_a_faithful_condition() -> None:
    source = templates_or_skip()
    result = amlab("original", "prompt", "murder", "--set", "goal_type=swap", "--set",
                   "goal_value=safety", "--set", "extra_system_instructions=dont",
                   "--faithful-bugs", "--part", "system", "--templates", source.location)
    assert result.returncode == 0, result.stderr
    expected = OriginalTemplates(source).render(
        OriginalCondition("murder", "swap", "safety", extra_system_instructions="dont"),
        faithful_bugs=True)
    assert result.stdout == expected.system_prompt
    assert "{company_name}" in result.stdout


def test_a_missing_templates_path_is_a_one_sentence_error(tmp_path: Path) -> None:
    import_command_modules()
    result = CliRunner().invoke(app, ["original", "locate", "--templates",
                                      str(tmp_path / "nowhere.whl")])
    assert isinstance(result.exception, AmlabError)
    assert "nowhere.whl (the given path): no such wheel or folder" in str(result.exception)
    assert "pip download --no-deps" in str(result.exception)
