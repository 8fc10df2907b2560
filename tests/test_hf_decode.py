"""models.hf_decode.decode against transformers' generate on a real (tiny, random) model: the same
tokens, greedy, with processors and stopping criteria seeing the whole batch; rows really leave
the batch once finished; plain_config tells which generation settings it covers."""

import functools

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import GenerationConfig  # noqa: E402

from ponder.models import hf_decode  # noqa: E402
from ponder.models.hf_decode import decode, plain_config  # noqa: E402

EOS = 2


def tiny_llama():
    config = transformers.LlamaConfig(
        vocab_size=12, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
        pad_token_id=0, bos_token_id=1, eos_token_id=EOS,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def batch(seed=1, lengths=(3, 9, 6, 1, 4, 7, 2, 5)):
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, -n:] = torch.randint(3, 12, (n,), generator=g)
        mask[row, -n:] = 1
    return ids, mask


class EveryRow:
    """A processor and a criterion that record the batch shape they see. The processor bans token
    5 for row 3 and makes each even row r end (EOS) at its step 2r + 1; the criterion stops row 1
    after its fifth token."""

    def __init__(self, prompt_len):
        self.P, self.seen = prompt_len, []

    def process(self, input_ids, scores):
        self.seen.append(tuple(scores.shape))
        scores = scores.clone()
        scores[3, 5] = float("-inf")
        step = input_ids.shape[1] - self.P
        for r in range(0, scores.shape[0], 2):
            if step == 2 * r + 1:
                scores[r, EOS] = 1e9
        return scores

    def stop(self, input_ids, scores):
        self.seen.append(tuple(input_ids.shape[:1]))
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        done[1] = input_ids.shape[1] - self.P >= 5
        return done


def test_greedy_decode_gives_generates_tokens_with_processors_and_criteria():
    from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

    model = tiny_llama()
    ids, mask = batch()
    mine, theirs = EveryRow(ids.shape[1]), EveryRow(ids.shape[1])

    class Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kw):
            return theirs.stop(input_ids, scores)

    with torch.inference_mode():
        want = model.generate(
            ids, attention_mask=mask, max_new_tokens=30, do_sample=False, pad_token_id=0,
            eos_token_id=EOS, suppress_tokens=[4],
            logits_processor=LogitsProcessorList([theirs.process]),
            stopping_criteria=StoppingCriteriaList([Stop()]),
        )  # fmt: skip
    got = decode(model, ids, mask, 30, pad_token_id=0, eos_token_ids=[EOS], suppress_tokens=[4],
                 processors=[mine.process], stopping=[mine.stop])  # fmt: skip
    assert torch.equal(got, want)
    new = got[:, ids.shape[1]:]
    assert not (new == 4).any() and not (new[3] == 5).any()
    ended = [(row == EOS).any().item() for row in new]
    assert 4 <= sum(ended) < len(ended)  # rows end at different steps: the test bites
    assert (new[1, 5:] == 0).all() and (new[1, :5] != 0).all()  # stopped by the criterion
    assert set(mine.seen) == {(8, 12), (8,)}  # always the whole batch


def test_finished_rows_leave_the_model_batch(monkeypatch):
    model = tiny_llama()
    ids, mask = batch()
    forcing = EveryRow(ids.shape[1])
    widths, real = [], model.forward

    @functools.wraps(real)
    def spy(*args, **kwargs):
        widths.append(kwargs["input_ids"].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    monkeypatch.setattr(hf_decode, "DROP_SHARE", 0.0)  # drop each row as soon as it ends
    out = decode(model, ids, mask, 30, pad_token_id=0, eos_token_ids=[EOS],
                 processors=[forcing.process])  # fmt: skip
    new = out[:, ids.shape[1]:]
    ends = [int((row == EOS).nonzero()[0]) if (row == EOS).any() else None for row in new]
    # the forward that follows step t runs the rows that had not ended by step t
    for t, width in enumerate(widths[1:]):
        assert width == sum(1 for e in ends if e is None or e > t)
    assert widths[0] == 8 and min(widths) < 8


def test_sampling_at_a_temperature_is_seeded_by_torch():
    model = tiny_llama()
    ids, mask = batch()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(
            decode(model, ids, mask, 20, pad_token_id=0, eos_token_ids=[EOS], temperature=1.0)
        )
    assert torch.equal(*runs)
    greedy = decode(model, ids, mask, 20, pad_token_id=0, eos_token_ids=[EOS])
    assert not torch.equal(runs[0], greedy)


def test_plain_config_covers_what_decode_does():
    lab_like = GenerationConfig(eos_token_id=2, pad_token_id=0, suppress_tokens=[4])
    assert plain_config(lab_like, sampling=False)
    trl_like = GenerationConfig(
        max_new_tokens=9, do_sample=True, temperature=0.8, top_p=1.0, top_k=0, min_p=None,
        repetition_penalty=1.0, disable_compile=True,
    )  # fmt: skip
    assert plain_config(trl_like, True)
    assert not plain_config(GenerationConfig(do_sample=True, temperature=0.8, top_k=50), True)
    top_p = GenerationConfig(do_sample=True, temperature=0.8, top_k=0, top_p=0.9)
    assert not plain_config(top_p, True)
    assert not plain_config(GenerationConfig(no_repeat_ngram_size=3), False)
    assert not plain_config(GenerationConfig(num_beams=4), False)
    # sampling settings are ignored when the caller does not sample with them
    assert plain_config(GenerationConfig(do_sample=True, temperature=0.6, top_k=20), False)
