"""``research``: the research loop as a strategy, so that ``ponder bench --task research`` grades
it like any other (accuracy against tokens, resumable cells, the same store and reports), and
``ponder serve --corpus DIR`` answers ``model="ponder/research"`` with a report.

A problem of the ``research`` task carries its corpus (``meta["documents"]``: name and text of
each generated document); the strategy indexes it in memory (once per corpus per process). Any
other problem is researched in the folder ``corpus`` (set by the server from ``--corpus``, never
by a client: a path in a request would let it read the server's files), indexed once per process
(and cached on disk, ``research.index``). The loop runs through the cell's Run (its budget meter,
its trace: the steps stream as events) with a journal kept in memory, and answers with the
report's ``Answer:`` line; the chosen text is the whole report, which the ``research`` grader
reads for citation precision. Seeds and temperature are the cell's.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from ponder.events import Chosen, Reported, Result
from ponder.problems.base import Problem
from ponder.research.citations import counts, counts_line
from ponder.research.corpus import Corpus, CorpusError, Document
from ponder.research.index import Index
from ponder.research.journal import Journal
from ponder.research.loop import LocalSource, ResearchConfig, Researcher
from ponder.research.report import render
from ponder.think.base import Run, StrategyBase

_INDEXES: dict[str, Index] = {}  # corpus digest -> index, for the problems of one generated set
_FOLDERS: dict[str, Index] = {}  # a served corpus folder -> its index (opened on first use)


def corpus_index(documents: list[dict]) -> Index:
    h = hashlib.sha256()
    for d in documents:
        h.update(f"{d['name']}\0{d['text']}\0".encode())
    key = h.hexdigest()
    if key not in _INDEXES:
        docs = [Document(d["name"], d["text"]) for d in documents]
        _INDEXES[key] = Index.of_corpus(Corpus("(generated)", docs))
    return _INDEXES[key]


async def folder_index(folder: str) -> Index:
    """The index of a corpus folder, built (or read from the disk cache) off the event loop."""
    if folder not in _FOLDERS:
        index, _info = await asyncio.to_thread(Index.open_folder, folder)
        _FOLDERS[folder] = index
    return _FOLDERS[folder]


@dataclass
class Research(StrategyBase):
    """Deep research over the problem's own corpus (see ``research/loop.py``)."""

    rounds: int = 3
    breadth: int = 2
    passages: int = 4
    temperature: float = 0.0
    corpus: str | None = None  # a folder to research in (the server's --corpus), for any problem

    name = "research"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.config()  # raises ValueError on a bad option

    def config(self) -> ResearchConfig:
        return ResearchConfig(
            rounds=self.rounds, breadth=self.breadth, passages=self.passages,
            temperature=self.temperature, seed=self.seed or 0,
        )  # fmt: skip

    async def solve(self, problem: Problem, run: Run) -> Result:
        documents = problem.meta.get("documents")
        if documents:
            index = corpus_index(documents)
        elif self.corpus:
            try:
                index = await folder_index(self.corpus)
            except CorpusError as e:
                return run.result(None, None, f"research: {e}")
        else:
            why = "run it on --task research, or serve with --corpus DIR"
            return run.result(None, None, f"research needs a corpus: {why}")
        sources = [LocalSource(index)]
        found = await Researcher(
            problem.question, sources, run, Journal.in_memory(), self.config()
        ).research()
        text = render(found)
        c = counts(found.sentences)
        run.emit(Reported("", c["sentences"], c["cited"], c["verified"]))
        how = (f"research: {found.rounds} rounds, {len(found.notes)} notes, stopped: "
               f"{found.stop}; {counts_line(c).rstrip('.')}")  # fmt: skip
        chosen = Chosen(0, text, found.usage.completion_tokens, "stop")
        return run.result(found.answer if found.written else None, chosen, how)
