"""RL rewards built from the verifiers, STaR-style data synthesis against a real HTTP server, and
short real GRPO runs (TRL) on CPU: checkpoints, resume, the record and the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ponder.verify
from ponder.lab import format
from ponder.lab import traces
from ponder.lab.rewards import (
    correctness_reward,
    format_reward,
    problem_columns,
    reward_setup,
    steps_reward,
)
from ponder.lab.synth import MadeWith, SynthFile, trim_to_answer
from ponder.problems import load_problems
from ponder.verify import Score as Verdict
from ponder.verify import grade

TRAIN = ("torch", "transformers", "tokenizers", "datasets", "trl", "accelerate")


def _need_train():
    for name in TRAIN:
        pytest.importorskip(name, reason=f"GRPO needs {name} (pip install 'ponder[train]')")


def run_ponder(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "ponder", *args], capture_output=True, text=True, timeout=timeout
    )


def columns(problems, per_problem=1):
    """TRL's reward kwargs: one entry per completion, each column a list."""
    rows = [problem_columns(p) for p in problems for _ in range(per_problem)]
    return {k: [r[k] for r in rows] for k in rows[0]}


# --- rewards ---


def test_correctness_reward_grades_like_the_verifier():
    p1, p2 = load_problems("arith", limit=2, seed=0, digits=2)
    right = f"1+2+0=3 > 3\nAnswer: {p1.answer}"
    wrong = f"Answer: {int(p2.answer) + 1}"
    cols = columns([p1, p1, p2, p2])
    completions = [right, "no idea", f"\\boxed{{{p2.answer}}}", wrong]
    assert correctness_reward([""] * 4, completions, **cols) == [1.0, 0.0, 1.0, 0.0]
    # conversational completions (lists of messages) are graded the same way
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    assert correctness_reward([""] * 4, chat, **cols) == [1.0, 0.0, 1.0, 0.0]


def test_correctness_reward_rebuilds_meta_for_countdown():
    (p,) = load_problems("countdown", limit=1, seed=2)
    cols = columns([p, p])
    # graded by the countdown checker against meta's numbers and target (the lab writes
    # expressions without spaces: extraction reads a many-word answer line as a sentence)
    expr = p.answer.replace(" ", "")
    assert correctness_reward(["", ""], [f"Answer: {expr}", "Answer: 1+1"], **cols) == [1.0, 0.0]
    assert json.loads(cols["meta"][0])["numbers"] == p.meta["numbers"]


def test_correctness_reward_goes_through_verify_check(monkeypatch):
    (p,) = load_problems("arith", limit=1, seed=0, digits=2)
    cols = columns([p, p])
    completions = [f"Answer: {p.answer}", "Answer: -1"]
    assert correctness_reward(["", ""], completions, **cols) == [1.0, 0.0]
    seen = []

    def upside_down(problem, answer):
        seen.append((problem, answer))
        return Verdict(answer == "-1", 1.0 if answer == "-1" else 0.0, "patched")

    monkeypatch.setattr(grade, "check", upside_down)
    assert correctness_reward(["", ""], completions, **cols) == [0.0, 1.0]
    # the Problem was rebuilt from the columns, the answer extracted from the text
    assert [a for _, a in seen] == [p.answer, "-1"]
    assert seen[0][0].question == p.question and seen[0][0].kind == p.kind
    assert seen[0][0].meta == p.meta and seen[0][0].id == p.id


def test_format_reward_and_weights():
    texts = [
        "3+4+0=7 > 7\nAnswer: 7",
        "Answer: 7\n",
        "3+4+0=7 > 7",
        "Answer: 7\nand more",
        "Answer:",
        "",
    ]
    assert format_reward([""] * 6, texts) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert reward_setup(0.0) == ([correctness_reward], [1.0])
    assert reward_setup(0.2) == ([correctness_reward, format_reward], [1.0, 0.2])
    with pytest.raises(ValueError):
        reward_setup(-1)
    assert reward_setup(0.0, step_weight=0.5) == ([correctness_reward, steps_reward], [1.0, 0.5])
    with pytest.raises(ValueError):
        reward_setup(0.0, step_weight=-0.1)


