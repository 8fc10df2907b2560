"""Notes that are quotes: a model's note lines matched to the sentences of the passages it read.

A small model's notes are unreliable paraphrases; a quote is checkable. So a note line (``P2:
...``) is kept only when one sentence of a passage it read holds most of its content words, and
the note *is* that sentence, with its character span in the document: whatever the writer is
shown later is the corpus's own text. (Extractive evidence selection as in FEVER-style pipelines,
Thorne et al. 2018, done by matching the model's choice instead of a trained selector.) When the
model's lines match nothing, ``extract_notes`` lets the retriever quote the sentences that share
the most words with the sub-question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ponder.research.corpus import Passage
from ponder.verify.support import content_words

_NOTE_LINE = re.compile(r"^\W*P?\s*(\d+)\s*\]?\s*[:.)\-]\s*(.+)$", re.I)
# a sentence ends at . ! ? (with any closing quote or bracket) before a space ("meter.py" and
# "3.5" do not end one), at a blank line, or before a line that starts a list item, a heading, a
# table row or a capital (a title line); a line break before a lower-case word is hard-wrapping
# inside a sentence and does not end it
_SENTENCE_END = re.compile(
    r"[.!?]+[\"')\]]*(?=\s|$)|\n\s*\n|\n(?=[ \t]*(?:[-*+•][ \t]|\d+[.)][ \t]|[#|>]|[A-Z]))"
)


@dataclass
class Note:
    """A quoted sentence: its passage, its span in the passage's document, who chose it."""

    passage: Passage
    start: int
    end: int
    quote: str
    by: str  # "model" | "retriever"

    @property
    def span(self) -> tuple[str, int, int]:
        return (self.passage.file, self.start, self.end)

    def to_dict(self) -> dict:
        return {"file": self.passage.file, "start": self.start, "end": self.end,
                "quote": self.quote, "by": self.by}  # fmt: skip


def sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0

    def add(s: int, e: int) -> None:
        piece = text[s:e]
        s, e = s + len(piece) - len(piece.lstrip()), e - len(piece) + len(piece.rstrip())
        if e > s:
            spans.append((s, e))

    for m in _SENTENCE_END.finditer(text):
        add(start, m.start() if m.group().startswith("\n") else m.end())
        start = m.end()
    add(start, len(text))
    return spans


def _best_sentence(words: list[str], passage: Passage) -> tuple[int, int, int] | None:
    """The passage sentence sharing the most of ``words``: (shared, start, end) in the passage."""
    wanted, best = set(words), None
    for s, e in sentence_spans(passage.text):
        shared = len(wanted & set(content_words(passage.text[s:e])))
        if shared and (best is None or shared > best[0]):
            best = (shared, s, e)
    return best


def _note(passage: Passage, s: int, e: int, by: str) -> Note:
    return Note(passage, passage.start + s, passage.start + e, passage.text[s:e], by)


def read_notes(text: str, read: list[Passage]) -> tuple[list[Note], int]:
    """The model's note lines matched to sentences of the passages it read: (notes, rejected).

    A line names its passage (``P2: ...``); when that passage has no sentence holding most of
    the line's content words, the other passages are tried (small models misnumber)."""
    notes, rejected = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.upper().strip(".") == "NONE":
            continue
        m = _NOTE_LINE.match(line)
        number, body = (int(m.group(1)), m.group(2)) if m else (None, line)
        words = content_words(body)
        if len(words) < 2:
            rejected += 1 if m else 0
            continue
        order = list(read)
        if number is not None and 1 <= number <= len(read):
            order.insert(0, order.pop(number - 1))
        for passage in order:
            best = _best_sentence(words, passage)
            if best and best[0] >= max(2, 0.6 * len(set(words))):
                notes.append(_note(passage, best[1], best[2], "model"))
                break
        else:
            rejected += 1
    return notes, rejected


def extract_notes(question: str, read: list[Passage], most: int = 2) -> list[Note]:
    """The retriever's own notes: the sentences sharing the most content words with the question
    (at least two, or all of a shorter question's)."""
    words = content_words(question)
    need = min(2, len(set(words))) or 1
    found = []
    for i, passage in enumerate(read):
        best = _best_sentence(words, passage)
        if best and best[0] >= need:
            found.append((-best[0], i, passage, best[1], best[2]))
    return [_note(p, s, e, "retriever") for _, _, p, s, e in sorted(found)[:most]]
