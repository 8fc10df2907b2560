"""HumanEval: the loader (a fixture file the test writes, and ../shared/data when present), grading
by execution in the sandbox (verify/code_tests.py), the `tests` scorer that sees only the prompt's
examples (verify/visible_tests.py), best_of_n with it, and the same grader as a GRPO reward."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ponder.budget import Budget
from ponder.lab.rewards import problem_columns, scorer_reward
from ponder.problems import ProblemSetError, load_problems
from ponder.problems.base import Problem
from ponder.think import final_result, parse_strategy
from ponder.tools.sandbox import SandboxLimits, SandboxUnavailable, sandbox_host
from ponder.verify import Attempt, Check, check, make_scorer, read_answer, verify
from ponder.verify.code_tests import assemble, extract_code
from ponder.verify.visible_tests import VisibleTests, visible_examples
from recording import Recorder

try:
    sandbox_host()
    NO_SANDBOX = ""
except SandboxUnavailable as e:
    NO_SANDBOX = str(e)
needs_sandbox = pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox here: {NO_SANDBOX}")

# Two rows in HumanEval's own format (openai/human-eval data/HumanEval.jsonl.gz).
ROWS = [
    {
        "task_id": "Fix/0",
        "prompt": 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n'
                  '    """Sum of xs.\n    >>> total([1, 2])\n    3\n    """\n',
        "canonical_solution": "    return sum(xs)\n",
        "test": "def check(candidate):\n    assert candidate([1, 2]) == 3\n"
                "    assert candidate([]) == 0\n    assert candidate([5, 5, 5]) == 15\n",
        "entry_point": "total",
    },
    {
        "task_id": "Fix/1",
        "prompt": 'def shout(s: str) -> str:\n    """Upper-case s, then "!".\n'
                  '    shout("hi") ==> "HI!"\n    """\n',
        "canonical_solution": '    return s.upper() + "!"\n',
        "test": "def check(candidate):\n    assert candidate('hi') == 'HI!'\n"
                "    assert candidate('') == '!'\n",
        "entry_point": "shout",
    },
]  # fmt: skip


@pytest.fixture
def fixture_file(tmp_path):
    path = tmp_path / "he.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    return path


@pytest.fixture
def problems(fixture_file):
    return load_problems("humaneval", data=str(fixture_file))


def test_the_loader_keeps_prompt_tests_and_entry_point_verbatim(problems, tmp_path):
    total, shout = problems
    assert (total.id, total.kind, total.answer) == ("Fix/0", "code", None)
    assert total.meta["prompt"] == ROWS[0]["prompt"]  # whitespace kept: the program is built on it
    assert total.meta["test"] == ROWS[0]["test"] and total.meta["entry_point"] == "total"
    assert total.meta["solution"] == ROWS[0]["canonical_solution"]
    assert total.question.startswith("Complete this Python function:\n\n```python\nfrom typing")
    assert shout.meta["task"] == "humaneval"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({k: v for k, v in ROWS[0].items() if k != "test"}) + "\n")
    with pytest.raises(ProblemSetError, match=r"line 1: no 'test' field; fields present"):
        load_problems("humaneval", data=str(bad))


def test_the_shared_copy_has_164_problems(shared_data):
    problems = load_problems("humaneval", data=str(shared_data / "humaneval.jsonl.gz"))
    assert len(problems) == 164 and problems[0].id == "HumanEval/0"
    assert {p.kind for p in problems} == {"code"}


def test_code_is_read_from_fences_or_raw_text_and_assembled_as_human_eval_does():
    prompt = ROWS[0]["prompt"]
    fenced = "Sure:\n```python\ndef helper():\n    pass\n```\n```python\ndef total(xs):\n" \
             "    return sum(xs)\n```\n```python\nprint(total([1]))\n```"
    assert extract_code(fenced, "total").startswith("def total(xs)")  # the block defining it
    assert extract_code("```py\nreturn 1\n```", "total") == "return 1\n"
    assert extract_code("    return sum(xs)\n", "total") == "    return sum(xs)\n"  # raw body
    assert extract_code("```python\ndef total(xs):\n    return 1", "total").startswith("def")  # cut
    full = assemble(prompt, "def total(xs):\n    return sum(xs)\n", "total")
    assert full.startswith(prompt.rstrip())  # the prompt's imports and stub stay, then the def
    assert full.endswith("def total(xs):\n    return sum(xs)\n")
    assert assemble(prompt, "    return sum(xs)\n", "total") == prompt + "    return sum(xs)\n"
    assert assemble(prompt, "return sum(xs)\n", "total") == prompt + "    return sum(xs)\n"