def _slip(text: str, which: int = 0) -> str:
    """``text`` with the first result on one of its move lines (the ``which``-th, modulo their
    number) off by one."""
    lines = text.split("\n")
    found = [(k, m) for k, line in enumerate(lines) if not line.lstrip().startswith("Answer:")
             for m in [re.search(r"\d+[-+*/]\d+=(\d+)", line)] if m]  # fmt: skip
    assert found, f"no move line in {text!r}"
    k, m = found[which % len(found)]
    lines[k] = lines[k][: m.start(1)] + str(int(m.group(1)) + 1) + lines[k][m.end(1) :]
    return "\n".join(lines)


def test_steps_reward_pays_only_a_sound_search_with_a_right_answer():
    """The min form: generated searches (every line right) earn 1; the same search with one slip,
    on whichever line, earns 0 although its answer is right (correctness still pays it); a false
    hit at the end of one path, the trace the share-of-lines form was gamed with, earns 0."""
    made = traces.make_problems("countdown", 40, seed=3, count="3-4")
    # a target among the given numbers is answered at once: no lines to slip on
    problems = [p for p in made if traces.has_trace(p) and "\n" in traces.completion(p)]
    assert len(problems) >= 20
    texts = [traces.completion(p) for p in problems]
    slipped = [_slip(t, which=i) for i, t in enumerate(texts)]
    cols = columns(problems)
    n = len(problems)
    assert steps_reward([""] * n, texts, **cols) == [1.0] * n
    assert steps_reward([""] * n, slipped, **cols) == [0.0] * n
    assert correctness_reward([""] * n, slipped, **cols) == [1.0] * n  # the answers stay right
    p = next(p for p in problems if p.meta["numbers"] == [8, 10, 75])  # target 670
    gamed = "dfs [75 10 8|670]\n75+10=85 [85 8|670]\n 85+8=93 ok\nAnswer: (75+10)+8"
    assert steps_reward([""], [gamed], **columns([p])) == [0.0]
    assert steps_reward([""], ["Answer: 1+1"], **columns([p])) == [0.0]


# --- data synth ---


def test_trim_to_answer():
    assert trim_to_answer("a\nb\nAnswer: 7\nmore chatter") == "a\nb\nAnswer: 7"
    assert trim_to_answer("think\n\\boxed{12} because\nbye") == "think\n\\boxed{12} because"
    assert trim_to_answer("so it is 5.\nOK") == "so it is 5."
    assert trim_to_answer("  nothing here  ") == "nothing here"


def _stub_replies(problems):
    """Right on even-numbered problems, off by one on odd ones; chatter after the answer."""
    replies = []
    for i, p in enumerate(problems):
        value = int(p.answer) + (i % 2)
        replies.append(f"Adding the numbers.\nThe sum is {value}.\nAnswer: {value}\nHope that helps!")
    return replies


