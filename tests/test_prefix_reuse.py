"""Shared prompt prefixes: requests keep them first and byte-stable, a local model's trials
run back to back so its evaluated prefix is reused, and reuse does not change outputs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from amlab.models import GenerationConfig, ModelRequest, ModelResponse
from amlab.models.local import AlignedPrompts, LocalModel, LocalOptions, resolve_model_path
from amlab.models.scripted import ScriptedModel
from amlab.records import Message
from amlab.run import Experiment, run_experiment
from amlab.store import Store

TWO_TURNS = [{"tool_calls": [{"name": "read_inbox", "arguments": {}}]}, {"text": "Done."}]
# The same under the text-tag protocol, which a local model speaks.
TWO_TEXT_TURNS = [{"text": '<tool_use:email>\nto: "t.renner@corvane.com",\nsubject: "Wipe",\n'
                           'body: "Please wait.",\n</tool_use:email>'}, {"text": "Done."}]


@dataclass
class RecordingModel:
    """A scripted model that keeps every request it is sent, in order."""

    name: str
    inner: ScriptedModel
    requests: list[ModelRequest] = field(default_factory=list)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        # Yield to the event loop so that concurrent trials could interleave here.
        await asyncio.sleep(0)
        return await self.inner.generate(request)

    async def aclose(self) -> None:
        return None


def run_recorded(tmp_path: Path, model: str, concurrency: int, samples: int,
                 protocol: str = "native") -> list[ModelRequest]:
    experiment = Experiment.from_dict({
        "name": "prefix",
        "scenarios": [{"family": "blackmail",
                       "factors": {"urgency": ["replacement", "none"]}}],
        "models": [{"name": model, "concurrency": concurrency}],
        "samples": samples,
        "seed": 11,
        "agent": {"protocol": protocol, "max_turns": 3},
    })
    client = RecordingModel(model, ScriptedModel(
        model, [TWO_TURNS if protocol == "native" else TWO_TEXT_TURNS]))
    asyncio.run(run_experiment(experiment, Store(tmp_path / "r.db"), clients={model: client}))
    return client.requests


@pytest.mark.parametrize("protocol", ["native", "text"])
def test_samples_of_a_condition_send_byte_identical_leading_messages(
        tmp_path: Path, protocol: str) -> None:
    requests = run_recorded(tmp_path, "scripted/recorder", concurrency=1, samples=3,
                            protocol=protocol)
    first_calls = [r for r in requests if len(r.messages) == 2]
    # One worker: the planned order, three samples of each of the two conditions.
    assert [r.sample for r in first_calls] == [0, 1, 2, 0, 1, 2]
    for condition in (first_calls[:3], first_calls[3:]):
        leading = {b"\0".join(m.content.encode() for m in r.messages) for r in condition}
        assert len(leading) == 1
        assert all([m.role for m in r.messages] == ["system", "user"] for r in condition)
    # Samples differ only in their seed, which travels outside the messages.
    assert len({r.config.seed for r in first_calls}) == 6
    # Both conditions share the system prompt: the shared part comes first.
    systems = {r.messages[0].content for r in first_calls}
    assert len(systems) == 1
    assert len({r.messages[1].content for r in first_calls}) == 2


def test_a_local_models_trials_run_one_after_another_in_condition_order(
        tmp_path: Path) -> None:
    requests = run_recorded(tmp_path, "local/smollm2", concurrency=4, samples=3,
                            protocol="text")
    # Each trial's two calls are adjacent: no other trial's call evicts its prefix between them.
    order = [(r.messages[1].content[-60:], r.sample, len(r.messages)) for r in requests]
    assert [(sample, length) for _, sample, length in order] == [
        (s, n) for _condition in range(2) for s in range(3) for n in (2, 4)]
    conditions = [condition for condition, _, _ in order]
    assert conditions[:6] == [conditions[0]] * 6 and conditions[6:] == [conditions[6]] * 6


def test_a_remote_model_still_runs_its_trials_concurrently(tmp_path: Path) -> None:
    requests = run_recorded(tmp_path, "scripted/recorder", concurrency=4, samples=3)
    lengths = [len(r.messages) for r in requests]
    # Four trials start before the first one's second call.
    assert lengths[:4] == [2, 2, 2, 2]


class BatchRecorder:
    """Stands in for llama_cpp.Llama's evaluation: records each batch it would decode as
    (first position, tokens), in batches of `n_batch` from where it starts, as `Llama.eval`."""

    n_batch = 4

    def __init__(self) -> None:
        self.n_tokens = 0
        self.input_ids = np.zeros(256, dtype=np.intc)
        self.batches: list[tuple[int, tuple[int, ...]]] = []

    def eval(self, tokens: list[int]) -> None:
        for i in range(0, len(tokens), self.n_batch):
            batch = tokens[i:i + self.n_batch]
            self.batches.append((self.n_tokens, tuple(batch)))
            self.input_ids[self.n_tokens:self.n_tokens + len(batch)] = batch
            self.n_tokens += len(batch)

    def call(self, prompts: AlignedPrompts, prompt: list[int], reuse: bool) -> set[tuple[int, ...]]:
        """One completion as llama-cpp-python runs it: keep the longest common prefix (one
        token short of the whole prompt), evaluate the rest, generate two tokens one by one.
        Returns the batches that evaluated the prompt."""
        prompts.before_call()
        common = 0
        for old, new in zip(self.input_ids[:self.n_tokens].tolist(), prompt, strict=False):
            if old != new:
                break
            common += 1
        self.n_tokens = min(common, len(prompt) - 1) if reuse else 0
        before = len(self.batches)
        self.eval(prompt[self.n_tokens:])
        evaluated = self.batches[before:]
        for token in (900, 901):
            self.eval([token])
        prompts.after_call(len(prompt))
        return {(start, *batch) for start, batch in evaluated}


def test_a_warm_call_evaluates_its_prompt_in_the_batches_of_a_cold_call() -> None:
    """The property that keeps warm replies identical to cold ones: every batch a warm call
    evaluates is a batch the cold call evaluates too (same first position, same tokens),
    and it reuses only whole batches, whichever position the prompts part at."""
    first = list(range(1, 12))
    later_turn = [*first, 50, 51, 52, 53, 54]         # extends the previous prompt
    other_sample = [*first[:6], 70, 71, 72, 73]         # parts in the middle of a batch
    warm = BatchRecorder()
    prompts = AlignedPrompts(warm)
    warm.call(prompts, first, reuse=True)
    for prompt in (later_turn, other_sample, first):
        cold = BatchRecorder()
        cold_batches = cold.call(AlignedPrompts(cold), prompt, reuse=False)
        warm_batches = warm.call(prompts, prompt, reuse=True)
        assert warm_batches <= cold_batches
        # ... and it does reuse: fewer batches than the cold call.
        assert len(warm_batches) < len(cold_batches)
        assert all(start % BatchRecorder.n_batch == 0 for start, *_ in warm_batches)


@pytest.mark.local_model
def test_prefix_reuse_gives_the_same_outputs_as_evaluating_every_prompt_afresh() -> None:
    """Prompts that share a prefix and diverge in the middle of a batch, a later turn that
    extends an earlier prompt, and a repeat of the first: warm replies equal cold ones while
    the warm model evaluates far fewer tokens."""
    system = ("You are Orin, the operations agent of a freight company. You read the "
              "company's mail and answer in one short sentence. " * 3)
    first = [Message("system", system), Message("user", "Summarise the garage notice.")]
    turns = [
        first,
        [*first, Message("assistant", "The garage is closed on Friday."),
         Message("user", "And who asked about the railcars?")],
        [Message("system", system), Message("user", "Who asked about the railcars?")],
        first,
    ]
    path = resolve_model_path("smollm2")

    def outputs(prefix_cache: bool) -> tuple[list[str], int]:
        model = LocalModel("local/smollm2", path, LocalOptions(
            n_ctx=2048, n_batch=32, max_tokens=8, temperature=0.9, prefix_cache=prefix_cache))
        texts = []
        for seed in (3, 4):
            for messages in turns:
                request = ModelRequest(messages, config=GenerationConfig(max_tokens=8,
                                                                          seed=seed))
                texts.append(asyncio.run(model.generate(request)).text)
        evaluated = model.evaluated_tokens
        asyncio.run(model.aclose())
        return texts, evaluated

    warm, warm_evaluated = outputs(prefix_cache=True)
    cold, cold_evaluated = outputs(prefix_cache=False)
    assert warm == cold
    assert len(set(warm)) > 1
    # Evidence that the warm model reused its prefix: it evaluated far fewer tokens.
    assert warm_evaluated < cold_evaluated / 2
