"""The full-text index of a corpus's passages: tantivy (a Rust search library, BM25 ranking,
English stemming), kept on disk.

A folder's index is cached under ``$PONDER_CACHE_DIR`` (default ``~/.cache/ponder``)
``/research-index/KEY``, where KEY is ``corpus.fingerprint``: the files' paths, sizes and
modification times. A second run over an unchanged folder opens the cached index without
reading or extracting a single file; any change to a file gives a new key, so an index is never
stale. An index is built in a temporary folder and renamed into place when complete, so a run
killed while indexing leaves no half-built index behind.

Passages live next to the tantivy index in ``passages.jsonl`` (file, start, end, text); tantivy
stores only each passage's number. Generated corpora (``ponder bench --task research``) are
indexed in memory instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ponder.research.corpus import Corpus, Passage, fingerprint, need, passages, read_corpus

_WORD = re.compile(r"\w+")
_HEAP = 15_000_000  # tantivy's smallest writer heap; one indexing thread (CPU is shared)


def cache_root() -> Path:
    base = os.environ.get("PONDER_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ponder"


def _schema():
    tantivy = need("tantivy")
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("text", stored=False, tokenizer_name="en_stem")
    sb.add_unsigned_field("pid", stored=True, indexed=False)
    return sb.build()


@dataclass
class IndexInfo:
    """What was indexed: the documents, the skipped files (name, why), the ignored ones, and
    whether this run built the index (False: it came from the cache)."""

    documents: int
    skipped: list[tuple[str, str]]
    ignored: int
    built: bool
    path: str | None = None


class Index:
    def __init__(self, items: list[Passage], tantivy_index) -> None:
        self.passages = items
        self._index = tantivy_index
        self._searcher = tantivy_index.searcher()

    @classmethod
    def build(cls, items: list[Passage], path: Path | None = None) -> Index:
        """Index ``items`` (in memory when ``path`` is None)."""
        tantivy = need("tantivy")
        index = tantivy.Index(_schema(), path=None if path is None else str(path))
        writer = index.writer(heap_size=_HEAP, num_threads=1)
        for i, p in enumerate(items):
            doc = tantivy.Document()
            doc.add_text("text", f"{p.file}\n{p.text}")  # file names are searchable words too
            doc.add_unsigned("pid", i)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return cls(items, index)

    @classmethod
    def of_corpus(cls, corpus: Corpus) -> Index:
        return cls.build([p for d in corpus.documents for p in passages(d)])

    @classmethod
    def open_folder(cls, root: str | Path, cache: Path | None = None) -> tuple[Index, IndexInfo]:
        """The index of a corpus folder: from the cache when the folder is unchanged, else read,
        indexed and cached. ``CorpusError`` when there is nothing to index."""
        tantivy = need("tantivy")
        root = Path(root).expanduser()
        folder = (cache or cache_root()) / "research-index" / fingerprint(root)
        meta_path = folder / "meta.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            with open(folder / "passages.jsonl", encoding="utf-8") as f:
                items = [Passage(**json.loads(line)) for line in f]
            index = cls(items, tantivy.Index.open(str(folder / "tantivy")))
            skipped = [tuple(s) for s in meta["skipped"]]
            return index, IndexInfo(meta["documents"], skipped, meta["ignored"], False, str(folder))
        corpus = read_corpus(root)  # raises CorpusError when nothing is indexable
        items = [p for d in corpus.documents for p in passages(d)]
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
        try:
            (tmp / "tantivy").mkdir()
            cls.build(items, tmp / "tantivy")
            with open(tmp / "passages.jsonl", "w", encoding="utf-8") as f:
                for p in items:
                    f.write(json.dumps(p.__dict__, ensure_ascii=False) + "\n")
            meta = {"root": str(root.resolve()), "documents": len(corpus.documents),
                    "skipped": corpus.skipped, "ignored": corpus.ignored}  # fmt: skip
            (tmp / "meta.json").write_text(json.dumps(meta))
            try:
                os.replace(tmp, folder)
            except OSError:  # another run cached the same corpus first: use theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        index = cls(items, tantivy.Index.open(str(folder / "tantivy")))
        info = IndexInfo(len(corpus.documents), corpus.skipped, corpus.ignored, True, str(folder))
        return index, info

    def search(self, query: str, k: int) -> list[tuple[Passage, float]]:
        """The ``k`` best passages for the words of ``query`` (BM25; any word may match)."""
        words = _WORD.findall(query.lower())
        if not words or not self.passages:
            return []
        q, _ = self._index.parse_query_lenient(" ".join(words), ["text"])
        hits = self._searcher.search(q, k).hits
        return [(self.passages[self._searcher.doc(addr)["pid"][0]], score) for score, addr in hits]