def test_synth_keeps_exactly_what_the_verifier_accepts(tmp_path):
    from openai_stub_server import StubServer

    problems = load_problems("arith", limit=6, seed=4, digits=2)
    out = tmp_path / "data" / "synth.jsonl"
    args = ["data", "synth", "--task", "arith:digits=2", "--limit", "6", "--seed", "4",
            "--strategy", "cot", "--out", str(out), "--concurrency", "1"]  # fmt: skip
    with StubServer(_stub_replies(problems)) as server:
        model = f"openai:stub-model@{server.base_url}"
        proc = run_ponder(*args, "--model", model)
        assert proc.returncode == 0, proc.stderr
        assert "kept 3 of 6" in proc.stdout
        asked = len(server.requests)
        assert asked == 6
        again = run_ponder(*args, "--model", model)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == asked  # nothing asked again
    assert "kept 0 of 0" in again.stdout

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["problem_id"] for r in rows] == [p.id for p in problems[0::2]]
    for row, p in zip(rows, problems[0::2]):
        assert row["prompt"] == format.prompt_text(p.question)
        assert row["completion"] == f"Adding the numbers.\nThe sum is {p.answer}.\nAnswer: {p.answer}"
        assert row["answer"] == p.answer and row["correct"] is True
        assert row["task"] == "arith:digits=2" and row["strategy"] == "cot"
        assert row["model"] == model
        assert ponder.verify.verify(p, row["completion"]).ok
    rejected = [json.loads(line) for line in out.with_name("synth.rejected.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in rejected] == [p.id for p in problems[1::2]]


def test_synth_keep_all_and_a_partial_last_line(tmp_path):
    from openai_stub_server import StubServer

    problems = load_problems("arith", limit=4, seed=1, digits=1)
    out = tmp_path / "all.jsonl"
    # a crash mid-write left half a row: it is cut off, and its problem is asked again
    out.write_text('{"problem_id": "arith-s1-0", "prompt": "x", "completion": "y"}\n{"problem_id": "ari')
    with StubServer(_stub_replies(problems[1:])) as server:
        proc = run_ponder("data", "synth", "--task", "arith:digits=1", "--limit", "4", "--seed", "1",
                      "--model", f"openai:stub-model@{server.base_url}", "--out", str(out),
                      "--keep", "all", "--concurrency", "1")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert len(server.requests) == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["problem_id"] for r in rows] == [p.id for p in problems]
    assert [r.get("correct") for r in rows[1:]] == [True, False, True]
    assert not out.with_name("all.rejected.jsonl").exists()


def test_synth_resumes_only_with_the_task_model_and_strategy_it_was_made_with(tmp_path):
    from openai_stub_server import StubServer

    problems = load_problems("arith", limit=4, seed=4, digits=2)
    out = tmp_path / "s.jsonl"
    rejected = tmp_path / "s.rejected.jsonl"
    common = ["--limit", "4", "--seed", "4", "--out", str(out), "--concurrency", "1"]
    with StubServer(_stub_replies(problems)) as server:
        first = f"openai:stub-model@{server.base_url}"
        proc = run_ponder("data", "synth", "--task", "arith:digits=2", "--model", first, *common)
        assert proc.returncode == 0, proc.stderr
        assert len(server.requests) == 4
        files = (out.read_bytes(), rejected.read_bytes())

        def refused(*args):
            proc = run_ponder("data", "synth", *args, *common)
            assert proc.returncode != 0 and "Traceback" not in proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "pass another --out" in lines[0], proc.stderr
            assert len(server.requests) == 4  # refused before asking the model anything
            assert (out.read_bytes(), rejected.read_bytes()) == files
            return lines[0]

        # another task with the same ids (arith ids do not name the digits) or other ones
        line = refused("--task", "arith:digits=3", "--model", first)
        assert "task 'arith:digits=2', not task 'arith:digits=3'" in line
        line = refused("--task", "countdown:count=3", "--model", first)
        assert "task 'arith:digits=2', not task 'countdown:count=3'" in line
        # the next STaR round: a new model with another strategy would sample nothing
        second = f"openai:other-model@{server.base_url}"
        line = refused("--task", "arith:digits=2", "--model", second, "--strategy", "vote:n=2")
        assert f"model {first!r} and strategy 'cot', not model {second!r} and strategy 'vote:n=2'" in line
        # samples under another token budget would be mixed in
        line = refused("--task", "arith:digits=2", "--model", first, "--budget", "64")
        assert "made with budget none, not budget 64" in line
        # --keep all would skip the problems this --keep correct run rejected, never writing them
        line = refused("--task", "arith:digits=2", "--model", first, "--keep", "all")
        assert "made with keep 'correct', not keep 'all'" in line

        # the same command, its specs written otherwise, resumes: nothing left to ask
        again = run_ponder("data", "synth", "--task", "arith:digits=02", "--model", first,
                           "--strategy", "cot", *common)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "kept 0 of 0" in again.stdout and len(server.requests) == 4
    # rejected rows name the task too, so a file of only rejected problems is checked as well
    assert {json.loads(line)["task"] for line in rejected.read_text().splitlines()} == {"arith:digits=2"}


def test_synth_file_from_before_the_rows_named_it_all_resumes(tmp_path):
    from ponder.errors import UserError

    # as the last version wrote them: kept rows name task, model and strategy; rejected ones no task
    out = tmp_path / "old.jsonl"
    out.write_text(json.dumps({"problem_id": "arith-s0-0", "prompt": "p", "completion": "c",
                               "task": "arith:digits=3", "model": "lab:add3-sft",
                               "strategy": "vote:n=2", "correct": True}) + "\n")  # fmt: skip
    (tmp_path / "old.rejected.jsonl").write_text(
        json.dumps({"problem_id": "arith-s0-1", "model": "lab:add3-sft", "strategy": "vote:n=2"}) + "\n"
    )
    f = SynthFile(out)
    assert f.done == {"arith-s0-0", "arith-s0-1"}
    f.check_made_with(MadeWith("arith:digits=3", "lab:add3-sft", "vote:n=2", budget=512))
    with pytest.raises(UserError, match="made with task 'arith:digits=3', not task 'countdown'"):
        f.check_made_with(MadeWith("countdown", "lab:add3-sft", "vote:n=2"))
    with pytest.raises(UserError, match="made with model 'lab:add3-sft', not model 'lab:add3-grpo'"):
        f.check_made_with(MadeWith("arith:digits=3", "lab:add3-grpo", "vote:n=2"))
    # the rows recorded no keep mode, but a rejected sidecar exists only under --keep correct
    with pytest.raises(UserError, match="made with keep 'correct', not keep 'all'"):
        f.check_made_with(MadeWith("arith:digits=3", "lab:add3-sft", "vote:n=2", keep="all"))
    # an old --keep all file is known by its kept rows marked wrong
    old_all = tmp_path / "old_all.jsonl"
    old_all.write_text(json.dumps({"problem_id": "arith-s0-0", "task": "arith", "correct": False}) + "\n")
    with pytest.raises(UserError, match="made with keep 'all', not keep 'correct'"):
        SynthFile(old_all).check_made_with(MadeWith("arith", "m", "cot"))


def test_synth_file_knows_its_data_file_budget_and_keep_mode(tmp_path, monkeypatch):
    from ponder.errors import UserError

    (tmp_path / "a.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    out = SynthFile(tmp_path / "s.jsonl")
    made = MadeWith("gsm8k", "m", "cot", data="a.jsonl", budget=256, keep="all")
    out.append({"problem_id": "p0"} | made.fields())
    again = SynthFile(tmp_path / "s.jsonl")
    # the same file named from elsewhere, and the same budget and mode, resume
    monkeypatch.chdir(tmp_path.parent)
    again.check_made_with(MadeWith("gsm8k", "m", "cot", str(tmp_path / "a.jsonl"), 256, "all"))
    for other, said in [
        (dict(data=str(tmp_path / "b.jsonl")), f"data {str(tmp_path / 'a.jsonl')!r}, not data "),
        (dict(data=None), "not data none"),
        (dict(budget=None), "budget 256, not budget none"),
        (dict(keep="correct"), "keep 'all', not keep 'correct'"),
    ]:
        with pytest.raises(UserError, match=re.escape(said)):
            again.check_made_with(dataclasses.replace(made, **other))
    with pytest.raises(UserError, match="--keep takes correct or all"):
        MadeWith("gsm8k", "m", "cot", keep="some")
    # the data file rewritten in place is another file: its problem ids may name other problems
    (tmp_path / "a.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    rewritten = MadeWith("gsm8k", "m", "cot", str(tmp_path / "a.jsonl"), 256, "all")
    with pytest.raises(UserError, match=r"data_sha256 '[0-9a-f]{12}…', not data_sha256 "
                                        r"'[0-9a-f]{12}…' \(the data file changed since\)"):
        again.check_made_with(rewritten)
    # but not the same lines with other line endings, or compressed
    (tmp_path / "a.jsonl").write_bytes(b'{"question": "1+1?", "answer": "2"}\r\n\r\n')
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"question": "1+1?", "answer": "2"}'))
    for same in ("a.jsonl", "a.jsonl.gz"):
        made_now = MadeWith("gsm8k", "m", "cot", str(tmp_path / same), 256, "all")
        assert made_now.data_sha256 == rewritten.data_sha256, same


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--strategy", "tree_of_magic"], "unknown strategy"),
        (["--task", "arith:digits=zero"], "digits"),
        (["--keep", "some"], "--keep"),
        (["--model", "gguf:/no/model.gguf"], "not found"),
    ],
)
def test_synth_bad_input_is_one_line(tmp_path, extra, fragment):
    base = {"--task": "arith", "--out": str(tmp_path / "o.jsonl"), "--strategy": "cot"}
    for flag, value in zip(extra[::2], extra[1::2]):
        base[flag] = value
    proc = run_ponder("data", "synth", *[x for kv in base.items() for x in kv], "--limit", "2")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_synth_out_that_is_not_a_synth_file(tmp_path):
    from ponder.errors import UserError

    bad = tmp_path / "notes.jsonl"
    bad.write_text("hello\n")
    with pytest.raises(UserError, match="not a synth row"):
        SynthFile(bad)
    with pytest.raises(UserError, match="directory"):
        SynthFile(tmp_path)


