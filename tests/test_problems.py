"""Problem sets: real loaders (shared benchmark files and small fixtures), errors, the Hub path,
and the seeded generators."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ponder.problems import TASKS, ProblemSetError, load_problems
from ponder.problems import hub
from ponder.verify import check

FILES = {
    "gsm8k": "gsm8k_test.jsonl",
    "math500": "math500.jsonl",
    "aime24": "aime24.jsonl",
    "aime25": "aime25.jsonl",
    "amc23": "amc23.jsonl",
}

# task -> (rows, first id, start of the first question, first answer, kind)
KNOWN = {
    "gsm8k": (1319, "gsm8k-0", "Janet\u2019s ducks lay 16 eggs per day", "18", "math"),
    "math500": (500, "test/precalculus/807.json", "Convert the point $(0,3)$", r"\left( 3, \frac{\pi}{2} \right)", "math"),
    "aime24": (30, "aime24-60", "Every morning Aya goes for a $9$-kilometer-long walk", "204", "math"),
    "aime25": (30, "aime25-0", "Find the sum of all integer bases $b>9$", "70", "math"),
    "amc23": (40, "amc23-0", "Cities $A$ and $B$ are $45$ miles apart", "27.0", "numeric"),
}


# --- the real sets, on the shared benchmark files -------------------------------------------


@pytest.mark.parametrize("task", sorted(KNOWN))
def test_shared_files_load(shared_data, task):
    rows, first_id, question, answer, kind = KNOWN[task]
    problems = load_problems(task, data=str(shared_data / FILES[task]))
    assert len(problems) == rows
    first = problems[0]
    assert (first.id, first.answer, first.kind) == (first_id, answer, kind)
    assert first.question.startswith(question)
    assert len({p.id for p in problems}) == rows
    assert all(p.answer for p in problems)


def test_shared_gsm8k_answers_are_bare_numbers(shared_data):
    problems = load_problems("gsm8k", data=str(shared_data / FILES["gsm8k"]))
    assert all(p.answer.lstrip("-").replace(".", "").isdigit() for p in problems)
    assert "####" in problems[0].meta["solution"]


def test_shared_math500_filters(shared_data):
    path = str(shared_data / FILES["math500"])
    assert len(load_problems("math500", data=path, level=5)) == 134
    assert len(load_problems("math500", data=path, level="1")) == 43
    assert len(load_problems("math500", data=path, level="Level 2")) == 90
    assert len(load_problems("math500", data=path, level="4,5")) == 262
    assert len(load_problems("math500", data=path, subject="algebra")) == 124
    assert len(load_problems("math500", data=path, subject="COUNTING & PROBABILITY")) == 38
    both = load_problems("math500", data=path, subject="Algebra", level=5, limit=3)
    assert len(both) == 3 and all(p.meta["level"] == 5 and p.meta["subject"] == "Algebra" for p in both)
    first = load_problems("math500", data=path, limit=10)
    assert [p.id for p in first] == [p.id for p in load_problems("math500", data=path)[:10]]


def test_shared_math500_unknown_subject_lists_the_subjects(shared_data):
    with pytest.raises(ProblemSetError, match="Intermediate Algebra") as e:
        load_problems("math500", data=str(shared_data / FILES["math500"]), subject="algebr")
    assert "\n" not in str(e.value)
    with pytest.raises(ProblemSetError, match="levels present: 1, 2, 3, 4, 5"):
        load_problems("math500", data=str(shared_data / FILES["math500"]), level=7)


def test_shared_references_grade_themselves(shared_data):
    # The reference answer must be "correct" under the set's own grader.
    for task in ("aime24", "amc23"):
        for p in load_problems(task, data=str(shared_data / FILES[task])):
            assert check(p, p.answer).ok, p.id


# --- the same loaders on small fixture files (no ../shared needed) ---------------------------


def write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> str:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


FIXTURES = {
    "gsm8k": [
        {"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"},
        {"question": "Pay 1,200 twice?", "answer": "1200 * 2 = 2400\n#### 2,400"},
        {"question": "Already bare?", "answer": "7"},
    ],
    "math500": [
        {"problem": "P1", "solution": "S1", "answer": r"\frac{1}{2}", "subject": "Algebra", "level": 1, "unique_id": "test/algebra/1.json"},
        {"problem": "P2", "solution": "S2", "answer": "3", "subject": "Geometry", "level": 5, "unique_id": "test/geometry/2.json"},
        {"problem": "P3", "solution": "S3", "answer": "4", "subject": "algebra", "level": "Level 5", "unique_id": "test/algebra/3.json"},
    ],
    "aime24": [{"id": 60, "problem": "A1", "solution": "s", "answer": "204", "url": "u"}, {"id": 61, "problem": "A2", "answer": "113"}],
    "aime25": [{"problem": "B1", "answer": "70"}, {"question": "B2", "answer": 588}],
    "amc23": [{"id": 0, "problem": "C1", "answer": 27.0, "url": "u"}, {"id": 1, "question": "C2", "answer": -1.0}],
}


@pytest.mark.parametrize("task", sorted(FIXTURES))
@pytest.mark.parametrize("gz", [False, True])
def test_fixture_files_load(tmp_path, task, gz):
    suffix = ".jsonl.gz" if gz else ".jsonl"
    path = write_jsonl(tmp_path / f"{task}{suffix}", FIXTURES[task], gz=gz)
    problems = load_problems(task, data=path)
    assert len(problems) == len(FIXTURES[task])
    assert all(p.question and p.answer and p.kind == TASKS[task].kind for p in problems)
    assert load_problems(task, data=path, limit=1) == problems[:1]


def test_fixture_field_mapping(tmp_path):
    load = lambda task: load_problems(task, data=write_jsonl(tmp_path / f"{task}.jsonl", FIXTURES[task]))
    assert [p.answer for p in load("gsm8k")] == ["5", "2400", "7"]
    assert [p.id for p in load("gsm8k")] == ["gsm8k-0", "gsm8k-1", "gsm8k-2"]
    math = load("math500")
    assert [p.meta["level"] for p in math] == [1, 5, 5]
    assert math[0].id == "test/algebra/1.json" and math[0].meta["solution"] == "S1"
    assert [p.id for p in load("aime24")] == ["aime24-60", "aime24-61"]
    assert [(p.id, p.question, p.answer) for p in load("aime25")] == [("aime25-0", "B1", "70"), ("aime25-1", "B2", "588")]
    assert [(p.question, p.answer) for p in load("amc23")] == [("C1", "27.0"), ("C2", "-1.0")]


def test_fixture_filters(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", FIXTURES["math500"])
    assert [p.question for p in load_problems("math500", data=path, level=5)] == ["P2", "P3"]
    assert [p.question for p in load_problems("math500", data=path, subject="ALGEBRA")] == ["P1", "P3"]
    assert [p.question for p in load_problems("math500", data=path, level="5", subject="algebra")] == ["P3"]
    assert [p.question for p in load_problems("math500", data=path, level=5, limit=1)] == ["P2"]


def test_real_sets_ignore_the_seed(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", FIXTURES["gsm8k"])
    assert load_problems("gsm8k", data=path, seed=1) == load_problems("gsm8k", data=path, seed=2)


# --- user mistakes: one-line ProblemSetError at load time ------------------------------------


def bad(match: str, *args, **kwargs) -> str:
    with pytest.raises(ProblemSetError, match=match) as e:
        load_problems(*args, **kwargs)
    message = str(e.value)
    assert "\n" not in message and isinstance(e.value, ValueError)
    return message


def test_unknown_task_lists_known_ones():
    message = bad("unknown task 'math5000'", "math5000")
    assert "did you mean 'math500'" in message
    assert all(name in message for name in TASKS)


def test_a_task_option_given_twice_is_an_error():
    from ponder.problems.tasks import parse_task

    assert parse_task("countdown:count=3") == ("countdown", {"count": 3})
    with pytest.raises(ProblemSetError, match="count given twice in 'countdown:count=3,count=4'"):
        parse_task("countdown:count=3,count=4")


def test_unreadable_files(tmp_path):
    bad("does not exist", "gsm8k", data=str(tmp_path / "nope.jsonl"))
    bad("is a directory", "gsm8k", data=str(tmp_path))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    bad("holds no rows", "gsm8k", data=str(empty))
    not_gz = tmp_path / "plain.jsonl.gz"
    not_gz.write_text('{"question": "q", "answer": "1"}\n')
    bad("cannot read", "gsm8k", data=str(not_gz))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    bad("cannot read", "gsm8k", data=str(latin))


def test_bad_rows_name_the_line(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "q", "answer": "1"}\n\n{"question": "q2", "answer": \n')
    bad(r"broken.jsonl line 3: not valid JSON", "gsm8k", data=str(broken))
    listed = tmp_path / "list.jsonl"
    listed.write_text('["q", "1"]\n')
    bad("line 1: expected a JSON object, got list", "gsm8k", data=str(listed))


def test_missing_field_names_field_line_and_fields_present(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "answer": "1"}, {"problem": "p2", "solution": "s"}])
    message = bad("m.jsonl line 2: no 'answer' field", "math500", data=path)
    assert "fields present: problem, solution" in message
    path = write_jsonl(tmp_path / "g.jsonl", [{"problem": "p", "answer": "1"}])
    bad("line 1: no 'question' field; fields present: answer, problem", "gsm8k", data=path)
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "p", "answer": "1"}])
    bad("no 'problem' or 'question' field", "aime25", data=path)
    path = write_jsonl(tmp_path / "h.jsonl", [{"question": "q", "answer": "work\n#### "}])
    bad("line 1: nothing after '####'", "gsm8k", data=path)


def test_duplicate_ids(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "problem": "a", "answer": "1"}, {"id": 1, "problem": "b", "answer": "2"}])
    bad("line 2: id 'aime24-1' repeats", "aime24", data=path)


def test_filters_a_set_does_not_have(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", FIXTURES["gsm8k"])
    bad("gsm8k has no level field; drop --level", "gsm8k", data=path, level=3)
    bad("aime24 has no subject field", "aime24", data=path, subject="Algebra")
    bad("arith has no level field", "arith", level=1)
    no_levels = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "answer": "1"}])
    bad("have no level field", "math500", data=no_levels, level=1)
    bad("--level takes numbers", "math500", data=no_levels, level="hard")


def test_bad_limits_and_options(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", FIXTURES["gsm8k"])
    for limit in (0, -1, "5", 2.5, True):
        bad("--limit must be a positive whole number", "gsm8k", data=path, limit=limit)
    bad("gsm8k takes no options", "gsm8k", data=path, digits=3)
    bad("arith has no option colour; its options are digits, op", "arith", colour="red")
    bad("option digits takes a whole number from 1 to 30", "arith", digits="three")
    bad("option digits", "arith", digits=0)
    bad("option op of arith takes add, mul or mix", "arith", op="div")
    bad("option count takes a whole number from 3 to 5", "countdown", count=9)
    bad("arith is generated; it reads no data file", "arith", data=path)


# --- the Hub path ----------------------------------------------------------------------------


def test_hub_without_datasets_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    message = bad(r"pip install 'ponder\[hub\]'", "gsm8k")
    assert "--data FILE" in message


def test_hub_unreachable_is_one_fast_line(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setattr(hub, "hub_endpoint", lambda: "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(hub, "_offline_mode", lambda: False)
    monkeypatch.setattr(hub, "_behind_proxy", lambda endpoint: False)
    start = time.perf_counter()
    message = bad("cannot reach the Hugging Face Hub", "math500", limit=5)
    assert time.perf_counter() - start < 10
    assert "--data FILE" in message and "HuggingFaceH4/MATH-500" in message


def test_hub_from_this_machine(monkeypatch):
    """No monkeypatching: on a machine without network this is the error a user sees."""
    pytest.importorskip("datasets")
    if hub._behind_proxy(hub.hub_endpoint()) or hub._offline_mode():
        pytest.skip("proxy or HF_HUB_OFFLINE set: datasets' own retries (~23 s) would run")
    if hub.unreachable_reason(hub.hub_endpoint()) is None:
        pytest.skip("the Hub is reachable from here; this test covers the offline path only")
    start = time.perf_counter()
    bad("cannot reach the Hugging Face Hub", "gsm8k")
    assert time.perf_counter() - start < 20


def test_hub_offline_mode_error_from_datasets_is_translated(tmp_path):
    """With HF_HUB_OFFLINE=1 and an empty cache, datasets itself raises ConnectionError at once."""
    pytest.importorskip("datasets")
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(src)}
    code = (
        "from ponder.problems import load_problems, ProblemSetError\n"
        "try:\n    load_problems('amc23')\nexcept ProblemSetError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("ERR cannot load math-ai/amc23 split test from the Hub"), out.stdout + out.stderr
    assert "--data FILE" in out.stdout


# --- generators ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["arith", "countdown"])
def test_generators_are_reproducible(task):
    first = load_problems(task, seed=3, limit=20)
    assert first == load_problems(task, seed=3, limit=20)
    assert [p.question for p in first] == [p.question for p in load_problems(task, seed=3, limit=20)]
    assert [p.question for p in first] != [p.question for p in load_problems(task, seed=4, limit=20)]
    assert len(load_problems(task)) == 100
    assert len({p.id for p in first}) == 20


def test_arith_answers_are_right():
    for op, symbol in (("add", "+"), ("mul", "*")):
        for p in load_problems("arith", limit=50, op=op, digits="4"):
            a, b = p.meta["a"], p.meta["b"]
            assert p.question == f"Compute {a} {symbol} {b}."
            assert 1000 <= a <= 9999 and 1000 <= b <= 9999
            assert p.answer == str(a + b if op == "add" else a * b)
            assert p.kind == "exact" and check(p, p.answer).ok
    mixed = {p.meta["op"] for p in load_problems("arith", limit=40, op="mix", digits=1)}
    assert mixed == {"add", "mul"}


def test_countdown_references_solve_their_puzzles():
    problems = load_problems("countdown", limit=200, seed=7)
    for p in problems:
        numbers, target = p.meta["numbers"], p.meta["target"]
        assert p.kind == "countdown" and isinstance(target, int) and target > 0
        assert len(numbers) == 4 and numbers == sorted(numbers)
        assert f"Using the numbers {', '.join(map(str, numbers))} (each at most once)" in p.question
        assert p.question.endswith(f"equal to {target}.")
        assert check(p, p.answer).ok, (p.answer, numbers, target)
    assert sum(10 <= p.meta["target"] <= 999 for p in problems) > 190


@pytest.mark.parametrize("count", [3, 5])
def test_countdown_count_option(count):
    for p in load_problems("countdown", limit=30, count=count):
        assert len(p.meta["numbers"]) == count
        assert check(p, p.answer).ok
