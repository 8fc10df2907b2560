"""The countdown step verifier: every generated search trace passes it line by line, and each
kind of slip a small model makes is caught at the line where it happens."""

from __future__ import annotations

import asyncio

import pytest

from ponder.budget import Budget
from ponder.events import Scored, Voted
from ponder.lab import traces
from ponder.models import ScriptedModel
from ponder.problems.base import Problem
from ponder.think import StrategySpecError, final_result, parse_strategy
from ponder.verify import Attempt, make_scorer
from ponder.verify.scoring import refuse_mismatch
from ponder.verify.countdown import countdown_key
from ponder.verify.countdown_steps import check_lines, first_flaw
from ponder.verify.grade import answer_key

PROBLEM = Problem("c", "Using 1, 8 and 50, make 392.", None, "countdown",
                  {"numbers": [1, 8, 50], "target": 392})  # fmt: skip
TRACE = """dfs [50 8 1|392]
50+8=58 [58 1|392]
 58+1=59 58-1=57 no
back [50 8 1|392]
50-1=49 [49 8|392]
 49+8=57 49-8=41 49*8=392 ok
Answer: (50-1)*8"""


def score(text: str, step: str | None = None):
    scorer = make_scorer("countdown", level="step")
    attempt = Attempt(text, None if step else "x", step=step)
    return asyncio.run(scorer.score(PROBLEM, attempt, None))


def test_every_generated_trace_passes_every_line():
    problems = traces.make_problems("countdown", 200, seed=11, count="3-4")
    rows = [p for p in problems if traces.has_trace(p)]
    assert len(rows) > 150
    for p in rows:
        checked, wrong = check_lines(p, traces.completion(p))
        assert wrong is None and checked >= 1, (p.question, wrong)


def test_a_right_trace_passes_as_a_whole_and_step_by_step():
    assert score(TRACE).ok
    lines = TRACE.split("\n")
    for k in range(len(lines)):
        prefix = "".join(line + "\n" for line in lines[:k])
        assert score(prefix + lines[k], step=lines[k]).ok, lines[k]


@pytest.mark.parametrize(
    ("line", "fragment", "kind"),
    [
        (" 49+8=57 49-8=41 49*8=382 no", "49*8=382 is wrong", "arithmetic"),  # a slip
        (" 49+8=57 49-8=41 49*8=392 no", "reaches the target 392, but the line says no",
         "missed hit"),  # fmt: skip
        (" 49+8=57 49-8=41 49*9=441 no", "uses a number that is not left", "unavailable"),
        (" 49+8=57 49-8=41 49/8=6 no", "not allowed", "arithmetic"),  # an inexact division
        (" 49+8=57 ok", "misses 392", "false hit"),
        ("Answer: (50+1)*8", "the answer", "answer"),  # the answer must be what the search found
        ("50+8=58 [58 1|392]", "already tried", "loop"),  # starting over from the top
    ],
)
def test_each_slip_is_caught_at_its_line(line, fragment, kind):
    lines = TRACE.split("\n")[:5]
    prefix = "".join(x + "\n" for x in lines)
    s = score(prefix + line, step=line)
    assert not s.ok and fragment in s.reason, s.reason
    checked, flaw = first_flaw(PROBLEM, prefix + line)
    assert (flaw.line, flaw.kind, checked) == (6, kind, 6)
    assert str(flaw) == check_lines(PROBLEM, prefix + line)[1]


def test_a_clean_unfinished_search_has_no_flaw():
    """A search cut by its budget mid-way is not wrong: the benchmark counts it apart."""
    assert first_flaw(PROBLEM, "\n".join(TRACE.split("\n")[:4])) == (4, None)


def test_states_must_be_what_the_moves_leave():
    prefix = "dfs [50 8 1|392]\n"
    assert not score(prefix + "50+8=58 [58 8|392]", step="50+8=58 [58 8|392]").ok
    assert not score(prefix + "50+8=58 [58 1|390]", step="50+8=58 [58 1|390]").ok
    assert "not the numbers given" in score("dfs [50 7 1|392]", step="dfs [50 7 1|392]").reason
    moved = prefix + "50+8=58 [58 1|392]\n 58+1=59 58-1=57 no\n"
    assert not score(moved + "back [58 1|392]", step="back [58 1|392]").ok  # wrong state restated


def test_reflect_backtracks_to_the_slip_and_the_search_goes_on():
    """A model that slips on 49*8 at first: reflect cuts at that line and resamples from it."""
    slip = TRACE.replace("49*8=392 ok", "49*8=382 no").split("\nAnswer")[0] + "\nAnswer: 50+8+1"

    def reply(request, i):
        prefix = request.prefix or ""
        if not prefix:
            return slip
        return TRACE[len(prefix):] if TRACE.startswith(prefix) else "give up"

    model = ScriptedModel(reply)
    strategy = parse_strategy("reflect:verifier=countdown,split=line,rounds=2")
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(4000))))
    assert result.answer == "(50-1)*8" and "1 backtrack" in result.how, result.how
    assert result.usage.calls == 2


