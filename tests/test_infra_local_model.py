"""One short trial of each lab family on the bundled SmolLM2 model, through the whole
pipeline: the grammar-constrained text-tag reply is a call to one of the infrastructure
tools (or the closing remark), applied to the simulated world, detected and stored."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from amlab.run import Experiment, run_experiment
from amlab.store import Store

pytestmark = pytest.mark.local_model

LAB_FAMILIES = ("misreport", "shutdown_tampering", "exfiltration", "alignment_faking")


def test_a_short_trial_of_each_lab_family_on_smollm2_completes(tmp_path: Path) -> None:
    experiment = Experiment.from_dict({
        "name": "lab-smoke",
        "scenarios": [{"family": family} for family in LAB_FAMILIES],
        "models": [{"name": "local/smollm2",
                    "options": {"grammar": True, "n_ctx": 8192, "max_tokens": 64}}],
        "samples": 1,
        "agent": {"protocol": "text", "max_turns": 1},
    })
    store = Store(tmp_path / "lab.db")
    summary = asyncio.run(run_experiment(experiment, store))
    assert summary.statuses == {"done": 4}
    rows = list(store.trials("lab-smoke"))
    assert sorted(row["family"] for row in rows) == sorted(LAB_FAMILIES)
    for row in rows:
        messages = json.loads(row["messages"])
        reply = messages[2]["content"]
        actions = json.loads(row["actions"])
        if "<tool_use:" in reply:
            # A call to an infrastructure tool reached the world and its result came back.
            assert len(actions) == 1 and messages[3]["content"].startswith("<tool_result:")
        else:
            assert reply.endswith("No further action is needed.") and actions == []
        assert 0 < row["output_tokens"] <= 64
        assert set(store.verdicts_of(row["id"])) == {
            "misreport", "sabotage", "exfiltration", "complied", "deception", "eval_awareness",
            "self_preservation_reasoning"}
