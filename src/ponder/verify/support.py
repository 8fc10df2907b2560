"""Citation support: does a cited passage support the sentence that cites it?

Two checks, cheapest first (as in attribution evaluation, Rashkin et al. 2021's AIS and the
ALCE benchmark of Gao et al. 2023, which score "is the claim entailed by its citations"):

- ``missing_words(claim, passage)``: the claim's content words (stop words and the citation
  marks left out, plurals folded) that the passage does not contain. None missing is support by
  overlap, for free: a sentence that only restates its passage's words. A claim that brings in a
  word of its own ("born on the Moon" against "born in Tarsio") is not supported by overlap.
- ``SupportJudge``: the model asked whether the passage states the claim (one short greedy
  Yes/No call, read like ``judge.Judge``'s verdict). Used only where overlap fails: paraphrases.

Departures from NLI-based attribution checkers: no entailment model (ponder's models are the
generators themselves); the word check accepts a claim that reorders the passage's words into a
different statement ("Tarsio was born in Orlen Vask"), which the judge would not be asked about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ponder.models.base import Model, Request
from ponder.problems.base import Problem
from ponder.verify.judge import read_verdict
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt

SUPPORT_SYSTEM = (
    "You check citations. Decide whether the passage states the claim. "
    "Reply with exactly one word: Yes or No."
)
STOP_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being "
    "this that these those it its it's he she they them his her their there here which who whom "
    "whose what when where why how not no yes so than then also into onto about over under after "
    "before during while has have had do does did can could will would shall should may might "
    "must one any some such each every all both very more most other same only own just".split()
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_CITE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def _fold(word: str) -> str:
    word = word.lower().removesuffix("'s")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry content, folded, in order (citation marks removed)."""
    words = (_fold(w) for w in _WORD.findall(_CITE.sub(" ", text)))
    return [w for w in words if w not in STOP_WORDS]


def missing_words(claim: str, passage: str) -> list[str]:
    """The claim's content words that ``passage`` does not contain."""
    have = set(content_words(passage))
    return [w for w in dict.fromkeys(content_words(claim)) if w not in have]


def support_request(passage: str, claim: str, max_tokens: int = 8) -> Request:
    question = (
        f"Passage:\n{passage.strip()}\n\nClaim:\n{_CITE.sub('', claim).strip()}\n\n"
        "Does the passage state the claim? Answer Yes or No."
    )
    return Request.chat(
        question, system=SUPPORT_SYSTEM, max_tokens=max_tokens, temperature=0.0, logprobs=True
    )


@dataclass
class SupportJudge:
    """Rates a claim (``attempt.text``) against a passage (``problem.question``) by asking the
    model, as a Scorer (so the budget meter prices and charges it like any judge)."""

    max_tokens: int = 8
    name: str = field(default="support", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer"}), init=False)
    logprobs: bool = field(default=False, init=False)
    top_logprobs: int = field(default=0, init=False)
    needs_sample: bool = field(default=False, init=False)
    calls_model: bool = field(default=True, init=False)
    checks_answer: bool = field(default=False, init=False)

    def request(self, problem: Problem, attempt: Attempt) -> Request:
        return support_request(problem.question, attempt.text, self.max_tokens)

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model) -> int:
        return model.count_prompt_tokens(self.request(problem, attempt)) + self.max_tokens

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score:
        completion = await model.generate(self.request(problem, attempt))
        v = read_verdict(completion.samples[0])
        return Score(v.ok, v.value, v.reason, completion.usage)