# A false hit the probe agrees on: 400-1 is 399, not 392.
FALSE_HIT = "dfs [50 8 1|392]\n50*8=400 [400 1|392]\n 400-1=399 ok\nAnswer: 50*8-1"
# what the model writes when reflect has cut that line away: the search goes on
REPAIRED = FALSE_HIT.split(" 400-1")[0] + " 400-1=399 400+1=401 no\n" + TRACE[TRACE.index("back"):]


def auto_on(probe: list[str], spec: str = "auto:verifier=countdown,split=line,tools=off,seed=0"):
    """auto on PROBLEM with a model whose probe samples are ``probe`` (then TRACE's repairs)."""

    def reply(request, i):
        prefix = request.prefix or ""
        if request.n == 4:
            return probe[i % 4]
        if not prefix:  # reflect's greedy solution
            return probe[0]
        return REPAIRED[len(prefix):] if REPAIRED.startswith(prefix) else "give up"

    model = ScriptedModel(reply)
    events = asyncio.run(_events(parse_strategy(spec), model))
    return events[-1].result, events, model


async def _events(strategy, model):
    return [e async for e in strategy.run(PROBLEM, model, Budget(20_000))]


def test_auto_answers_the_probe_sample_the_verifier_passes_though_the_vote_is_against_it():
    result, events, model = auto_on([FALSE_HIT, FALSE_HIT, FALSE_HIT, TRACE])
    assert result.answer == "(50-1)*8" and result.chosen.index == 3
    assert len(model.requests) == 1  # the probe alone
    assert result.how.startswith("auto: easy (3/4 probe samples agree")
    assert "1/4 pass check) -> answered from a verified probe sample" in result.how
    assert [e.score for e in events if isinstance(e, Scored)] == [0.0, 0.0, 0.0, 1.0]


def test_auto_takes_a_probe_the_verifier_rejects_whole_as_hard_though_it_agrees():
    off = "auto:verifier=countdown,split=line,tools=off,sample_on=off,seed=0"
    result, _, model = auto_on([FALSE_HIT] * 4, off)
    assert result.how.startswith("auto: hard (4/4 probe samples agree")
    assert "0/4 pass check; no probe sample passes check) -> reflect" in result.how
    assert result.answer == "(50-1)*8"  # reflect cut at the false hit and the search went on
    assert model.requests[2].prefix == "dfs [50 8 1|392]\n50*8=400 [400 1|392]\n"
    # verify_probe=off: four agreeing samples are easy, and the false hit is the answer
    result, _, model = auto_on([FALSE_HIT] * 4, "auto:verifier=countdown,split=line,tools=off,"
                                                "verify_probe=off,seed=0")  # fmt: skip
    assert result.how.startswith("auto: easy (4/4") and result.answer == "50*8-1"
    assert len(model.requests) == 1


def test_auto_checks_a_countdown_probe_with_the_puzzles_grader_not_the_step_verifier():
    """On countdown the probe's checker is the puzzle's grader (verify_probe=auto, or check): it
    passes any expression that makes the target from the numbers. The step verifier, named with
    verify_probe=countdown, also wants every line of the search right, and sends this probe on to
    reflect."""
    sloppy = TRACE.replace("58-1=57", "58-1=56")  # a slip in a dead end; the answer is right
    probe = [FALSE_HIT, FALSE_HIT, sloppy, FALSE_HIT]
    spec = "auto:verifier=countdown,split=line,tools=off,seed=0"
    for chosen in (spec, spec + ",verify_probe=check"):
        result, events, model = auto_on(probe, chosen)
        assert result.answer == "(50-1)*8" and result.chosen.index == 2
        assert len(model.requests) == 1
        assert "1/4 pass check) -> answered from a verified probe sample" in result.how
        assert [e.score for e in events if isinstance(e, Scored)] == [0.0, 0.0, 1.0, 0.0]
    result, _, model = auto_on(probe, spec + ",verify_probe=countdown")
    assert "0/4 pass countdown; none of 16 samples passes countdown) -> reflect" in result.how
    assert [r.n for r in model.requests[:4]] == [4, 4, 4, 4] and len(model.requests) > 4


