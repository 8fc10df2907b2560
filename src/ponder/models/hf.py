"""Hugging Face ``transformers`` backend: ``hf:PATH_OR_ID`` (a local model directory or a Hub id).

The n samples of a Request come from ONE batched ``model.generate`` call (n copies of the prompt; on
a CPU, a request too large for one static KV cache is split into parts that fit,
``HFModel._part_rows``), run in the model's own worker thread so the event loop stays free. Requests
that arrive while the worker is busy wait, and the worker then takes *all* of them in one batch (up
to ``max_batch_rows`` samples): prompts left-padded to the longest, each row stopped at its own
``max_tokens``, stop strings and ``should_stop``, each request sampled with its own temperature,
top_p and seed. Static batching, not vLLM's continuous batching: a batch runs until its longest row
ends, and a request that arrives meanwhile waits for the next one. It is what makes ``ponder bench
--concurrency N`` on a small model N times faster (a tiny model's decoding step costs
about the same for 1 row as for 64). Conventions (as for llama.cpp):

* ``completion_tokens`` counts the generated tokens up to the end of the sample. An EOS token is
  NOT counted and is not part of the text; the token that completed a stop string IS counted (the
  text is cut before the stop string); a sample cut by ``max_tokens`` counts ``max_tokens``.
* ``logprobs`` are the log-softmax of the RAW (untempered, unfiltered) logits at each counted token,
  ``top_logprobs`` the k highest of them. Both are computed at every step (a forward hook catches
  the raw logits, before generate's processors), so that ``should_stop`` sees them as they grow.
* ``should_stop(i, partial)`` is called by our StoppingCriteria, on the worker thread, after every
  counted token that does not end row i anyway; True ends row i with finish_reason "cancelled".
  The rest of the batch goes on; the cancelled row is padding from then on, and only its real
  tokens are charged (``hf_decode.decode`` drops it from the model's batch like any finished row;
  ``generate`` runs it through the model until every row is done).
* Messages go through the tokenizer's chat template; a tokenizer without one gets a plain
  rendering, ``"User: ...\\nAssistant:"`` (one ``Role: content`` line per message). A raw ``prompt``
  is tokenized as is, with the tokenizer's usual special tokens (e.g. BOS).
* A continuation (messages ending with a partial assistant answer PREFIX): the messages before it
  are rendered with the generation prompt, then PREFIX is appended as raw text (not through the
  template, which may drop assistant messages, as the lab models' does) and the whole string is
  tokenized at once. The samples' text is decoded from the new tokens only. (A tokenizer that
  would merge the end of PREFIX with the next characters into one token sees the boundary split;
  the char-level lab tokenizers never do.)
* Sampling is exactly temperature + top_p: transformers' default ``top_k=50`` and any repetition
  penalty from the model's ``generation_config.json`` are switched off (other settings there, such
  as ``suppress_tokens``, still apply). Temperature 0 is greedy.
* On a CPU, a batch decodes with a static (preallocated) KV cache where it fits in
  ``kv_prefix.STATIC_CACHE_BYTES``: transformers' default cache is copied at every step, which
  costs a small model more than its own forward (``kv_prefix.static_cache_pays``; ~1.9x on the lab
  models). It is
  ``kv_prefix.PrefixStaticCache``, whose attention reads only the positions written so far
  (transformers' ``StaticCache`` reads all of them at every step; ~1.5x more). Such a batch is
  decoded by ``hf_decode.decode``, which drops finished rows from the model's batch (``generate``
  runs them as padding until the last row ends), unless the model's generation config asks for a
  setting it does not implement (``plain_config``); then by ``generate``.
* Each request draws from its own ``torch.Generator`` (seeded by its seed, else at random), in
  ``hf_rows.RowSampler``: the same seed gives the same samples whatever shares its batch (up to the
  floating-point noise of padding, which can flip a near-tie), and torch's global RNG is untouched.

torch and transformers are imported here and in the modules it uses (``hf_rows`` for each row's
stopping, streaming and sampling, ``hf_decode``, ``kv_prefix``), and this module only by
``resolve``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ponder.budget import Usage
from ponder.models.base import Completion, ModelError, Request, Sample, StopCheck, TextCallback
from ponder.models.base import folder_weights_sha256, hub_revision  # describe()'s identity
from ponder.models.hf_rows import BatchWatcher, RowSampler, RowWatcher, first_stop
from ponder.requirements import HF_FLOORS, too_old

try:  # the CPU decoding path; HFModel() refuses to start without it, naming why
    from ponder.models.hf_decode import decode, plain_config
    from ponder.models.kv_prefix import prefix_cache_kwargs, static_cache_pays, static_rows

    _DECODE_IMPORT_ERROR: ImportError | None = None
except ImportError as e:
    decode = plain_config = prefix_cache_kwargs = static_cache_pays = static_rows = None
    _DECODE_IMPORT_ERROR = e


def _short(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    msg = lines[0] if lines else type(exc).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."


def pick_device(device: str) -> str:
    """``auto``: cuda, else mps, else cpu."""
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"


@contextmanager
def no_progress_bars():
    """transformers' progress bars ("Loading weights", "Writing model shards") off inside the
    block, as they were after it: a lab model loads in milliseconds, and the bar is only noise
    in front of ``ponder solve``'s answer."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_pretrained(path: str, auto_class, device: str, dtype: str, fail: str):
    """(device, tokenizer, model in eval mode) for a transformers checkpoint; any failure is a
    ModelError that starts with ``fail``. Shared by the hf backend and the PRM loader."""
    import torch
    import transformers

    device = pick_device(device)
    if dtype == "auto":
        # CPU kernels for half precision are slow or missing: keep float32 there.
        torch_dtype: Any = torch.float32 if device == "cpu" else "auto"
    else:
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ModelError(f"{fail}: unknown dtype {dtype!r}")
    try:
        with no_progress_bars():
            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            model = auto_class.from_pretrained(path, dtype=torch_dtype).to(device).eval()
    except Exception as e:  # OSError, ValueError, Hub errors...: all mean "setup is wrong"
        raise ModelError(f"{fail}: {_short(e)}") from None
    return device, tokenizer, model


