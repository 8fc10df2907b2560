"""A question a user poses (``ponder solve``, ``ponder serve``) as a ``Problem``.

A free question is graded as math. A question in the countdown puzzles' own wording
(``synthetic.countdown_question``) becomes a countdown problem with its numbers and target. Then
``verifier=countdown`` and the countdown grader work on it as they do in ``ponder bench``: a lab
countdown model asked in ``ponder solve`` can be checked step by step.

A countdown puzzle put briefly ("Using 3, 7 and 25, make 46.", "Make 46 from 3, 7 and 25 using
+ - * /", "Use 3 7 25 to reach 46", "Using 3,7,25, can you make 46?", in any case), or in the
puzzles' sentence written otherwise ("3, 7 and 25", lower case), is a countdown problem too, and
is restated in the puzzles' wording, which says the rules (each number at most once; + - * /).
The restatement replaces the user's message in what the model reads: the lab models only know
that wording (asked the short form, the stop-26 `lab:countdown-grpo` searched a puzzle it made
up), and for any other model it states the rules the grader applies. Only a message that is the
puzzle and nothing else is read this way (2 to 6 numbers and the target, with at most a mention
of the rules), so a sentence that merely contains numbers stays a math question.
"""

from __future__ import annotations

import re
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.synthetic import countdown_meta, countdown_question

_N = r"\d{1,9}"  # a longer number is no countdown number (and int() refuses > 4,300 digits)
_NUMBERS = rf"({_N}(?:\s*,\s*{_N}|\s+{_N})*(?:\s*,?\s+and\s+{_N})?)"
_GOAL = r"(?:make|get|reach)"
# The patterns read a question with one space between words (``short_countdown`` squeezes runs),
# and every repeat has one way to split what it reads, so a long near-miss fails in linear time.
_SEP = r"(?: ?, ?| )"  # between words: a comma, or a space
_OP = r"[-+*/×÷]"
_OPS = (rf"(?:{_OP}(?:{_SEP}(?:(?:and|or) )?{_OP})*"  # "+ - * /", "+, -, *, and /"
        r"|(?:the )?(?:(?:four|basic) )*(?:arithmetic(?: operations)?|operations))")  # fmt: skip
_ONCE = rf"{_SEP}?\(?each (?:number )?(?:used )?(?:at most )?once\)?"
# what a puzzle may say of its rules after its numbers or its target: "(each at most once)",
# "and + - * /", "using + - * /", "with basic arithmetic"
_RULES = rf"(?:{_ONCE})?(?:{_SEP}?(?:and|using|with) (?:only )?{_OPS})?(?:{_ONCE})?"
_END = rf"{_RULES} ?[.!?]?"
_ASK = r"(?:(?:can|could) you )?"
_SHORT_FORMS = (  # (pattern, group of the numbers, group of the target)
    # "Using 3, 7 and 25, make 46.", "Use 3 7 25 to reach 46", "Using 3, 7 and 25, can you make 46?"
    (re.compile(rf"(?:using|use|with) (?:the numbers )?{_NUMBERS}{_RULES}{_SEP}?(?:to )?{_ASK}{_GOAL}"
                rf" ({_N}){_END}", re.IGNORECASE), 1, 2),  # fmt: skip
    # "Make 46 from 3, 7 and 25 using + - * /.", "Can you get 46 with 3, 7 and 25?"
    (re.compile(rf"{_ASK}{_GOAL} ({_N}) (?:from|with|using) (?:the numbers )?{_NUMBERS}{_END}",
                re.IGNORECASE), 2, 1),  # fmt: skip
    # the puzzles' own sentence written otherwise: in lower case, "3, 7 and 25", "3,7,25"
    (re.compile(rf"(?:using|with) (?:the numbers )?{_NUMBERS}{_RULES}{_SEP}?write an expression "
                rf"(?:equal to|that equals) ({_N}){_END}", re.IGNORECASE), 1, 2),  # fmt: skip
)


def short_countdown(question: str) -> dict[str, Any] | None:
    """``{"numbers", "target"}`` of a countdown puzzle put briefly (see the module), else None."""
    text = " ".join(question.split())  # one space between words: no run for the patterns to split
    for pattern, numbers_at, target_at in _SHORT_FORMS:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        numbers = [int(n) for n in re.findall(r"\d+", m.group(numbers_at))]
        if 2 <= len(numbers) <= 6:
            return {"numbers": sorted(numbers), "target": int(m.group(target_at))}
    return None


def posed(pid: str, question: str, **fields: Any) -> Problem:
    """The problem ``question`` poses; ``fields`` are Problem's (messages, tools)."""
    meta = countdown_meta(question)
    if meta is not None:
        return Problem(pid, question, kind="countdown", meta=meta, **fields)
    meta = short_countdown(question)
    if meta is not None:
        restated = countdown_question(meta["numbers"], meta["target"])
        fields["messages"] = _restate(fields.get("messages", ()), question, restated)
        return Problem(pid, restated, kind="countdown", meta=meta, **fields)
    return Problem(pid, question, kind="math", **fields)


def _restate(messages, question: str, restated: str) -> tuple[dict[str, Any], ...]:
    """``messages`` with the last user turn, which asks ``question``, asking ``restated``."""
    turns = [dict(m) for m in messages]
    for turn in reversed(turns):
        if turn.get("role") == "user":
            if isinstance(turn.get("content"), str) and turn["content"].strip() == question.strip():
                turn["content"] = restated
            break
    return tuple(turns)
