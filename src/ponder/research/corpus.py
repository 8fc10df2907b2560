"""A research corpus: the readable files of a folder, as plain text, cut into passages.

Text (``.txt``, ``.md``, ``.rst``) is read as UTF-8; HTML's main text is extracted with
trafilatura (its plain fallback ``html2txt`` when the main-content heuristics find nothing, as on
very short pages); PDF text with pypdf, page by page. A passage's offsets are character offsets
into its document's *text*: the file itself for plain text, the extracted text for HTML and PDF
(which the index keeps, so a citation can always be shown).

Passages follow the document's paragraphs (blank lines), merged up to ``PASSAGE_CHARS`` and split
at sentence ends beyond it, the "100-word passage" unit of retrieval-augmented generation (Lewis
et al. 2020) that BrowseComp-Plus also searches over; unlike them we never cut inside a sentence
unless a sentence alone is longer than a passage.

Empty and unreadable files are skipped and listed (``Corpus.skipped``); other file types are
counted and ignored; a folder with nothing to index is a one-line ``CorpusError``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ponder.errors import UserError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
PASSAGE_CHARS = 700  # a passage is at most this long unless one sentence is longer
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class CorpusError(UserError):
    """A corpus folder that cannot be researched (missing, or nothing indexable in it)."""


@dataclass(frozen=True)
class Document:
    name: str  # the path relative to the corpus folder (a URL for web pages)
    text: str


@dataclass(frozen=True)
class Passage:
    """A span of a document: ``text == document.text[start:end]``."""

    file: str
    start: int
    end: int
    text: str

    @property
    def ref(self) -> str:
        return f"{self.file}:{self.start}-{self.end}"


@dataclass
class Corpus:
    root: str
    documents: list[Document]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    ignored: int = 0  # files of other types


def corpus_files(root: Path) -> list[Path]:
    """Every file under ``root`` with a readable suffix, hidden folders and files left out, in
    a stable order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def fingerprint(root: str | Path) -> str:
    """A key for the corpus as it is now: the readable files' paths, sizes and modification
    times (no file is read, so a cached index is found without extracting anything)."""
    root = Path(root)
    h = hashlib.sha256(str(root.resolve()).encode())
    for p in corpus_files(root):
        if p.suffix.lower() in SUFFIXES:
            st = p.stat()
            h.update(f"\0{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def need(module: str):
    """Import one of the ``research`` extra's libraries, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"ponder research needs {module}: pip install 'ponder[research]'") from None


def html_text(html: str) -> str:
    trafilatura = need("trafilatura")

    return trafilatura.extract(html, include_comments=False) or trafilatura.html2txt(html) or ""


def pdf_text(path: Path) -> str:
    reader = need("pypdf").PdfReader(path)
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)


def extract(path: Path) -> str:
    """The text of one file (raises on unreadable content; the caller lists it as skipped)."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return pdf_text(path)
    raw = path.read_bytes()
    if b"\0" in raw[:4096]:
        raise ValueError("binary content")
    text = raw.decode("utf-8")
    return html_text(text) if suffix in HTML_SUFFIXES else text


def read_corpus(root: str | Path) -> Corpus:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(f"--corpus {root}: not a folder")
    documents, skipped, ignored = [], [], 0
    for path in corpus_files(root):
        name = str(path.relative_to(root))
        if path.suffix.lower() not in SUFFIXES:
            ignored += 1
            continue
        try:
            text = extract(path)
        except UserError:
            raise
        except UnicodeDecodeError:
            skipped.append((name, "not UTF-8 text"))
            continue
        except Exception as e:  # a broken PDF or HTML file: the user's data, not our bug
            skipped.append((name, f"unreadable ({type(e).__name__}: {e})"[:120]))
            continue
        if not text.strip():
            skipped.append((name, "empty"))
            continue
        documents.append(Document(name, text))
    if not documents:
        listed = "; ".join(f"{n} ({why})" for n, why in skipped[:5]) or "no files"
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        kinds = ", ".join(SUFFIXES)
        raise CorpusError(
            f"--corpus {root}: nothing indexable ({listed}{more}; {ignored} other files "
            f"ignored; readable types: {kinds})"
        )
    return Corpus(str(root), documents, skipped, ignored)


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, cut = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        spans.append((cut, m.start()))
        cut = m.end()
    return spans + [(cut, end)] if cut < end else spans


def passages(doc: Document, size: int = PASSAGE_CHARS) -> list[Passage]:
    """``doc`` cut into passages of whole paragraphs (or sentences) of at most ``size`` chars:
    paragraphs are merged while they fit; a longer paragraph is cut between sentences."""
    pieces: list[tuple[int, int]] = []
    for m in re.finditer(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*\Z)", doc.text, re.S):
        start, end = m.span()
        pieces += [(start, end)] if end - start <= size else _sentences(doc.text, start, end)
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if merged and end - merged[-1][0] <= size:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [Passage(doc.name, s, e, doc.text[s:e]) for s, e in merged]
