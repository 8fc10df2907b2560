"""--threads and $PONDER_THREADS reach the backends: llama.cpp's context (read back from llama.cpp
itself), torch's thread count for hf models, the lab trainers' options; HTTP models ignore it; bad
values are one-line errors."""

from __future__ import annotations

import llama_cpp
import pytest

from ponder import cli
from ponder.models import ModelError, resolve, thread_count

pytestmark = pytest.mark.slow


def context_threads(model) -> tuple[int, int]:
    """(decode, batch) threads of the model's llama.cpp context, as llama.cpp reports them."""
    return llama_cpp.llama_n_threads(model._ctx), llama_cpp.llama_n_threads_batch(model._ctx)


@pytest.fixture
def built(monkeypatch):
    """The llama.cpp context threads of every model the CLI resolves, read as soon as the real
    resolve has built it (the commands free their model when they end)."""
    import ponder.models

    seen = []

    def recording_resolve(spec=None, threads=None, **options):
        model = resolve(spec, threads=threads, **options)
        seen.append(context_threads(model))
        return model

    monkeypatch.setattr(ponder.models, "resolve", recording_resolve)
    monkeypatch.setattr(cli, "resolve", recording_resolve)
    monkeypatch.delenv("PONDER_THREADS", raising=False)
    return seen


def test_threads_reach_the_llama_cpp_context(monkeypatch):
    monkeypatch.delenv("PONDER_THREADS", raising=False)
    m = resolve("default", threads=1)
    try:
        assert m.n_threads == 1 and context_threads(m) == (1, 1)
    finally:
        m.close()
    monkeypatch.setenv("PONDER_THREADS", "2")
    m = resolve("default")  # the environment is the default
    try:
        assert context_threads(m) == (2, 2)
    finally:
        m.close()
    m = resolve("default", threads=1)  # an explicit value wins over it
    try:
        assert context_threads(m) == (1, 1)
    finally:
        m.close()


def test_solve_and_bench_pass_threads_to_the_model(built, monkeypatch, tmp_path, capsys):
    assert cli.main(["solve", "What is 1 + 1?", "--threads", "1", "--max-tokens", "4", "--json"]) == 0
    assert built[-1] == (1, 1)
    monkeypatch.setenv("PONDER_THREADS", "1")
    assert cli.main(["solve", "What is 1 + 1?", "--max-tokens", "4", "--json"]) == 0
    assert built[-1] == (1, 1)
    args = ["bench", "--task", "arith", "--limit", "1", "--strategy", "cot:max_tokens=4"]
    assert cli.main([*args, "--threads", "2", "--db", str(tmp_path / "r.sqlite")]) == 0
    assert built[-1] == (2, 2)  # the flag wins over PONDER_THREADS=1
    capsys.readouterr()


def test_serve_passes_threads_to_the_model(built, monkeypatch, capsys):
    import ponder.models

    def resolve_then_stop(spec=None, threads=None, **options):
        model = resolve(spec, threads=threads, **options)  # the real resolve
        built.append(context_threads(model))
        model.close()
        raise ModelError("stopping before the server starts")

    monkeypatch.setattr(ponder.models, "resolve", resolve_then_stop)
    assert cli.main(["serve", "--port", "0", "--threads", "1"]) == 2
    assert built[-1] == (1, 1)
    assert "stopping before the server starts" in capsys.readouterr().err


def test_torch_threads_for_hf_models():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    before = torch.get_num_threads()
    try:
        m = resolve("lab:add3-sft", threads=1)
        assert m.threads == 1 and torch.get_num_threads() == 1
        assert m._executor.submit(torch.get_num_threads).result() == 1  # its decode thread too
    finally:
        torch.set_num_threads(before)


def test_http_models_ignore_threads():
    m = resolve("openai:some-model@http://127.0.0.1:9/v1", threads=3)
    assert m.describe()["backend"] == "openai"


def test_train_threads_follow_the_same_rule(monkeypatch, tmp_path):
    pytest.importorskip("trl")
    from ponder.lab import grpo, sft
    from ponder.models.shipped import shipped_dir

    class Captured(Exception):
        pass

    seen = []

    def capture(opts, **kw):
        seen.append(opts.threads)
        raise Captured

    monkeypatch.setattr(sft, "train_sft", capture)
    monkeypatch.setattr(grpo, "train_grpo", capture)
    out = str(tmp_path / "run")
    monkeypatch.setenv("PONDER_THREADS", "1")
    for argv in (["train", "sft", "--task", "add", "--out", out],
                 ["train", "grpo", "--from", str(shipped_dir("add3-sft")), "--task", "add", "--out", out]):  # fmt: skip
        with pytest.raises(Captured):
            cli.main(argv)
        with pytest.raises(Captured):
            cli.main([*argv, "--threads", "2"])
    assert seen == [1, 2, 1, 2]


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "q"],
        ["bench", "--task", "arith", "--limit", "1"],
        ["train", "sft", "--task", "add"],
        ["serve", "--port", "0"],
    ],
)
def test_bad_values_are_one_line_errors(argv, monkeypatch, tmp_path, capsys):
    if argv[0] == "train":
        pytest.importorskip("trl")
    monkeypatch.delenv("PONDER_THREADS", raising=False)
    extra = ["--db", str(tmp_path / "d")] if argv[0] == "bench" else []
    extra += ["--out", str(tmp_path / "o")] if argv[0] == "train" else []
    assert cli.main([*argv, *extra, "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threads" in err[0] and "positive integer" in err[0], err
    for bad in ("abc", "0", "-2", "1.5"):
        monkeypatch.setenv("PONDER_THREADS", bad)
        assert cli.main([*argv, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"PONDER_THREADS={bad!r}" in err[0], err
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


def test_thread_count():
    assert thread_count(3) == 3
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ModelError, match="positive integer"):
            thread_count(bad)
