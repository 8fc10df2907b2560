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
3. verify: each answered candidate is rated by the scorer named by ``verifier`` (``auto``, the
   default: the countdown verifier on a countdown puzzle, else the judge).
4. select: an answer's score is the best score among the agents that gave it. When the top-scored
   answers agree (one answer holds the top score, or every agent agrees) it is selected; otherwise
   one synthesis call sees the candidates with their scores and writes the final answer and a
   one-line reason.

Budget: when the budget has a cap, the phases get fixed shares of it — propose 10%, solve 60%,
verify 20%, select 10% — and whatever a phase leaves unused rolls over to the next (phase k may
spend up to the cumulative share of phases 1..k, minus what was spent before it). Each phase runs
under ``Meter.limit`` of its cumulative share, so the cap is never exceeded.

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
from dataclasses import dataclass, replace

from ponder.events import Phase, Result, Sampled
from ponder.models.base import Completion, Request
from ponder.problems.base import Problem
from ponder.think.base import SYSTEM_PROMPT, Run, StrategyBase, chat_messages, seed_at
from ponder.think.sampling import Candidate, Scoring, candidate, score_candidates
from ponder.verify.scoring import Scorer

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
class DeepThink(StrategyBase):
    agents: int = 3  # parallel solvers, each along its own approach
    verifier: str | Scorer = "auto"  # scorer that rates the candidates (verify.scorers; auto:
    # the problem's own exact verifier where it has one, else judge)
    similarity: float = 0.6  # approaches more similar than this (word-set Jaccard) are duplicates
    approach_tokens: int = 80  # per proposed approach
    max_tokens: int = 384  # per solution
    temperature: float = 0.8

    name = "deepthink"
    auto_verifier = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("agents", "approach_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"deepthink: {name} must be a positive integer")
        if not 0 <= self.similarity <= 1:
            raise ValueError("deepthink: similarity must be in [0, 1] (word-set Jaccard)")
        self._scorer = self.scorer_for("answer")

    async def solve(self, problem: Problem, run: Run) -> Result:
        scorer = self.scorer_on(problem)
        caps = _phase_caps(run.meter.cap)
        meter = run.meter
        mark = [meter.spent]  # the usage when the current phase began

        def end_phase(name: str, detail: str) -> None:
            run.emit(Phase(name, meter.spent - mark[0], detail))
            mark[0] = meter.spent
            run.spent()

        # 1. propose
        with meter.limit(caps["propose"]):
            approaches, detail = await self._propose(problem, run)
        end_phase("propose", detail)

        # 2. solve
        with meter.limit(caps["solve"]):
            requests = self._solve_requests(problem, run, approaches, scorer.top_logprobs)
            completions: list[Completion] = list(
                await asyncio.gather(*(run.generate(r, j) for j, r in enumerate(requests)))
            )
        candidates = []
        for j, c in enumerate(completions):
            s = c.samples[0]
            cand = candidate(j, s, problem)
            candidates.append(cand)
            run.emit(Sampled(j, s.text, cand.answer, s.completion_tokens, s.finish_reason))
        answered = sum(c.key is not None for c in candidates)
        solved = _plural(len(candidates), "agent")
        end_phase("solve", f"{solved} solved, {answered} stated an answer")
        n_agents = len(candidates)
        distinct = n_agents - len(_duplicates(approaches[:n_agents], self.similarity))
        approach_note = _plural(distinct, "distinct approach", "es") if distinct else "no approach"
        head = f"{_plural(n_agents, 'agent')}, {approach_note}"
        if not candidates:
            end_phase("verify", "nothing to verify")
            end_phase("select", "nothing to select")
            return run.result(None, None, "budget too small for the prompt")

        # 3. verify
        with meter.limit(caps["verify"]):
            scoring = await score_candidates(run, scorer, problem, candidates)
        end_phase("verify", f"{len(scoring.scores)} of {answered} scored by {scorer.name}")

        # 4. select
        groups: dict[str, list[Candidate]] = {}
        for c in candidates:
            if c.key is not None:
                groups.setdefault(c.key, []).append(c)
        if not groups:
            end_phase("select", "no agent stated an answer")
            return run.result(None, candidates[0].chosen, f"{head}; no agent stated an answer")
        # An answer's score: the best score among the agents that gave it (None: none scored).
        score = {
            k: max((scoring.scores[c.index] for c in g if c.index in scoring.scores), default=None)
            for k, g in groups.items()
        }
        summary = "answers " + " vs ".join(
            f"{g[0].answer} ({'unscored' if score[k] is None else f'score {score[k]:.2f}'}, "
            f"{_plural(len(g), 'agent')})"
            for k, g in groups.items()
        )
        # Answers the budget could not score do not contend with scored ones.
        scored = [k for k in groups if score[k] is not None]
        contenders = _top(score, scored) if scored else list(groups)
        picked = None  # the synthesis's own answer, when it picks one
        if len(groups) == 1:
            top, why = contenders[0], "as all agents agree"
        elif len(contenders) == 1:
            top, why = contenders[0], "by verifier"
        else:
            picked, reason = await self._synthesise(
                problem, run, candidates, approaches, scoring, len(candidates)
            )
            if picked is not None:
                top, why = picked.key, f"by synthesis: {reason}"
            else:  # synthesis did not fit or stated no answer
                top = max(contenders, key=lambda k: len(groups[k]))  # first seen on a tie
                why = f"by agent count ({reason})"
        # the selected answer's best-scored solution, in its own words (or the synthesis's)
        best = picked or max(groups[top], key=lambda c: scoring.scores.get(c.index, float("-inf")))
        selected = f"selected {best.answer} {why}"
        end_phase("select", selected)
        return run.result(best.answer, best.chosen, f"{head}; {summary}; {selected}")

    async def _propose(self, problem: Problem, run: Run) -> tuple[list[str | None], str]:
        """Ask for approaches, re-ask once for duplicates; returns one approach per agent (None when
        the share did not fit) and the phase's detail line."""
        req = run.meter.fit(self._propose_request(problem, self.agents, []))
        if req is None:
            return [None] * self.agents, "skipped: the budget share does not fit a proposal"
        c = await run.call(req)
        approaches: list[str | None] = [s.text.strip() for s in c.samples]
        dups = _duplicates(approaches, self.similarity)
        found = _plural(len(dups), "duplicate") if dups else "no duplicates"
        detail = f"{self.agents} proposed, {found}"
        if dups:
            taken = [a for j, a in enumerate(approaches) if j not in dups and a]
            req = run.meter.fit(self._propose_request(problem, len(dups), taken))
            if req is None:
                detail += " (no room to re-ask)"
            else:
                c = await run.call(req)
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
        question = f"Problem:\n{problem.as_text()}"
        if taken:
            question += "\n\nThese approaches are already taken:\n"
            question += "\n".join(f"- {a}" for a in taken)
            question += "\nPropose ONE approach that is clearly different from all of them."
        return Request.chat(
            question,
            system=PROPOSE_SYSTEM,
            **self.sampling.request_args(n=n, max_tokens=self.approach_tokens),
        )

    def _solve_requests(
        self, problem: Problem, run: Run, approaches: list[str | None], top_logprobs: int
    ) -> list[Request]:
        """One request per agent, max_tokens shrunk so that all of them together fit the share."""
        requests = []
        for j, approach in enumerate(approaches[: self.agents]):
            question = problem.question
            if approach:
                question += f"\n\nSolve it with this approach: {approach}"
            args = self.sampling.request_args(top_logprobs=top_logprobs, seed=seed_at(self.sampling, j))
            messages = chat_messages(problem, SYSTEM_PROMPT, question)
            requests.append(Request(messages=messages, **args))
        room = run.meter.remaining
        if room is None:
            return requests
        prompts = [run.model.count_prompt_tokens(r) for r in requests]

        def per_agent(m: int) -> int:
            return (room - sum(prompts[:m])) // m

        floor = max(1, self.sampling.max_tokens // 4)
        m = next((m for m in range(len(requests), 0, -1) if per_agent(m) >= floor), 0)
        if m == 0 and per_agent(1) >= 1:
            m = 1  # one solution with what there is beats several cut shorter still
        return [replace(r, max_tokens=min(r.max_tokens, per_agent(m))) for r in requests[:m]]

    async def _synthesise(
        self,
        problem: Problem,
        run: Run,
        candidates: list[Candidate],
        approaches: list[str | None],
        scoring: Scoring,
        index: int,
    ):
        """One call that picks the answer; (its candidate or None, reason)."""
        parts = [f"Problem:\n{problem.as_text()}\n"]
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
            **self.sampling.request_args(temperature=0.0, top_p=1.0),
        )
        req = run.meter.fit(req)  # the select phase may spend everything that is left
        if req is None:
            return None, "synthesis did not fit the budget"
        c = await run.generate(req, index)
        s = c.samples[0]
        synthesis = candidate(index, s, problem)
        run.emit(Sampled(index, s.text, synthesis.answer, s.completion_tokens, s.finish_reason))
        if synthesis.key is None:
            return None, "synthesis stated no answer"
        m = _REASON.search(s.text)
        return synthesis, (m.group(1).strip() if m else "no reason given")


def _phase_caps(cap: int | None) -> dict[str, int | None]:
    """Each phase's cap on the total spent by the end of that phase (cumulative shares)."""
    if cap is None:
        return {name: None for name, _ in SHARES}
    caps, share = {}, 0.0
    for name, s in SHARES:
        share += s
        caps[name] = max(1, int(cap * min(share, 1.0)))
    caps[SHARES[-1][0]] = cap  # the last phase may spend everything that is left
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
