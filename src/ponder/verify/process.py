"""Process verifiers: rate the latest step of a partial solution, with no reference answer.

Step-level strategies (reflect, beam, mcts) ask a ``StepScorer`` two things: is the latest step of
a partial solution right (``score``), and how good is a finished solution (``score_solution``).
Scores are in [0, 1]; a step passes (``ok``) at 0.5 or more. Every scorer reports what it cost so
that the strategy can charge it, and prices a call before it is made (``max_cost``).

- ``arith``: an exact checker of every equation ``a op b [op c ...] = d`` written in the step
  (integers and decimals, + - * / × ÷ and parentheses, evaluated with Fractions). A
  calculator-style process verifier that needs no model: 1.0 when every equation holds (or there
  is none), 0.0 when one does not. It is what makes search meaningful on the lab's arithmetic
  models, whose lines are ``7+5+0=12 > 2``. It checks arithmetic only: a digit copied wrongly
  from the question, or a final answer that differs from the last line, passes.
- ``judge``: the model itself asked whether the latest step is correct (the generative-verifier
  judge of ``verify.judge``, shown the solution so far and the latest step; one short greedy
  call). A finished solution is judged as a whole, by the outcome judge.
- ``confidence``: the step's geometric-mean token probability, ``exp(mean logprob)``, read from
  the sample that wrote it (free; needs a backend that returns logprobs, and the sample itself:
  a step cut out of a longer sample has no logprobs of its own).
- ``prm:PATH``: a process reward model through transformers (``score_prm`` below).
"""

from __future__ import annotations

import ast
import asyncio
import math
import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from ponder.budget import Usage
from ponder.models.base import Model, ModelError, Request, Sample
from ponder.problems.base import Problem
from ponder.verify.judge import judge_request, read_verdict

PASS = 0.5  # a step with at least this score passes a check


@dataclass
class StepScore:
    score: float  # in [0, 1], higher is more likely correct
    reason: str
    usage: Usage = field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        return self.score >= PASS


class StepScorer(Protocol):
    name: str
    logprobs: bool  # the scored samples must carry logprobs (Request(logprobs=True))
    needs_sample: bool  # ``score`` reads the sample that wrote the step (not just its text)

    def max_cost(self, problem: Problem, prefix: str, step: str, model: Model) -> int:
        """Worst-case tokens one ``score`` call may spend (0 for scorers that call no model)."""
        ...

    async def score(
        self, problem: Problem, prefix: str, step: str, model: Model, sample: Sample | None = None
    ) -> StepScore:
        """Rate ``step``, written after ``prefix`` (the solution so far); ``sample`` wrote it."""
        ...

    def max_solution_cost(self, problem: Problem, text: str, model: Model) -> int: ...

    async def score_solution(
        self, problem: Problem, text: str, model: Model, sample: Sample | None = None
    ) -> StepScore:
        """Rate a finished solution (``sample`` wrote its end, from wherever it was continued)."""
        ...


# --- arith: exact equations ---

_NUM = r"\d+(?:\.\d+)?"
_TERM = rf"[(\s]*-?{_NUM}[)\s]*"
_EQUATION = re.compile(
    rf"(?<![\w.])({_TERM}(?:[-+*/×÷]{_TERM})+)=\s*(-?{_NUM}(?:/\d+)?)(?!\d)(?!\.\d)"
)
_OPS = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
        ast.Div: Fraction.__truediv__}  # fmt: skip


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_value(node.left), _value(node.right))
    raise ValueError("not plain arithmetic")


