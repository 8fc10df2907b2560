"""Checked citations: every sentence of a report is split off, its ``[n]`` marks resolved to
sources, and each cited sentence verified against the passages it cites.

The idea is attribution checking as ALCE (Gao et al. 2023, "Enabling Large Language Models to
Generate Text with Citations") measures it, citation recall (is the sentence supported by its
citations) turned from a metric into a step of the pipeline: a sentence is *verified* when the
passages it cites support it, first by word overlap (``verify.support.missing_words``, free),
then by the LLM judge (``verify.support.SupportJudge``, one short call, metered) where overlap
fails. open_deep_research and STORM cite but do not check; this does. Departures:

- revision is re-citing, not regeneration: a sentence whose citation fails (or that has none)
  but whose every content word is in another source gets that source instead, marked as
  corrected by the check; a sentence no source supports is kept and marked (unsupported, or
  without a citation), so the reader sees exactly what the model claimed;
- exact repeats of a sentence (small models loop) are dropped before counting;
- a citation number that names no source is dropped (never rendered as a dangling [n]) and the
  sentence is judged on the citations left;
- every sentence of the findings counts as factual: a tiny model's filler ("In conclusion.")
  shows up as uncited rather than being excused by a classifier that could also excuse claims.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ponder.research.corpus import Passage
from ponder.verify.score import Score
from ponder.verify.support import content_words, missing_words

_MARKS = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_MARKS = re.compile(r"^((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_ANSWER = re.compile(r"^\W*answer\W*:\s*(.*?)\W*$", re.IGNORECASE)
_LIST_MARK = re.compile(r"^\s*(?:#+|[-*•]|\d+[.)])\s+")

VERIFIED = ("overlap", "judge", "added", "revised")
MIN_WORDS_TO_RECITE = 3  # the check cites a source for a sentence of at least this many words

# judge(index, passage, claim) -> Score, or None when the budget cannot pay for the call
Judge = Callable[[int, Passage, str], Awaitable[Score | None]]


@dataclass
class Sentence:
    text: str  # the sentence without its citation marks
    cites: list[int] = field(default_factory=list)  # source numbers (1-based) that exist
    dropped: list[int] = field(default_factory=list)  # numbers that named no source
    status: str = "unchecked"  # overlap | judge | unsupported | uncited
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.status in VERIFIED


def split_draft(draft: str) -> tuple[list[str], str | None]:
    """The sentences of a written draft and its ``Answer: ...`` line (the last one), apart."""
    answer, body = None, []
    for line in draft.splitlines():
        m = _ANSWER.match(line)
        if m:
            answer = m.group(1).strip() or answer
            continue
        line = _LIST_MARK.sub("", line).strip()
        if line:
            body.append(line)
    return split_sentences(" ".join(body)), answer


def split_sentences(text: str) -> list[str]:
    """Sentences, with citation marks that open a piece ("... born there. [2] Later ...") given
    back to the sentence before it."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        m = _LEADING_MARKS.match(piece)
        if m and out:
            out[-1] += m.group(1)
            piece = piece[m.end() :]
        if piece.strip():
            out.append(piece.strip())
    return [s for s in out if re.search(r"\w", _MARKS.sub("", s))]


def parse_sentence(raw: str, n_sources: int) -> Sentence:
    numbers = [int(n) for group in _MARKS.findall(raw) for n in re.split(r"\s*,\s*", group)]
    text = re.sub(r"\s+([.,;:!?])", r"\1", _MARKS.sub("", raw)).strip()
    cites = [n for n in dict.fromkeys(numbers) if 1 <= n <= n_sources]
    dropped = [n for n in dict.fromkeys(numbers) if not 1 <= n <= n_sources]
    return Sentence(text, cites, dropped)


def distinct(sentences: list[Sentence]) -> list[Sentence]:
    """The sentences with exact repeats (a small model looping) left out: a repeat adds nothing."""
    seen: set[str] = set()
    out = []
    for s in sentences:
        key = " ".join(s.text.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


async def check_sentences(sentences: list[Sentence], sources: list[Passage], judge: Judge) -> None:
    """Set each sentence's status: verified by overlap or by the judge, its citation added or
    corrected by the check (another source holds every content word), unsupported, uncited."""

    async def one(i: int, s: Sentence) -> None:
        words = set(content_words(s.text))
        covering = [n for n, p in enumerate(sources, 1) if not missing_words(s.text, p.text)]
        covering = covering if len(words) >= MIN_WORDS_TO_RECITE else []
        if not s.cites:
            if covering:
                s.cites, s.status = covering[:1], "added"
                s.reason = f"uncited; source {covering[0]} holds every content word"
            else:
                s.status, s.reason = "uncited", "no citation, and no source holds its words"
            return
        cited = [sources[c - 1] for c in s.cites]
        together = missing_words(s.text, "\n".join(p.text for p in cited))
        if not together:
            s.status, s.reason = "overlap", "every content word is in the cited passages"
            return
        missing = ", ".join(together[:4])
        if covering:
            s.status = "revised"
            s.reason = f"[{s.cites[0]}] lacks {missing}; source {covering[0]} holds every word"
            s.cites = covering[:1]
            return
        best = min(cited, key=lambda p: len(missing_words(s.text, p.text)))
        score = await judge(i, best, s.text)
        if score is None:
            s.status = "unsupported"
            s.reason = f"not in the passages ({missing}); no budget or time left to ask the judge"
        elif score.ok:
            s.status, s.reason = "judge", score.reason
        else:
            s.status, s.reason = "unsupported", f"{score.reason}; not in the passage: {missing}"

    await asyncio.gather(*(one(i, s) for i, s in enumerate(sentences)))


def counts(sentences: list[Sentence]) -> dict[str, int]:
    kinds = ("overlap", "judge", "added", "revised", "unsupported", "uncited")
    by = {k: sum(s.status == k for s in sentences) for k in kinds}
    verified = sum(by[k] for k in VERIFIED)
    cited = sum(bool(s.cites) for s in sentences)
    return {"sentences": len(sentences), "cited": cited, "verified": verified, **by}


def counts_line(c: dict[str, int]) -> str:
    """The report's last line."""
    line = f"Citations: {c['sentences']} sentences, {c['cited']} cited, {c['verified']} verified"
    if c["verified"]:
        how = [f"{c['overlap']} by word overlap", f"{c['judge']} by the judge"]
        fixed = c["added"] + c["revised"]
        how += [f"{fixed} with a citation added or corrected by the check"] if fixed else []
        line += f" ({', '.join(how)})"
    marked = [f"{c[k]} {k}" for k in ("unsupported", "uncited") if c[k]]
    return line + (f"; {', '.join(marked)} (marked in the text)" if marked else "") + "."
