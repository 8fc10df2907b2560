"""The Model protocol: one Request in, a Completion (n Samples plus exact Usage) out.

Every backend (llama.cpp in-process, OpenAI-compatible HTTP, transformers, the scripted fake) speaks
this protocol and nothing else; strategies, the bench runner and the server only ever see it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ponder.budget import Usage
from ponder.problems.conversation import ToolCall, Tools

# {"role", "content"}; an assistant turn may also carry "tool_calls" (a tuple of ToolCall), a tool
# turn "tool_call_id" (and "name").
Message = dict[str, Any]
# Called as on_text(sample_index, text_piece) while a sample is being decoded (real streaming).
TextCallback = Callable[[int, str], None]
# Called as should_stop(sample_index, partial_sample) after each generated token; True ends that
# sample there (finish_reason "cancelled") while the others go on. The partial Sample's lists grow
# in place: read them, do not keep or modify them.
StopCheck = Callable[[int, "Sample"], bool]


class ModelError(Exception):
    """A model could not be loaded or reached: the user's setup is wrong, not our code.

    The CLI prints its message as one line and exits non-zero.
    """


@dataclass(frozen=True)
class Request:
    """One generation request.

    Exactly one of ``messages`` (chat; the backend applies the model's own chat template) or ``prompt``
    (raw text, no template) is given. ``n`` samples are drawn for the same prompt.

    Continuing a partial answer: when ``messages`` end with an ``{"role": "assistant", "content":
    PREFIX}`` message, the model CONTINUES that answer: the earlier messages are rendered as for a
    new answer (with the generation prompt), PREFIX follows as raw text with no end-of-turn after
    it, and each sample's text is only what comes after PREFIX. The prompt charge includes PREFIX
    (``count_prompt_tokens`` counts that same rendering). ``continuing(prefix)`` builds such a
    request; ``prefix`` reads it back. This is how strategies backtrack, append "Wait" to a
    model's thinking, or extend a partial solution by one step.

    ``tools``: functions the model may call (OpenAI function calling) and how; a sample may then
    answer with ``tool_calls``. Backends that declare ``native_tools = True`` (the OpenAI one)
    pass them to the server; for the others ``tools.calls.prompted`` describes them in the
    system prompt and reads the calls out of the text (every strategy Run applies it).
    """

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    n: int = 1
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0  # k > 0: also the k highest logprobs at every position (implies logprobs)
    seed: int | None = None
    tools: Tools | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("Request needs exactly one of `messages` or `prompt`")
        if self.messages is not None:
            # Accept any sequence of dicts but store an immutable tuple.
            object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be in [0, 20], got {self.top_logprobs}")
        if self.top_logprobs:
            object.__setattr__(self, "logprobs", True)

    @classmethod
    def chat(cls, question: str, system: str | None = None, **kwargs: Any) -> Request:
        msgs: list[Message] = [{"role": "system", "content": system}] if system else []
        msgs.append({"role": "user", "content": question})
        return cls(messages=tuple(msgs), **kwargs)

    @property
    def prefix(self) -> str | None:
        """The partial answer this request continues (see above), or None for a new answer."""
        if self.messages and self.messages[-1].get("role") == "assistant":
            return self.messages[-1].get("content", "")
        return None

    @property
    def turn(self) -> tuple[Message, ...]:
        """The messages before the partial answer: what is rendered with the generation prompt."""
        msgs = self.messages or ()
        return msgs[:-1] if self.prefix is not None else msgs

    def continuing(self, prefix: str, **changes: Any) -> Request:
        """This chat request set to continue ``prefix`` (replacing any partial answer it had).

        An empty prefix gives the plain request: continuing nothing is starting afresh.
        """
        if self.messages is None:
            raise ValueError("only chat requests (messages) can continue a partial answer")
        msgs = self.turn + (({"role": "assistant", "content": prefix},) if prefix else ())
        return replace(self, messages=msgs, **changes)


@dataclass
class Sample:
    """One sampled completion.

    ``prompt_tokens`` is the length of the prompt this sample was conditioned on;
    ``completion_tokens`` counts every token the model generated for it (tokens cut off by a stop
    string included: they were computed). ``logprobs`` holds, when asked for, the log-probability of
    each sampled token under the model's untempered distribution (one per completion token);
    ``top_logprobs`` the k highest log-probabilities at each position, highest first (DeepConf's
    token confidence is computed from these).

    ``tool_calls``: the calls the sample answered with (empty: it answered in text);
    ``tool_warning``: what was wrong with the calls it tried to make, the model's mistake (a
    malformed call block, an unknown function, more calls than parallel_tool_calls allows).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    # "stop" (EOS or a stop string) | "length" | "cancelled" (by should_stop) | "incomplete" (the
    # backend's stream ended without a finish: the server dropped it; strategies warn about it)
    finish_reason: str
    logprobs: list[float] | None = None
    top_logprobs: list[list[float]] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_warning: str | None = None


@dataclass
class Completion:
    """The answer to one Request: its samples and what they cost.

    ``usage.prompt_tokens`` counts prompt tokens the backend actually processed: once for a batch of n
    that shares the prompt (llama.cpp, OpenAI's `n`), n times when n single requests were needed.
    """

    samples: list[Sample]
    usage: Usage = field(default_factory=Usage)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples]


@runtime_checkable
class Model(Protocol):
    """Anything that can sample completions. Knows nothing of strategies."""

    name: str
    # Optional: ``exact_usage = False`` on a backend whose ``count_prompt_tokens`` is an estimate
    # (the budget meter then trusts the reported usage instead of checking it against its plan);
    # ``context_length``: tokens a prompt and its completion may take together (None: unknown);
    # ``native_tools = True``: the backend passes ``Request.tools`` to the model itself and fills
    # ``Sample.tool_calls`` (else the Run's ``tools.calls.prompted`` fallback does).

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        """Draw ``request.n`` samples; call ``on_text(i, piece)`` as sample i's text arrives and
        ``should_stop(i, partial)`` after each of its tokens (True ends sample i early)."""
        ...

    def count_prompt_tokens(self, request: Request) -> int:
        """Prompt tokens this request will consume (exact where the backend has the tokenizer)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Identity for run records: backend, model name/path, file size/version where known."""
        ...

    async def aclose(self) -> None: ...


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, read a MiB at a time (a model's identity in bench runs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_weights_sha256(folder: str) -> str:
    """The SHA-256 of a model folder's one weights file, "" when it has none or several (shards).
    Safetensors first; a ``.bin`` counts only without one, and never a trainer checkpoint's
    ``training_args.bin`` (its settings, not weights)."""
    names = os.listdir(folder)
    weights = [n for n in names if n.endswith(".safetensors")] or [
        n for n in names if n.endswith(".bin") and n != "training_args.bin"
    ]
    return file_sha256(os.path.join(folder, weights[0])) if len(weights) == 1 else ""


def hub_revision(repo_id: str) -> str:
    """The commit of a Hugging Face Hub model id that the local cache resolves its ``main`` to,
    the one ``from_pretrained`` loaded: it pins every file of the model ("" where the id is not in
    the cache that ``HF_HUB_CACHE`` or ``HF_HOME`` names)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # not installed, or not a repo id: nothing to name
        return ""
    return os.path.basename(os.path.dirname(found)) if isinstance(found, str) else ""
