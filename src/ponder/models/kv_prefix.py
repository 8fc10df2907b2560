"""A preallocated KV cache whose attention reads only the positions written so far.

transformers' ``StaticCache`` allocates every position a batch can reach and writes each step's
keys and values in place: no copies, unlike its default cache, which grows by concatenation
(``static_cache_pays`` below). But it is built for ``torch.compile``, which wants fixed shapes,
so every step attends over *all* the preallocated positions, the empty ones masked. Without
compilation (on a CPU) that is wasted work: for the deep lab model, 64 rows and a 1,024-position
cache, attention was 44% of a decoding step at position 200 and most of it near the end.

``PrefixStaticCache`` keeps the preallocated buffers and the in-place writes, and hands attention
(and the mask) only the first ``written`` positions: the growing cache's work without its copies.
Greedy output is the same token for token (``tests/test_hf_prefix_cache.py``); with
``generate`` on the deep lab model, greedy countdown on 64 rows of up to 900 tokens ran 1.49x
faster than on ``StaticCache`` (``benchmarks/hf_static_cache.py``,
``docs/results/hf_static_cache``).

Written here because transformers has no such cache: its caches are either preallocated with
fixed-shape attention or grown by concatenation. Layers of other kinds (sliding windows, linear
attention) keep transformers' own static layer; the cache is never compiled (``is_compileable`` is
False), so ``generate`` does not try.
"""

from __future__ import annotations

import inspect

from transformers.cache_utils import StaticCache, StaticLayer


class PrefixStaticLayer(StaticLayer):
    """A ``StaticLayer`` that returns only the written prefix of its keys and values."""

    is_compileable = False  # shapes change at every step: this layer is for eager decoding

    def update(self, key_states, value_states, *args, **kwargs):
        end = int(self.cumulative_length) + key_states.shape[-2]
        keys, values = super().update(key_states, value_states, *args, **kwargs)
        return keys[:, :, :end], values[:, :, :end]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        # Asked before this step's update: the mask covers what is written plus the new queries.
        return int(self.cumulative_length) + query_length, 0


class PrefixStaticCache(StaticCache):
    """``StaticCache`` with its full-attention layers replaced by ``PrefixStaticLayer``."""

    def __init__(self, config, max_cache_len: int, **kwargs):
        super().__init__(config=config, max_cache_len=max_cache_len, **kwargs)
        self.layers = [
            PrefixStaticLayer(max_cache_len) if type(layer) is StaticLayer else layer
            for layer in self.layers
        ]

    def keep_rows(self, index) -> None:
        """Keep only the batch rows at ``index`` (a 1-D tensor), in that order, in every layer:
        ``hf_decode`` drops finished rows from a batch. Copies the kept rows once."""
        for layer in self.layers:
            if layer.is_initialized:
                layer.keys = layer.keys.index_select(0, index)
                layer.values = layer.values.index_select(0, index)
                layer.batch_size = len(index)


def cache_keyword(model) -> str:
    """The name under which ``model``'s forward and ``generate`` take a cache object
    (transformers 5 renamed ``past_key_values`` to ``cache``)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def prefix_cache_kwargs(model, max_cache_len: int) -> dict:
    """The ``generate`` keyword argument that gives ``model`` a fresh ``PrefixStaticCache`` of
    ``max_cache_len`` positions."""
    return {cache_keyword(model): PrefixStaticCache(model.config, max_cache_len=max_cache_len)}


STATIC_CACHE_BYTES = 1 << 30  # the largest static KV cache allocated without being asked for


def static_cache_pays(model, device: str, rows: int, length: int) -> bool:
    """Whether ``model.generate`` on ``rows`` rows of up to ``length`` positions should use
    ``cache_implementation="static"``. transformers' default cache grows by concatenation, copying
    every layer's keys and values at each step: on a CPU, with a small model, those copies cost
    more than the model. Measured on the stop-26 lab:countdown-grpo, one thread, 16 rows, every row
    run to the end: 200 steps after a 703-token prompt 7.9 s -> 4.8 s; 900 steps after a 99-token
    prompt 36.7 s -> 19.1 s (64 rows: 128 s -> 62 s); benchmarks/hf_static_cache.py measures it
    through the bench runner. A static cache is allocated for every position up front, so it is
    used only on the CPU (on a GPU, transformers would also compile the model for it) and only
    where that allocation is at most ``STATIC_CACHE_BYTES``."""
    return device == "cpu" and kv_cache_bytes(model, rows, length) <= STATIC_CACHE_BYTES


def static_rows(model, device: str, rows: int, length: int) -> int:
    """How many of ``rows`` rows of up to ``length`` positions one batch can decode on a static
    cache (see ``static_cache_pays``): all of them where their cache fits
    ``STATIC_CACHE_BYTES``, else as many as fit; 0 off the CPU or where not even one row fits.
    A caller with more rows decodes them in parts of this many."""
    if device != "cpu":
        return 0
    return min(rows, STATIC_CACHE_BYTES // kv_cache_bytes(model, 1, length))


def kv_cache_bytes(model, rows: int, length: int) -> int:
    """Bytes of ``model``'s KV cache for ``rows`` x ``length`` positions (a huge number where the
    config does not say, so that an unknown architecture keeps the default cache)."""
    c = model.config
    c = c.get_text_config(decoder=True) if hasattr(c, "get_text_config") else c
    layers, heads = getattr(c, "num_hidden_layers", None), getattr(c, "num_attention_heads", None)
    hidden = getattr(c, "hidden_size", None)
    if not (layers and heads and hidden):
        return 1 << 62
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    head_dim = getattr(c, "head_dim", None) or hidden // heads
    width = next(model.parameters()).element_size()
    return 2 * layers * kv_heads * head_dim * width * rows * length