def test_auto_draws_checked_waves_when_the_checker_rejects_the_whole_probe():
    """Rejection sampling continues from the probe: waves of 4, each with its own seed, until the
    checker passes a sample; the hard strategy only when sixteen hold none."""
    def reply(request, i):
        if request.n == 4:
            return TRACE if i == 5 else FALSE_HIT  # i counts every sample drawn
        return FALSE_HIT[len(request.prefix or ""):]  # reflect: the false hit again

    spec = "auto:verifier=countdown,split=line,tools=off,seed=0"
    model = ScriptedModel(reply)
    result = asyncio.run(final_result(parse_strategy(spec).run(PROBLEM, model, Budget(20_000))))
    assert result.answer == "(50-1)*8" and result.chosen.index == 5
    assert [(r.n, r.seed) for r in model.requests] == [(4, 0), (4, 4)]
    assert result.how.startswith("auto: medium (4/4 probe samples agree")
    assert result.how.endswith("0/4 pass check) -> checked sampling: sample 5 of 8 passes check")
    # max_samples=8 without a pass: two waves, then reflect, and the answer is flagged
    model = ScriptedModel(lambda request, i: FALSE_HIT[len(request.prefix or ""):])
    strategy = parse_strategy(spec + ",max_samples=8")
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(20_000))))
    assert [r.n for r in model.requests[:2]] == [4, 4] and model.requests[2].n == 1
    assert "0/4 pass check; none of 8 samples passes check) -> reflect" in result.how
    assert result.how.endswith("unverified: check rejects the answer")
    # sample_on=off: straight to reflect after the probe
    model = ScriptedModel(reply)
    strategy = parse_strategy(spec + ",sample_on=off")
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(20_000))))
    assert [r.n for r in model.requests][:2] == [4, 1] and "-> reflect" in result.how
    with pytest.raises(StrategySpecError, match="sample_on must be on or off"):
        parse_strategy("auto:sample_on=maybe")


def test_auto_hands_its_hard_strategy_the_options_written_for_it():
    """``beam.beams=1,beam.expand=2,beam.step_tokens=40``: the beam after the probe draws two steps
    of at most 40 tokens at a time; without them, beam's own defaults (16 at the root, 4 a beam
    after, 128 tokens each)."""
    def reply(request, i):
        if request.n == 4 and not request.prefix:
            return FALSE_HIT  # the probe, which the checker rejects whole
        prefix = request.prefix or ""  # beam's steps: the search that goes on past the false hit
        return REPAIRED[len(prefix):] if REPAIRED.startswith(prefix) else "give up"

    spec = "auto:verifier=countdown,split=line,tools=off,sample_on=off,seed=0,hard_with=beam"
    given = ",beam.beams=1,beam.expand=2,beam.step_tokens=40,beam.floor=1"
    for options, n, tokens in (("", {16, 4}, 128), (given, {2}, 40)):
        model = ScriptedModel(reply)
        strategy = parse_strategy(spec + options)
        result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(20_000))))
        steps = [r for r in model.requests[1:] if r.stop == ("\n",)]  # the beam's, one line each
        assert {r.n for r in steps} == n and {r.max_tokens for r in steps} == {tokens}, options
        assert "-> beam:" in result.how and result.answer == "(50-1)*8", result.how
    assert parse_strategy(strategy.spec).spec == strategy.spec  # written back as it was given
    assert "beam.floor=1" in strategy.spec


@pytest.mark.parametrize("spec", ["beam:verifier=countdown", "mcts:verifier=countdown,simulations=4"])
def test_the_countdown_verifier_makes_a_search_sample_a_line_at_a_time(spec):
    """``split=auto`` can only look at text already written, so before sampling it stops at blank
    lines; a countdown search has none, so under the countdown verifier a step is one line (each
    "step" had been a whole trace, answered when step_tokens cut it mid-answer)."""
    model = ScriptedModel(
        lambda request, i: TRACE[len(request.prefix or ""):]
        if TRACE.startswith(request.prefix or "") else "give up"
    )
    strategy = parse_strategy(spec + ",seed=0")
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(40_000))))
    steps = [r for r in model.requests if r.stop]
    assert steps and {r.stop for r in steps} == {("\n",)}
    assert {(r.prefix or "").count("\n") for r in steps} >= {0, 1}  # grown line by line
    assert result.answer == "(50-1)*8" and "split" not in strategy.spec


