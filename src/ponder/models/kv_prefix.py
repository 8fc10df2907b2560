"""A preallocated KV cache whose attention reads only the positions written so far.

transformers' ``StaticCache`` allocates every position a batch can reach and writes each step's
keys and values in place: no copies, unlike its default cache, which grows by concatenation
(``models.hf.static_cache_pays``). But it is built for ``torch.compile``, which wants fixed shapes,
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
