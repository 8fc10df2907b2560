"""The research loop: plan sub-questions -> search -> read passages -> take notes that quote their
source span -> assess what is still unknown or contradictory -> re-plan -> ... -> write, check the
citations.

The shape is open_deep_research's (LangChain: a supervisor plans, researchers work on
sub-questions in parallel, their findings are compressed into notes, a writer reports) with
STORM's habit of asking sub-questions before searching (Shao et al. 2024), over a fixed local
corpus as BrowseComp-Plus evaluates deep research (Chen et al. 2025). The researchers of a round
run concurrently when the backend serves concurrent calls (explore in parallel, then merge in a
fixed order). Departures, mostly for small models and for resuming:

- Notes are quotes, not summaries: a model's note is kept only when it matches a sentence of a
  passage it read (its content words), and the note *is* that sentence with its character span,
  so nothing the writer sees is unsourced (``notes.py``). When the model's notes quote nothing,
  the retriever quotes the passage sentence sharing the most words with the sub-question
  (``extractive``).
- The first round always searches the question itself besides the planned sub-questions: a
  tiny model's plan may be useless, the question never is.
- Dead ends are explicit: ``dead_end`` rounds without a new note, or a plan of only repeated
  queries, emit ``DeadEnd`` and a re-plan that is told what was searched; after ``replans``
  re-plans the research stops and the report says why.
- Every step is journaled under a key naming its place in the loop (``journal.py``), and the
  loop's path depends only on the steps' recorded outputs: ``--resume`` replays it exactly. To
  keep that true with parallel researchers, a round's searches run in sub-question order before
  the note-taking calls run concurrently, and their notes are merged in that order.
- All calls go through the run's budget meter; the research phase may spend at most
  ``1 - reserve`` of the budget, the rest is kept for writing the report and checking it. A time
  limit cuts a call in flight (``should_stop``) and ends the research the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ponder.budget import Usage
from ponder.events import Assessed, CitationChecked, DeadEnd, Noted, Planned, Searched
from ponder.models.base import Request
from ponder.problems.base import Problem
from ponder.research.citations import (
    Sentence,
    check_sentences,
    distinct,
    parse_sentence,
    split_draft,
)
from ponder.research.corpus import Passage
from ponder.research.index import Index
from ponder.research.journal import Journal, request_digest, usage_from
from ponder.research.notes import Note, extract_notes, read_notes, sentence_spans
from ponder.think.base import Run
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt
from ponder.verify.support import SupportJudge, content_words

PLAN_SYSTEM = (
    "You plan research. Break the question into at most {n} short sub-questions that a search "
    "engine can answer. Write one sub-question per line and nothing else."
)
NOTES_SYSTEM = (
    "You are a research assistant. From the passages, copy the sentences that help answer the "
    "question, one per line, as P<number>: <the sentence, copied exactly>. "
    "Write NONE if no passage helps."
)
ASSESS_SYSTEM = (
    "You review research notes. For each fact the question still needs, write a line "
    "UNKNOWN: <a question to search for>. For each conflict between notes, write a line "
    "CONTRADICTION: <what conflicts>. If the notes answer the question, write DONE."
)
REPLAN_SYSTEM = (
    "Earlier searches found nothing new. Propose at most {n} different sub-questions, using "
    "other words than before. Write one sub-question per line and nothing else."
)
WRITE_SYSTEM = (
    "You write a short research report from numbered notes. Use only facts from the notes. "
    "Write 2 to 6 sentences; end every sentence with the number of the note it uses in "
    "brackets, like [2]. Finish with one line: Answer: <short answer>."
)
STEP_TOKENS = {"plan": 128, "notes": 256, "assess": 128, "replan": 128, "write": 384}
_QUESTION_LINE = re.compile(
    r"^\s*(?:[-*•]|\(?\d+[.):]|q\d+\s*[:.)]|sub-?question\s*\d*\s*:)?\s*", re.I
)


@dataclass(frozen=True)
class ResearchConfig:
    """How a research run spends its budget; checked once, here."""

    rounds: int = 4  # research rounds (plan -> search -> notes -> assess) at most
    breadth: int = 3  # sub-questions researched per round (in parallel where the backend can)
    passages: int = 4  # passages read per search (k)
    dead_end: int = 2  # rounds in a row without a new note before a re-plan
    replans: int = 2  # re-plans after dead ends before the research stops
    reserve: float = 0.3  # share of the budget kept back for writing and checking the report
    temperature: float = 0.0
    seed: int = 0
    extractive: bool = True  # quote the best-matching sentence when the model's notes quote nothing
    concurrency: int | None = None  # calls at once; None: 4 for HTTP and scripted backends, else 1

    def __post_init__(self) -> None:
        for name in ("rounds", "breadth", "passages", "dead_end"):
            if getattr(self, name) < 1:
                raise ValueError(f"research: {name} must be at least 1, got {getattr(self, name)}")
        if self.replans < 0:
            raise ValueError(f"research: replans must be 0 or more, got {self.replans}")
        if not 0 <= self.reserve < 1:
            raise ValueError(
                f"research: reserve is a share of the budget in [0, 1), got {self.reserve}"
            )
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"research: temperature must be from 0 to 2, got {self.temperature}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"research: concurrency must be at least 1, got {self.concurrency}")


class Source(Protocol):
    """Where passages come from: the local corpus index, a web search provider."""

    name: str

    async def search(self, query: str, k: int) -> list[Passage]: ...


class LocalSource:
    name = "corpus"

    def __init__(self, index: Index) -> None:
        self.index = index

    async def search(self, query: str, k: int) -> list[Passage]:
        return [p for p, _ in self.index.search(query, k)]


@dataclass
class Findings:
    """What a research run found and wrote: the sources (numbered from 1 in ``sources``' order),
    the notes, the checked sentences of the written findings and the answer line."""

    question: str
    sources: list[Passage] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    answer: str | None = None
    written: bool = False  # a draft was written (False: nothing to write, or no budget/time left)
    stop: str = ""  # why the research ended
    rounds: int = 0
    searches: int = 0
    read: int = 0  # distinct passages read
    open_questions: list[str] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)
    steps: int = 0  # completed steps (searches and model calls), replayed ones included
    replayed: int = 0
    usage: Usage = field(default_factory=Usage)


class Stop(Exception):
    """The research must end now (budget or time used up); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _norm(question: str) -> str:
    return " ".join(content_words(question))


def _question_lines(text: str, n: int) -> list[str]:
    out = []
    for line in text.splitlines():
        line = _QUESTION_LINE.sub("", line).strip().strip('"').strip()
        if len(line.split()) >= 2 and len(line) <= 300:
            out.append(line)
    return out[:n]


def _backend_concurrency(run: Run) -> int:
    backend = run.model.describe().get("backend") if hasattr(run.model, "describe") else None
    return 4 if backend in ("openai", "scripted") else 1


class Researcher:
    """One research run over ``sources``, through ``run`` (its meter and its event stream),
    recording every step in ``journal``. ``deadline``: a ``time.monotonic()`` value, or None."""

    def __init__(
        self,
        question: str,
        sources: list[Source],
        run: Run,
        journal: Journal,
        config: ResearchConfig | None = None,
        deadline: float | None = None,
    ) -> None:
        self.question, self.sources, self.run, self.journal = question, sources, run, journal
        self.config, self.deadline = config or ResearchConfig(), deadline
        self.found = Findings(question)
        self.read: dict[str, Passage] = {}
        self.asked: set[str] = set()
        self.noted: set[tuple[str, int, int]] = set()
        self._gate = asyncio.Semaphore(self.config.concurrency or _backend_concurrency(run))
        self._t0, self._offset = time.monotonic(), journal.elapsed
        if journal.lost.calls or journal.lost.total_tokens:
            run.meter.charge(journal.lost, journal.lost.total_tokens, "calls cut off earlier")

    # --- steps: each completed one journaled; a recorded one replayed instead of redone ---

    def elapsed(self) -> float:
        """Seconds of run time, over every session of the run."""
        return self._offset + time.monotonic() - self._t0

    def _check_time(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise Stop("the time limit was reached")

    def _replay(self, key: str, digest: str) -> dict | None:
        record = self.journal.get(key, digest)
        if record is None:
            return None
        usage = usage_from(record.get("usage"))
        if usage.calls or usage.total_tokens:
            self.run.meter.charge(usage, usage.total_tokens, f"replayed step {key}")
            self.run.spent()
        self.found.steps += 1
        self.found.replayed += 1
        return record["output"]

    def _request(self, key: str, step: str, system: str, user: str) -> Request:
        seed = self.config.seed + zlib.crc32(key.encode()) % 1_000_003  # distinct draws per step
        return Request.chat(
            user, system=system, max_tokens=STEP_TOKENS[step],
            temperature=self.config.temperature, seed=seed,
        )  # fmt: skip

    async def _call(self, key: str, request: Request) -> str:
        """One model call as a step: its text (recorded, or new and then recorded)."""
        digest = request_digest(request)  # of the request as planned, before fitting the budget
        if (output := self._replay(key, digest)) is not None:
            return output["text"]
        async with self._gate:
            self._check_time()
            fitted = self.run.meter.fit(request)
            if fitted is None:
                raise Stop("the budget was used up")
            deadline = self.deadline
            cut = None if deadline is None else (lambda i, s: time.monotonic() >= deadline)
            completion = await self.run.meter.generate(fitted, should_stop=cut)
        self.run.spent()
        sample = completion.samples[0]
        if sample.finish_reason == "cancelled":  # cut by the time limit: not a completed step
            self.journal.add_lost(completion.usage, self.elapsed())
            raise Stop("the time limit was reached")
        self.journal.add(key, digest, {"text": sample.text}, completion.usage, self.elapsed())
        self.found.steps += 1
        return sample.text

    async def _search(self, key: str, source: Source, query: str) -> list[Passage]:
        k = self.config.passages
        digest = hashlib.sha256(json.dumps([source.name, query, k]).encode()).hexdigest()[:16]
        if (output := self._replay(key, digest)) is not None:
            return [Passage(**p) for p in output["hits"]]
        self._check_time()
        hits = await source.search(query, k)
        self.journal.add(key, digest, {"hits": [asdict(p) for p in hits]}, None, self.elapsed())
        self.found.steps += 1
        return hits

    async def _judge(self, i: int, passage: Passage, claim: str) -> Score | None:
        key, scorer = f"verify.s{i}", SupportJudge()
        problem, attempt = Problem(key, passage.text), Attempt(claim)
        digest = request_digest(scorer.request(problem, attempt))
        if (output := self._replay(key, digest)) is not None:
            return Score(output["ok"], output["value"], output["reason"])
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return None  # out of time: the sentence stays unverified
        score = await self.run.score(scorer, problem, attempt)
        if score is None:
            return None
        out = {"ok": score.ok, "value": score.value, "reason": score.reason}
        self.journal.add(key, digest, out, score.usage, self.elapsed())
        self.found.steps += 1
        return score

    # --- the loop ---

    async def research(self) -> Findings:
        cap = self.run.meter.cap
        research_cap = None if cap is None else int(cap * (1 - self.config.reserve))
        try:
            with self.run.meter.limit(research_cap):
                await self._rounds()
        except Stop as e:
            self.found.stop = e.reason
        try:
            await self._write()
        except Stop as e:
            self.found.stop += ("; " if self.found.stop else "") + f"report not written: {e.reason}"
        self.found.read = len(self.read)
        self.found.usage = self.run.meter.spent
        return self.found

    async def _rounds(self) -> None:
        c, found = self.config, self.found
        questions, why = await self._plan(), "first plan"
        stalled = replans = 0
        while True:
            if found.rounds >= c.rounds:
                found.stop = f"all {c.rounds} rounds used"
                return
            fresh: list[str] = []
            for q in questions:
                if _norm(q) and _norm(q) not in self.asked | {_norm(f) for f in fresh}:
                    fresh.append(q)
            fresh = fresh[: c.breadth]
            if fresh:
                found.rounds += 1
                self.run.emit(Planned(found.rounds, fresh, why))
                new = await self._round(found.rounds, fresh)
                stalled = 0 if new else stalled + 1
                unknown, contradictions, done = await self._assess(found.rounds)
                found.open_questions, found.contradictions = unknown, contradictions
                if done:
                    found.stop = "the notes answer the question"
                    return
                if found.notes and not unknown and not contradictions:
                    found.stop = "the assessment named nothing left to search for"
                    return
                questions, why = unknown + contradictions, f"open after round {found.rounds}"
                if stalled < c.dead_end:
                    continue
                reason = f"{stalled} rounds in a row without new evidence"
            else:
                reason = "no new query left to search (every one proposed was searched before)"
            self.run.emit(DeadEnd(found.rounds, reason, sorted(self.asked)))
            if replans >= c.replans:
                found.stop = f"dead end: {reason}, after {replans} re-plans"
                return
            replans, stalled = replans + 1, 0
            questions = await self._replan(replans)
            why = f"re-plan {replans} after a dead end: {reason}"

    async def _plan(self) -> list[str]:
        n = self.config.breadth
        req = self._request("plan", "plan", PLAN_SYSTEM.format(n=n), f"Question: {self.question}")
        subs = _question_lines(await self._call("plan", req), n)
        return [self.question] + [q for q in subs if _norm(q) != _norm(self.question)]

    async def _replan(self, count: int) -> list[str]:
        n = self.config.breadth
        asked = "\n".join(f"- {q}" for q in sorted(self.asked)) or "- (nothing)"
        user = f"Question: {self.question}\n\nSearched already:\n{asked}\n\n{self._notes_text()}"
        req = self._request(f"replan{count}", "replan", REPLAN_SYSTEM.format(n=n), user)
        return _question_lines(await self._call(f"replan{count}", req), n)

    async def _round(self, r: int, questions: list[str]) -> int:
        """Search for every sub-question, then take notes on each one's passages concurrently
        (a passage read before is read again for a new sub-question, unless every sentence of
        it is a note already); the number of new notes."""
        shares: list[list[Passage]] = []  # the passages each sub-question's notes read
        for i, q in enumerate(questions):
            self.asked.add(_norm(q))
            share: list[Passage] = []
            for source in self.sources:
                hits = await self._search(f"r{r}.q{i}.search.{source.name}", source, q)
                self.found.searches += 1
                unread = [p for p in hits if p.ref not in self.read]
                self.run.emit(Searched(q, [p.ref for p in hits], len(unread), source.name))
                self.read.update((p.ref, p) for p in unread)
                share += [p for p in hits if p not in share and not self._exhausted(p)]
            shares.append(share)
        jobs = [self._take_notes(f"r{r}.q{i}.notes", q, ps)
                for i, (q, ps) in enumerate(zip(questions, shares, strict=True)) if ps]  # fmt: skip
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        new, stop = 0, None
        for outcome in outcomes:
            if isinstance(outcome, Stop):
                stop = stop or outcome
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            for note in outcome:
                if note.span not in self.noted:
                    self.noted.add(note.span)
                    self.found.notes.append(note)
                    if note.passage.ref not in {p.ref for p in self.found.sources}:
                        self.found.sources.append(note.passage)
                    new += 1
        if stop is not None:
            raise stop
        return new

    def _exhausted(self, passage: Passage) -> bool:
        """Every sentence of the passage is a note already: reading it again can add nothing."""
        return all((passage.file, passage.start + s, passage.start + e) in self.noted
                   for s, e in sentence_spans(passage.text))  # fmt: skip

    async def _take_notes(self, key: str, question: str, read: list[Passage]) -> list[Note]:
        shown = "\n\n".join(f"[P{i}] {p.text}" for i, p in enumerate(read, 1))
        user = f"Question: {question}\n\nPassages:\n{shown}"
        text = await self._call(key, self._request(key, "notes", NOTES_SYSTEM, user))
        notes, rejected = read_notes(text, read)
        if not notes and self.config.extractive:
            notes = extract_notes(question, read)
        self.run.emit(
            Noted(question, [p.ref for p in read], [n.to_dict() for n in notes], rejected)
        )
        return notes

    def _numbered(self) -> list[tuple[int, Passage, list[Note]]]:
        return [(i, p, [n for n in self.found.notes if n.passage.ref == p.ref])
                for i, p in enumerate(self.found.sources, 1)]  # fmt: skip

    def _notes_text(self) -> str:
        if not self.found.notes:
            return "Notes so far: none."
        lines = [f"[{i}] " + " ".join(n.quote for n in notes) for i, _, notes in self._numbered()]
        return "Notes so far:\n" + "\n".join(lines)

    async def _assess(self, r: int) -> tuple[list[str], list[str], bool]:
        if not self.found.notes:  # nothing to assess: no call; the round found nothing
            self.run.emit(Assessed(r, [], [], False))
            return [], [], False
        user = f"Question: {self.question}\n\nRound {r}. {self._notes_text()}"
        text = await self._call(
            f"r{r}.assess", self._request(f"r{r}.assess", "assess", ASSESS_SYSTEM, user)
        )
        unknown, contradictions = [], []
        for line in text.splitlines():
            head, sep, rest = line.strip().lstrip("-*• ").partition(":")
            if sep and rest.strip() and head.strip().upper() == "UNKNOWN":
                unknown.append(rest.strip())
            elif sep and rest.strip() and head.strip().upper() == "CONTRADICTION":
                contradictions.append(rest.strip())
        n = self.config.breadth
        unknown, contradictions = unknown[:n], contradictions[:n]
        # done only when the model says so; a reply naming nothing open, without DONE, ends the
        # research too (there is nothing to search for) but is not reported as an answer found
        done = not unknown and not contradictions and "DONE" in text.upper()
        self.run.emit(Assessed(r, unknown, contradictions, done))
        return unknown, contradictions, done

    async def _write(self) -> None:
        found = self.found
        if not found.notes:
            return  # nothing found: nothing to write, and no citation to invent
        self._check_time()
        lines = [f"[{i}] " + " ".join(n.quote for n in notes) for i, _, notes in self._numbered()]
        user = f"Question: {self.question}\n\nNotes:\n" + "\n".join(lines)
        draft = await self._call("write", self._request("write", "write", WRITE_SYSTEM, user))
        raw, found.answer = split_draft(draft)
        found.sentences = distinct([parse_sentence(s, len(found.sources)) for s in raw])
        found.written = True
        await check_sentences(found.sentences, found.sources, self._judge)
        for s in found.sentences:
            self.run.emit(CitationChecked(s.text, s.cites, s.verified, s.status))
