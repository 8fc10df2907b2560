"""`deepthink`: multi-agent parallel thinking — propose distinct approaches, solve them in
parallel, verify the candidates, select (or synthesise) the answer.

The idea behind "Deep Think"-style systems (parallel agents exploring different lines of attack,
then a verification and selection step; cf. Gemini Deep Think, and multi-agent debate, Du et al.
2023), reduced to four phases that each make a fixed number of model calls:

1. propose: one batched request for ``agents`` approaches ("ONE approach in two sentences; do not
   solve"). Approaches must really differ: one whose Jaccard similarity of lowercased word sets
   with an earlier approach exceeds ``similarity`` is a duplicate; duplicates are re-asked once (one
   batched request that lists the approaches taken). A duplicate whose replacement is still not
   distinct keeps its approach; the trace records how many distinct approaches there were.
2. solve: every agent solves along its approach, all requests concurrently (prompts differ, so they
   cannot be one batch).
3. verify: each answered candidate is rated by the scorer named by ``verifier`` (``make_scorer``).
4. select: an answer's score is the best score among the agents that gave it. When the top-scored
   answers agree (one answer holds the top score, or every agent agrees) it is selected; otherwise
   one synthesis call sees the candidates with their scores and writes the final answer and a
   one-line reason.

Budget: when the budget has a cap, the phases get fixed shares of it — propose 10%, solve 60%,
verify 20%, select 10% — and whatever a phase leaves unused rolls over to the next (phase k may
spend up to the cumulative share of phases 1..k, minus what was spent before it). Every call is
planned with ``fit_to_budget`` / ``scorer.max_cost`` first, so the cap is never exceeded.

Departures and simplifications:

- No cross-examination between agents and no further rounds: verification is the named scorer.
- Agents are dropped (the last first) when the solve share cannot give each of them at least a
  quarter of ``max_tokens``; if even one cannot have that, one agent solves with what there is.
  Propose is skipped when its share does not fit (agents then solve without an approach), and so
  is synthesis (then, and when synthesis states no answer, the contending answer given by most
  agents wins, the first seen on a tie).
- Answers the verify share could not pay to score do not contend with scored ones.
- The synthesiser may state an answer no agent gave; it is taken as it is.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Phase, Result, Sampled, Spent, TextDelta
from ponder.models.base import Completion, Model, Request
from ponder.problems.base import Problem
from ponder.think.base import SYSTEM_PROMPT, fit_to_budget
from ponder.think.sampling import Candidate, Scoring, logged, score_candidates
from ponder.verify.extract import extract_answer
from ponder.verify.normalize import normalize_answer
from ponder.verify.scorers import make_scorer

# (phase, share of a capped budget); unused share rolls over to the next phase.
SHARES = (("propose", 0.10), ("solve", 0.60), ("verify", 0.20), ("select", 0.10))

PROPOSE_SYSTEM = (
    "You plan how to solve problems. Propose ONE approach in two sentences; do not solve the "
    "problem and do not give an answer."
)
SYNTH_SYSTEM = (
    "You lead a team of solvers. Read the problem and the team's candidate solutions with their "
    "verifier scores (higher is more likely correct), decide the correct final answer, write it as "
    "\\boxed{ANSWER}, then one line starting with 'Reason:' saying why."
)
_WORD = re.compile(r"\w+")
_REASON = re.compile(r"reason\s*:\s*(.+)", re.IGNORECASE)


@dataclass
class DeepThink:
    agents: int = 3  # parallel solvers, each along its own approach
    verifier: str = "judge"  # scorer that rates the candidates (verify.scorers: judge, confidence)
    max_tokens: int = 384  # per solution
    temperature: float = 0.8
    seed: int | None = None
    similarity: float = 0.6  # approaches more similar than this (word-set Jaccard) are duplicates
    approach_tokens: int = 80  # per proposed approach

    spec_name = "deepthink"

    def __post_init__(self) -> None:
        for name in ("agents", "max_tokens", "approach_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"deepthink: {name} must be a positive integer")
        if self.temperature < 0:
            raise ValueError("deepthink: temperature must be >= 0")
        if not 0 <= self.similarity <= 1:
            raise ValueError("deepthink: similarity must be in [0, 1] (word-set Jaccard)")
        try:
            make_scorer(self.verifier)
        except ValueError as e:
            raise ValueError(f"deepthink: verifier: {e}") from None

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        scorer = make_scorer(self.verifier)
        caps = _phase_caps(budget)
        phases: dict[str, Usage] = {name: Usage() for name, _ in SHARES}
        trace: list[dict] = []

        def spent() -> Usage:
            return sum(phases.values(), Usage())

        def end_phase(name: str, detail: str) -> Phase:
            return logged(trace, Phase(name, phases[name], detail))

        # 1. propose
        approaches, detail = await self._propose(problem, model, caps["propose"], phases)
        yield end_phase("propose", detail)
        yield logged(trace, Spent(spent()))

        # 2. solve
        requests = self._solve_requests(
            problem, model, approaches, scorer.top_logprobs, caps["solve"], spent()
        )
        completions: list[Completion] = []
        if requests:
            async for item in _generate_all(model, requests):
                if isinstance(item, TextDelta):
                    yield item
                else:
                    completions = item
        candidates = []
        for j, c in enumerate(completions):
            phases["solve"] = phases["solve"] + c.usage
            s = c.samples[0]
            raw = extract_answer(s.text)
            candidates.append(Candidate(j, s, raw, normalize_answer(raw)))
            yield logged(trace, Sampled(j, s.text, raw, s.completion_tokens, s.finish_reason))
        answered = sum(c.key is not None for c in candidates)
        solved = _plural(len(candidates), "agent")
        yield end_phase("solve", f"{solved} solved, {answered} stated an answer")
        yield logged(trace, Spent(spent()))
        n_agents = len(candidates)
        distinct = n_agents - len(_duplicates(approaches[:n_agents], self.similarity))
        approach_note = _plural(distinct, "distinct approach", "es") if distinct else "no approach"
        head = f"{_plural(n_agents, 'agent')}, {approach_note}"
        if not candidates:
            yield end_phase("verify", "nothing to verify")
            yield end_phase("select", "nothing to select")
            yield Final(Result(None, "", "budget too small for the prompt", spent(), trace))
            return

        # 3. verify
        scoring = Scoring()
        verifying = score_candidates(problem, model, scorer, candidates, caps["verify"], spent())
        async for item in verifying:
            if isinstance(item, Scoring):
                scoring = item
            else:
                yield logged(trace, item)
        phases["verify"] = phases["verify"] + scoring.usage
        yield end_phase("verify", f"{len(scoring.scores)} of {answered} scored by {scorer.name}")
        yield logged(trace, Spent(spent()))

        # 4. select
        groups: dict[str, list[Candidate]] = {}
        for c in candidates:
            if c.key is not None:
                groups.setdefault(c.key, []).append(c)
        if not groups:
            yield end_phase("select", "no agent stated an answer")
            how = f"{head}; no agent stated an answer"
            yield Final(Result(None, candidates[0].sample.text, how, spent(), trace))
            return
        # An answer's score: the best score among the agents that gave it (None: none scored).
        score = {
            k: max((scoring.scores[c.index] for c in g if c.index in scoring.scores), default=None)
            for k, g in groups.items()
        }
        summary = "answers " + " vs ".join(
            f"{k} ({'unscored' if score[k] is None else f'score {score[k]:.2f}'}, "
            f"{_plural(len(g), 'agent')})"
            for k, g in groups.items()
        )
        # Answers the budget could not score do not contend with scored ones.
        scored = [k for k in groups if score[k] is not None]
        contenders = _top(score, scored) if scored else list(groups)
        text = None
        if len(groups) == 1:
            top, why = contenders[0], "as all agents agree"
        elif len(contenders) == 1:
            top, why = contenders[0], "by verifier"
        else:
            top, reason, text = await self._synthesise(
                problem, model, candidates, approaches, scoring, caps["select"], spent(), phases
            )
            if top is not None:
                why = f"by synthesis: {reason}"
            else:  # synthesis did not fit or stated no answer
                top = max(contenders, key=lambda k: len(groups[k]))  # first seen on a tie
                why, text = f"by agent count ({reason})", None
        if text is None:  # the selected answer's best-scored solution
            best = max(groups[top], key=lambda c: scoring.scores.get(c.index, float("-inf")))
            text = best.sample.text
        yield end_phase("select", f"selected {top} {why}")
        yield logged(trace, Spent(spent()))
        how = f"{head}; {summary}; selected {top} {why}"
        yield Final(Result(top, text, how, spent(), trace))

    async def _propose(
        self, problem: Problem, model: Model, cap: Budget, phases: dict[str, Usage]
    ) -> tuple[list[str | None], str]:
        """Ask for approaches, re-ask once for duplicates; returns one approach per agent (None when
        the share did not fit) and the phase's detail line."""
        req = fit_to_budget(model, self._propose_request(problem, self.agents, []), cap, Usage())
        if req is None:
            return [None] * self.agents, "skipped: the budget share does not fit a proposal"
        c = await model.generate(req)
        phases["propose"] = phases["propose"] + c.usage
        approaches: list[str | None] = [s.text.strip() for s in c.samples]
        dups = _duplicates(approaches, self.similarity)
        found = _plural(len(dups), "duplicate") if dups else "no duplicates"
        detail = f"{self.agents} proposed, {found}"
        if dups:
            taken = [a for j, a in enumerate(approaches) if j not in dups and a]
            req = self._propose_request(problem, len(dups), taken)
            req = fit_to_budget(model, req, cap, phases["propose"])
            if req is None:
                detail += " (no room to re-ask)"
            else:
                c = await model.generate(req)
                phases["propose"] = phases["propose"] + c.usage
                replaced = 0
                for j, s in zip(dups, c.samples):
                    new = s.text.strip()
                    if new and all(_similarity(new, a) <= self.similarity for a in taken):
                        approaches[j] = new
                        taken.append(new)
                        replaced += 1
                detail += f" re-asked, {replaced} replaced"
        distinct = len(approaches) - len(_duplicates(approaches, self.similarity))
        listing = " | ".join(f"{j}) {a}" for j, a in enumerate(approaches))
        return approaches, f"{detail}; {distinct} distinct: {listing}"

    def _propose_request(self, problem: Problem, n: int, taken: list[str]) -> Request:
        question = f"Problem:\n{problem.question}"
        if taken:
            question += "\n\nThese approaches are already taken:\n"
            question += "\n".join(f"- {a}" for a in taken)
            question += "\nPropose ONE approach that is clearly different from all of them."
        return Request.chat(
            question,
            system=PROPOSE_SYSTEM,
            n=n,
            max_tokens=self.approach_tokens,
            temperature=self.temperature,
            seed=self.seed,
        )

    def _solve_requests(
        self,
        problem: Problem,
        model: Model,
        approaches: list[str | None],
        top_logprobs: int,
        cap: Budget,
        spent: Usage,
    ) -> list[Request]:
        """One request per agent, max_tokens shrunk so that all of them together fit the share."""
        requests = []
        for j, approach in enumerate(approaches[: self.agents]):
            question = problem.question
            if approach:
                question += f"\n\nSolve it with this approach: {approach}"
            seed = None if self.seed is None else self.seed + j
            requests.append(
                Request.chat(
                    question,
                    system=SYSTEM_PROMPT,
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                    top_logprobs=top_logprobs,
                    seed=seed,
                )
            )
        room = cap.remaining(spent)
        if room is None:
            return requests
        prompts = [model.count_prompt_tokens(r) for r in requests]

        def per_agent(m: int) -> int:
            return (room - sum(prompts[:m])) // m

        floor = max(1, self.max_tokens // 4)
        m = next((m for m in range(len(requests), 0, -1) if per_agent(m) >= floor), 0)
        if m == 0 and per_agent(1) >= 1:
            m = 1  # one solution with what there is beats several cut shorter still
        return [replace(r, max_tokens=min(r.max_tokens, per_agent(m))) for r in requests[:m]]

    async def _synthesise(
        self,
        problem: Problem,
        model: Model,
        candidates: list[Candidate],
        approaches: list[str | None],
        scoring: Scoring,
        cap: Budget,
        spent: Usage,
        phases: dict[str, Usage],
    ) -> tuple[str | None, str, str]:
        """One call that picks the answer; (answer key or None, reason, text)."""
        parts = [f"Problem:\n{problem.question}\n"]
        for c in candidates:
            if c.key is None:
                continue
            sc = scoring.scores.get(c.index)
            approach = approaches[c.index] or "none given"
            parts.append(
                f"Candidate from agent {c.index} (approach: {approach}; verifier score: "
                f"{'not scored' if sc is None else f'{sc:.2f}'}) answers {c.answer}. "
                f"End of its solution:\n...{c.sample.text[-400:]}\n"
            )
        req = Request.chat(
            "\n".join(parts),
            system=SYNTH_SYSTEM,
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=self.seed,
        )
        req = fit_to_budget(model, req, cap, spent)
        if req is None:
            return None, "synthesis did not fit the budget", ""
        c = await model.generate(req)
        phases["select"] = phases["select"] + c.usage
        text = c.samples[0].text
        key = normalize_answer(extract_answer(text))
        if key is None:
            return None, "synthesis stated no answer", text
        m = _REASON.search(text)
        return key, (m.group(1).strip() if m else "no reason given"), text


def _phase_caps(budget: Budget) -> dict[str, Budget]:
    """Each phase's cap on the total spent by the end of that phase (cumulative shares)."""
    if budget.max_tokens is None:
        return {name: budget for name, _ in SHARES}
    caps, share = {}, 0.0
    for name, s in SHARES:
        share += s
        caps[name] = Budget(max(1, int(budget.max_tokens * min(share, 1.0))))
    caps[SHARES[-1][0]] = budget  # the last phase may spend everything that is left
    return caps


def _plural(n: int, word: str, suffix: str = "s") -> str:
    return f"{n} {word}{'' if n == 1 else suffix}"


def _similarity(a: str, b: str) -> float:
    """Jaccard similarity of the lowercased word sets (1.0 when both are empty)."""
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def _duplicates(approaches: list[str | None], threshold: float) -> list[int]:
    """Indices of approaches that are empty or too similar to an earlier non-duplicate one."""
    kept: list[str] = []
    dups = []
    for j, a in enumerate(approaches):
        if not a or any(_similarity(a, k) > threshold for k in kept):
            dups.append(j)
        else:
            kept.append(a)
    return dups


def _top(score: dict[str, float | None], keys: list[str]) -> list[str]:
    best = max(score[k] for k in keys)
    return [k for k in keys if score[k] >= best - 1e-9]


async def _generate_all(
    model: Model, requests: list[Request]
) -> AsyncIterator[TextDelta | list[Completion]]:
    """Run single-sample requests concurrently: TextDelta events (sample j = request j) as text
    arrives, then the list of Completions. If the consumer stops early, the calls are cancelled."""
    queue: asyncio.Queue = asyncio.Queue()
    finished = object()

    def on_text_for(j: int):
        return lambda _i, piece: queue.put_nowait(TextDelta(j, piece))

    tasks = [
        asyncio.ensure_future(model.generate(r, on_text=on_text_for(j)))
        for j, r in enumerate(requests)
    ]
    for t in tasks:
        t.add_done_callback(lambda _: queue.put_nowait(finished))
    try:
        done = 0
        while done < len(tasks):
            item = await queue.get()
            if item is finished:
                done += 1
            else:
                yield item
        yield [t.result() for t in tasks]
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