def test_auto_says_when_the_hard_path_ends_on_an_answer_its_checker_rejects():
    """reflect's rounds run out on the false hit: auto still answers it, and its trace says the
    checker rejects it."""
    def reply(request, i):  # every regeneration from the cut writes the false hit again
        return FALSE_HIT[len(request.prefix or ""):]

    strategy = parse_strategy("auto:verifier=countdown,split=line,tools=off,seed=0")
    events = asyncio.run(_events(strategy, ScriptedModel(reply)))
    result, scored = events[-1].result, [e for e in events if isinstance(e, Scored)]
    assert len(scored) == 17  # the 16 checked samples', then the final answer's
    assert scored[-1].score == 0.0 and "399" in scored[-1].reason  # 50*8-1 is not 392
    assert result.answer == "50*8-1" and "-> reflect: 3 backtracks" in result.how, result.how
    assert result.how.endswith("; unverified: check rejects the answer"), result.how
    result, events, _ = auto_on([FALSE_HIT] * 4)  # a repaired answer passes: nothing to say
    assert result.answer == "(50-1)*8" and "unverified" not in result.how


@pytest.mark.parametrize("budget", [60, 150, 400, 900])
def test_auto_with_the_verifier_keeps_to_its_budget(budget):
    model = ScriptedModel(lambda request, i: FALSE_HIT if not request.prefix else "give up")
    strategy = parse_strategy("auto:verifier=countdown,split=line,tools=off,seed=0")
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(budget))))
    assert result.usage.total_tokens <= budget and result.how.startswith("auto: ")


def test_a_move_tried_again_from_the_same_numbers_is_a_loop():
    """What the countdown models do once they lose their place: start the same moves over."""
    lines = TRACE.split("\n")[:3] + ["back [50 8 1|392]"]
    prefix = "".join(x + "\n" for x in lines)
    again = "50+8=58 [58 1|392]"
    s = score(prefix + again, step=again)
    assert not s.ok and "already tried from [50 8 1|392]: a loop" in s.reason
    fresh = "50-1=49 [49 8|392]"
    assert score(prefix + fresh, step=fresh).ok
    # the same move from other numbers is no loop
    other = "dfs [50 8 8|392]\n50+8=58 [58 8|392]\n 58+8=66 58-8=50 no\nback [50 8 8|392]\n"
    assert check_lines(Problem("d", "q", None, "countdown", {"numbers": [50, 8, 8], "target": 392}),
                       other + "8+8=16 [50 16|392]")[1] is None  # fmt: skip


def test_the_scaling_benchmark_counts_greedy_samples_by_their_first_flaw():
    """benchmarks/countdown_scaling.py's failure table, on a scripted model's samples graded by
    the real bench path: one of each kind it reports."""
    import importlib.util
    from pathlib import Path

    from ponder.lab.evaluate import accuracy

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "countdown_scaling.py"
    spec = importlib.util.spec_from_file_location("countdown_scaling", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = TRACE.split("\n")
    head = "\n".join(lines[:5]) + "\n"
    samples = [
        TRACE,  # solved
        head + " 49+8=57 49-8=41 49*8=392 no",  # a missed hit
        head + "50+8=58 [58 1|392]",  # a loop
        head + " 49+8=57 49-8=42 no",  # an arithmetic slip
        "\n".join(lines[:4]),  # cut short with every line right
    ]
    problems = [Problem(f"c{k}", PROBLEM.question, None, "countdown", PROBLEM.meta)
                for k in range(len(samples))]  # fmt: skip
    result = accuracy(ScriptedModel(samples), problems, "cot", concurrency=1)
    counts = bench.failures(problems, result)
    assert {k: v for k, v in counts.items() if v} == {
        "solved": 1, "missed hit": 1, "loop": 1, "arithmetic": 1, "no flaw": 1
    }  # fmt: skip


def test_a_question_in_the_puzzles_wording_is_posed_as_a_countdown_problem():
    """``ponder solve`` and ``ponder serve`` see free text; the puzzles' own wording is read back
    into numbers and target, so the step verifier and the countdown grader can check it."""
    from ponder.problems import load_problems
    from ponder.problems.posed import posed

    for count in ("3", "4", "5"):
        for p in load_problems("countdown", limit=100, seed=3, count=count):
            got = posed("x", p.question)
            want = {"numbers": p.meta["numbers"], "target": p.meta["target"]}
            assert got.kind == "countdown" and got.meta == want, (p.question, got.meta)
    for text in ("What is 17 + 25?",
                 "Using the numbers 3, 7, 25 (each at most once) and + - * /, write an expression.",
                 "Using the numbers 3 (each at most once) and + - * /, write an expression equal to 3."):
        assert posed("x", text).kind == "math", text  # fmt: skip


def test_a_puzzle_put_briefly_is_restated_in_the_puzzles_wording():
    """"Using 3, 7 and 25, make 46." is a countdown puzzle too: the lab models only know the
    puzzles' wording, so the question (and the user turn that asks it) is restated in it."""
    from ponder.problems.posed import posed
    from ponder.problems.synthetic import countdown_question

    want = {"numbers": [3, 7, 25], "target": 46}
    for text in ("Using 3, 7 and 25, make 46.", "using 25, 3, and 7 to make 46",
                 "Use 3 7 25 to reach 46!", "With the numbers 7, 3, 25, get 46",
                 "Make 46 from 3, 7 and 25.", "reach 46 using 25 7 3"):  # fmt: skip
        got = posed("x", text, messages=({"role": "user", "content": text},))
        assert got.kind == "countdown" and got.meta == want, text
        assert got.question == countdown_question([3, 7, 25], 46)
        assert got.messages == ({"role": "user", "content": got.question},)
    for text in ("Using 3 eggs and 2 cups of flour, make 12 pancakes.", "Make 46 from 3.",
                 "Using 1, 2, 3, 4, 5, 6 and 7, make 10.", "Using 3, 7 and 25, make 46 and explain.",
                 "What is 17 + 25?"):  # fmt: skip
        got = posed("x", text, messages=({"role": "user", "content": text},))
        assert got.kind == "math" and got.question == text, text
        assert got.messages == ({"role": "user", "content": text},)
    # in a conversation only the last user turn, the one that asks the puzzle, is restated
    turns = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Make 10 from 2, 5"},
             {"role": "assistant", "content": "2*5"}, {"role": "user", "content": "Make 7 from 2, 5"})  # fmt: skip
    got = posed("x", "Make 7 from 2, 5", messages=turns)
    assert got.messages[:3] == turns[:3] and turns[3]["content"] == "Make 7 from 2, 5"
    assert got.messages[3] == {"role": "user", "content": countdown_question([2, 5], 7)}
    # a number too long for a puzzle (int() refuses 4,301 digits) is a math question, not a crash
    huge = "9" * 5000
    for text in (f"Using 3 and 4, make {huge}", f"Make 46 from 3 and {huge}",
                 f"Using the numbers 3, {huge} (each at most once) and + - * /, write an expression equal to 7."):  # fmt: skip
        assert posed("x", text).kind == "math"


