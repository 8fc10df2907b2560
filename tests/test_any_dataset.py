"""Any dataset through a field mapping: JSONL files and Hub datasets (``--task hf:...``), the
defaults (MATH-style ``\\boxed{}`` answers), the choice grader, errors, and ``ponder bench`` on them.
Every dataset here is a fixture the test writes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ponder import cli
from ponder.problems import ProblemSetError, hub
from ponder.problems.mapped import Mapping, load_mapped, parse_hf_task
from ponder.verify import check
from ponder.verify.choice import choice_letter

SVAMP = [
    {"ID": "chal-1", "Body": "Each pack of dvds costs 76 dollars. There is a discount of 25 dollars on each pack.",
     "Question": "How much do you pay for each pack?", "Equation": "( 76.0 - 25.0 )", "Answer": 51.0},
    {"ID": "chal-2", "Body": "Dan had $ 3 left after he bought a candy bar. He had $ 4 at the start.",
     "Question": "How much did the candy bar cost?", "Equation": "( 4.0 - 3.0 )", "Answer": 1.0},
]  # fmt: skip
MATH = [  # MATH (hendrycks) rows: the answer only inside the solution; "type" is the subject
    {"problem": "What is $1+1$?", "solution": "We have $1+1=\\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
    {"problem": "Simplify $\\frac{2}{4}$.", "solution": "First $\\boxed{3}$ is wrong; it is $\\boxed{\\frac{1}{2}}$.",
     "level": "Level 3", "type": "Prealgebra"},
]  # fmt: skip
CHOICE = [
    {"question": "Which is a prime?", "A": "4", "B": "7", "C": "9", "D": "12", "answer": "(B)"},
    {"question": "2 + 2 = ?", "A": "3", "B": "5", "C": "4", "D": "22", "answer": "c"},
]
CHOICE_TEMPLATE = "{question}\nA) {A}\nB) {B}\nC) {C}\nD) {D}\nAnswer with the letter."


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def bad(match: str, mapping: Mapping | None = None, **kwargs) -> str:
    with pytest.raises(ProblemSetError, match=match) as e:
        load_mapped(mapping or Mapping(), **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


# --- files -----------------------------------------------------------------------------------


def test_svamp_like_rows_with_templates(tmp_path):
    path = write_jsonl(tmp_path / "svamp.jsonl", SVAMP)
    problems = load_mapped(Mapping("{Body} {Question}", "{Answer}", "numeric"), data=path)
    assert [p.id for p in problems] == ["chal-1", "chal-2"]  # the rows' own ids
    assert problems[0].question == f"{SVAMP[0]['Body']} {SVAMP[0]['Question']}"
    assert [p.answer for p in problems] == ["51.0", "1.0"] and problems[0].kind == "numeric"
    assert check(problems[0], "51").ok and not check(problems[0], "50").ok
    assert load_mapped(Mapping("{Body} {Question}", "{Answer}", "numeric"), data=path, limit=1) == problems[:1]
    # literal braces, attribute-free field names and format specs work as in str.format
    p = load_mapped(Mapping("{{ {Question} }}", "{Answer:.0f}"), data=path)[0]
    assert p.question == "{ How much do you pay for each pack? }" and p.answer == "51"


def test_math_like_rows_use_the_boxed_answer_of_the_solution(tmp_path):
    path = write_jsonl(tmp_path / "math.jsonl", MATH)
    problems = load_mapped(Mapping(), data=path)  # question: the problem field; answer: the last \boxed{}
    assert [(p.question, p.answer) for p in problems] == [
        ("What is $1+1$?", "2"), ("Simplify $\\frac{2}{4}$.", "\\frac{1}{2}")
    ]
    assert problems[1].meta["solution"] == MATH[1]["solution"]
    assert check(problems[1], "0.5").ok
    assert [p.answer for p in load_mapped(Mapping(answer="{solution}"), data=path)] == ["2", "\\frac{1}{2}"]
    assert [p.question for p in load_mapped(Mapping(), data=path, level=3)] == [MATH[1]["problem"]]
    assert [p.question for p in load_mapped(Mapping(), data=path, subject="algebra")] == [MATH[0]["problem"]]
    # a row with an answer field keeps it; a row with neither says what to pass
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"problem": "p", "answer": "7", "solution": "\\boxed{8}"}])
    assert load_mapped(Mapping(), data=path)[0].answer == "7"
    path = write_jsonl(tmp_path / "none.jsonl", [{"problem": "p", "solution": "no box here"}])
    message = bad(r"none.jsonl line 1: no 'answer' field and no 'solution' with a \\boxed\{\} answer", data=path)
    assert "--answer TEMPLATE" in message and "fields present: problem, solution" in message


def test_a_choice_set(tmp_path):
    path = write_jsonl(tmp_path / "mc.jsonl", CHOICE)
    problems = load_mapped(Mapping(CHOICE_TEMPLATE, None, "choice"), data=path)
    assert [p.answer for p in problems] == ["B", "C"] and problems[0].kind == "choice"
    assert "B) 7" in problems[0].question
    assert check(problems[0], "b").ok and check(problems[0], "(B) 7").ok
    assert not check(problems[0], "C").ok and not check(problems[0], "7").ok
    assert check(problems[1], "\\text{(C)}").ok
    path = write_jsonl(tmp_path / "bad.jsonl", [{**CHOICE[0], "answer": "7"}])
    bad(r"bad.jsonl line 1: --grader choice needs the answer to be one letter A-E, got '7'",
        Mapping(CHOICE_TEMPLATE, None, "choice"), data=path)  # fmt: skip


def test_a_countdown_set(tmp_path):
    rows = [{"target": 24, "nums": [4, 6, 1, 1]}, {"target": "10", "numbers": "2, 5"}]
    path = write_jsonl(tmp_path / "cd.jsonl", rows)
    problems = load_mapped(Mapping("Reach {target} with the numbers given.", None, "countdown"), data=path)
    assert [p.meta["numbers"] for p in problems] == [[4, 6, 1, 1], [2, 5]]
    assert [p.meta["target"] for p in problems] == [24, 10]
    assert check(problems[0], "4 * 6 * 1 * 1").ok and not check(problems[0], "4 + 6").ok
    assert check(problems[1], "2 * 5").ok
    path = write_jsonl(tmp_path / "nonums.jsonl", [{"target": 5}])
    bad("needs the numbers in a 'nums' or 'numbers' field; fields present: target",
        Mapping("{target}", None, "countdown"), data=path)  # fmt: skip


def test_errors_name_the_row_the_field_and_the_fields_present(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [SVAMP[0], {"Body": "b", "Answer": 2}])
    message = bad(r"s.jsonl line 2: no 'Question' field for --question '\{Body\} \{Question\}'",
                  Mapping("{Body} {Question}", "{Answer}"), data=path)  # fmt: skip
    assert message.endswith("fields present: Answer, Body")
    bad(r"line 1: no 'question' or 'problem' field \(pass --question TEMPLATE", data=path)
    message = bad("no 'answer' field for --answer", Mapping(answer="{answer}"), data=write_jsonl(tmp_path / "m.jsonl", MATH))
    assert "omit --answer to use the \\boxed{} answer of its solution" in message
    for match, fields in (("names no field", {"question": "{} {0}"}),
                          ("literal brace", {"answer": "{Body"}),
                          ("--grader 'letter': choose one of math, numeric, exact, choice, countdown",
                           {"grader": "letter"})):  # fmt: skip
        with pytest.raises(ProblemSetError, match=match):  # checked once, before any row is read
            Mapping(**fields)
    bad("gives an empty text", Mapping("{Body}"), data=write_jsonl(tmp_path / "e.jsonl", [{"Body": " ", "answer": 1}]))
    bad("does not exist", data=str(tmp_path / "nope.jsonl"))
    bad("repeats", data=write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "question": "q", "answer": 1}] * 2))
    bad("rows of .* have no level field", data=write_jsonl(tmp_path / "nl.jsonl", SVAMP), level=2,
        mapping=Mapping("{Question}", "{Answer}"))  # fmt: skip


# --- Hub datasets: the real datasets.load_dataset call -----------------------------------------


def test_hf_task_spec():
    assert parse_hf_task("hf:ChilleD/SVAMP") == hub.HubSource("ChilleD/SVAMP", None, None)
    assert parse_hf_task("hf:openai/gsm8k:main@train") == hub.HubSource("openai/gsm8k", "train", "main")
    assert parse_hf_task("hf:cais/mmlu:all") == hub.HubSource("cais/mmlu", None, "all")
    for bad_spec in ("hf:", "hf:@test", "hf:x@"):
        with pytest.raises(ProblemSetError, match="hf:DATASET"):
            parse_hf_task(bad_spec)


def test_hf_dataset_from_a_local_folder(tmp_path, monkeypatch):
    """``load_dataset`` reads a folder of split files without the Hub: the real call, offline."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # not ~/.cache
    folder = tmp_path / "svamp_ds"
    folder.mkdir()
    write_jsonl(folder / "test.jsonl", SVAMP)
    write_jsonl(folder / "train.jsonl", [{**SVAMP[0], "ID": "t-1", "Answer": 3.0}])  # splits share columns
    mapping = Mapping("{Body} {Question}", "{Answer}")
    problems = load_mapped(mapping, hub=parse_hf_task(f"hf:{folder}"))  # no split: test
    assert [p.id for p in problems] == ["chal-1", "chal-2"] and problems[0].meta["task"] == "svamp_ds"
    train = load_mapped(mapping, hub=parse_hf_task(f"hf:{folder}@train"))
    assert [(p.id, p.answer) for p in train] == [("t-1", "3.0")]
    (folder / "test.jsonl").rename(folder / "validation.jsonl")
    bad("has splits train, validation and none is 'test'; name one: hf:.*@train",
        mapping, hub=parse_hf_task(f"hf:{folder}"))  # fmt: skip


