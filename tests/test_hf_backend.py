"""The transformers backend against a REAL (tiny, random) Llama model built in a temp directory.

The tokenizer is character level (one token per character), so token counts can be checked by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import dataclasses
import string
import threading
import time

import pytest

torch = pytest.importorskip("torch", reason="the hf backend needs torch (pip install 'ponder[hf]')")
transformers = pytest.importorskip("transformers", reason="the hf backend needs transformers")
tokenizers = pytest.importorskip("tokenizers", reason="the hf backend needs tokenizers")

from ponder.models import ModelError, Request, resolve  # noqa: E402
from ponder.models.hf import HFModel  # noqa: E402

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny-llama")
    chars = sorted(set(string.printable) - set("\r\x0b\x0c"))
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # Every character is one token; decoding concatenates them back.
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(d)

    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    # Never sample <pad>/<s>/<unk>: they decode to nothing, which would break the char <-> token
    # bookkeeping below (the backend honours the model's generation_config, as it should).
    model.generation_config.suppress_tokens = [0, 1, 3]
    model.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def hf(model_dir):
    # A 32-wide model gains nothing from intra-op threads, and on a busy 2-core box their OpenMP
    # barriers made each matmul cost a scheduler slice (tests 10x slower).
    torch.set_num_threads(1)
    return resolve(f"hf:{model_dir}", device="cpu")


def run(coro):
    return asyncio.run(coro)


def test_resolve_and_batched_samples(hf, model_dir):
    assert isinstance(hf, HFModel)
    assert hf.name == model_dir.name
    info = hf.describe()
    assert info["backend"] == "hf" and info["device"] == "cpu" and info["parameters"] > 0
    [weights] = [f for f in model_dir.iterdir() if f.suffix in (".safetensors", ".bin")]
    assert info["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()  # a bench run's id
    c = run(hf.generate(Request.chat("hi", n=4, max_tokens=8, temperature=1.0, seed=1)))
    assert len(c.samples) == 4 and c.usage.calls == 1
    # Greedy n > 1 works too (transformers refuses num_return_sequences > 1 without sampling).
    greedy = run(hf.generate(Request.chat("hi", n=3, max_tokens=8, temperature=0.0)))
    assert len(greedy.samples) == 3 and len(set(greedy.texts)) == 1


def test_a_trainer_checkpoint_folder_is_named_by_its_weights_alone(model_dir, tmp_path):
    """A GRPO/SFT checkpoint holds training_args.bin and optimizer state beside model.safetensors:
    its identity is still the weights' hash (experiments key kept evaluations by it); a sharded
    model has no one file to name it by."""
    import shutil

    from ponder.models.base import folder_weights_sha256

    ckpt = tmp_path / "checkpoint-10"
    shutil.copytree(model_dir, ckpt)
    for extra in ("training_args.bin", "optimizer.pt", "rng_state.pth"):
        (ckpt / extra).write_bytes(b"not weights")
    weights = (ckpt / "model.safetensors").read_bytes()
    assert resolve(f"hf:{ckpt}", device="cpu").describe()["sha256"] == hashlib.sha256(weights).hexdigest()
    (ckpt / "model-00002-of-00002.safetensors").write_bytes(b"a second shard")
    assert folder_weights_sha256(str(ckpt)) == ""


def test_a_hub_id_loads_from_the_cache_and_is_named_by_its_revision(model_dir, tmp_path):
    """``hf:ORG/NAME`` loads what the Hugging Face cache holds (offline here, as on any machine that
    fetched it before), and its identity in run records is the commit the cache resolved."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--ponder-test--tiny-llama"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = os.environ | {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    code = ("import json; from ponder.models import resolve; "
            "print(json.dumps(resolve('hf:ponder-test/tiny-llama', device='cpu').describe()))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    about = json.loads(proc.stdout.strip().splitlines()[-1])
    assert about["path"] == "ponder-test/tiny-llama" and about["revision"] == commit
    assert "sha256" not in about


def test_seeded_reproducibility(hf):
    req = Request(prompt="Once upon a time", n=2, max_tokens=30, temperature=1.0, seed=7)
    a, b = run(hf.generate(req)), run(hf.generate(req))
    assert a.texts == b.texts
    other = run(hf.generate(dataclasses.replace(req, seed=8)))
    assert other.texts != a.texts


def test_token_counts_match_tokenizer(hf):
    tok = hf.tokenizer
    req = Request.chat("What is 2+2?", system="Be brief.", n=4, max_tokens=20, temperature=1.0)
    req = dataclasses.replace(req, seed=3, logprobs=True)
    text = tok.apply_chat_template(list(req.messages), tokenize=False, add_generation_prompt=True)
    expected_prompt = len(tok(text, add_special_tokens=False)["input_ids"])
    # transformers runs n copies of the prompt, so a batch of 4 is charged 4 prompts
    assert hf.count_prompt_tokens(req) == 4 * expected_prompt
    c = run(hf.generate(req))
    assert c.usage.prompt_tokens == 4 * expected_prompt
    assert c.usage.completion_tokens == sum(s.completion_tokens for s in c.samples)
    assert any(s.finish_reason == "length" for s in c.samples)
    for s in c.samples:
        assert s.prompt_tokens == expected_prompt
        if s.finish_reason == "length":
            assert s.completion_tokens == 20
        else:  # EOS: not counted, not in the text
            assert s.completion_tokens < 20
        assert s.completion_tokens == len(tok(s.text, add_special_tokens=False)["input_ids"])
        assert len(s.logprobs) == s.completion_tokens
        assert all(lp <= 0 for lp in s.logprobs)


def test_logprobs_match_a_forward_pass(hf):
    tok, model = hf.tokenizer, hf.model
    req = Request(prompt="The answer is", max_tokens=12, temperature=0.0, logprobs=True)
    s = run(hf.generate(req)).samples[0]
    prompt_ids = tok(req.prompt)["input_ids"]
    completion_ids = tok(s.text, add_special_tokens=False)["input_ids"]
    assert len(completion_ids) == s.completion_tokens == len(s.logprobs)
    ids = torch.tensor([prompt_ids + completion_ids])  # (1, P + C)
    with torch.no_grad():
        logits = model(ids).logits[0].float()  # (P + C, V)
    P = len(prompt_ids)
    # Token P + j was predicted from position P + j - 1.
    expected = torch.log_softmax(logits[P - 1 : -1], dim=-1).gather(1, ids[0, P:, None])[:, 0]
    assert torch.allclose(torch.tensor(s.logprobs), expected, atol=1e-4)


def test_missing_or_bad_directory_is_one_line_model_error(tmp_path):
    with pytest.raises(ModelError) as e:
        resolve(f"hf:{tmp_path / 'nope'}")
    assert "cannot load Hugging Face model" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelError) as e:
        HFModel(str(tmp_path))  # exists, but holds no model
    assert "cannot load Hugging Face model" in str(e.value) and "\n" not in str(e.value)


def test_a_transformers_older_than_the_floor_is_one_line_model_error(model_dir, monkeypatch):
    """Older transformers cannot run the backend (no cache layers, no shipped tokenizers): the
    user hears which release is needed, not a traceback from inside generate."""
    from pathlib import Path

    from ponder import requirements
    from ponder.models import hf as hf_module

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    floor = requirements.HF_FLOORS["transformers"]
    assert f'hf = ["torch>=2.6", "transformers>={floor}"' in pyproject
    real = requirements.installed
    for have, refused in (("5.3.2", True), ("5.4.0.dev0", False), (real("transformers"), False)):
        monkeypatch.setattr(requirements, "installed", lambda p, have=have: have if p == "transformers" else real(p))
        if not refused:
            assert HFModel(str(model_dir)).model is not None, have
            continue
        with pytest.raises(ModelError) as e:
            HFModel(str(model_dir))
        assert str(e.value) == (f"the hf backend needs transformers >= {floor} (this is {have}): "
                                "pip install -U 'ponder[hf]'")  # fmt: skip
    # a release above the floor whose caches moved (the CPU decoding path cannot be imported)
    moved = ImportError("cannot import name 'StaticLayer' from 'transformers.cache_utils'")
    monkeypatch.setattr(hf_module, "_DECODE_IMPORT_ERROR", moved)
    with pytest.raises(ModelError) as e:
        HFModel(str(model_dir))
    assert "cannot use transformers" in str(e.value) and "StaticLayer" in str(e.value)
    assert "\n" not in str(e.value)


def test_release_floors_read_versions_as_releases(monkeypatch):
    from importlib.metadata import PackageNotFoundError

    from ponder import requirements

    def installed(versions):
        def lookup(package):
            if versions[package] is None:
                raise PackageNotFoundError(package)
            return versions[package]

        return lookup

    for have, refused in (("1", False), ("1.0.0rc1", False), ("0.29.1", True), ("1.16.0", False),
                          ("not a version", False), (None, False)):  # fmt: skip
        monkeypatch.setattr(requirements, "installed", installed({"trl": have}))
        assert requirements.too_old({"trl": "1.0"}) == ([f"trl >= 1.0 (this is {have})"] if refused else []), have


def test_stop_strings_cut_the_text(hf):
    base = Request(prompt="abc", max_tokens=40, temperature=1.0, seed=11)
    full = run(hf.generate(base)).samples[0]
    assert len(full.text) >= 12, "seeded sample too short for this test"
    stop = full.text[8:10]
    at = full.text.index(stop)
    s = run(hf.generate(dataclasses.replace(base, stop=(stop,)))).samples[0]
    assert s.text == full.text[:at] and s.finish_reason == "stop"
    assert s.completion_tokens == at + len(stop)  # one token per char; the completing token counts


def test_streaming_pieces_add_up(hf):
    req = Request(prompt="xyz", n=2, max_tokens=25, temperature=1.0, seed=5)
    first = run(hf.generate(req)).texts[0]
    # A two-char stop string: its first char must be held back while streaming, then dropped.
    req = dataclasses.replace(req, stop=(first[6:8], "e"))
    pieces: dict[int, list[str]] = {0: [], 1: []}
    c = run(hf.generate(req, on_text=lambda i, p: pieces[i].append(p)))
    assert c.samples[0].text == first[: first.index(first[6:8])].split("e")[0]
    for i, s in enumerate(c.samples):
        assert "".join(pieces[i]) == s.text and len(pieces[i]) > 1
        assert all(stop not in s.text for stop in req.stop)


def test_no_chat_template_falls_back_to_plain_rendering(hf):
    saved, hf.tokenizer.chat_template = hf.tokenizer.chat_template, None
    try:
        req = Request.chat("hi", system="sys")
        expected = len(hf.tokenizer("System: sys\nUser: hi\nAssistant:")["input_ids"])
        assert hf.count_prompt_tokens(req) == expected
    finally:
        hf.tokenizer.chat_template = saved


def test_top_logprobs_match_a_forward_pass(hf):
    tok, model = hf.tokenizer, hf.model
    req = Request(prompt="The answer is", max_tokens=10, temperature=0.0, top_logprobs=4)
    s = run(hf.generate(req)).samples[0]
    assert len(s.top_logprobs) == len(s.logprobs) == s.completion_tokens
    prompt_ids = tok(req.prompt)["input_ids"]
    ids = torch.tensor([prompt_ids + tok(s.text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0].float()  # (P + C, V)
    P = len(prompt_ids)
    expected = torch.topk(torch.log_softmax(logits[P - 1 : -1], dim=-1), 4).values  # (C, 4)
    assert torch.allclose(torch.tensor(s.top_logprobs), expected, atol=1e-4)
    # Greedy picks the argmax of the processed scores; suppress_tokens can hide a raw top-1, so
    # the sampled token's logprob is at most the raw top-1.
    assert all(lp <= row[0] + 1e-6 for lp, row in zip(s.logprobs, s.top_logprobs))


def test_should_stop_per_row(hf):
    req = Request(prompt="abc", n=3, max_tokens=15, temperature=1.0, seed=2, top_logprobs=2)
    seen: list[tuple[int, int]] = []

    def should_stop(i, partial):
        seen.append((i, partial.completion_tokens))
        assert len(partial.logprobs) == len(partial.top_logprobs) == partial.completion_tokens
        return i == 1 and partial.completion_tokens == 5

    full = run(hf.generate(req))
    assert full.samples[1].completion_tokens > 5, "seeded sample too short for this test"
    c = run(hf.generate(req, should_stop=should_stop))
    s = c.samples[1]
    assert (s.finish_reason, s.completion_tokens, len(s.logprobs), len(s.top_logprobs)) == (
        "cancelled", 5, 5, 5
    )
    assert s.text == full.texts[1][:5]  # one token per character
    assert max(k for i, k in seen if i == 1) == 5
    # The other rows run on exactly as without the stop.
    assert [c.texts[0], c.texts[2]] == [full.texts[0], full.texts[2]]
    assert all(c.samples[i].finish_reason != "cancelled" for i in (0, 2))
    assert c.usage.completion_tokens == sum(x.completion_tokens for x in c.samples)


def test_continuation_greedy_equals_the_tail_of_the_full_generation(hf):
    # Char-level tokenizer: the prefix re-tokenizes to exactly the tokens that wrote it, so a greedy
    # continuation must reproduce the rest of the greedy full answer.
    question = Request.chat("hi", system="sys", max_tokens=20, temperature=0.0)
    full = run(hf.generate(question)).samples[0]
    prefix = full.text[:8]
    cont_req = question.continuing(prefix, max_tokens=12)
    assert cont_req.prefix == prefix and cont_req.turn == question.messages
    cont = run(hf.generate(cont_req)).samples[0]
    assert cont.text == full.text[8:20] and cont.completion_tokens == 12
    # the prompt is the template with the generation prompt, then the prefix (one token a char)
    expected = hf.count_prompt_tokens(question) + len(prefix)
    assert hf.count_prompt_tokens(cont_req) == expected == cont.prompt_tokens


def test_max_tokens_beyond_the_context_is_clipped_not_an_error(hf):
    req = Request(prompt="Once upon a time", max_tokens=100_000, temperature=0.0)
    prompt = hf.count_prompt_tokens(req)
    c = run(hf.generate(req))
    assert 1 <= c.samples[0].completion_tokens <= 256 - prompt  # the fixture's context is 256
    with pytest.raises(ModelError, match="does not fit the context of 256"):
        run(hf.generate(Request(prompt="x" * 300, max_tokens=5)))


def _as_one_batch(model, requests, **kw):
    """Run the requests concurrently while the model's worker is held until all of them are pending
    (as under load), so that the worker takes them together however slowly this machine runs.

    The requests start only once the worker is inside the hold: a drain left from an earlier
    request may still be looping on the worker, and would take whatever is pending at that moment
    (on a busy machine, two of four), which is right for the server but not what is under test.
    """
    holding, release = threading.Event(), threading.Event()

    def hold():
        holding.set()
        release.wait(60)

    async def go():
        tasks = [asyncio.ensure_future(model.generate(r, **kw)) for r in requests]
        deadline = time.monotonic() + 60
        while len(model._pending) < len(requests):
            assert time.monotonic() < deadline, f"{len(model._pending)} of {len(requests)} pending"
            await asyncio.sleep(0.001)
        release.set()
        return await asyncio.gather(*tasks)

    held = model._executor.submit(hold)
    try:
        assert holding.wait(60), "the model's worker did not come free within 60 s"
        return run(go())
    finally:
        release.set()
        held.result()


def test_concurrent_requests_share_one_batch_and_keep_their_own_results(hf, monkeypatch):
    """Requests pending together run as ONE generate (the worker takes all of them), and each gets
    exactly what it gets alone: its own prompt (left-padded), max_tokens, temperature and seed."""
    requests = [
        Request(prompt="Once upon a time", n=2, max_tokens=30, temperature=1.0, seed=7),
        Request(prompt="abc", max_tokens=12, temperature=0.0),
        Request(prompt="The quick brown fox jumps", n=3, max_tokens=20, temperature=0.8,
                top_p=0.9, seed=1, logprobs=True),
        Request(prompt="xyz", max_tokens=5, temperature=0.0, stop=("q",)),
    ]  # fmt: skip
    alone = [run(hf.generate(r)) for r in requests]
    calls = []
    real = hf._generate_batch
    monkeypatch.setattr(hf, "_generate_batch", lambda jobs: calls.append(1) or real(jobs))
    together = _as_one_batch(hf, requests)
    assert len(calls) == 1, "the four pending requests should have run as one batch"
    for r, a, b in zip(requests, alone, together):
        assert b.texts == a.texts, r
        assert [s.completion_tokens for s in b.samples] == [s.completion_tokens for s in a.samples]
        assert [s.finish_reason for s in b.samples] == [s.finish_reason for s in a.samples]
        assert all(s.completion_tokens <= r.max_tokens for s in b.samples)
        assert b.usage.prompt_tokens == a.usage.prompt_tokens  # padding is not charged
    lp_a, lp_b = alone[2].samples[0].logprobs, together[2].samples[0].logprobs
    assert lp_b is not None and lp_b == pytest.approx(lp_a, abs=1e-4)
    assert together[0].samples[0].logprobs is None  # only the request that asked gets them


def test_batch_respects_max_batch_rows(hf, monkeypatch):
    monkeypatch.setattr(hf, "max_batch_rows", 4)
    calls = []
    real = hf._generate_batch
    monkeypatch.setattr(
        hf, "_generate_batch", lambda jobs: calls.append(sum(j.request.n for j in jobs)) or real(jobs)
    )
    out = _as_one_batch(hf, [Request(prompt=f"p{i}", n=2, max_tokens=4) for i in range(5)])
    assert [len(c.samples) for c in out] == [2] * 5
    assert calls == [4, 4, 2]


def test_a_request_too_large_for_one_static_cache_is_split_into_seeded_parts(hf, monkeypatch):
    """A request whose static cache would not fit, where a part of max_batch_rows would: parts
    of as many rows as fit, the part from sample k on seeded seed + k, callbacks and samples at
    the request's own indices. A request that fits stays one batch, however many rows."""
    from ponder.models import kv_prefix

    monkeypatch.setattr(hf, "max_batch_rows", 4)
    rows, real = [], hf._generate_batch

    def batch_spy(jobs):
        rows.append(sum(j.request.n for j in jobs))
        return real(jobs)

    monkeypatch.setattr(hf, "_generate_batch", batch_spy)
    request = Request(prompt="Once upon a", n=10, max_tokens=12, temperature=1.0, seed=3)
    run(hf.generate(request))
    assert rows == [10]  # its cache fits: one batch, as before

    length = len(hf._encode(request)) + 12
    four_rows = 4 * kv_prefix.kv_cache_bytes(hf.model, 1, length)
    monkeypatch.setattr(kv_prefix, "STATIC_CACHE_BYTES", four_rows)
    rows.clear()
    streamed: dict[int, str] = {}

    def on_text(i, piece):
        streamed[i] = streamed.get(i, "") + piece

    out = run(hf.generate(request, on_text=on_text, should_stop=lambda i, partial: i == 9))
    assert rows == [4, 4, 2]
    assert len(out.samples) == 10 and out.usage.calls == 3
    assert out.usage.prompt_tokens == hf.count_prompt_tokens(request)
    assert out.usage.completion_tokens == sum(s.completion_tokens for s in out.samples)
    assert streamed == {i: s.text for i, s in enumerate(out.samples)}
    # Only the request's sample 9 was stopped (after its first token): the last part's sample 1.
    assert [s.finish_reason == "cancelled" for s in out.samples] == [False] * 9 + [True]
    assert out.samples[9].completion_tokens == 1
    for first in (0, 4):
        alone = run(hf.generate(dataclasses.replace(request, n=4, seed=3 + first)))
        assert out.texts[first : first + 4] == alone.texts
    assert len(set(out.texts[:8])) > 1  # the parts are not copies of one another


def test_an_error_reaches_every_request_of_the_batch(hf, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(hf, "_generate_batch", boom)

    async def go():
        return await asyncio.gather(
            *(hf.generate(Request(prompt="a", max_tokens=3)) for _ in range(3)),
            return_exceptions=True,
        )

    assert [str(e) for e in run(go())] == ["out of memory"] * 3


def test_every_decoding_path_gives_the_same_samples(model_dir, monkeypatch):
    """On a CPU the backend decodes with hf_decode.decode (finished rows leave the batch) on a
    preallocated prefix cache; where the model's generation config asks for more, with generate on
    that cache; with static_cache=False, with generate on transformers' growing cache. All three
    must give the same samples, counts, finish reasons and logprobs: prompts of different lengths
    share a left-padded batch, greedy and seeded rows alike, rows ending at different steps."""
    import ponder.models.hf as hf_module

    reqs = [
        Request(prompt="Once upon a time there was", n=2, max_tokens=40, temperature=1.0, seed=5,
                logprobs=True, top_logprobs=2),
        Request(prompt="Hi", max_tokens=40, temperature=0.0),
        Request.chat("What is 2+2?", n=3, max_tokens=25, temperature=0.7, seed=9, stop=("e",)),
        Request(prompt="abc", max_tokens=7, temperature=0.0),
    ]  # fmt: skip

    out, used = {}, {}
    real_decode = hf_module.decode
    for path in ("decode", "generate on the prefix cache", "generate on the growing cache"):
        model = resolve(f"hf:{model_dir}", device="cpu", static_cache=path != "generate on the growing cache")
        seen, real = [], model.model.generate

        def spy(*args, real=real, seen=seen, **kwargs):  # records the cache each batch was given
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            seen.append(None if cache is None else type(cache).__name__)
            return real(*args, **kwargs)

        def decode_spy(*args, seen=seen, **kwargs):
            seen.append("decode")
            return real_decode(*args, **kwargs)

        model.model.generate = spy
        monkeypatch.setattr(hf_module, "decode", decode_spy)
        monkeypatch.setattr(hf_module, "_decode_fits", lambda config, path=path: path == "decode")
        done = _as_one_batch(model, reqs)  # all four in one batch
        out[path] = [[(s.text, s.completion_tokens, s.finish_reason) for s in c.samples] for c in done]
        out[path, "lp"] = [(s.logprobs, s.top_logprobs) for s in done[0].samples]
        used[path] = seen
    assert used == {
        "decode": ["decode"], "generate on the prefix cache": ["PrefixStaticCache"],
        "generate on the growing cache": [None],
    }  # fmt: skip
    assert out["decode"] == out["generate on the prefix cache"] == out["generate on the growing cache"]
    for other in ("generate on the prefix cache", "generate on the growing cache"):
        for (lp, top), (lp2, top2) in zip(out["decode", "lp"], out[other, "lp"]):
            assert lp == pytest.approx(lp2, abs=1e-4) and len(lp) > 0
            assert [t for row in top for t in row] == pytest.approx([t for row in top2 for t in row], abs=1e-4)
    reasons = [reason for c in out["decode"] for _, _, reason in c]
    assert "stop" in reasons and "length" in reasons  # rows end at different steps


def test_the_static_cache_is_chosen_on_a_cpu_for_small_caches_only(hf):
    from ponder.models.kv_prefix import STATIC_CACHE_BYTES, kv_cache_bytes, static_cache_pays
    from ponder.models.kv_prefix import static_rows

    c = hf.model.config  # 2 layers, 2 KV heads of 16, float32
    assert kv_cache_bytes(hf.model, 3, 100) == 2 * 2 * 2 * 16 * 4 * 3 * 100
    assert static_cache_pays(hf.model, "cpu", 64, c.max_position_embeddings)
    assert not static_cache_pays(hf.model, "cuda", 64, 100)  # transformers would compile for it
    too_many = STATIC_CACHE_BYTES // kv_cache_bytes(hf.model, 1, 100) + 1
    assert not static_cache_pays(hf.model, "cpu", too_many, 100)
    # How many rows one static-cache batch takes (GRPO decodes its rollouts in parts of this many).
    assert static_rows(hf.model, "cpu", 64, 100) == 64
    assert static_rows(hf.model, "cpu", too_many, 100) == too_many - 1
    assert static_cache_pays(hf.model, "cpu", too_many - 1, 100)
    assert static_rows(hf.model, "cuda", 64, 100) == 0
    assert hf._static_cache(4, 100)  # the fixture's model: CPU, small
