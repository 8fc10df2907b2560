"""Model backends and ``resolve(spec)``, which turns a model spec string into a Model.

Backends import their heavy dependencies lazily, so ``import ponder`` stays cheap and a user without
``transformers`` can still run GGUF and HTTP models.
"""

from __future__ import annotations

import os

from ponder.models.base import (
    Completion,
    Model,
    ModelError,
    Request,
    Sample,
    StopCheck,
    TextCallback,
)
from ponder.models.scripted import ScriptedModel, ScriptedReply

SPEC_FORMS = (
    "default (the embedded SmolLM2-135M-Instruct)",
    "gguf:PATH",
    "hf:PATH_OR_ID",
    "lab:NAME (a lab checkpoint shipped with ponder)",
    "openai:MODEL@BASE_URL",
)


class SpecError(ModelError):
    """A model spec string that does not name a backend."""


def spec_help() -> str:
    return "valid model specs: " + ", ".join(SPEC_FORMS)


THREADS_ENV = "PONDER_THREADS"


def thread_count(threads: int | None = None) -> int | None:
    """CPU threads for in-process backends: ``threads`` when given, else ``$PONDER_THREADS``, else
    None (the backend's own default: every core). A bad value is a one-line ModelError naming it."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ModelError(f"threads={threads!r}: the CPU thread count must be a positive integer")
        return threads
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ModelError(
            f"{THREADS_ENV}={raw!r} is not a positive integer number of CPU threads (e.g. {THREADS_ENV}=1)"
        )
    return int(raw)


def resolve(spec: str | None = None, threads: int | None = None, **options) -> Model:
    """Build a Model from a spec. ``None`` means ``$PONDER_MODEL``, or ``default`` when unset.

    ``threads`` (default ``$PONDER_THREADS``; unset: every core) is the CPU thread count of
    in-process backends: llama.cpp's decode threads (gguf, default) and torch's (hf, lab); HTTP
    backends ignore it. Extra keyword options go to the backend's constructor (e.g. ``n_ctx`` for
    gguf; an explicit ``n_threads`` there wins over ``threads``).
    """
    spec = (spec or os.environ.get("PONDER_MODEL") or "default").strip()
    kind, sep, rest = spec.partition(":")
    threads = thread_count(threads)
    if threads is not None and (spec == "default" or kind == "gguf"):
        options.setdefault("n_threads", threads)
    elif threads is not None and kind in ("hf", "lab"):
        options.setdefault("threads", threads)
    if spec == "default":
        from ponder.models.llamacpp import LlamaCppModel, embedded_model_path

        return LlamaCppModel(embedded_model_path(), name="smollm2-135m-instruct", **options)
    if sep and rest:
        if kind == "gguf":
            from ponder.models.llamacpp import LlamaCppModel

            return LlamaCppModel(rest, **options)
        if kind == "hf":
            from ponder.models.hf import HFModel

            return HFModel(rest, **options)
        if kind == "lab":
            from ponder.models.shipped import shipped_dir
            from ponder.models.hf import HFModel

            model = HFModel(str(shipped_dir(rest)), **options)
            model.name = f"lab-{rest}"  # run names and reports say which shipped model ran
            return model
        if kind == "openai":
            from ponder.models.openai_http import OpenAIModel

            model, _, base_url = rest.partition("@")
            if model:
                return OpenAIModel(model, base_url=base_url or None, **options)
    raise SpecError(f"unknown model spec {spec!r}; {spec_help()}")


__all__ = [
    "Completion",
    "Model",
    "ModelError",
    "Request",
    "Sample",
    "ScriptedModel",
    "ScriptedReply",
    "SpecError",
    "StopCheck",
    "THREADS_ENV",
    "TextCallback",
    "resolve",
    "spec_help",
    "thread_count",
]
