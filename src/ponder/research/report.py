"""``RUN_DIR/report.md``: the findings, each sentence with citations ``[n]`` that resolve to a
source (file, character span) in the bibliography, the quoted evidence, and a last line of
counts (sentences, cited, verified).

Only what the run found is shown: a sentence the citation check could not verify is marked where
it stands; a run that found nothing says so and cites nothing; a run whose budget or time ran
out before the findings were written shows the evidence it had gathered, and says that too.
"""

from __future__ import annotations

import os
from pathlib import Path

from ponder.research.citations import counts, counts_line
from ponder.research.loop import Findings

_MARKS = {
    "unsupported": " *(not supported by the cited source)*",
    "uncited": " *(no citation)*",
    "added": " *(citation added by the check)*",
    "revised": " *(citation corrected by the check)*",
}


def _excerpt(text: str, n: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1].rstrip() + "…"


def render(found: Findings, facts: str = "") -> str:
    """The report as Markdown; ``facts``: a line on the run (model, tokens). Nothing in it
    depends on timing or on how often the run was resumed, so a resumed run's report is the
    uninterrupted run's, byte for byte (timings go to ``run.json``)."""
    out = ["# Research report", "", f"**Question:** {found.question}", ""]
    if found.answer and found.written:
        out += [f"**Answer:** {found.answer}", ""]
    out += ["## Findings", ""]
    if not found.notes:
        out.append(
            f"Nothing in the sources answers this question: {found.searches} searches found no "
            "passage that could be quoted for it, so this report cites nothing."
        )
    elif not found.written:
        out.append(
            f"The findings were not written ({found.stop}); the evidence gathered is listed below."
        )
    else:
        body = []
        for s in found.sentences:
            marks = "".join(f"[{n}]" for n in s.cites)
            text = s.text.rstrip()
            end = text[-1] if text and text[-1] in ".!?" else "."
            text = text[:-1] if text and text[-1] in ".!?" else text
            body.append(f"{text}{' ' + marks if marks else ''}{end}{_MARKS.get(s.status, '')}")
        out.append(" ".join(body) if body else "*(the model wrote no sentences)*")
    if found.open_questions or found.contradictions:
        out += ["", "## Still open", ""]
        out += [f"- Unknown: {q}" for q in found.open_questions]
        out += [f"- Contradiction: {q}" for q in found.contradictions]
    if found.notes:
        out += ["", "## Evidence", ""]
        number = {p.ref: i for i, p in enumerate(found.sources, 1)}
        for note in sorted(found.notes, key=lambda n: number[n.passage.ref]):
            out.append(
                f"- [{number[note.passage.ref]}] “{_excerpt(note.quote, 400)}” "
                f"({note.passage.file}, characters {note.start}–{note.end})"
            )
        out += ["", "## Sources", ""]
        for i, p in enumerate(found.sources, 1):
            out.append(f"{i}. `{p.file}`, characters {p.start}–{p.end}: “{_excerpt(p.text)}”")
    out += ["", "---", ""]
    run = (
        f"Research: {found.rounds} rounds, {found.searches} searches, {found.read} passages read, "
        f"{len(found.notes)} notes; stopped: {found.stop or 'finished'}."
    )
    out += [run + (f" {facts}" if facts else ""), "", counts_line(counts(found.sentences))]
    return "\n".join(out) + "\n"


def write_report(path: Path, text: str) -> None:
    """Write atomically: a reader (or a kill) never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