def test_common_wordings_of_a_puzzle_are_restated_and_questions_are_not():
    """The puzzles' sentence with "and" or in lower case, "3,7,25", a question, a mention of the
    operations: read as the puzzle and restated word for word in the training wording. A sentence
    that is no puzzle stays a math question, untouched."""
    from ponder.problems.posed import posed
    from ponder.problems.synthetic import countdown_question

    want = countdown_question([3, 7, 25], 46)
    for text in ("Using the numbers 3, 7 and 25 (each at most once) and + - * /, write an expression equal to 46.",
                 "using the numbers 3, 7, 25 (each at most once) and + - * /, write an expression equal to 46.",
                 "USING THE NUMBERS 3,7,25 (EACH AT MOST ONCE) AND + - * /, WRITE AN EXPRESSION EQUAL TO 46",
                 "Using 3,7,25, make 46.", "Using 3, 7 and 25, can you make 46?",
                 "Make 46 from 3, 7 and 25 using + - * /.", "Can you make 46 from 3, 7 and 25?",
                 "make 46 from 3, 7, and 25 using +, -, *, and /", "Using 3, 7, 25 and + - * /, make 46.",
                 "Using  3, 7 and 25 (each at most once),\nmake 46 with basic arithmetic.",
                 # the forms read before stay read
                 "Using 3, 7 and 25, make 46.", "Make 46 from 3, 7 and 25", "Get 46 from 3, 7 and 25",
                 "Use 3 7 25 to reach 46"):  # fmt: skip
        got = posed("x", text, messages=({"role": "user", "content": text},))
        assert got.kind == "countdown" and got.meta == {"numbers": [3, 7, 25], "target": 46}, text
        assert got.question == want and got.messages == ({"role": "user", "content": want},), text
    got = posed("x", "using 1,8,50 and 2, can you make 392?")
    assert got.question == countdown_question([1, 2, 8, 50], 392)
    for text in ("Using 3 apples and 7 pears, how many fruits make 10?", "What is 3 + 7 + 25?",
                 "Make a list of 3, 7 and 25.", "Make 46 from 3 using + - * /.", "Using 3, can you make 46?",
                 "Can you make 46?", "Using 3, 7 and 25, can you make 46 apples?",
                 "Using 3 + 7, make 10.", "Using 3, 7 and 25, make 46 and explain why.",
                 "using the numbers 3, 7, 25 (each at most once) and + - * /, write an expression.",
                 "Using 3, 7 and 25, how many ways can you make 46?"):  # fmt: skip
        got = posed("x", text, messages=({"role": "user", "content": text},))
        assert got.kind == "math" and got.question == text, text
        assert got.messages == ({"role": "user", "content": text},)
    # a long near-miss is a math question, not a search that backtracks for ever
    for text in ("Using 1, 2" + ", and +" * 300 + " x", "Make 5 from 1 2 using" + " +," * 300 + " x",
                 "Using 1" + " " * 3000 + "x"):  # fmt: skip
        assert posed("x", text).kind == "math"


