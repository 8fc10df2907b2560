"""Batched decoding that drops finished rows from the batch, on a preallocated KV cache.

transformers' ``generate`` runs every row of a batch through the model until the last row ends: a
row that has finished is fed padding, at full cost, for the rest of the batch. A batch of
countdown searches ends when its longest sample does (900 tokens), while its mean sample is about
a third of that, so two thirds of a batch's row-steps are padding. ``decode`` is ``generate``'s
greedy / sampling loop with one change: when enough rows have finished, they are removed from the
batch and from the KV cache (``kv_prefix.PrefixStaticCache.keep_rows``), and later forwards run on
the live rows only. Every logits processor and stopping criterion still sees the whole batch (the
live rows' logits scattered back into place, finished rows' set to zero and their tokens to
padding), so callers written for ``generate`` (the hf backend's per-row sampler and watchers) work
unchanged, and greedy output is ``generate``'s token for token (``tests/test_hf_decode.py``).

Why by hand: transformers' own row-dropping engine, continuous batching (``generate_batch``, a
paged KV cache), was slower than plain ``generate`` on a CPU here: 51 s against 43 s for one GRPO
step's 64 countdown rollouts (2 threads). This loop took 10.6-12.3 s for the same rollouts, against
23.5-24.2 s for ``generate`` on the prefix cache (a throwaway probe; the kept measurement is
``benchmarks/hf_static_cache.py``). It covers the generation settings ponder uses; any other
(beams, repetition penalties, top-k, banned n-grams...) makes ``plain_config`` False, and callers
then use ``generate``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch

from ponder.models.kv_prefix import PrefixStaticCache, cache_keyword

# Settings ``decode`` applies itself or that do not change what is generated.
_HANDLED = {
    "max_new_tokens", "max_length", "do_sample", "temperature", "top_p", "top_k", "min_p",
    "repetition_penalty", "pad_token_id", "bos_token_id", "eos_token_id", "suppress_tokens",
    "cache_implementation", "disable_compile", "use_cache", "transformers_version",
    "return_dict_in_generate", "decoder_start_token_id", "_from_model_config", "compile_config",
    "length_penalty", "early_stopping", "num_beam_groups",  # for beam search only
}  # fmt: skip

# Rows are dropped once this share of the batch has finished (each drop copies the live rows'
# cache; doing it at every single finished row costs more copies for little gain).
DROP_SHARE = 1 / 8


def plain_config(config, sampling: bool) -> bool:
    """Whether ``decode`` generates what ``generate`` would with this GenerationConfig: no setting
    beyond eos / pad / suppressed tokens, and, where ``sampling``, only a temperature (no top-k,
    top-p, min-p or repetition penalty). With ``sampling`` False the sampling settings are unused
    (the caller samples, or decodes greedily)."""
    # a setting that is off (None, False, 0, empty) changes nothing
    diff = config.to_diff_dict()
    extra = {k for k, v in diff.items() if k not in _HANDLED and v not in (None, False, 0, [], {})}
    if extra or (config.num_beams or 1) != 1 or (config.num_return_sequences or 1) != 1:
        return False
    if not sampling:
        return True
    return (
        (config.temperature or 0) > 0
        and config.top_k in (None, 0)
        and config.top_p in (None, 1.0)
        and config.min_p is None
        and config.repetition_penalty in (None, 1.0)
    )


LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StoppingCriterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.inference_mode()
def decode(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    pad_token_id: int,
    eos_token_ids: Sequence[int] = (),
    suppress_tokens: Sequence[int] = (),
    processors: Sequence[LogitsProcessor] = (),
    stopping: Sequence[StoppingCriterion] = (),
    temperature: float = 0.0,
    on_logits: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Decode up to ``max_new_tokens`` tokens for each row of a left-padded batch; returns the
    prompt and the new tokens, ``(rows, P + steps)``, a finished row padded with ``pad_token_id``
    after its last token (as ``generate`` returns them).

    Each step: the model's last logits for every row (``on_logits`` sees them, raw), suppressed
    tokens masked, ``processors`` applied in order, then the argmax, or a draw at ``temperature``
    from torch's global RNG. A row finishes on an ``eos_token_ids`` token or when any of
    ``stopping`` (``(input_ids, scores) -> bool per row``) says so."""
    rows, P = input_ids.shape
    device = input_ids.device
    kv = PrefixStaticCache(model.config, max_cache_len=P + max_new_tokens)
    cache = {cache_keyword(model): kv}
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    # the prompt's last position only, where the model can be told so
    params = inspect.signature(model.forward).parameters
    last = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
        use_cache=True, **cache, **last,
    )  # fmt: skip
    live = torch.arange(rows, device=device)  # batch row of each row still in the model's batch
    mask = attention_mask
    next_position = positions[:, -1] + 1  # per model-batch row
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    eos = torch.tensor(list(eos_token_ids), dtype=torch.long, device=device)
    sequences = input_ids
    for step in range(max_new_tokens):
        logits = torch.zeros(rows, out.logits.shape[-1], dtype=torch.float32, device=device)
        logits[live] = out.logits[:, -1].float()
        if on_logits is not None:
            on_logits(logits)
        scores = logits
        if len(suppress_tokens):
            scores = scores.clone()
            scores[:, list(suppress_tokens)] = float("-inf")
        for p in processors:
            scores = p(sequences, scores)
        if temperature > 0:
            probs = torch.softmax(scores / temperature, dim=-1)
            tokens = torch.multinomial(probs, 1).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        tokens = torch.where(unfinished, tokens, pad_token_id)
        sequences = torch.cat([sequences, tokens[:, None]], dim=1)
        done = torch.isin(tokens, eos)
        for criterion in stopping:
            done = done | criterion(sequences, scores)
        unfinished = unfinished & ~done
        if not unfinished.any() or step == max_new_tokens - 1:
            break
        keep = unfinished[live]
        if int((~keep).sum()) >= max(1, DROP_SHARE * len(live)):
            index = keep.nonzero().squeeze(1)
            kv.keep_rows(index)
            live, mask, next_position = live[index], mask[index], next_position[index]
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
        out = model(
            input_ids=sequences[live, -1:], attention_mask=mask,
            position_ids=next_position[:, None], use_cache=True, **cache,
        )  # fmt: skip
        next_position = next_position + 1
    return sequences