# --- GRPO (real TRL runs on CPU) ---


@pytest.fixture(scope="module")
def start_checkpoint(tmp_path_factory):
    """A briefly SFT-trained tiny model on 1-digit addition (L1's SFT), the policy to start from."""
    _need_train()
    from ponder.lab.sft import SFTOptions, train_sft

    out = tmp_path_factory.mktemp("sft") / "model"
    train_sft(
        SFTOptions(out=str(out), task="add", task_options={"digits": 1}, examples=200, steps=40,
                   batch_size=32, lr=3e-3, device="cpu", save_every=1000, threads=1),
        progress=False, say=lambda *a: None,
    )  # fmt: skip
    return str(out)


def _opts(start, out, **kw):
    from ponder.lab.grpo import GRPOOptions

    settings = dict(
        out=str(out), init_from=start, task="add", task_options={"digits": 1}, steps=4,
        batch_size=2, num_generations=4, lr=5e-5, max_completion_length=24, device="cpu",
        save_every=2, threads=1, format_reward=0.2,
    )  # fmt: skip
    settings.update(kw)
    return GRPOOptions(**settings)


class Crash(Exception):
    pass


def test_grpo_checkpoints_crash_and_resume(start_checkpoint, tmp_path):
    _need_train()
    from transformers import TrainerCallback

    from ponder.errors import UserError
    from ponder.lab.grpo import read_record, train_grpo

    class CrashAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise Crash()

    out = tmp_path / "grpo"
    with pytest.raises(Crash):
        train_grpo(_opts(start_checkpoint, out), progress=False, callbacks=[CrashAtStep3()])
    assert (out / "checkpoint-2").is_dir() and not (out / "checkpoint-4").exists()
    crashed = read_record(out)
    assert crashed["finished"] is False and crashed["wall_seconds"] > 0  # the crashed session's time

    # without --resume the run is not clobbered; with other settings it is not resumed
    with pytest.raises(UserError, match="--resume"):
        train_grpo(_opts(start_checkpoint, out), progress=False)
    with pytest.raises(UserError, match="lr"):
        train_grpo(_opts(start_checkpoint, out, lr=1e-3, resume=True), progress=False)

    said = []
    record = train_grpo(_opts(start_checkpoint, out, resume=True), progress=False, say=said.append)
    assert said == ["resuming from checkpoint-2"]
    assert record["finished"] and record["global_step"] == 4
    assert record["resumed_from"] == "checkpoint-2"
    # TRL's log history came back with the checkpoint: one reward per step, 1..4
    steps = [s for s, _, _ in record["rewards"]]
    assert steps == [1, 2, 3, 4]
    for _, reward, accuracy in record["rewards"]:
        assert 0.0 <= accuracy <= 1.0 and 0.0 <= reward <= 1.2 + 1e-6
    assert {"reward_first", "reward_last", "accuracy_first", "accuracy_last"} <= set(record)
    assert math.isfinite(record["final_loss"])
    assert record["config"]["algorithm"] == "grpo" and record["wall_seconds"] > crashed["wall_seconds"]
    assert (out / "checkpoint-4").is_dir() and (out / "model.safetensors").is_file()
    assert json.loads((out / "ponder_train.json").read_text()) == record

    # a finished run is not redone
    said.clear()
    again = train_grpo(_opts(start_checkpoint, out, resume=True), progress=False, say=said.append)
    assert again == record and "already finished" in said[0]

    # the result is an ordinary HF model directory that ponder's hf backend serves
    from ponder.lab.evaluate import accuracy
    from ponder.lab.traces import make_problems

    acc = accuracy(str(out), make_problems("add", 2, seed=9, digits=1), "cot", max_tokens=24)
    assert acc.total == 2 and acc.completion_tokens > 0