def _shifted(callback, first: int):
    """``callback(i, x)`` of a split request's part whose sample 0 is the request's sample
    ``first`` (None stays None)."""
    if callback is None:
        return None
    return lambda i, x: callback(first + i, x)


class HFModel:
    def __init__(
        self, path_or_id: str, device: str = "auto", dtype: str = "auto", threads: int | None = None,
        max_batch_rows: int = 64, static_cache: bool | None = None,
    ) -> None:
        """``threads``: torch's CPU threads (None: torch's default, every core). torch has one
        intra-op thread count per process, so this sets it for the whole process.
        ``max_batch_rows``: at most this many rows (samples) in one batched ``generate``.
        ``static_cache``: decode with a preallocated KV cache (True), transformers' growing one
        (False), or choose per batch (None; see ``_static_cache``)."""
        try:
            import torch
            import transformers
        except ImportError as e:
            msg = f"the hf backend needs torch and transformers ({e}): pip install 'ponder[hf]'"
            raise ModelError(msg) from None
        if old := too_old(HF_FLOORS):
            raise ModelError(f"the hf backend needs {', '.join(old)}: pip install -U 'ponder[hf]'")
        if _DECODE_IMPORT_ERROR is not None:  # e.g. a future transformers that moved its caches
            raise ModelError(f"the hf backend cannot use transformers {transformers.__version__} "
                             f"({_short(_DECODE_IMPORT_ERROR)}): pip install 'ponder[hf]'")  # fmt: skip
        self._torch = torch
        if threads is not None:
            torch.set_num_threads(threads)
        local = os.path.expanduser(path_or_id)
        # A Hub id is "name" or "org/name"; anything else that looks like a path is one.
        is_path = os.path.exists(local) or local.startswith(("/", ".")) or path_or_id.count("/") > 1
        self.path = os.path.abspath(local) if is_path else path_or_id
        self.name = os.path.basename(self.path.rstrip("/")) if is_path else path_or_id
        self._identity: str | None = None  # describe()'s, read once (a Hub id: its revision)
        fail = f"cannot load Hugging Face model {path_or_id!r}"
        if is_path and not os.path.isdir(local):
            why = "not a directory" if os.path.exists(local) else "no such directory"
            raise ModelError(f"{fail}: {why}")
        self.device, self.tokenizer, self.model = load_pretrained(
            self.path, transformers.AutoModelForCausalLM, device, dtype, fail
        )
        self.n_params = sum(p.numel() for p in self.model.parameters())
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        self._eos = eos
        pad = self.tokenizer.pad_token_id
        self._pad = pad if pad is not None else (eos or [0])[0]
        # One generate at a time: seeding touches global RNG state, and one model instance is not
        # meant to run two decoding loops at once. One dedicated thread, not asyncio.to_thread: a
        # new thread per call would also start a new OpenMP thread team per call.
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ponder-hf")
        # Requests waiting for the worker; it takes all of them at once (see the module docstring).
        self.max_batch_rows = max_batch_rows
        self.static_cache = static_cache
        self._pending: list[_Job] = []
        self._queue_lock = threading.Lock()
        if threads is not None:  # and on the worker, whose OpenMP team is its own
            self._executor.submit(torch.set_num_threads, threads).result()
        self.threads = self._executor.submit(torch.get_num_threads).result()

    def _encode(self, request: Request) -> list[int]:
        tok = self.tokenizer
        if request.messages is None:
            return tok(request.prompt)["input_ids"]
        msgs = [dict(m) for m in request.turn]
        prefix = request.prefix or ""  # a partial answer to continue, as raw text
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            # The template already wrote the special tokens (BOS...): don't add them twice.
            return tok(text + prefix, add_special_tokens=False)["input_ids"]
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in msgs) + "Assistant:"
        return tok(text + prefix)["input_ids"]

    def count_prompt_tokens(self, request: Request) -> int:
        # generate() copies the prompt n times and runs it n times: that is what is charged.
        return len(self._encode(request)) * request.n

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        """Draw ``request.n`` samples, in one batched call with every other request pending.

        ``on_text(i, piece)`` streams every sample as it is decoded (for any n), on the event loop's
        thread; text that might be the start of a stop string is held back until it is not.
        ``should_stop(i, partial)`` is a plain function called on the model's worker thread between
        two decoding steps (the whole batch waits for it: keep it quick); the partial sample's
        ``finish_reason`` is "" and its text leaves out what is held back.
        """
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        emit = None if on_text is None else (lambda i, s: loop.call_soon_threadsafe(on_text, i, s))
        prompt_ids = self._encode(request)
        context = self.context_length
        room = request.max_tokens if context is None else context - len(prompt_ids)
        if room < 1:
            raise ModelError(
                f"prompt of {len(prompt_ids)} tokens does not fit the context of {context} tokens"
            )
        limit = min(request.max_tokens, room)
        part = self._part_rows(request.n, len(prompt_ids) + limit)
        if part < request.n:
            return await self._generate_split(request, part, on_text, should_stop)
        job = _Job(request, prompt_ids, limit, emit, should_stop)
        with self._queue_lock:
            self._pending.append(job)
        self._executor.submit(self._drain)
        samples, streamed = await asyncio.wrap_future(job.done)
        for i, s in enumerate(samples):  # whatever was still held back
            if on_text is not None and len(s.text) > streamed[i]:
                on_text(i, s.text[streamed[i] :])
        usage = Usage(
            prompt_tokens=len(prompt_ids) * request.n,  # generate() processes n copies of it
            completion_tokens=sum(s.completion_tokens for s in samples),
            calls=1,
            seconds=time.perf_counter() - start,
        )
        return Completion(samples, usage)

    def _part_rows(self, rows: int, length: int) -> int:
        """How many of a request's ``rows`` samples of up to ``length`` positions one batch takes:
        all of them, unless (the default cache choice, on a CPU) their static KV cache would not
        fit ``kv_prefix.STATIC_CACHE_BYTES`` where one of at least ``max_batch_rows`` rows would:
        then as many as fit (``kv_prefix.static_rows``; 128 on the lab models at 1,024
        positions). One batch of every row would fall back to transformers' growing cache: 7.6x
        slower for ``vote:n=256`` on ``lab:countdown-grpo`` (docs/results/hf_static_cache). Parts
        smaller than ``max_batch_rows`` would only be merged again by ``_drain``."""
        if self.static_cache is not None or self._static_cache(rows, length):
            return rows
        fit = static_rows(self.model, self.device, rows, length)
        return fit if fit >= self.max_batch_rows else rows

    async def _generate_split(
        self, request: Request, part: int, on_text: TextCallback | None,
        should_stop: StopCheck | None,
    ) -> Completion:
        """``request`` as requests of at most ``part`` samples (``_part_rows``), queued at once.
        The part from sample ``k`` on is seeded ``seed + k``, as llama.cpp seeds its k-th sample,
        so the first part's samples are those of a request of ``part`` samples with the same
        seed. Callbacks and samples keep the request's own sample indices; ``usage.calls`` counts
        the parts."""
        start = time.perf_counter()
        parts = []
        for first in range(0, request.n, part):
            seed = None if request.seed is None else request.seed + first
            piece = replace(request, n=min(part, request.n - first), seed=seed)
            shifted = _shifted(on_text, first), _shifted(should_stop, first)
            parts.append(self.generate(piece, *shifted))
        done = await asyncio.gather(*parts)
        usage = sum((c.usage for c in done), Usage())
        usage.seconds = time.perf_counter() - start  # the parts ran in one batch queue, not in turn
        return Completion([s for c in done for s in c.samples], usage)

    def _drain(self) -> None:
        """On the worker thread: run every pending job, as few batches as ``max_batch_rows``
        allows (a job with more rows than that runs alone). A drain that finds nothing pending
        (its job went with an earlier batch) returns at once."""
        while True:
            with self._queue_lock:
                if not self._pending:
                    return
                batch, rows = [], 0
                while self._pending and (
                    not batch or rows + self._pending[0].request.n <= self.max_batch_rows
                ):
                    job = self._pending.pop(0)
                    batch.append(job)
                    rows += job.request.n
            try:
                results = self._generate_batch(batch)
            except BaseException as e:  # every waiting caller gets the error
                for job in batch:
                    job.done.set_exception(e)
                continue
            for job, result in zip(batch, results):
                job.done.set_result(result)

    def _generate_batch(self, jobs: list["_Job"]):
        """One ``generate`` for all the jobs' rows: prompts left-padded to the longest, each row
        stopped at its own limit, each job sampled with its own temperature, top_p and generator.
        Returns, per job, its samples and the chars streamed of each."""
        torch = self._torch
        P = max(len(j.prompt_ids) for j in jobs)
        ids, mask, watchers, rows = [], [], [], 0
        for j in jobs:
            pad = P - len(j.prompt_ids)
            ids += [[self._pad] * pad + j.prompt_ids] * j.request.n
            mask += [[0] * pad + [1] * len(j.prompt_ids)] * j.request.n
            w = RowWatcher(self.tokenizer, j.request, len(j.prompt_ids), set(self._eos), j.emit,
                         j.should_stop, j.limit)  # fmt: skip
            watchers.append((slice(rows, rows + j.request.n), w))
            rows += j.request.n
        ids_t = torch.tensor(ids, device=self.device)
        criteria = BatchWatcher(watchers)
        sampler = RowSampler(
            [(sl, j.request, self._generator(j.request.seed)) for (sl, _), j in zip(watchers, jobs)]
        )
        kwargs: dict[str, Any] = dict(
            attention_mask=torch.tensor(mask, device=self.device),
            max_new_tokens=max(j.limit for j in jobs),
            do_sample=False,  # RowSampler draws the sampled rows; greedy rows take the argmax
            repetition_penalty=1.0,
            eos_token_id=self._eos or None,
            pad_token_id=self._pad,
            stopping_criteria=[criteria],
            logits_processor=[sampler],
            return_dict_in_generate=True,
        )
        wants = any(j.request.logprobs for j in jobs)
        static = self._static_cache(rows, P + kwargs["max_new_tokens"])
        if static and _decode_fits(self.model.generation_config):
            with self._lock:
                sequences = decode(
                    self.model, ids_t, kwargs["attention_mask"], kwargs["max_new_tokens"],
                    self._pad, self._eos, self.model.generation_config.suppress_tokens or (),
                    processors=[sampler], stopping=[criteria],
                    on_logits=criteria.see_step_logits if wants else None,
                )  # fmt: skip
        else:
            if static:
                kwargs.update(prefix_cache_kwargs(self.model, P + kwargs["max_new_tokens"]))
            # The model's raw logits at each forward (before temperature, top_p,
            # suppress_tokens...), for the watchers, which read them at the stopping check that
            # follows that forward.
            hook = self.model.register_forward_hook(criteria.see_logits) if wants else None
            try:
                with self._lock, torch.inference_mode():
                    sequences = self.model.generate(ids_t, **kwargs).sequences
            finally:
                if hook is not None:
                    hook.remove()
        gen = sequences[:, P:].cpu()  # (rows, T): T = steps run; ended rows are padded
        results = []
        for (sl, w), j in zip(watchers, jobs):
            results.append((self._samples(j, w, gen[sl]), w.streamed))
        return results

    def _static_cache(self, rows: int, length: int) -> bool:
        """Whether a batch of ``rows`` rows of up to ``length`` positions decodes with a static KV
        cache: as set, or by default as ``kv_prefix.static_cache_pays`` says."""
        if self.static_cache is not None:
            return self.static_cache
        return static_cache_pays(self.model, self.device, rows, length)

    def _samples(self, job: "_Job", w: RowWatcher, gen) -> list[Sample]:
        request, P = job.request, len(job.prompt_ids)
        counts = [c if c is not None else min(gen.shape[1], job.limit) for c in w.count]
        samples = []
        for i in range(request.n):
            text = self.tokenizer.decode(gen[i, : counts[i]].tolist(), skip_special_tokens=True)
            cut = first_stop(text, request.stop)
            if cut is not None:
                text = text[:cut]
            reason = w.reason[i] or "length"
            if cut is not None:
                reason = "stop"
            s = w.partial[i]
            lps = None if s.logprobs is None else s.logprobs[: counts[i]]
            top = None if s.top_logprobs is None else s.top_logprobs[: counts[i]]
            samples.append(Sample(text, P, counts[i], reason, lps, top))
        return samples

    def _generator(self, seed: int | None):
        """A job's own RNG: seeded, the same samples whatever else shares its batch."""
        g = self._torch.Generator(device=self.device)
        if seed is not None:
            g.manual_seed(seed)
        else:
            g.seed()
        return g

    @property
    def context_length(self) -> int | None:
        """Positions the model was built for (``max_position_embeddings``), if it says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def describe(self) -> dict[str, Any]:
        """The model's identity; a local folder with one weights file adds that file's SHA-256, a
        Hub id the commit its cached files came from (``revision``)."""
        about = {
            "backend": "hf", "path": self.path, "device": self.device, "parameters": self.n_params
        }  # fmt: skip
        local = os.path.isdir(self.path)
        if self._identity is None:
            self._identity = folder_weights_sha256(self.path) if local else hub_revision(self.path)
        return about | ({"sha256" if local else "revision": self._identity} if self._identity else {})

    async def aclose(self) -> None:
        return None


def _decode_fits(generation_config) -> bool:
    """Whether this model's batches can go through ``hf_decode.decode``, which drops finished rows
    (its generation config asks for nothing beyond eos, pad and suppressed tokens; the backend
    samples by itself)."""
    return plain_config(generation_config, sampling=False)


@dataclass
class _Job:
    """One generate() call waiting for the worker: its request, prompt, token limit (max_tokens
    clipped to the context), callbacks, and the future its caller awaits."""

    request: Request
    prompt_ids: list[int]
    limit: int
    emit: Any
    should_stop: StopCheck | None
    done: Future = field(default_factory=Future)
