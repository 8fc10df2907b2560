"""The hf backend's per-row decoding hooks: what each row of a shared batch stops on, streams and
samples from. ``HFModel`` (``models.hf``) puts several requests in one batched decoding loop
(``generate`` or ``hf_decode.decode``); these hooks give each request's rows their own stop
strings, ``max_tokens``, ``should_stop``, logprobs, temperature, top_p and seed.

* ``RowWatcher``: one request's StoppingCriteria (where each row ended, its partial Sample, the
  text streamed so far).
* ``BatchWatcher``: the batch's StoppingCriteria, handing each RowWatcher its own rows.
* ``RowSampler``: the logits processor that samples each request's rows by its own settings.
"""

from __future__ import annotations

from typing import Any

from ponder.models.base import Request, Sample

try:
    from transformers import StoppingCriteria as _Criteria
except ImportError:  # HFModel() then raises a ModelError that names the missing package
    _Criteria = object


def first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


class RowWatcher(_Criteria):
    """A StoppingCriteria that sees every decoding step of every row: it records where each row
    ended (EOS / stop string / should_stop; ``count[i]`` stays None for rows cut by length), keeps
    each row's partial Sample (logprobs, top logprobs, text) and streams text.

    Text is decoded incrementally (TGI's prefix/read offsets): each step decodes a short tail of the
    row, and a delta ending in U+FFFD (half a UTF-8 character) waits for the next token.
    """

    def __init__(
        self, tokenizer, request: Request, prompt_len: int, eos: set[int], emit, should_stop,
        limit: int,
    ) -> None:
        n, self.k, self.limit = request.n, request.top_logprobs, limit
        self.wants_logprobs = request.logprobs
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
            if self.reason[i] is None and len(row) >= self.limit:  # its own cap, in a batch
                self.count[i], self.reason[i] = len(row), "length"
            ask = self.should_stop is not None and self.reason[i] is None
            if ask and self.should_stop(i, s):
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
            cut = first_stop(self.text[i][window:], self.stops)
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


class BatchWatcher(_Criteria):
    """The batch's StoppingCriteria: each job's RowWatcher sees its own rows."""

    def __init__(self, watchers: list[tuple[slice, RowWatcher]]) -> None:
        self.watchers = watchers
        self.step_logprobs = None

    def see_logits(self, module, args, output) -> None:
        """Forward hook on the model: output.logits is (rows, L, V); the last position predicts."""
        self.see_step_logits(output.logits[:, -1])

    def see_step_logits(self, logits) -> None:
        """The raw logits of this step, (rows, V)."""
        import torch

        self.step_logprobs = torch.log_softmax(logits.float(), dim=-1)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = []
        for sl, w in self.watchers:
            lp = self.step_logprobs
            w.step_logprobs = lp[sl] if lp is not None and w.wants_logprobs else None
            done.append(w(input_ids[sl], None))
        return torch.cat(done)


class RowSampler:
    """A logits processor that samples each job's rows with the job's temperature, top_p and own
    generator, and leaves one finite logit per sampled row (so generate's greedy argmax takes the
    draw); greedy rows pass through. Why by hand: ``generate`` samples a whole batch with one
    temperature, one top_p and torch's global RNG, so requests could not share a batch and keep
    their own settings and seeds. Exactly temperature + top_p (no top_k), as before."""

    def __init__(self, jobs: list[tuple[slice, Request, Any]]) -> None:
        self.jobs = [(sl, r, g) for sl, r, g in jobs if r.temperature > 0]

    def __call__(self, input_ids, scores):
        import torch

        if not self.jobs:
            return scores
        scores = scores.clone()
        for sl, request, gen in self.jobs:
            probs = torch.softmax(scores[sl].float() / request.temperature, dim=-1)
            if request.top_p < 1.0:
                sorted_p, order = probs.sort(dim=-1, descending=True)
                # keep the smallest prefix whose mass reaches top_p (the first token always)
                drop = sorted_p.cumsum(dim=-1) - sorted_p >= request.top_p
                sorted_p = sorted_p.masked_fill(drop, 0.0)
                probs = torch.zeros_like(probs).scatter(1, order, sorted_p)
            pick = torch.multinomial(probs, 1, generator=gen)  # (n, 1)
            row = torch.full_like(scores[sl], float("-inf"))
            scores[sl] = row.scatter(1, pick, 0.0)
        return scores