def test_hf_dataset_from_the_hub(monkeypatch):
    """A Hub id: load_dataset gets (path, config, split) from the spec; its rows are mapped. This
    machine cannot reach the Hub, so the call returns a small in-memory dataset."""
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(MATH)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(hub, "_offline_mode", lambda: True)  # skip the reachability probe
    problems = load_mapped(Mapping(), hub=parse_hf_task("hf:EleutherAI/hendrycks_math:algebra@test"), level=3)
    assert calls == [("EleutherAI/hendrycks_math", "algebra", "test")]
    assert [(p.id, p.answer, p.meta["subject"]) for p in problems] == [("hendrycks_math-1", "\\frac{1}{2}", "Prealgebra")]


# --- the choice grader ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, letter",
    [("B", "B"), ("b", "B"), ("(c)", "C"), ("**D**", "D"), ("[E].", "E"), ("\\text{(A)}", "A"),
     ("C) 42", "C"), ("(A) twelve", "A"), ("option b", "B"), ("Answer: d", "D"), ("e.", "E"),
     ("A dog", None), ("F", None), ("42", None), ("", None), (None, None), ("AB", None)],
)  # fmt: skip
def test_choice_letter(text, letter):
    assert choice_letter(text) == letter


def test_choice_grader_through_check():
    from ponder.problems.base import Problem
    from ponder.verify import KINDS, verify

    assert "choice" in KINDS
    p = Problem("mc", "Pick one", "D", "choice")
    assert verify(p, "The options... so the answer is \\boxed{d}").ok
    assert verify(p, "Answer: (D)").ok and not verify(p, "Answer: (A)").ok
    assert check(p, None).reason == "no answer"
    with pytest.raises(ValueError, match="letter A-E"):
        check(Problem("mc", "q", "7", "choice"), "A")  # a broken set is our bug, not a wrong answer