def test_ponder_solve_says_when_it_restated_the_puzzle(tmp_path, capsys):
    import argparse
    import json

    from ponder.cli import problem_from_args

    short = "Using 3, 7 and 25, make 46."
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"role": "user", "content": short}]))
    for question, messages in ((short, None), (None, str(path))):
        problem = problem_from_args(argparse.Namespace(question=question, messages=messages, system=None))
        assert problem.kind == "countdown" and problem.meta == {"numbers": [3, 7, 25], "target": 46}
        assert capsys.readouterr().err == f"ponder: read as a countdown puzzle: {problem.question}\n"
    problem_from_args(argparse.Namespace(question=problem.question, messages=None, system=None))
    assert capsys.readouterr().err == ""  # already in the puzzles' wording: nothing to say


def test_ponder_solve_and_serve_check_a_posed_puzzle_with_the_step_verifier():
    """The path a user takes: a question typed into ``ponder solve`` or sent to ``ponder serve``,
    judged by ``verifier=countdown`` (before, the verifier refused the free-text problem)."""
    import argparse

    import openai

    from ponder.cli import problem_from_args
    from ponder.problems.synthetic import countdown_question
    from ponder.serve.background import BackgroundServer
    from ponder.serve.settings import ServeSettings

    question = countdown_question([1, 8, 50], 392)
    problem = problem_from_args(argparse.Namespace(question=question, messages=None, system=None))
    assert problem.kind == "countdown" and problem.meta == PROBLEM.meta

    wrong = TRACE.replace("49*8=392 ok", "49*8=382 no").split("\nAnswer")[0] + "\nAnswer: 50+8+1"
    seen = []

    def reply(request, i):
        seen.append(request.messages)
        return wrong if i == 0 else TRACE

    model = ScriptedModel(reply)
    with BackgroundServer(model, ServeSettings(max_budget=20000)) as srv:
        c = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        r = c.chat.completions.create(
            model="ponder/best_of_n:n=2,verifier=countdown",
            messages=[{"role": "user", "content": question}],
        )
        assert r.choices[0].message.content.strip().endswith("(50-1)*8"), r.choices[0].message.content
        # put briefly, the same puzzle is checked too, and the model reads it in the puzzles' wording
        r = c.chat.completions.create(
            model="ponder/best_of_n:n=2,verifier=countdown",
            messages=[{"role": "user", "content": "Using 1, 8 and 50, make 392."}],
        )
        assert r.choices[0].message.content.strip().endswith("(50-1)*8"), r.choices[0].message.content
        assert seen[-1][-1] == {"role": "user", "content": question}
        # the verifier on a question that is no countdown puzzle: the user's error, a 400 naming it
        with pytest.raises(openai.BadRequestError, match="verifier=countdown checks countdown"):
            c.chat.completions.create(
                model="ponder/best_of_n:n=2,verifier=countdown",
                messages=[{"role": "user", "content": "What is 17 + 25?"}],
            )
        # the grader on a question with no reference: a 400 too, streamed or not, before any call
        asked = len(seen)
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError, match="problem .* has none"):
                r = c.chat.completions.create(
                    model="ponder/best_of_n:n=2,verifier=check", stream=stream,
                    messages=[{"role": "user", "content": "What is 17 + 25?"}],
                )
                list(r) if stream else None
        assert len(seen) == asked


def test_the_verifier_refuses_another_kind_of_problem_as_a_users_error():
    from ponder.errors import UserError

    with pytest.raises(UserError, match="problem m is a math question"):
        asyncio.run(make_scorer("countdown", level="answer").score(
            Problem("m", "What is 17 + 25?"), Attempt("42", "42"), None))  # fmt: skip


