"""`ponder research` in process: the loop driven end to end by a scripted researcher over a
generated corpus, the real tantivy index and its cache, the citation check, the bad inputs, and
the `research` strategy graded as a bench cell."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import research_fake  # noqa: E402

from ponder.budget import Budget  # noqa: E402
from ponder.events import (  # noqa: E402
    Assessed,
    CitationChecked,
    DeadEnd,
    Noted,
    Planned,
    Searched,
)
from ponder.models import ScriptedModel  # noqa: E402
from ponder.problems import load_problems  # noqa: E402
from ponder.problems.research import write_corpus  # noqa: E402
from ponder.research.corpus import CorpusError, extract, read_corpus  # noqa: E402
from ponder.research.index import Index  # noqa: E402
from ponder.research.journal import Journal, JournalError  # noqa: E402
from ponder.research.loop import WRITE_SYSTEM, LocalSource, ResearchConfig, Researcher  # noqa: E402
from ponder.research.report import render  # noqa: E402
from ponder.think.base import Run  # noqa: E402


def problem(hops: int, seed: int = 0):
    return next(p for p in load_problems("research", limit=20, seed=seed) if p.meta["hops"] == hops)


@pytest.fixture
def corpus(tmp_path):
    p = problem(3)
    folder = write_corpus(tmp_path / "corpus", p.meta["documents"])
    index, info = Index.open_folder(folder, tmp_path / "cache")
    return p, folder, index, info


def research(question, index, model, budget=None, config=None, journal=None):
    events = []
    run = Run(model, Budget(budget), events.append)
    found = asyncio.run(
        Researcher(
            question, [LocalSource(index)], run, journal or Journal.in_memory(), config
        ).research()
    )
    return found, events, run


def test_the_loop_end_to_end_cites_what_it_read_and_catches_a_planted_claim(corpus):
    p, folder, index, _ = corpus
    model = research_fake.model(plant=True)
    found, events, run = research(p.question, index, model)

    # the typed trace: plan -> search -> notes -> assess, over several rounds, every event timed
    kinds = [type(e) for e in events]
    for kind in (Planned, Searched, Noted, Assessed, CitationChecked):
        assert kind in kinds
    assert max(e.round for e in events if isinstance(e, Planned)) >= 2  # multi-hop: re-planned
    assert all(e.t >= 0 for e in events) and events[-1].t >= events[0].t
    assert found.answer == p.answer  # the chain founder -> birthplace -> river was followed

    text = render(found)
    sources = {n: (f, int(a), int(b)) for n, f, a, b in
               re.findall(r"^(\d+)\. `([^`]+)`, characters (\d+)–(\d+)", text, re.M)}  # fmt: skip
    findings = text.split("## Findings")[1].split("\n## ")[0]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", findings)}
    assert cited and all(str(n) in sources for n in cited)  # every citation resolves
    for i, passage in enumerate(found.sources, 1):  # to (file, span) of the file's own text
        assert sources[str(i)] == (passage.file, passage.start, passage.end)
        assert extract(folder / passage.file)[passage.start : passage.end] == passage.text
    for note in found.notes:  # notes quote their source span exactly
        assert extract(folder / note.passage.file)[note.start : note.end] == note.quote
    assert set(p.meta["gold"]) <= {s.file for s in found.sources}

    planted = [s for s in found.sentences if research_fake.PLANTED in s.text]
    assert len(planted) == 1 and planted[0].status == "unsupported"
    assert "judge said No" in planted[0].reason  # overlap failed ("moon"), then the judge
    assert "born on the Moon" in text and "*(not supported by the cited source)*" in text
    n = len(found.sentences)
    assert text.rstrip().splitlines()[-1] == (
        f"Citations: {n} sentences, {n} cited, {n - 1} verified ({n - 1} by word overlap, "
        "0 by the judge); 1 unsupported (marked in the text)."
    )
    assert run.meter.spent.calls == len(model.requests)


def test_the_index_is_tantivy_cached_by_path_size_and_mtime(tmp_path):
    folder = tmp_path / "c"
    write_corpus(folder, problem(2).meta["documents"])
    index, info = Index.open_folder(folder, tmp_path / "cache")
    assert info.built and type(index._index).__module__.startswith("tantivy")
    again, info2 = Index.open_folder(folder, tmp_path / "cache")
    assert not info2.built and len(again.passages) == len(index.passages)  # no re-indexing
    hit = again.search("Which academy meets each spring?", 3)[0][0]
    assert extract(folder / hit.file)[hit.start : hit.end] == hit.text
    changed = next(folder.glob("people/*.md"))
    changed.write_text(changed.read_text() + "\nA new line about bells.\n")
    _, info3 = Index.open_folder(folder, tmp_path / "cache")
    assert info3.built  # a changed file is a new key, never a stale index


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF whose page shows ``text``."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]  # fmt: skip
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1,
        xref,
    )


def test_every_file_type_is_read_and_bad_files_are_skipped_and_listed(tmp_path):
    c = tmp_path / "c"
    c.mkdir()
    (c / "a.md").write_text("# Bridges\n\nThe Velmora bridge has nine arches.\n")
    (c / "b.html").write_text(
        "<html><body><nav>Home</nav><p>The Orlen ferry crosses at dawn.</p></body></html>"
    )
    (c / "c.pdf").write_bytes(_pdf("The Tarsio bell was cast in 1741."))
    (c / "empty.txt").write_text("  \n")
    (c / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (c / "binary.txt").write_bytes(b"\x00\x01\x02")
    (c / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (c / "image.png").write_bytes(b"\x89PNG")
    corpus = read_corpus(c)
    texts = {d.name: d.text for d in corpus.documents}
    assert set(texts) == {"a.md", "b.html", "c.pdf"}
    assert "Orlen ferry" in texts["b.html"] and "1741" in texts["c.pdf"]
    skipped = dict(corpus.skipped)
    assert skipped["empty.txt"] == "empty" and skipped["latin1.txt"] == "not UTF-8 text"
    assert skipped["binary.txt"].startswith("unreadable") and skipped["broken.pdf"].startswith(
        "unreadable"
    )
    assert corpus.ignored == 1

    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "empty.md").write_text("")
    (nothing / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(CorpusError) as e:
        read_corpus(nothing)
    assert "nothing indexable" in str(e.value) and "empty.md (empty)" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_question_that_finds_nothing_says_so_and_cites_nothing(corpus):
    _, _, index, _ = corpus
    model = research_fake.model(stall=True)
    found, events, _ = research("Zyxwv qwrtp?", index, model)
    text = render(found)
    assert found.notes == [] and found.sources == []
    assert "Nothing in the sources answers this question" in text
    assert not re.search(r"\[\d+\]", text) and "## Sources" not in text
    assert text.rstrip().endswith("Citations: 0 sentences, 0 cited, 0 verified.")
    assert not any(
        r.messages[0]["content"] == WRITE_SYSTEM for r in model.requests
    )  # nothing to write
    assert any(isinstance(e, DeadEnd) for e in events)


def test_dead_ends_are_visible_and_trigger_a_re_plan(corpus):
    p, _, index, _ = corpus
    config = ResearchConfig(rounds=6, dead_end=1, replans=1, extractive=False)
    found, events, _ = research(p.question, index, research_fake.model(stall=True), config=config)
    dead = [e for e in events if isinstance(e, DeadEnd)]
    replans = [e for e in events if isinstance(e, Planned) and e.why.startswith("re-plan")]
    assert dead and replans and events.index(dead[0]) < events.index(replans[0])
    assert found.stop.startswith("dead end") and "after 1 re-plans" in found.stop


def test_the_budget_is_a_hard_limit(corpus):
    p, _, index, _ = corpus
    for budget in (300, 900, 1500):
        found, _, run = research(p.question, index, research_fake.model(plant=True), budget=budget)
        assert run.meter.spent.total_tokens <= budget
        assert "budget" in found.stop or found.written
        assert render(found).rstrip().splitlines()[-1].startswith("Citations: ")


def test_a_corrupt_journal_is_an_error_naming_its_line_and_a_cut_last_line_is_dropped(tmp_path):
    journal = Journal.create(tmp_path / "run", {"question": "q"})
    journal.add("plan", "d1", {"text": "x"}, None, 1.0)
    journal.add("r1.q0.search.corpus", "d2", {"hits": []}, None, 2.0)
    journal.close()
    path = tmp_path / "run" / "journal.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"type": "step", "key": "r1.q0.no')  # a write cut by kill -9
    reopened = Journal.open(tmp_path / "run")
    assert set(reopened.steps) == {"plan", "r1.q0.search.corpus"} and path.read_bytes() == good
    lines = good.decode().splitlines()
    for bad, why in (("{not json", "not valid JSON"), ('{"type": "step"}', "a step needs a key"),
                     ('{"type": "nope"}', "unknown record type")):  # fmt: skip
        path.write_text("\n".join(lines[:2] + [bad] + lines[2:]) + "\n")
        with pytest.raises(JournalError) as e:
            Journal.open(tmp_path / "run")
        assert f"journal.jsonl line 3: {why}" in str(e.value)
    with pytest.raises(JournalError, match="already holds a research run"):
        Journal.create(tmp_path / "run", {})


def test_the_research_strategy_runs_as_a_bench_cell_graded_with_citation_precision():
    import ponder.cli
    from ponder.bench.runner import Cell, run_cell
    from ponder.think import parse_strategy

    ponder.cli.build_parser()  # the command line makes the strategy known to bench
    strategy = parse_strategy("research:rounds=3,breadth=3")
    p = problem(3)
    row = asyncio.run(run_cell("t", Cell(p, strategy, Budget(), 0), research_fake.model()))
    assert row.correct and row.answer == p.answer
    assert re.search(
        r"citation precision \d+/\d+ = 0\.\d\d; 3 of 3 needed documents cited", row.how
    )
    assert any(e["type"] == "Reported" for e in row.trace)
    closed = next(x for x in load_problems("research", limit=20) if x.meta["hops"] == 2)
    guess = ScriptedModel(["The founder was probably born in Paris. \\boxed{Paris}"])
    row = asyncio.run(run_cell("t", Cell(closed, parse_strategy("cot"), Budget(), 0), guess))
    assert not row.correct and row.answer == "Paris"  # closed book: the world is fictional


def test_the_time_limit_is_hard_it_cuts_a_call_in_flight(corpus, tmp_path):
    import time

    p, _, index, _ = corpus
    journal = Journal.create(tmp_path / "run", {"question": p.question})
    run = Run(research_fake.model(token_delay=0.02), Budget(), None)
    start = time.monotonic()
    researcher = Researcher(p.question, [LocalSource(index)], run, journal, deadline=start + 0.5)
    found = asyncio.run(researcher.research())
    assert time.monotonic() - start < 1.5  # the 0.5 s limit, plus one token at most
    assert "time limit" in found.stop
    journal.close()
    cut = Journal.open(tmp_path / "run")
    assert cut.lost.calls >= 1  # what the cut call spent still counts on resume
    assert render(found).rstrip().splitlines()[-1].startswith("Citations: ")


def test_the_check_corrects_citations_it_can_and_marks_the_rest():
    from ponder.research.citations import (
        check_sentences,
        counts,
        counts_line,
        distinct,
        parse_sentence,
    )
    from ponder.research.corpus import Passage
    from ponder.verify.score import Score

    sources = [Passage("a.md", 0, 30, "Orlen Vask was born in Tarsio."),
               Passage("b.md", 0, 41, "The Quill Society was founded by Orlen Vask.")]  # fmt: skip
    asked = []

    async def judge(i, passage, claim):
        asked.append(claim)
        return Score(False, 0.0, "judge said No")

    raw = ["Orlen Vask was born in Tarsio [1].", "The Quill Society was founded by Orlen Vask [1].",
           "In Tarsio, Orlen Vask was born.", "Orlen Vask was born on the Moon [1] [7].",
           "It rained.", "It rained."]  # fmt: skip
    sentences = distinct([parse_sentence(r, len(sources)) for r in raw])
    asyncio.run(check_sentences(sentences, sources, judge))
    statuses = [s.status for s in sentences]
    assert statuses == ["overlap", "revised", "added", "unsupported", "uncited"]
    assert sentences[1].cites == [2] and sentences[2].cites == [1] and sentences[3].dropped == [7]
    assert asked == ["Orlen Vask was born on the Moon."]  # the judge only where all else fails
    assert counts_line(counts(sentences)) == (
        "Citations: 5 sentences, 4 cited, 3 verified (1 by word overlap, 0 by the judge, 2 with a "
        "citation added or corrected by the check); 1 unsupported, 1 uncited (marked in the text)."
    )


@pytest.mark.slow
def test_ponder_serve_answers_ponder_research_from_its_corpus(tmp_path):
    """`ponder serve --corpus DIR`: model="ponder/research" answers with the cited report, the
    steps stream as reasoning_content, and a client can neither name a folder nor research
    without one."""
    import openai

    import ponder.cli
    from ponder.serve.background import BackgroundServer
    from ponder.serve.settings import ServeSettings

    ponder.cli.build_parser()  # the command line makes the research strategy known
    p = problem(3)
    folder = write_corpus(tmp_path / "corpus", p.meta["documents"])
    settings = ServeSettings(corpus=str(folder), max_budget=60_000)
    with BackgroundServer(research_fake.model(), settings) as srv:
        c = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        ask = [{"role": "user", "content": p.question}]
        done = c.chat.completions.create(model="ponder/research:rounds=3,breadth=3", messages=ask)
        report = done.choices[0].message.content
        assert re.search(r"\[\d+\]", report) and p.answer in report  # cited, and answers
        assert done.model_extra["ponder"]["answer"] == p.answer
        stream = c.chat.completions.create(
            model="ponder/research:rounds=3,breadth=3", messages=ask, stream=True
        )
        reasoning = "".join(
            (ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
            for ch in stream if ch.choices
        )  # fmt: skip
        assert "· plan, round 1:" in reasoning and "· searched corpus for" in reasoning
        assert "· report:" in reasoning
        with pytest.raises(openai.BadRequestError, match="corpus is the server's"):
            c.chat.completions.create(model="ponder/research:corpus=/etc", messages=ask)
    with BackgroundServer(research_fake.model(), ServeSettings()) as srv:
        c = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="--corpus DIR"):
            c.chat.completions.create(model="ponder/research", messages=ask)
    with pytest.raises(ValueError, match="not a directory"):
        ServeSettings(corpus=str(tmp_path / "nope"))