def _evaluate(expr: str) -> Fraction | None:
    """The exact value of ``expr``, or None when it is not plain arithmetic (unbalanced brackets,
    division by zero)."""
    try:
        plain = expr.replace("×", "*").replace("÷", "/").strip()
        return _value(ast.parse(plain, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def _equal(value: Fraction, written: str) -> bool:
    """Exact for integers and fractions; a decimal is right when it is ``value`` rounded to as
    many places as it has."""
    if "." in written:
        places = len(written.split(".")[1])
        return abs(value - Fraction(written)) <= Fraction(1, 2 * 10**places)
    return value == Fraction(written)


def check_equations(text: str) -> tuple[int, str | None]:
    """(equations checked, the first wrong one described, or None)."""
    checked = 0
    for m in _EQUATION.finditer(text):
        lhs, rhs = m.group(1).strip(), m.group(2)
        value = _evaluate(lhs)
        if value is None:
            continue
        checked += 1
        if not _equal(value, rhs):
            shown = str(value) if value.denominator == 1 else f"{float(value):g}"
            return checked, f"{lhs}={rhs} is wrong ({lhs} = {shown})"
    return checked, None


@dataclass
class ArithChecker:
    name: str = field(default="arith", init=False)
    logprobs: bool = field(default=False, init=False)
    needs_sample: bool = field(default=False, init=False)

    def _check(self, text: str) -> StepScore:
        checked, wrong = check_equations(text)
        if wrong:
            return StepScore(0.0, wrong)
        if not checked:
            return StepScore(1.0, "no equation to check")
        return StepScore(1.0, f"{checked} equation{'s' if checked > 1 else ''} hold")

    def max_cost(self, problem: Problem, prefix: str, step: str, model: Model) -> int:
        return 0

    async def score(self, problem, prefix, step, model, sample=None) -> StepScore:
        return self._check(step)

    def max_solution_cost(self, problem: Problem, text: str, model: Model) -> int:
        return 0

    async def score_solution(self, problem, text, model, sample=None) -> StepScore:
        return self._check(text)


# --- judge: the model asked about the latest step ---

STEP_JUDGE_SYSTEM = (
    "You are a careful grader of step-by-step solutions. Decide whether the LATEST step of the "
    "partial solution is correct: right reasoning and arithmetic, consistent with the problem and "
    "the steps before it. Reply with exactly one word: Yes or No."
)


def step_judge_request(problem: Problem, prefix: str, step: str, max_tokens: int = 8) -> Request:
    question = (
        f"Problem:\n{problem.question}\n\n"
        f"Solution so far:\n{prefix.strip() or '(nothing yet)'}\n\n"
        f"Latest step:\n{step.strip()}\n\n"
        "Is the latest step correct? Answer Yes or No."
    )
    return Request.chat(
        question, system=STEP_JUDGE_SYSTEM, max_tokens=max_tokens, temperature=0.0, logprobs=True
    )


@dataclass
class StepJudge:
    max_tokens: int = 8
    name: str = field(default="judge", init=False)
    logprobs: bool = field(default=False, init=False)
    needs_sample: bool = field(default=False, init=False)

    def max_cost(self, problem: Problem, prefix: str, step: str, model: Model) -> int:
        req = step_judge_request(problem, prefix, step, self.max_tokens)
        return model.count_prompt_tokens(req) + self.max_tokens

    async def score(self, problem, prefix, step, model, sample=None) -> StepScore:
        c = await model.generate(step_judge_request(problem, prefix, step, self.max_tokens))
        v = read_verdict(c.samples[0])
        return StepScore(v.score, v.reason, c.usage)

    def max_solution_cost(self, problem: Problem, text: str, model: Model) -> int:
        request = judge_request(problem, text, self.max_tokens)
        return model.count_prompt_tokens(request) + self.max_tokens

    async def score_solution(self, problem, text, model, sample=None) -> StepScore:
        c = await model.generate(judge_request(problem, text, self.max_tokens))
        v = read_verdict(c.samples[0])
        return StepScore(v.score, v.reason, c.usage)


# --- confidence: the step's own token probabilities ---


@dataclass
class StepConfidence:
    name: str = field(default="confidence", init=False)
    logprobs: bool = field(default=True, init=False)
    needs_sample: bool = field(default=True, init=False)

    def _of(self, sample: Sample | None, model: Model) -> StepScore:
        if sample is None:
            raise ValueError("the confidence step scorer needs the sample that wrote the step")
        if sample.logprobs is None:
            raise ModelError(
                f"the confidence verifier needs logprobs, and the model {model.name} returned "
                "none (use gguf, hf, or an OpenAI-compatible server that returns logprobs)"
            )
        if not sample.logprobs:
            return StepScore(1.0, "empty step")
        p = math.exp(sum(sample.logprobs) / len(sample.logprobs))
        return StepScore(p, f"mean token probability {p:.3f}")

    def max_cost(self, problem: Problem, prefix: str, step: str, model: Model) -> int:
        return 0

    async def score(self, problem, prefix, step, model, sample=None) -> StepScore:
        return self._of(sample, model)

    def max_solution_cost(self, problem: Problem, text: str, model: Model) -> int:
        return 0

    async def score_solution(self, problem, text, model, sample=None) -> StepScore:
        return self._of(sample, model)


# --- prm:PATH: a process reward model ---


class PRMScorer:
    """A process reward model loaded with transformers from ``path`` (a directory or Hub id).

    The PRM reads ``question``, a blank line, then the steps, each followed by ``separator``; it
    runs on its own (CPU unless ``device``) and is charged as one call whose prompt is its input.

    - A token-classification head (``*ForTokenClassification``): the score of a step is read at
      the step's last token (its separator), as PRMs trained on step tags are; a finished
      solution scores its weakest step (min), the usual PRM aggregate.
    - Otherwise a sequence-classification head: one score for the whole partial solution.

    Labels: one logit is passed through a sigmoid; with several, the probability of the label whose
    name says positive (``pos``, ``good``, ``correct``, ``+``), else of label 1. PRMs that score
    through a language-model head's "+"/"-" tokens (Math-Shepherd) or through custom code
    (Qwen2.5-Math-PRM) are not covered. Tested only on a tiny randomly initialised model.
    """

    logprobs = False
    needs_sample = False

    def __init__(self, path: str, separator: str = "\n\n", device: str = "cpu") -> None:
        self.path, self.separator, self.device = path, separator, device
        self.name = f"prm:{path}"
        self._loaded = None
        self._lock = threading.Lock()

    def _load(self):
        if self._loaded is None:
            try:
                import torch
                import transformers
            except ImportError as e:
                raise ModelError(f"the prm verifier needs torch and transformers ({e})") from None
            try:
                config = transformers.AutoConfig.from_pretrained(self.path)
                heads = config.architectures or ()
                token = any(a.endswith("ForTokenClassification") for a in heads)
                auto = (
                    transformers.AutoModelForTokenClassification
                    if token
                    else transformers.AutoModelForSequenceClassification
                )
                tok = transformers.AutoTokenizer.from_pretrained(self.path)
                model = auto.from_pretrained(self.path).to(self.device).eval()
            except Exception as e:  # OSError, ValueError, Hub errors: the setup is wrong
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ModelError(
                    f"cannot load process reward model {self.path!r}: {first}"
                ) from None
            labels = [str(v).lower() for _, v in sorted(config.id2label.items())]
            good = ("pos", "good", "correct", "+")
            named = [i for i, v in enumerate(labels) if any(w in v for w in good)]
            positive = named[0] if named else min(1, len(labels) - 1)
            self._loaded = (torch, tok, model, token, positive)
        return self._loaded

    def _ids(self, problem: Problem, steps: list[str]) -> tuple[list[int], list[int]]:
        """Input ids and, per step, the position of its last token."""
        _, tok, *_ = self._load()
        ids = tok(problem.question + "\n\n")["input_ids"]
        ends = []
        for s in steps:
            ids += tok(s.strip() + self.separator, add_special_tokens=False)["input_ids"]
            ends.append(len(ids) - 1)
        return ids, ends

    def _scores(self, problem: Problem, steps: list[str]) -> tuple[list[float], int]:
        torch, _, model, token, positive = self._load()
        ids, ends = self._ids(problem, steps)
        with self._lock, torch.inference_mode():
            logits = model(torch.tensor([ids], device=self.device)).logits[0].float()
        # token head: (L, C), one row per position; sequence head: (C,)
        rows = logits[ends] if token else logits[None, :].expand(len(ends), -1)
        if rows.shape[-1] == 1:
            probs = torch.sigmoid(rows[:, 0])
        else:
            probs = torch.softmax(rows, dim=-1)[:, positive]
        return probs.tolist(), len(ids)

    def max_cost(self, problem: Problem, prefix: str, step: str, model: Model) -> int:
        from ponder.think.steps import split_steps

        return len(self._ids(problem, [*split_steps(prefix), step])[0])

    async def score(self, problem, prefix, step, model, sample=None) -> StepScore:
        from ponder.think.steps import split_steps

        steps = [*split_steps(prefix), step]
        scores, n = await asyncio.to_thread(self._scores, problem, steps)
        return StepScore(scores[-1], f"PRM {scores[-1]:.3f}", Usage(prompt_tokens=n, calls=1))

    def max_solution_cost(self, problem: Problem, text: str, model: Model) -> int:
        from ponder.think.steps import split_steps

        return len(self._ids(problem, split_steps(text) or [""])[0])

    async def score_solution(self, problem, text, model, sample=None) -> StepScore:
        from ponder.think.steps import split_steps

        scores, n = await asyncio.to_thread(self._scores, problem, split_steps(text) or [""])
        worst = min(scores)
        return StepScore(worst, f"PRM weakest step {worst:.3f}", Usage(prompt_tokens=n, calls=1))


STEP_SCORERS = {"arith": ArithChecker, "judge": StepJudge, "confidence": StepConfidence}
NAMES = (*STEP_SCORERS, "prm:PATH")


def make_step_scorer(name: str) -> StepScorer:
    """``arith``, ``judge``, ``confidence`` or ``prm:PATH`` (the PRM loads on first use)."""
    if name.startswith("prm:") and name[4:].strip():
        return PRMScorer(name[4:].strip())
    if name not in STEP_SCORERS:
        raise ValueError(f"unknown step verifier {name!r}; known: {', '.join(NAMES)}")
    return STEP_SCORERS[name]()