# --- ponder bench on mapped data ----------------------------------------------------------------


def test_bench_maps_a_file_with_cot_by_default(tmp_path, capsys):
    path = write_jsonl(tmp_path / "svamp.jsonl", SVAMP)
    db = tmp_path / "r.sqlite"
    argv = ["bench", "--data", path, "--question", "{Body} {Question}", "--answer", "{Answer}",
            "--grader", "numeric", "--db", str(db), "--threads", "1", "--budget", "160"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "svamp-smollm2-135m-instruct" in capsys.readouterr().out
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT problem_id, strategy, reference FROM results ORDER BY problem_id").fetchall()
        config = json.loads(con.execute("SELECT config FROM runs").fetchone()[0])
    assert rows == [("chal-1", "cot", "51.0"), ("chal-2", "cot", "1.0")]
    assert config["question"] == "{Body} {Question}" and config["grader"] == "numeric"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--data", "{svamp}", "--question", "{Body} {Q}"], "line 1: no 'Q' field for --question"),
        (["--task", "gsm8k", "--question", "{q}"], "gsm8k has its own fields"),
        (["--question", "{q}"], "pass --task"),
        (["--task", "hf:x", "--data", "{svamp}"], "drop --data"),
        (["--task", "hf:"], "hf:DATASET[:CONFIG][@SPLIT]"),
        (["--data", "{svamp}", "--grader", "letters"], "invalid choice"),
    ],
)
def test_bench_mapping_mistakes_are_one_line(tmp_path, capsys, args, fragment):
    svamp = write_jsonl(tmp_path / "svamp.jsonl", SVAMP)
    db = tmp_path / "r.sqlite"
    argv = ["bench", *[a.replace("{svamp}", svamp) for a in args], "--db", str(db)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not db.exists()