@needs_sandbox
def test_the_grader_passes_right_code_and_names_each_failure(problems):
    total = problems[0]
    right = [
        ROWS[0]["canonical_solution"],  # a body, human-eval's own format
        "```python\ndef total(xs):\n    return sum(xs)\n```",  # a full function
        "```python\nfrom typing import List\ndef total(xs: List[int]) -> int:\n    s = 0\n"
        "    for x in xs:\n        s += x\n    return s\n```",
        "Here you go:\n```\nreturn sum(xs)\n```",  # a flush-left body in a bare fence
    ]
    for completion in right:
        assert check(total, completion).ok, completion
    s = check(total, "```python\ndef total(xs):\n    return len(xs)\n```")
    assert not s.ok and s.reason == "a test failed: assert candidate([1, 2]) == 3"
    s = check(total, "```python\ndef total(xs)\n    return 0\n```")
    assert s.reason.startswith("SyntaxError at line") and "expected ':'" in s.reason
    assert check(total, "```python\nreturn undefined_name\n```").reason == (
        "raised NameError: name 'undefined_name' is not defined"
    )
    # exiting 0 before the tests finish is not passing them (human-eval counts SystemExit too)
    for cheat in ("    import sys\n    sys.exit(0)\n", "    import os\n    os._exit(0)\n"):
        s = check(total, cheat)
        assert not s.ok and s.reason == "exited before the tests finished (the program called exit)"
    assert check(total, None).reason == "no completion"
    assert check(total, "```output\n3\n```").reason == "no code in the completion"
    from ponder.verify.code_tests import run_tests

    s = run_tests(total, "    while True:\n        pass\n", SandboxLimits(timeout_s=1))
    assert not s.ok and s.reason == "stopped by the wall-clock timeout (1 s)"
    assert verify(total, "```python\ndef total(xs):\n    return sum(xs)\n```").ok
    with pytest.raises(ValueError, match="needs meta test"):
        check(Problem("x", "q", None, "code", {"prompt": "def f():\n", "entry_point": "f"}), "1")


@needs_sandbox
def test_every_canonical_solution_passes_and_every_pass_body_fails(shared_data):
    """The 164 HumanEval problems twice: canonical (must pass) and body `pass` (must fail)."""
    problems = load_problems("humaneval", data=str(shared_data / "humaneval.jsonl.gz"))
    jobs = [(p, p.meta["solution"], True) for p in problems] + [
        (p, "    pass\n", False) for p in problems
    ]
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        scores = list(pool.map(lambda job: check(job[0], job[1]), jobs))
    seconds = time.perf_counter() - start
    wrong = [(p.id, want, s.reason) for (p, _, want), s in zip(jobs, scores) if s.ok != want]
    assert not wrong, wrong
    print(f"328 sandboxed programs took {seconds:.0f} s")  # reported, not asserted: CI is shared


def test_visible_examples_come_from_the_prompt_in_both_styles():
    assert [(e.call, e.expected) for e in visible_examples(ROWS[0]["prompt"], "total")] == [
        ("total([1, 2])", "3")
    ]
    assert [(e.call, e.expected) for e in visible_examples(ROWS[1]["prompt"], "shout")] == [
        ('shout("hi")', '"HI!"')
    ]
    prompt = ('def f(x):\n    """\n    f(1) -> true\n    f(2) returns [2, 2].\n'
              '    f(a) => 3\n    f(3) = 1 + 2 = 3\n    g(1) == 2\n    """\n')  # fmt: skip
    assert [(e.call, e.expected) for e in visible_examples(prompt, "f")] == [
        ("f(1)", "True"), ("f(2)", "[2, 2]"), ("f(3)", "3")
    ]


@needs_sandbox
def test_the_tests_scorer_runs_only_the_visible_examples(problems):
    total = problems[0]
    scorer = make_scorer("tests", level="answer")
    assert isinstance(scorer, VisibleTests) and not scorer.calls_model

    def rate(code: str):
        return asyncio.run(scorer.score(total, Attempt(f"```python\n{code}\n```"), None))

    assert rate("def total(xs):\n    return sum(xs)").value == 1.0
    # right on the visible example, wrong on the hidden tests: the scorer cannot know
    sneaky = rate("def total(xs):\n    return 3")
    assert sneaky.ok and sneaky.reason == "1/1 visible examples pass"
    assert not check(total, "```python\ndef total(xs):\n    return 3\n```").ok
    assert rate("def total(xs):\n    return 0").value == 0.0
    crash = rate("def total(xs)\n    return 0")
    assert crash.value == 0.0 and crash.reason.startswith("fails before the examples: SyntaxError")
    # a program that prints a fake report and exits is not believed (the nonce is per run)
    fake = rate("import sys\nprint('ponder-done-0000 1 1')\nsys.exit(0)")
    assert not fake.ok and fake.value == 0.0
    with pytest.raises(ValueError, match="rates code problems"):
        asyncio.run(scorer.score(Problem("m", "1+1", "2"), Attempt("2", "2"), None))


