"""Hugging Face ``transformers`` backend: ``hf:PATH_OR_ID`` (a local model directory or a Hub id).

The n samples of a Request come from ONE batched ``model.generate`` call (n copies of the prompt),
run in the model's own worker thread so the event loop stays free. Conventions (as for llama.cpp):

* ``completion_tokens`` counts the generated tokens up to the end of the sample. An EOS token is
  NOT counted and is not part of the text; the token that completed a stop string IS counted (the
  text is cut before the stop string); a sample cut by ``max_tokens`` counts ``max_tokens``.
* ``logprobs`` are the log-softmax of the RAW (untempered, unfiltered) logits at each counted token,
  ``top_logprobs`` the k highest of them. Both are computed at every step (a forward hook catches
  the raw logits, before generate's processors), so that ``should_stop`` sees them as they grow.
* ``should_stop(i, partial)`` is called by our StoppingCriteria, on the worker thread, after every
  counted token that does not end row i anyway; True ends row i with finish_reason "cancelled".
  The rest of the batch goes on; the cancelled row is padding from then on (transformers still
  runs it through the model until every row is done, but only its real tokens are charged).
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
* A seed re-seeds torch's global RNG (``generate`` takes no generator) under a lock, so the same
  seed gives the same samples.

torch and transformers are imported here only, and this module only by ``resolve``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ponder.budget import Usage
from ponder.models.base import Completion, ModelError, Request, Sample, StopCheck, TextCallback

try:
    from transformers import StoppingCriteria as _Criteria
except ImportError:  # HFModel() then raises a ModelError that names the missing package
    _Criteria = object


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
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        model = auto_class.from_pretrained(path, dtype=torch_dtype).to(device).eval()
    except Exception as e:  # OSError, ValueError, Hub errors...: all mean "setup is wrong"
        raise ModelError(f"{fail}: {_short(e)}") from None
    return device, tokenizer, model


class HFModel:
    def __init__(
        self, path_or_id: str, device: str = "auto", dtype: str = "auto", threads: int | None = None
    ) -> None:
        """``threads``: torch's CPU threads (None: torch's default, every core). torch has one
        intra-op thread count per process, so this sets it for the whole process."""
        try:
            import torch
            import transformers
        except ImportError as e:
            msg = f"the hf backend needs torch and transformers ({e}): pip install 'ponder[hf]'"
            raise ModelError(msg) from None
        self._torch = torch
        if threads is not None:
            torch.set_num_threads(threads)
        local = os.path.expanduser(path_or_id)
        # A Hub id is "name" or "org/name"; anything else that looks like a path is one.
        is_path = os.path.exists(local) or local.startswith(("/", ".")) or path_or_id.count("/") > 1
        self.path = os.path.abspath(local) if is_path else path_or_id
        self.name = os.path.basename(self.path.rstrip("/")) if is_path else path_or_id
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
        """Draw ``request.n`` samples in one batched call.

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
        samples, streamed = await loop.run_in_executor(
            self._executor, self._generate_sync, request, prompt_ids, emit, should_stop
        )
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

    def _generate_sync(self, request: Request, prompt_ids: list[int], emit, should_stop):
        """Runs in the worker thread. Returns the samples and, per sample, the chars streamed."""
        torch = self._torch
        n, P = request.n, len(prompt_ids)
        # (n, P): n copies of the prompt. This is what num_return_sequences=n does anyway (generate
        # expands the batch before prefill), and it also works for greedy, where HF refuses n > 1.
        ids = torch.tensor([prompt_ids] * n, device=self.device)
        watcher = _Watcher(self.tokenizer, request, P, set(self._eos), emit, should_stop)
        sampling = request.temperature > 0
        # A max_tokens beyond the model's context is clipped to what is left of it (as llama.cpp's
        # backend does), never an error; a prompt that fills the context is one.
        context = getattr(self.model.config, "max_position_embeddings", None)
        room = request.max_tokens if context is None else context - P
        if room < 1:
            raise ModelError(f"prompt of {P} tokens does not fit the context of {context} tokens")
        kwargs: dict[str, Any] = dict(
            attention_mask=torch.ones_like(ids),
            max_new_tokens=min(request.max_tokens, room),
            do_sample=sampling,
            repetition_penalty=1.0,
            eos_token_id=self._eos or None,
            pad_token_id=self._pad,
            stopping_criteria=[watcher],
            return_dict_in_generate=True,
        )
        if sampling:
            kwargs.update(temperature=request.temperature, top_p=request.top_p, top_k=0)
        # The model's raw logits at each forward (before temperature, top_p, suppress_tokens...),
        # for the watcher, which reads them at the stopping check that follows that forward.
        hook = self.model.register_forward_hook(watcher.see_logits) if request.logprobs else None
        try:
            with self._lock, torch.inference_mode():
                if request.seed is not None:
                    torch.manual_seed(request.seed)  # also seeds every CUDA device
                out = self.model.generate(ids, **kwargs)
        finally:
            if hook is not None:
                hook.remove()
        gen = out.sequences[:, P:].cpu()  # (n, T): T = steps run; rows that ended early are padded
        counts = [c if c is not None else gen.shape[1] for c in watcher.count]
        samples = []
        for i in range(n):
            text = self.tokenizer.decode(gen[i, : counts[i]].tolist(), skip_special_tokens=True)
            cut = _first_stop(text, request.stop)
            if cut is not None:
                text = text[:cut]
            reason = watcher.reason[i] or "length"
            if cut is not None:
                reason = "stop"
            s = watcher.partial[i]
            lps = None if s.logprobs is None else s.logprobs[: counts[i]]
            top = None if s.top_logprobs is None else s.top_logprobs[: counts[i]]
            samples.append(Sample(text, P, counts[i], reason, lps, top))
        return samples, watcher.streamed

    @property
    def context_length(self) -> int | None:
        """Positions the model was built for (``max_position_embeddings``), if it says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "hf", "path": self.path, "device": self.device, "parameters": self.n_params
        }  # fmt: skip

    async def aclose(self) -> None:
        return None


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


class _Watcher(_Criteria):
    """A StoppingCriteria that sees every decoding step of every row: it records where each row
    ended (EOS / stop string / should_stop; ``count[i]`` stays None for rows cut by length), keeps
    each row's partial Sample (logprobs, top logprobs, text) and streams text.

    Text is decoded incrementally (TGI's prefix/read offsets): each step decodes a short tail of the
    row, and a delta ending in U+FFFD (half a UTF-8 character) waits for the next token.
    """

    def __init__(
        self, tokenizer, request: Request, prompt_len: int, eos: set[int], emit, should_stop
    ) -> None:
        n, self.k, self.max_tokens = request.n, request.top_logprobs, request.max_tokens
        self.tok, self.P, self.eos, self.emit = tokenizer, prompt_len, eos, emit
        self.should_stop = should_stop
        self.stops = tuple(s for s in request.stop if s)
        self.track_text = bool(self.stops) or emit is not None or should_stop is not None
        self.partial = [
            Sample("", prompt_len, 0, "", [] if request.logprobs else None, [] if self.k else None)
            for _ in range(n)
        ]
        self.step_logprobs = None  # (n, V) log-softmax of the latest forward's raw logits
        self.count: list[int | None] = [None] * n
        self.reason: list[str | None] = [None] * n
        self.ids: list[list[int]] = [[] for _ in range(n)]  # completion ids of unfinished rows
        self.text = [""] * n
        self.offsets = [(0, 0)] * n  # (prefix, read) into the row's completion ids
        self.streamed = [0] * n  # chars of text[i] already handed to emit

    def see_logits(self, module, args, output) -> None:
        """Forward hook on the model: output.logits is (n, L, V); the last position predicts."""
        import torch

        self.step_logprobs = torch.log_softmax(output.logits[:, -1].float(), dim=-1)  # (n, V)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        # input_ids: (n, P + t). Only the new column (and, when asked, the (n, 1 + k) logprob
        # table) crosses to the host: one sync per step.
        new = input_ids[:, -1]  # (n,)
        table = None
        if self.step_logprobs is not None:
            cols = [self.step_logprobs.gather(1, new[:, None])]  # (n, 1): the sampled tokens'
            if self.k:
                cols.append(self.step_logprobs.topk(self.k, dim=-1).values)  # (n, k), highest first
            table = torch.cat(cols, dim=1).tolist()
        for i, tok in enumerate(new.tolist()):
            if self.reason[i] is not None:
                continue  # finished: this is padding
            row = self.ids[i]
            row.append(tok)
            if tok in self.eos:  # EOS: not counted, not text
                self.count[i], self.reason[i] = len(row) - 1, "stop"
                continue
            s = self.partial[i]
            s.completion_tokens = len(row)
            if table is not None:
                s.logprobs.append(table[i][0])
                if self.k:
                    s.top_logprobs.append(table[i][1:])
            if self.track_text:
                self._advance(i, row)
            ask = self.should_stop is not None and len(row) < self.max_tokens  # not the last token
            if ask and self.reason[i] is None and self.should_stop(i, s):
                self.count[i], self.reason[i] = len(row), "cancelled"
        done = [r is not None for r in self.reason]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # (n,)

    def _advance(self, i: int, row: list[int]) -> None:
        prefix, read = self.offsets[i]
        old = self.tok.decode(row[prefix:read], skip_special_tokens=True)
        new = self.tok.decode(row[prefix:], skip_special_tokens=True)
        if len(new) <= len(old) or new.endswith("\ufffd"):
            return
        before = len(self.text[i])
        self.text[i] += new[len(old) :]
        self.offsets[i] = (read, len(row))
        safe = len(self.text[i])
        if self.stops:
            # A new match must end inside the delta, so it starts at most len(stop) - 1 before it.
            window = max(0, before - max(map(len, self.stops)) + 1)
            cut = _first_stop(self.text[i][window:], self.stops)
            if cut is not None:  # the token that completed the stop string is counted
                self.text[i] = self.text[i][: window + cut]
                self.count[i], self.reason[i] = len(row), "stop"
                safe = len(self.text[i])
            else:  # hold back a tail that could still grow into a stop string
                t = self.text[i]
                safe -= max((k for s in self.stops for k in range(len(s)) if t.endswith(s[:k])))
        self.partial[i].text = self.text[i][:safe]
        if self.emit is not None and safe > self.streamed[i]:
            self.emit(i, self.text[i][self.streamed[i] : safe])
            self.streamed[i] = safe