@pytest.mark.parametrize(("spec", "says"), [
    ("reflect:verifier=countdown", "problem m is a math question"),
    ("beam:verifier=countdown", "problem m is a math question"),
    ("mcts:verifier=countdown", "problem m is a math question"),
    ("auto:verifier=countdown", "problem m is a math question"),
    ("best_of_n:n=2,verifier=check", "problem m has none"),
    ("vote:n=2,weighted=verifier,verifier=check", "problem m has none"),
    ("auto:verify_probe=check", "problem m has none"),
    ("guard:policy=,then=best_of_n:n=2,verifier=check", "problem m has none"),
])  # fmt: skip
def test_a_verifier_that_cannot_rate_the_problem_is_refused_before_a_token_is_spent(spec, says):
    """The user's pairing (a countdown verifier on a math question, the reference grader on a
    question with no reference) is a one-line error before any sampling, not after it."""
    from ponder.errors import ProblemMismatch

    model = ScriptedModel(lambda request, i: "Answer: 4")
    question = Problem("m", "What is 2+2?", None, "math")
    with pytest.raises(ProblemMismatch, match=says):
        strategy = parse_strategy(spec, operator=True)
        asyncio.run(final_result(strategy.run(question, model, Budget(20_000))))
    assert model.requests == []
    # the same verifiers fit the problems they can rate: a puzzle, a question with a reference
    graded = Problem("g", "What is 2+2?", "4", "math")
    for problem in (PROBLEM, graded) if "check" in spec else (PROBLEM,):
        for scorer in strategy.scorers_on(problem):
            refuse_mismatch(scorer, problem)  # raises nothing


def test_a_finished_solution_without_an_answer_line_is_graded_on_its_answer():
    """Prose the verifier cannot read passes unchecked, so the answer read from it must be graded:
    otherwise 'garbage 5' would pass as a sound solution (and earn the GRPO steps reward)."""
    scorer = make_scorer("countdown")
    for text, answer, ok in (("garbage 5", "5", False), ("so (50-1)*8", "(50-1)*8", True),
                             (TRACE, "(50-1)*8", True)):  # fmt: skip
        s = asyncio.run(scorer.score(PROBLEM, Attempt(text, answer), None))
        assert s.ok is ok, (text, s.reason)
    s = asyncio.run(scorer.score(PROBLEM, Attempt("garbage 5", "5"), None))
    assert "the answer '5'" in s.reason


def test_best_of_n_in_waves_stops_at_the_first_wave_the_checker_passes():
    """Rejection sampling: waves of 4 until the puzzle's grader passes a sample."""
    model = ScriptedModel(lambda request, i: TRACE if i == 5 else FALSE_HIT)
    strategy = parse_strategy("best_of_n:n=16,wave=4,verifier=check,seed=0")
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(20_000))))
    assert result.answer == "(50-1)*8" and result.chosen.index == 5
    assert [r.n for r in model.requests] == [4, 4]
    assert [r.seed for r in model.requests] == [0, 4]  # no wave repeats another's draws
    assert "8 of 16 drawn in waves of 4" in result.how
    # nothing passes: all 16 are drawn, and the choice is best-of-16's
    model = ScriptedModel(lambda request, i: FALSE_HIT)
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(20_000))))
    assert [r.n for r in model.requests] == [4, 4, 4, 4] and result.answer == "50*8-1"
    assert "16 of 16 drawn" in result.how


def test_best_of_n_in_waves_needs_a_checker_and_keeps_to_its_budget():
    with pytest.raises(StrategySpecError, match="wave needs a verifier whose pass settles"):
        parse_strategy("best_of_n:n=8,wave=4,verifier=judge")
    model = ScriptedModel(lambda request, i: FALSE_HIT)
    strategy = parse_strategy("best_of_n:n=16,wave=4,verifier=check,seed=0")
    for budget in (60, 200, 700):
        result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(budget))))
        assert result.usage.total_tokens <= budget


def test_one_computation_written_several_ways_is_one_vote_and_nothing_else_is():
    same = ["(25+7)+3", "3+(7+25)", "25-(-7-3)", "7 + 3 + 25 = 35", "$3+7+25$"]
    assert len({countdown_key(e) for e in same}) == 1
    assert countdown_key("(100+25)-4") == countdown_key("100-(4-25)")  # - adds a negated term
    assert countdown_key("100/(4/25)") == countdown_key("25*100/4")  # / multiplies by 1/x
    assert countdown_key("(3*7)+25") == countdown_key("25+7*3")
    different = ["25-(7+3)", "(7+3)-25", "(3+7)*25", "3+7*25", "(25+7)*3", "25*3+7*3", "25/5",
                 "5/25"]  # fmt: skip
    assert len({countdown_key(e) for e in different}) == len(different)  # nothing distributed
    # what the grader would not read as whole numbers and + - * / has no key: it is compared as
    # text, never with an expression (0x19 is 25, but not one of the numbers given)
    for text in ["x+1", "2**3", "Answer: none", "0x19+7+3", "2_5+7+3", "3.5+1", "~5", "25/0", ""]:
        assert countdown_key(text) is None, text
    assert answer_key(PROBLEM, "(50-1)*8.") == "text:(50-1)*8" != answer_key(PROBLEM, "(50-1)*8")
    # answer_key: countdown answers by that form; text that is no expression, and other kinds,
    # after normalize_answer
    assert answer_key(PROBLEM, "(50-1)*8") == answer_key(PROBLEM, "8*(50-1)")
    assert answer_key(PROBLEM, "No Idea") == "text:noidea" and answer_key(PROBLEM, None) is None
    numeric = Problem("n", "3+4?", "7", "numeric")
    assert answer_key(numeric, "8*(50-1)") == "8*(50-1)" != answer_key(numeric, "(50-1)*8")