@needs_sandbox
def test_best_of_n_with_the_tests_scorer_picks_the_program_that_passes_the_examples(problems):
    total = problems[0]
    samples = ["```python\ndef total(xs):\n    return 0\n```",
               "```python\ndef total(xs):\n    return sum(xs)\n```",
               "```python\ndef total(xs)\n```"]  # fmt: skip
    model = Recorder(samples)
    strategy = parse_strategy("best_of_n:n=3,verifier=tests")
    result = asyncio.run(final_result(strategy.run(total, model, Budget())))
    assert result.chosen.index == 1 and "scored 1.000 by tests" in result.how
    assert result.answer == read_answer(total, samples[1]) and check(total, result.text).ok
    assert "```python code block" in model.requests[0].messages[0]["content"]


@needs_sandbox
def test_the_grader_is_a_grpo_reward(problems):
    total, shout = problems
    columns = [problem_columns(p) for p in (total, shout, total)]
    batch = {k: [c[k] for c in columns] for k in columns[0]}
    chat = [{"role": "assistant", "content": "```python\ndef total(xs):\n    return sum(xs)\n```"}]
    completions = [ROWS[0]["canonical_solution"],
                   "```python\ndef shout(s):\n    return s + '!'\n```", chat]  # fmt: skip
    reward = scorer_reward(Check())
    assert reward(prompts=[""] * 3, completions=completions, **batch) == [1.0, 0.0, 1.0]
    visible = scorer_reward(VisibleTests())
    assert visible(prompts=[""] * 3, completions=completions, **batch) == [1.0, 0.0, 1.0]
    s = asyncio.run(Check().score(total, Attempt(ROWS[0]["canonical_solution"], "0"), None))
    assert s.ok and s.reason == "passes the tests (oracle: the hidden tests)"


@needs_sandbox
@pytest.mark.slow
def test_ponder_train_grpo_runs_on_a_code_task_rewarded_by_its_tests(fixture_file, tmp_path):
    """`ponder train grpo --task humaneval --data FILE`: the prompts are the code strategy's
    messages, the reward the tests run in the sandbox (a tiny lab model earns 0; the run works)."""
    for name in ("torch", "transformers", "trl", "datasets", "accelerate"):
        pytest.importorskip(name, reason=f"GRPO needs {name} (pip install 'ponder[train]')")
    from ponder.cli import main
    from ponder.lab import grpo
    from ponder.models.shipped import shipped_dir

    start = str(shipped_dir("add3-sft"))
    opts = grpo.GRPOOptions(out=str(tmp_path / "g"), init_from=start, task="humaneval",
                            data=str(fixture_file), steps=2, batch_size=2, num_generations=2,
                            max_completion_length=16, save_every=2, threads=1, device="cpu")  # fmt: skip
    prompt = grpo.build_dataset(opts)[0]["prompt"]
    assert prompt[0]["role"] == "system" and "```python" in prompt[0]["content"]
    assert prompt[-1]["role"] == "user" and ROWS[0]["prompt"] in prompt[-1]["content"]
    assert main(["train", "grpo", "--from", start, "--task", "humaneval", "--data",
                 str(fixture_file), "--steps", "2", "--batch-size", "2", "--num-generations", "2",
                 "--max-completion-length", "16", "--save-every", "2", "--threads", "1",
                 "--device", "cpu", "--out", str(tmp_path / "g"), "--quiet"]) == 0  # fmt: skip
    record = json.loads((tmp_path / "g" / "ponder_train.json").read_text())
    assert record["finished"] and record["config"]["data"] == str(fixture_file.resolve())
    assert "--data" in record["command"] and len(record["rewards"]) == 2


def test_grpo_on_a_problem_set_needs_its_file(fixture_file, tmp_path, capsys):
    from ponder.cli import main
    from ponder.models.shipped import shipped_dir

    start = str(shipped_dir("add3-sft"))
    base = ["train", "grpo", "--from", start, "--out", str(tmp_path / "g")]
    assert main([*base, "--task", "humaneval"]) == 2
    assert "or a problem set with --data FILE" in capsys.readouterr().err
    assert main([*base, "--task", "add", "--data", str(fixture_file)]) == 2
    assert "not the lab task add" in capsys.readouterr().err
    assert main([*base, "--task", "humaneval", "--data", str(tmp_path / "none.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
