"""`ponder research "QUESTION" --corpus DIR`: a research run in RUN_DIR, resumable with `--resume`.

Everything the user can get wrong (no question, a missing folder, nothing indexable, a corrupt
journal, a budget below what a resumed run already spent) is one ``ponder: error:`` line before
any model work. Progress (round, steps, sources read, tokens, time) is one live line on stderr;
the report's path and its counts line go to stdout.

``add_research_commands`` also registers the ``research`` strategy (``think.register_strategy``),
so that ``ponder bench --task research --strategy research`` runs the same loop: bench sits beside
research in the layers and cannot import it; the command line, above both, joins them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from ponder import __version__
from ponder.argtypes import integer, number, positive_int
from ponder.budget import Budget
from ponder.errors import UserError
from ponder.events import DeadEnd, Event, Noted, Planned, Reported, Searched, Spent
from ponder.models import resolve
from ponder.research.citations import counts, counts_line
from ponder.research.index import Index
from ponder.research.journal import Journal
from ponder.research.loop import LocalSource, ResearchConfig, Researcher
from ponder.research.report import render, write_report
from ponder.think.base import Run

REPORT = "report.md"
_TUNABLE = ("rounds", "breadth", "passages", "seed")  # flags stored in the journal's config


def add_research_commands(sub) -> None:
    r = sub.add_parser(
        "research", help="research a question over a folder of documents, with checked citations"
    )
    r.add_argument("question", nargs="?", help="the question (not with --resume)")
    r.add_argument("--corpus", metavar="DIR", help="folder of .txt, .md, .html and .pdf files")
    r.add_argument(
        "--web", metavar="URL", help="a SearXNG-compatible search endpoint, besides --corpus"
    )
    r.add_argument("--model", help="model spec ($PONDER_MODEL or 'default')")
    r.add_argument(
        "--threads", type=positive_int, help="CPU threads of an in-process model ($PONDER_THREADS)"
    )
    r.add_argument("--budget", type=positive_int, help="hard cap on total tokens over all calls")
    r.add_argument("--hours", type=number, help="hard limit on run time (over every resume)")
    r.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/research/TIME-SLUG)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    r.add_argument("--seed", type=integer, help="seed of the model's sampling (default 0)")
    r.add_argument("--rounds", type=positive_int, help="research rounds at most (default 4)")
    r.add_argument("--breadth", type=positive_int, help="sub-questions per round (default 3)")
    r.add_argument("--passages", type=positive_int, help="passages read per search (default 4)")
    r.set_defaults(func=cmd_research)

    from ponder.research.strategy import Research
    from ponder.think import register_strategy

    register_strategy(Research)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "question"


class Progress:
    """The live line, and a printed line for each plan and dead end."""

    def __init__(self, err: Console, budget: int | None, hours: float | None) -> None:
        self.err, self.budget, self.hours = err, budget, hours
        self.researcher: Researcher | None = None
        self.round, self.tokens, self.doing = 0, 0, "planning"
        self.live = Live(self.render(), console=err, refresh_per_second=4, transient=False)

    def render(self) -> str:
        r = self.researcher
        steps = read = notes = 0
        spent, replayed = 0.0, ""
        if r is not None:
            steps, read, notes, spent = r.found.steps, len(r.read), len(r.found.notes), r.elapsed()
            replayed = f" ({r.found.replayed} replayed)" if r.found.replayed else ""
        cap = f" / {self.budget:,}" if self.budget else ""
        limit = f" / {self.hours * 3600:,.0f}" if self.hours else ""
        return (
            f"[cyan]research[/cyan] · round {self.round} · {steps} steps{replayed} · "
            f"{read} sources read · {notes} notes · {self.tokens:,}{cap} tokens · "
            f"{spent:,.0f}{limit} s · {escape(self.doing)}"
        )

    def on_event(self, ev: Event) -> None:
        if isinstance(ev, Planned):
            self.round = ev.round
            self.live.console.print(
                f"round {ev.round} ({escape(ev.why)}): " + escape(" | ".join(ev.questions))
            )
        elif isinstance(ev, Searched):
            self.doing = f"searched {ev.query[:50]!r}: {ev.new} new"
        elif isinstance(ev, Noted):
            self.doing = f"{len(ev.notes)} notes on {ev.question[:50]!r}"
        elif isinstance(ev, DeadEnd):
            self.live.console.print(
                f"[yellow]dead end[/yellow] after round {ev.round}: {escape(ev.reason)}"
            )
        elif isinstance(ev, Spent):
            self.tokens = ev.usage.total_tokens
        elif isinstance(ev, Reported):
            self.doing = "report written"
        self.live.update(self.render())


def _settings(args: argparse.Namespace) -> tuple[dict, ResearchConfig]:
    """The run's header and config: from the flags for a new run, from the journal on resume."""
    if args.resume:
        named = {"QUESTION": args.question, "--corpus": args.corpus, "--web": args.web,
                 "--out": args.out, **{f"--{k}": getattr(args, k) for k in _TUNABLE}}  # fmt: skip
        given = [flag for flag, value in named.items() if value is not None]
        if given:
            raise UserError(
                "--resume takes the question, corpus and settings from the run's journal; "
                f"drop {', '.join(given)}"
            )
        run_dir = Path(args.resume)
        journal = Journal.open(run_dir)
        header = journal.header
        known = {f.name for f in fields(ResearchConfig)}
        config = ResearchConfig(**{k: v for k, v in header.get("config", {}).items() if k in known})
        return {"journal": journal, "run_dir": run_dir, **header}, config
    if not (args.question or "").strip():
        raise UserError("the question is empty (or pass --resume RUN_DIR)")
    if not args.corpus and not args.web:
        raise UserError("research needs --corpus DIR (or --web URL)")
    try:
        config = ResearchConfig(
            **{k: getattr(args, k) for k in _TUNABLE if getattr(args, k) is not None}
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    question = args.question.strip()
    out = args.out or str(
        Path("runs/research") / f"{datetime.now():%Y%m%d-%H%M%S}-{_slug(question)}"
    )
    Journal.check_new(Path(out))
    corpus = str(Path(args.corpus).expanduser().resolve()) if args.corpus else None
    header = {
        "question": question, "corpus": corpus, "web": args.web, "model": args.model,
        "budget": args.budget, "hours": args.hours, "config": asdict(config),
        "version": __version__, "started": datetime.now().isoformat(timespec="seconds"),
    }  # fmt: skip
    return {"journal": None, "run_dir": Path(out), **header}, config


def cmd_research(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    s, config = _settings(args)
    budget = args.budget if args.budget is not None else s.get("budget")
    hours = args.hours if args.hours is not None else s.get("hours")
    if hours is not None and not hours > 0:
        raise UserError(f"--hours must be a positive number of hours, got {hours:g}")
    journal: Journal | None = s["journal"]
    if journal is not None:
        already = journal.recorded_usage().total_tokens
        if budget is not None and already > budget:
            raise UserError(
                f"the run already spent {already:,} tokens; --budget must be at least that"
            )
        before = journal.header.get("model")
        if before and args.model and args.model != before:
            err.print(f"note: new steps use {args.model}; recorded ones were made by {before}")

    sources = []
    if s.get("corpus"):
        index, info = Index.open_folder(s["corpus"])  # CorpusError: one line
        cached = "index built" if info.built else "index from the cache"
        err.print(f"corpus: {info.documents} documents, {len(index.passages)} passages ({cached})")
        if info.skipped:
            listed = ", ".join(f"{n} ({why})" for n, why in info.skipped)
            err.print(f"skipped {len(info.skipped)} files: {escape(listed)}")
        sources.append(LocalSource(index))
    if s.get("web"):
        from ponder.research.web import WebSource

        sources.append(WebSource(s["web"]))

    model = resolve(args.model or s.get("model"), threads=args.threads)  # ModelError: one line
    run_dir: Path = s["run_dir"]
    if journal is None:
        header = {k: v for k, v in s.items() if k not in ("journal", "run_dir")}
        journal = Journal.create(run_dir, header)  # a run already there: one line
    deadline = None if hours is None else time.monotonic() + hours * 3600 - journal.elapsed
    progress = Progress(err, budget, hours)
    run = Run(model, Budget(budget), progress.on_event)
    researcher = Researcher(s["question"], sources, run, journal, config, deadline)
    progress.researcher = researcher
    started = time.monotonic()

    async def go():
        try:
            return await researcher.research()
        finally:
            await model.aclose()
            for source in sources:
                if hasattr(source, "aclose"):
                    await source.aclose()

    try:
        with progress.live:
            found = asyncio.run(go())
            facts = (f"Model {model.name}; {found.usage.total_tokens:,} tokens "
                     f"({found.usage.prompt_tokens:,} prompt + {found.usage.completion_tokens:,} "
                     f"completion) in {found.usage.calls} model calls.")  # fmt: skip
            report = run_dir / REPORT
            write_report(report, render(found, facts))
            c = counts(found.sentences)
            run.emit(Reported(str(report), c["sentences"], c["cited"], c["verified"]))
    except KeyboardInterrupt:
        err.print(
            f"\ninterrupted; every completed step is saved: ponder research --resume {run_dir}"
        )
        return 130
    finally:
        journal.close()
    record = {
        "question": s["question"], "model": model.describe(), "report": str(report),
        "stop": found.stop, "usage": found.usage.to_dict(), "counts": c,
        "steps": found.steps, "replayed": found.replayed, "rounds": found.rounds,
        "seconds_this_session": round(time.monotonic() - started, 3),
        "seconds_total": round(researcher.elapsed(), 3),
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"report: {report}")
    print(counts_line(c))
    return 0
