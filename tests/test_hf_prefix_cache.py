"""models.kv_prefix.PrefixStaticCache against transformers' own caches, on real (tiny, random)
transformers models: the same tokens as StaticCache and the growing default, with a left-padded
batch, greedy and sampled; other layer kinds (sliding windows) keep transformers' static layer."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers.cache_utils import StaticCache, StaticLayer  # noqa: E402

from ponder.models.kv_prefix import (  # noqa: E402
    PrefixStaticCache,
    PrefixStaticLayer,
    prefix_cache_kwargs,
)


def tiny_llama():
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def left_padded_batch():
    torch.manual_seed(1)
    lengths = [3, 9, 6, 1]
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, -n:] = torch.randint(3, 50, (n,))
        mask[row, -n:] = 1
    return ids, mask


def generate(model, cache, **kwargs):
    ids, mask = left_padded_batch()
    extra = {}
    if cache == "prefix":
        extra = prefix_cache_kwargs(model, ids.shape[1] + 40)
    elif cache == "static":
        extra["cache_implementation"] = "static"
    torch.manual_seed(7)  # the same draws for sampled runs
    with torch.inference_mode():
        return model.generate(
            ids, attention_mask=mask, max_new_tokens=40, min_new_tokens=40, pad_token_id=0,
            **extra, **kwargs,
        )  # fmt: skip


@pytest.mark.parametrize("sampling", [dict(do_sample=False), dict(do_sample=True, temperature=1.0)])
def test_the_prefix_cache_gives_the_tokens_of_transformers_caches(sampling):
    model = tiny_llama()
    prefix = generate(model, "prefix", **sampling)
    assert prefix.shape == (4, 9 + 40)
    assert torch.equal(prefix, generate(model, "static", **sampling))
    assert torch.equal(prefix, generate(model, None, **sampling))


def test_attention_reads_only_the_written_positions():
    model = tiny_llama()
    kwargs = prefix_cache_kwargs(model, 100)
    (cache,) = kwargs.values()
    seen = []
    real = PrefixStaticLayer.update

    def spy(self, k, v, *args, **kwargs):
        keys, values = real(self, k, v, *args, **kwargs)
        seen.append(keys.shape[2])
        return keys, values

    ids, mask = left_padded_batch()
    PrefixStaticLayer.update = spy
    try:
        with torch.inference_mode():
            model.generate(ids, attention_mask=mask, max_new_tokens=5, min_new_tokens=5,
                           pad_token_id=0, **kwargs)  # fmt: skip
    finally:
        PrefixStaticLayer.update = real
    # 2 layers: the prompt's 9 positions, then one more per decoding step, never all 100
    assert seen == [9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    assert cache.layers[0].keys.shape[2] == 100  # the buffer itself is preallocated
    assert not cache.is_compileable


def test_sliding_window_layers_keep_transformers_static_layer():
    config = transformers.MistralConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, sliding_window=8, max_position_embeddings=128,
    )  # fmt: skip
    kinds = {type(layer) for layer in PrefixStaticCache(config, max_cache_len=64).layers}
    assert PrefixStaticLayer not in kinds and not kinds <= {StaticLayer}
    full = transformers.LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=3,
                                    num_attention_heads=2)  # fmt: skip
    assert all(type(x) is PrefixStaticLayer for x in PrefixStaticCache(full, 64).layers)
    assert isinstance(PrefixStaticCache(full, 64), StaticCache)
