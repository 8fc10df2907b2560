"""Read a local JSON Lines file (``.jsonl`` or ``.jsonl.gz``) into numbered rows.

Rows keep their line numbers so that a mapping error can point at the line to fix.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from ponder.problems.errors import ProblemSetError, one_line


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``[(line_number, row), ...]`` for the non-blank lines of ``path``; 1-based line numbers."""
    p = Path(path).expanduser()
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise ProblemSetError(f"cannot read {p}: it {what}; pass a .jsonl or .jsonl.gz file")
    rows = []
    try:
        # gzip is chosen by suffix; a mislabelled file fails below with a readable message.
        f = gzip.open(p, "rt", encoding="utf-8") if p.suffix == ".gz" else p.open(encoding="utf-8")
        with f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ProblemSetError(
                        f"{p} line {lineno}: not valid JSON ({e.msg}); "
                        "expected one JSON object per line"
                    ) from None
                if not isinstance(row, dict):
                    raise ProblemSetError(
                        f"{p} line {lineno}: expected a JSON object, got {type(row).__name__}"
                    )
                rows.append((lineno, row))
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise ProblemSetError(f"cannot read {p}: {one_line(e)}") from None
    if not rows:
        raise ProblemSetError(f"{p} holds no rows; expected one JSON object per line")
    return rows