def test_grpo_resume_sets_aside_a_checkpoint_the_run_stopped_writing(start_checkpoint, tmp_path):
    """Killed while checkpoint-3 was written (no trainer_state.json yet), the run resumed from
    that folder and crashed on every --resume; it goes on from checkpoint-2 instead."""
    _need_train()
    from transformers import TrainerCallback

    from ponder.lab.grpo import train_grpo

    class CrashAfterSave3(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 3:
                raise Crash()

    out = tmp_path / "grpo"
    with pytest.raises(Crash):
        train_grpo(_opts(start_checkpoint, out, save_every=1), progress=False,
                   callbacks=[CrashAfterSave3()])  # fmt: skip
    (out / "checkpoint-3" / "trainer_state.json").unlink()
    said = []
    record = train_grpo(_opts(start_checkpoint, out, save_every=1, resume=True), progress=False,
                        say=said.append)  # fmt: skip
    assert said == [f"removed {out / 'checkpoint-3'}: the run stopped while saving it (no complete "
                    "trainer_state.json)", "resuming from checkpoint-2"]  # fmt: skip
    assert record["finished"] and record["global_step"] == 4
    assert [s for s, _, _ in record["rewards"]] == [1, 2, 3, 4]


def test_grpo_rollouts_decode_with_finished_rows_dropped(start_checkpoint, tmp_path, monkeypatch):
    """On a CPU, TRL's rollouts go through models.hf_decode.decode, at the run's temperature, and
    attention reads the written positions only, never the whole preallocated cache."""
    _need_train()
    from ponder.lab.grpo import train_grpo
    from ponder.models import hf_decode
    from ponder.models.kv_prefix import PrefixStaticLayer

    read, real = [], PrefixStaticLayer.update
    calls, real_decode = [], hf_decode.decode

    def spy(self, *args, **kwargs):
        keys, values = real(self, *args, **kwargs)
        read.append((keys.shape[2], self.max_cache_len))
        return keys, values

    def decode_spy(model, ids, mask, max_new, *args, **kwargs):
        calls.append((ids.shape[0], max_new, kwargs["temperature"]))
        return real_decode(model, ids, mask, max_new, *args, **kwargs)

    monkeypatch.setattr(PrefixStaticLayer, "update", spy)
    monkeypatch.setattr(hf_decode, "decode", decode_spy)
    record = train_grpo(
        _opts(start_checkpoint, tmp_path / "g", steps=2, save_every=10, temperature=0.9), progress=False
    )
    assert calls == [(8, 24, 0.9)] * 2  # 2 prompts x 4 generations a step, 24 tokens
    assert read and all(n <= size for n, size in read)
    assert min(n for n, _ in read) < max(size for _, size in read)
    assert record["finished"] and len(record["rewards"]) == 2


def test_grpo_rollouts_too_many_for_one_static_cache_decode_in_parts(
    start_checkpoint, tmp_path, monkeypatch
):
    """A step's rollouts whose static cache would pass STATIC_CACHE_BYTES decode in parts that fit
    (here 3 rows), not on transformers' growing cache, and TRL gets every row back."""
    _need_train()
    from ponder.lab.grpo import train_grpo
    from ponder.models import hf_decode, kv_prefix

    real_rows, real_decode, calls = kv_prefix.static_rows, hf_decode.decode, []

    def three_rows_fit(model, device, rows, length):  # the cap, as small as three rows' cache
        per_row = kv_prefix.kv_cache_bytes(model, 1, length)
        monkeypatch.setattr(kv_prefix, "STATIC_CACHE_BYTES", 3 * per_row)
        return real_rows(model, device, rows, length)

    def decode_spy(model, ids, *args, **kwargs):
        calls.append(ids.shape[0])
        return real_decode(model, ids, *args, **kwargs)

    monkeypatch.setattr(kv_prefix, "static_rows", three_rows_fit)
    monkeypatch.setattr(hf_decode, "decode", decode_spy)
    opts = _opts(start_checkpoint, tmp_path / "g", steps=2, save_every=10)
    record = train_grpo(opts, progress=False)
    assert calls == [3, 3, 2] * 2  # 8 rollouts a step
    assert record["finished"] and len(record["rewards"]) == 2


def test_rollout_parts_join_with_the_shorter_ones_padded_after_their_end():
    """A part whose rows all ended early comes back narrower; joined, its rows keep their
    tokens and are padded after them, and every part keeps its rows' order."""
    torch = pytest.importorskip("torch")
    from ponder.lab.grpo import join_parts

    long = torch.tensor([[5, 6, 7, 8, 2], [5, 6, 9, 9, 9]])  # prompt 5 6, then new tokens
    short = torch.tensor([[5, 6, 2]])
    joined = join_parts([long, short], pad=0)
    assert joined.tolist() == [[5, 6, 7, 8, 2], [5, 6, 9, 9, 9], [5, 6, 2, 0, 0]]
    assert join_parts([short, long], pad=None).tolist()[0] == [5, 6, 2, 0, 0]
    assert join_parts([short, short], pad=1).tolist() == [[5, 6, 2], [5, 6, 2]]


def test_grpo_micro_batches_score_one_step_in_pieces(
    start_checkpoint, tmp_path, monkeypatch, capsys
):
    """--micro-batches K: a step's rollouts are sampled at once and scored in K pieces, one
    optimizer step; a K that does not divide a step's rollouts is one line."""
    _need_train()
    from trl import GRPOTrainer

    from ponder.cli import main
    from ponder.lab.grpo import train_grpo
    from ponder.lab.grpo_cli import grpo_command
    from ponder.models import hf_decode

    scored, real_loss = [], GRPOTrainer.compute_loss
    sampled, real_decode = [], hf_decode.decode

    def loss_spy(self, model, inputs, *args, **kwargs):
        scored.append((len(inputs["completion_ids"]), self.state.global_step))
        return real_loss(self, model, inputs, *args, **kwargs)

    def decode_spy(model, ids, *args, **kwargs):
        sampled.append(ids.shape[0])
        return real_decode(model, ids, *args, **kwargs)

    monkeypatch.setattr(GRPOTrainer, "compute_loss", loss_spy)
    monkeypatch.setattr(hf_decode, "decode", decode_spy)
    opts = _opts(start_checkpoint, tmp_path / "g", steps=2, save_every=10, micro_batches=2)
    record = train_grpo(opts, progress=False)
    assert sampled == [8, 8]  # 2 prompts x 4 generations, at once
    assert scored == [(4, 0), (4, 0), (4, 1), (4, 1)]  # two pieces of 4 rollouts a step
    assert record["finished"] and record["global_step"] == 2
    assert record["config"]["micro_batches"] == 2 and "--micro-batches 2" in grpo_command(opts)

    argv = ["train", "grpo", "--task", "add", "--digits", "1", "--from", start_checkpoint,
            "--batch-size", "4", "--micro-batches", "3", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("ponder: error: --micro-batches 3 must divide a step's 32 rollouts "
                           "(--batch-size x --num-generations)")  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_grpo_reward_is_the_verifier(start_checkpoint, tmp_path, monkeypatch):
    """With the verifier patched to accept everything, every rollout earns the full reward: the
    trainer's reward IS the check scorer's ponder.verify.grade.check."""
    _need_train()
    from ponder.lab.grpo import train_grpo

    monkeypatch.setattr(grade, "check", lambda problem, answer: Verdict(True, 1.0, "ok"))
    record = train_grpo(
        _opts(start_checkpoint, tmp_path / "g", steps=2, format_reward=0.0), progress=False
    )
    assert [a for _, _, a in record["rewards"]] == [1.0, 1.0]


def test_grpo_cli(start_checkpoint, tmp_path):
    _need_train()
    out = tmp_path / "cli"
    args = ["train", "grpo", "--from", start_checkpoint, "--task", "add", "--digits", "1",
            "--steps", "2", "--batch-size", "2", "--num-generations", "2",
            "--max-completion-length", "16", "--device", "cpu", "--threads", "1",
            "--out", str(out), "--quiet"]  # fmt: skip
    proc = run_ponder(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"saved hf:\S+ · 2 steps · reward [\d.]+ -> [\d.]+", proc.stdout), proc.stdout
    # --quiet: no bar at all ("Loading weights", datasets' passes and "Writing model shards" were)
    assert "%|" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
    record = json.loads((out / "ponder_train.json").read_text())
    assert record["command"].startswith("ponder train grpo --from ")
    assert "--num-generations 2" in record["command"] and record["finished"]
    # the SFT run that made the start model is kept whole, after this run's own results
    assert record["from_record"] == json.loads(Path(start_checkpoint, "ponder_train.json").read_text())
    assert record["from_record"]["config"]["steps"] == 40  # the fixture's SFT run
    assert list(record)[-1] == "from_record"
    # resumed by the other command, it says what the folder holds, not every setting that differs
    other = run_ponder("train", "sft", "--task", "add", "--digits", "1", "--out", str(out), "--resume")
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert other.stderr.strip().splitlines()[-1] == (
        f"ponder: error: --resume: {out} holds a GRPO run, not an SFT run; pick another --out"
    )

    bad = run_ponder("train", "grpo", "--from", start_checkpoint, "--out", str(tmp_path / "b"),
                 "--task", "add", "--count", "3")  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["ponder: error: --count does not apply to task add (its options: --digits)"]


def test_grpo_progress_reaches_a_pipe_step_by_step(start_checkpoint, tmp_path):
    """Into a file or a pipe, GRPO's rich bar drew only once the run was over; its bar is now
    transformers' tqdm, as SFT's, with the reward beside it at every step."""
    _need_train()
    import os

    env = {**os.environ, "TQDM_MININTERVAL": "0"}  # every update drawn, however fast the steps
    proc = subprocess.run(
        [sys.executable, "-m", "ponder", "train", "grpo", "--from", start_checkpoint, "--task",
         "add", "--digits", "1", "--steps", "2", "--batch-size", "2", "--num-generations", "2",
         "--max-completion-length", "16", "--device", "cpu", "--threads", "1",
         "--out", str(tmp_path / "g")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    drawn = re.split(r"[\r\n]", proc.stderr)
    assert any(re.search(r" 1/2 \[.*reward [\d.]+  acc [\d.]+\]", d) for d in drawn), proc.stderr
    assert any(re.search(r" 2/2 \[.*reward [\d.]+  acc [\d.]+\]", d) for d in drawn), proc.stderr


def test_grpo_step_reward_on_countdown(start_checkpoint, tmp_path):
    """With --step-reward, TRL adds the process reward at its weight: each step's total reward is
    correctness + w * sound searches, and the record keeps the process reward's curve; a task the
    countdown step verifier cannot read is refused before any training."""
    _need_train()
    from ponder.errors import UserError
    from ponder.lab.grpo import train_grpo

    from ponder.models.shipped import shipped_dir

    # the shipped countdown SFT model, so that some rollouts are sound searches and some are not
    opts = _opts(str(shipped_dir("countdown-sft")), tmp_path / "cd", task="countdown",
                 task_options={"count": 3}, steps=2, batch_size=4, format_reward=0.0,
                 step_reward=0.5, max_completion_length=400, temperature=0.8)  # fmt: skip
    record = train_grpo(opts, progress=False)
    assert [s for s, _ in record["steps"]] == [1, 2]
    sound = dict(record["steps"])
    assert any(sound.values()), record["steps"]  # else the sum below would check nothing
    for step, reward, accuracy in record["rewards"]:
        assert 0.0 <= sound[step] <= accuracy  # a sound search with a wrong answer is not sound
        assert reward == pytest.approx(accuracy + 0.5 * sound[step], abs=1e-5)
    assert record["config"]["step_reward"] == 0.5
    with pytest.raises(UserError, match="--step-reward checks countdown"):
        _opts(start_checkpoint, tmp_path / "add", step_reward=0.5)


def test_synth_file_refuses_a_strategy_whose_defaults_changed_since_its_rows(tmp_path):
    """Rows record every setting of their strategy: `reflect` written the same way meant the judge
    before `verifier=auto`, so a file of those rows is not resumed with today's `reflect`; naming
    the old verifier resumes it, and rows from before settings were recorded resume as before."""
    from ponder.errors import UserError

    made = MadeWith("countdown", "m", "reflect")
    assert made.strategy_settings["verifier"] == "auto"
    out = tmp_path / "s.jsonl"
    old = made.fields() | {"strategy_settings": made.strategy_settings | {"verifier": "judge"}}
    out.write_text(json.dumps({"problem_id": "p0"} | old) + "\n")
    with pytest.raises(UserError, match=r"made with reflect at verifier=judge; it means "
                                        r"verifier=auto now \(its defaults changed since\)"):
        SynthFile(out).check_made_with(made)
    SynthFile(out).check_made_with(MadeWith("countdown", "m", "reflect:verifier=judge"))
    with pytest.raises(UserError, match="made with strategy 'reflect', not strategy 'cot'"):
        SynthFile(out).check_made_with(MadeWith("countdown", "m", "cot"))  # strategy named alone
    before = {k: v for k, v in old.items() if k != "strategy_settings"}
    (tmp_path / "b.jsonl").write_text(json.dumps({"problem_id": "p0"} | before) + "\n")
    SynthFile(tmp_path / "b.jsonl").check_made_with(made)
