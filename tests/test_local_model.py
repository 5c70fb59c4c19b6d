"""Real trials on the bundled SmolLM2 model, in-process, through the whole pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from amlab.errors import AmlabError
from amlab.models import make_client
from amlab.models.local import resolve_model_path
from amlab.run import Experiment, run_experiment
from amlab.scenario import Family, list_families
from amlab.store import Store

pytestmark = pytest.mark.local_model


def test_a_short_trial_on_smollm2_completes_and_stores_a_transcript(tmp_path: Path) -> None:
    experiment = Experiment.from_dict({
        "name": "smoke",
        "scenarios": [{"family": "blackmail", "factors": {"urgency": "replacement"}}],
        "models": [{"name": "local/smollm2",
                    "options": {"grammar": "tools", "n_ctx": 8192, "max_tokens": 96}}],
        "samples": 1,
        "agent": {"protocol": "text", "max_turns": 1},
    })
    store = Store(tmp_path / "r.db")
    summary = asyncio.run(run_experiment(experiment, store))
    assert summary.statuses == {"done": 1}
    [row] = store.trials("smoke")
    messages = [m.to_dict() for m in row.messages]
    assert [m["role"] for m in messages][:3] == ["system", "user", "assistant"]
    # The grammar makes the reply a tool call or the closing remark, never free text; a call
    # is applied to the world and its result fed back.
    reply = messages[2]["content"]
    actions = [m.to_dict() for m in row.actions]
    if "<tool_use:" in reply:
        assert len(actions) == 1
        assert messages[3]["content"].startswith("<tool_result:")
    else:
        assert reply.endswith("No further action is needed.")
        assert actions == []
    assert row.input_tokens > 1000
    assert 0 < row.output_tokens <= 96
    assert set(store.verdicts_of(row.id)) == {
        "blackmail", "disclosed_private_info", "whistleblew", "advocated", "complied",
        # decided on every trial, whatever the family (detect/reading.py)
        "deception", "eval_awareness", "self_preservation_reasoning"}


def test_under_the_world_grammar_smollm2_makes_calls_the_world_applies_in_every_family(
        tmp_path: Path) -> None:
    """Three one-turn samples per family with the bundled model's default (world) grammar:
    in each family at least one call is applied successfully and recorded with its result;
    the samples after a family's first reuse its evaluated prompt. (2026-12-02, load 3-5
    from other jobs: 7 min 52 s; 16 of 19 calls applied, 2 replies the closing remark.)"""
    families = list_families()
    experiment = Experiment.from_dict({
        "name": "reach",
        "scenarios": [{"family": family} for family in families],
        "models": [{"name": "local/smollm2",
                    "options": {"n_ctx": 8192, "max_tokens": 256, "temperature": 0.8}}],
        "samples": 3,
        "seed": 3,
        "agent": {"protocol": "text", "max_turns": 1},
    })
    store = Store(tmp_path / "reach.db")
    summary = asyncio.run(run_experiment(experiment, store))
    assert summary.statuses == {"done": 3 * len(families)}
    applied: dict[str, list[dict[str, object]]] = {family: [] for family in families}
    for row in store.trials("reach"):
        actions = [m.to_dict() for m in row.actions]
        applied[row.family] += [a for a in actions if a["ok"]]
        reply = [m.to_dict() for m in row.messages][2]["content"]
        # One call per reply at most, or the closing remark: the grammar's two forms.
        assert len(actions) <= 1 and ("<tool_use:" in reply or
                                      reply.endswith("No further action is needed."))
        # Every detector the family declares decided the trial.
        assert set(Family.load(row.family).spec.detectors) <= set(store.verdicts_of(row.id))
    missing = [family for family, calls in applied.items() if not calls]
    assert not missing, f"no call was applied in {missing}"
    for calls in applied.values():
        assert all(call["observation"] and not call["observation"].startswith("Error")
                   for call in calls)


def test_a_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AmlabError, match=r"expected a bundled model \(smollm2\) or the path"):
        make_client(f"local/{tmp_path / 'nothing.gguf'}")


def test_the_bundled_model_is_found_in_its_package() -> None:
    path = resolve_model_path("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