def test_vote_and_beam_count_one_computation_written_two_ways_as_one_answer():
    right = ["dfs [50 8 1|392]\nAnswer: (50-1)*8", "dfs [50 8 1|392]\nAnswer: 8*(50-1)"]
    wrong = "dfs [50 8 1|392]\nAnswer: 50*8-1"
    model = ScriptedModel([right[0], wrong, wrong, right[1], right[1]])
    events = asyncio.run(_events(parse_strategy("vote:n=5,seed=0"), model))
    result = events[-1].result
    assert result.answer == "(50-1)*8" and result.how == "majority vote: 3/5 samples agree"
    # the tally shows each answer as the first sample that gave it wrote it
    (tally,) = [e for e in events if isinstance(e, Voted)]
    assert (tally.tally, tally.leader) == ({"(50-1)*8": 3.0, "50*8-1": 2.0}, "(50-1)*8")
    from ponder.think.beam import weighted_vote

    top, share, by_weight = weighted_vote(PROBLEM, [("50*8-1", 0.9), ("(50-1)*8", 0.5),
                                                    ("8*(50-1)", 0.5)])  # fmt: skip
    assert top == countdown_key("(50-1)*8") and share == 1.0 / 1.9 and by_weight


def _judged(model) -> list:
    """The requests that asked the model to judge an answer or a step."""
    from ponder.verify.judge import JUDGE_SYSTEM, STEP_JUDGE_SYSTEM

    return [r for r in model.requests if _system(r) in (JUDGE_SYSTEM, STEP_JUDGE_SYSTEM)]


def _system(request) -> str:
    return next((m["content"] for m in request.messages or () if m["role"] == "system"), "")


@pytest.mark.parametrize("spec", [
    "reflect:rounds=2", "beam:seed=0", "mcts:simulations=4,seed=0", "deepthink:agents=2,seed=0",
    *(f"auto:hard_with={h},tools=off,sample_on=off,seed=0" for h in ("reflect", "beam", "mcts")),
])  # fmt: skip
def test_a_countdown_search_is_checked_by_its_own_verifier_unless_another_is_named(spec):
    """``verifier=auto``, the default: the countdown verifier on a countdown puzzle (reflect cuts
    at the slip; beam and mcts sample a line at a time; nothing asks the model to judge), the
    judge on a question ponder has no exact verifier for, and ``verifier=judge`` when named."""
    slip = TRACE.replace("49*8=392 ok", "49*8=382 no").split("\nAnswer")[0] + "\nAnswer: 50+8+1"

    def reply(request, i):
        prefix = request.prefix or ""
        if "Yes or No" in _system(request):
            return "Yes"  # a judge's verdict
        if request.n == 4 and not prefix and spec.startswith("auto"):
            return "give up"  # a probe the checker rejects whole: on to the hard path
        if not prefix and "reflect" in spec:
            return slip
        return TRACE[len(prefix):] if TRACE.startswith(prefix) else "give up"

    model = ScriptedModel(reply)
    strategy = parse_strategy(spec)
    result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(40_000))))
    assert result.answer == "(50-1)*8" and not _judged(model), result.how
    if "beam" in spec or "mcts" in spec:
        assert {r.stop for r in model.requests if r.stop} == {("\n",)}  # a line a step
    if spec.startswith("auto"):
        assert "-> " + spec.split("hard_with=")[1].split(",")[0] in result.how, result.how
    assert "verifier" not in strategy.spec  # auto is the default

    math = Problem("m", "What is 6 times 7?", "42", "math")
    for problem, named in ((math, ""), (PROBLEM, ",verifier=judge")):
        model = ScriptedModel(lambda request, i: "Yes" if "Yes or No" in _system(request)
                              else f"6*7 = 42\n\nThe answer is \\boxed{{{40 + i}}}")  # fmt: skip
        asyncio.run(final_result(parse_strategy(spec + named).run(problem, model, Budget(40_000))))
        assert _judged(model), (problem.id, named)


def test_verifier_auto_is_refused_where_a_strategy_scores_without_a_problem_in_mind():
    for spec in ("best_of_n:verifier=auto", "vote:weighted=verifier,verifier=auto"):
        with pytest.raises(StrategySpecError, match="verifier=auto .* is for reflect, beam"):
            parse_strategy(spec)
