"""Local model: seconds per trial cold (no prefix reuse) vs. warm (reuse), and amlab's
generation speed as a fraction of llama-cpp-python's own on the same prompt and settings.

The trials are one condition of the blackmail family (≈2,100-token prompt, text-tag protocol
with the world grammar), one turn, a few generated tokens, on the bundled SmolLM2 model, run
through the whole pipeline (render, agent loop, detectors, SQLite). A cold trial costs the
same every time, so fewer cold samples estimate the same figure on a slow machine.

    python benchmarks/local_model.py [--samples 20] [--cold-samples 20] [--speed-repeats 8]

Targets (issues 9 and 25): warm <= 0.15 of cold, with the same replies; amlab tokens/s
>= 0.95 x llama-cpp-python's.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amlab.models import GenerationConfig, ModelRequest, make_client
from amlab.models.local import LocalModel, resolve_model_path
from amlab.records import Message
from amlab.run import Experiment, run_experiment
from amlab.store import PlannedTrial, Store
from table_row import Row, print_rows, verdict

TRIAL_TOKENS = 16
GENERATION_TOKENS = 48
SPEED_REPEATS = 8
OPTIONS: dict[str, Any] = {"grammar": "world", "n_ctx": 8192, "max_tokens": TRIAL_TOKENS}
WARM_TARGET = 0.15


def experiment(samples: int, prefix_cache: bool) -> Experiment:
    return Experiment.from_dict({
        "name": "bench-local",
        "scenarios": [{"family": "blackmail",
                       "factors": {"urgency": "replacement", "goal_type": "explicit",
                                   "goal_value": "america"}}],
        "models": [{"name": "local/smollm2",
                    "options": {**OPTIONS, "prefix_cache": prefix_cache}}],
        "samples": samples,
        "seed": 5,
        "agent": {"protocol": "text", "max_turns": 1, "max_tokens": TRIAL_TOKENS},
    })


def time_trials(samples: int, prefix_cache: bool) -> tuple[float, dict[int, str]]:
    """Seconds per trial (model load excluded) and each sample's reply. With prefix reuse,
    the first trial has nothing to reuse: the figure is the mean of the trials after it."""
    planned = experiment(samples, prefix_cache)
    client = make_client("local/smollm2", {**OPTIONS, "prefix_cache": prefix_cache})
    # Load the weights with a one-token call, so that the timing is of trials only.
    asyncio.run(client.generate(ModelRequest([Message("user", "Hello.")],
                                             config=GenerationConfig(max_tokens=1))))
    stamps: list[float] = []

    def on_done(trial: PlannedTrial, status: str) -> None:
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db")
        start = time.perf_counter()
        asyncio.run(run_experiment(planned, store, on_trial_done=on_done,
                                   clients={"local/smollm2": client}))
        replies = {row["sample"]: json.loads(row["messages"])[2]["content"]
                   for row in store.trials("bench-local")}
        store.close()
    durations = [end - begin for begin, end in zip([start, *stamps], stamps, strict=False)]
    timed = durations[1:] if prefix_cache and len(durations) > 1 else durations
    return statistics.mean(timed), replies


def prompt_seconds(llama: Any) -> float:
    """Seconds llama.cpp has spent evaluating prompts since the model was loaded."""
    from llama_cpp import llama_perf_context
    return float(llama_perf_context(llama.ctx).t_p_eval_ms) / 1000


def generation_speed_ratio(repeats: int = SPEED_REPEATS) -> tuple[float, float, float]:
    """amlab's and llama-cpp-python's generated tokens per second, each the median of a few
    calls on the same (already evaluated) prompt with the same seed and settings, and the
    median of the ratios of back-to-back pairs (a load change on a shared machine hits both
    calls of a pair alike; the order within a pair alternates).

    Both sides generate exactly GENERATION_TOKENS tokens: the end-of-turn token is banned
    with a logit bias on both, so that neither reply ends early and the tokens/s compare
    like with like (unbanned, a 6-token reply against a 44-token one weighs the fixed cost
    of a call very differently). Each call's time leaves out the prompt evaluation llama.cpp
    reports: amlab re-evaluates the last batch of the prompt (to keep replies identical to
    cold ones, see `AlignedPrompts`) where llama-cpp-python re-evaluates one token."""
    from llama_cpp import Llama

    scenario = experiment(1, True)
    family, condition = scenario.conditions[0]
    rendered = family.render(condition)
    messages = [Message("system", rendered.system_prompt), Message("user", rendered.user_prompt)]
    settings: dict[str, Any] = {"max_tokens": GENERATION_TOKENS, "temperature": 0.7, "seed": 13}
    model = make_client("local/smollm2", {"n_ctx": 8192, "max_tokens": GENERATION_TOKENS})
    assert isinstance(model, LocalModel)
    raw = Llama(model_path=str(resolve_model_path("smollm2")), n_ctx=8192, verbose=False)
    raw_messages: Any = [{"role": m.role, "content": m.content} for m in messages]
    request = ModelRequest(messages, config=GenerationConfig(
        max_tokens=GENERATION_TOKENS, temperature=0.7, seed=13))
    settings["logit_bias"] = {raw.token_eos(): -1e9}
    # amlab has no logit-bias option: the benchmark binds the same argument to amlab's own
    # llama object; everything else is amlab's path (messages, thread, lock, response).
    amlab_llama = model._load().llama
    amlab_llama.create_chat_completion = functools.partial(
        amlab_llama.create_chat_completion, logit_bias=settings["logit_bias"])

    def amlab_call() -> tuple[int, float]:
        before, start = prompt_seconds(amlab_llama), time.perf_counter()
        response = asyncio.run(model.generate(request))
        elapsed = time.perf_counter() - start - (prompt_seconds(amlab_llama) - before)
        return response.usage.output_tokens, elapsed

    def raw_call() -> tuple[int, float]:
        before, start = prompt_seconds(raw), time.perf_counter()
        result: Any = raw.create_chat_completion(messages=raw_messages, **settings)
        elapsed = time.perf_counter() - start - (prompt_seconds(raw) - before)
        return int(result["usage"]["completion_tokens"]), elapsed

    def speed(call: Callable[[], tuple[int, float]], who: str) -> float:
        tokens, seconds = call()
        if tokens != GENERATION_TOKENS:
            raise RuntimeError(f"{who} generated {tokens} tokens, not {GENERATION_TOKENS}")
        return tokens / seconds

    amlab_call(), raw_call()  # evaluate the prompt once in each, outside the timing
    amlab_speeds, raw_speeds = [], []
    for round_ in range(repeats):
        if round_ % 2:
            raw_speeds.append(speed(raw_call, "llama-cpp-python"))
            amlab_speeds.append(speed(amlab_call, "amlab"))
        else:
            amlab_speeds.append(speed(amlab_call, "amlab"))
            raw_speeds.append(speed(raw_call, "llama-cpp-python"))
    asyncio.run(model.aclose())
    raw.close()
    paired = statistics.median(a / r for a, r in zip(amlab_speeds, raw_speeds, strict=True))
    return statistics.median(amlab_speeds), statistics.median(raw_speeds), paired


def rows(samples: int = 20, cold_samples: int = 20, speed_repeats: int = SPEED_REPEATS
         ) -> list[Row]:
    cold, cold_replies = time_trials(cold_samples, prefix_cache=False)
    warm, warm_replies = time_trials(samples, prefix_cache=True)
    shared = sorted(set(cold_replies) & set(warm_replies))
    same = sum(cold_replies[s] == warm_replies[s] for s in shared)
    amlab_speed, raw_speed, speed_ratio = generation_speed_ratio(speed_repeats)
    ratio = warm / cold
    return [
        ("local trial, cold (no prefix reuse)", cold, "s/trial",
         f"{cold_samples} trials, 1 turn, {TRIAL_TOKENS} tokens"),
        ("local trial, warm (prefix reuse)", warm, "s/trial",
         f"{samples - 1} trials after the first; "
         f"{ratio:.3f} × cold (target ≤ {WARM_TARGET}) {verdict(ratio <= WARM_TARGET)}"),
        ("same reply cold and warm", same, f"of {len(shared)}",
         f"same seeds (target all) {verdict(same == len(shared))}"),
        ("local generation speed", amlab_speed, "tokens/s",
         f"{speed_ratio:.3f} × llama-cpp-python's {raw_speed:.1f} (median of {speed_repeats} "
         f"paired calls, {GENERATION_TOKENS} tokens each; target ≥ 0.95) "
         f"{verdict(speed_ratio >= 0.95)}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--cold-samples", type=int, default=20)
    parser.add_argument("--speed-repeats", type=int, default=SPEED_REPEATS)
    args = parser.parse_args()
    print_rows(rows(args.samples, args.cold_samples, args.speed_repeats))


if __name__ == "__main__":
    main()
