"""The run journal, ``RUN_DIR/journal.jsonl``: what makes a research run survive ``kill -9``.

One JSON object per line, appended, flushed and ``fsync``'d as each step completes:

- line 1, ``{"type": "header", ...}``: the question, corpus, model, limits and settings of the run;
- ``{"type": "step", "key": ..., "digest": ..., "output": ..., "usage": ..., "elapsed": ...}``: a
  completed step (a search, or one model call and what was read from it), under a key naming its
  place in the loop (``r2.q1.notes``), never its order of completion, so that parallel steps
  replay the same whatever order they finished in; ``digest`` hashes the step's input (the request
  sent to the model), so that a replay can tell a recorded answer to a different question;
- ``{"type": "spent", "usage": ...}``: tokens spent by a call that did not complete (cut by the
  time limit), still counted against the budget after a resume.

``--resume`` replays the loop from the start: steps found here return their recorded output (and
re-charge their recorded usage to the budget meter) without calling anything, and the first step
not found is where new work begins. The loop is deterministic given its steps' outputs, so the
resumed run takes the path the uninterrupted run would have taken.

A final line without its newline is a write that ``kill -9`` cut short: it is dropped (the step
did not complete) and the file truncated to the last whole line. Any other malformed line is a
``JournalError`` naming the line: the journal was edited or damaged, and guessing would replay a
different run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ponder.budget import Usage
from ponder.errors import UserError
from ponder.models.base import Request

FILENAME = "journal.jsonl"
FORMAT = "ponder-research/1"
_USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "calls", "seconds")


class JournalError(UserError):
    """A journal that cannot be resumed: missing, damaged, or recorded for other inputs."""


def request_digest(request: Request) -> str:
    """A short hash of everything a model call depends on."""
    body = {
        "messages": request.messages, "prompt": request.prompt, "n": request.n,
        "max_tokens": request.max_tokens, "temperature": request.temperature,
        "top_p": request.top_p, "stop": request.stop, "seed": request.seed,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def usage_from(d: dict | None) -> Usage:
    return Usage(**{k: d[k] for k in _USAGE_FIELDS if k in d}) if d else Usage()


class Journal:
    """The steps of one run, in memory and (when ``path`` is set) on disk."""

    def __init__(self, path: Path | None, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.steps: dict[str, dict[str, Any]] = {}
        self.lost = Usage()  # usage of calls that did not complete
        self.elapsed = 0.0  # seconds of run time recorded so far (over every session)
        self._file = None

    @classmethod
    def in_memory(cls, header: dict[str, Any] | None = None) -> Journal:
        """A journal that keeps nothing on disk (benchmark cells)."""
        return cls(None, header or {})

    @staticmethod
    def check_new(run_dir: Path) -> None:
        """A new run may not start in a folder that holds one."""
        if (run_dir / FILENAME).exists():
            raise JournalError(
                f"{run_dir} already holds a research run; continue it with --resume {run_dir} "
                "or pass another --out"
            )

    @classmethod
    def create(cls, run_dir: Path, header: dict[str, Any]) -> Journal:
        path = run_dir / FILENAME
        cls.check_new(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        journal = cls(path, {"type": "header", "format": FORMAT, **header})
        journal._write(journal.header)
        fd = os.open(run_dir, os.O_RDONLY)  # the new file's directory entry, durably
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return journal

    @classmethod
    def open(cls, run_dir: Path) -> Journal:
        path = run_dir / FILENAME
        if not path.is_file():
            raise JournalError(f"--resume {run_dir}: no {FILENAME} there (not a research run)")
        raw = path.read_bytes()
        whole = raw[: raw.rfind(b"\n") + 1]  # a last line cut short by a kill is dropped
        lines = whole.decode("utf-8", errors="replace").splitlines()
        if not lines:
            raise JournalError(f"{path} line 1: empty journal (no header)")
        journal = None
        for n, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise JournalError(f"{path} line {n}: not valid JSON ({e.msg})") from None
            kind = record.get("type") if isinstance(record, dict) else None
            if n == 1:
                if kind != "header" or record.get("format") != FORMAT:
                    raise JournalError(f"{path} line 1: not a {FORMAT} journal header")
                journal = cls(path, record)
                continue
            if kind == "step":
                ok = isinstance(record.get("key"), str) and isinstance(record.get("output"), dict)
                if not ok:
                    raise JournalError(f"{path} line {n}: a step needs a key and an output")
                journal.steps[record["key"]] = record
            elif kind == "spent":
                journal.lost = journal.lost + usage_from(record.get("usage"))
            else:
                raise JournalError(f"{path} line {n}: unknown record type {kind!r}")
            journal.elapsed = max(journal.elapsed, float(record.get("elapsed", 0.0)))
        if len(whole) < len(raw):
            with open(path, "r+b") as f:
                f.truncate(len(whole))
        return journal

    def recorded_usage(self) -> Usage:
        """Everything the recorded steps (and lost calls) spent."""
        total = self.lost
        for record in self.steps.values():
            total = total + usage_from(record.get("usage"))
        return total

    def get(self, key: str, digest: str) -> dict[str, Any] | None:
        """The record of step ``key`` (its ``output`` and ``usage``), or None when it has not
        completed."""
        record = self.steps.get(key)
        if record is None:
            return None
        if record.get("digest", digest) != digest:
            raise JournalError(
                f"{self.path}: step {key} was recorded for a different request than this run "
                "now makes (the corpus, the prompts or the settings changed); start a new run"
            )
        return record

    def add(self, key: str, digest: str, output: dict, usage: Usage | None, elapsed: float) -> None:
        spent = None if usage is None else usage.to_dict()
        record = {"type": "step", "key": key, "digest": digest, "output": output,
                  "usage": spent, "elapsed": round(elapsed, 3)}  # fmt: skip
        self.steps[key] = record
        self.elapsed = max(self.elapsed, elapsed)
        self._write(record)

    def add_lost(self, usage: Usage, elapsed: float) -> None:
        self.lost = self.lost + usage
        self._write({"type": "spent", "usage": usage.to_dict(), "elapsed": round(elapsed, 3)})

    def _write(self, record: dict) -> None:
        if self.path is None:
            return
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
