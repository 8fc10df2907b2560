"""Synthetic SFT data by rejection sampling: STaR (Zelikman et al. 2022, "STaR: Bootstrapping
Reasoning With Reasoning"), one round.

Run a strategy on each problem with any model, grade the result with the task's verifier (the bench
code path: ``bench.runner.run_cell`` then ``verify.check``) and keep the samples it accepts, as
rows in the SFT format::

    {"prompt": format.prompt_text(question), "completion": <the accepted sample, cut after its
     answer line>, "answer": <reference>, "problem_id", "correct", and the MadeWith fields:
     "task", "model", "strategy", "data", "data_sha256", "budget", "keep"}

Every row, kept or rejected, names how it was made (``MadeWith``: task, model, strategy, local
data file, token budget and keep mode), and that is the file's identity: a run resumes a file only
made the same way (specs compared in their parsed forms, so ``arith:digits=03`` resumes
``arith:digits=3``; a data file by its absolute path and the SHA-256 of its contents, so a file
rewritten in place is another file); any other is refused, since its problem ids
would count as done (a new model's STaR round would sample nothing, another data file's problems
with the same ids would be skipped, ``--keep all`` would never write the problems an earlier
``--keep correct`` run rejected) or its rows would be mixed in (samples under another budget). A
row that lacks a field (rows written before it was recorded) is not compared on it, except that
such a row's keep mode is read from where it lies: the rejected sidecar is ``correct``'s, a kept
row marked wrong is ``all``'s.

Departures from the paper: no "rationalization" (re-asking with the answer as a hint for the
problems the model failed); no outer loop (fine-tune with ``ponder train sft --data FILE`` and
synthesise again with the new model for the next round); any model and any strategy (a vote
strategy keeps the first of its samples whose own answer is accepted).

Crash safety: every row is appended and flushed as soon as its problem is graded. Problems rejected
under ``keep="correct"`` go to a sidecar ``<out>.rejected.jsonl`` (reason included), so that a
re-run skips every problem id already seen in either file, and a partial last line left by a crash
is cut off before appending.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ponder.bench.runner import Cell, run_local
from ponder.bench.store import ResultRow
from ponder.budget import Budget
from ponder.errors import UserError
from ponder.lab import format
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.problems.tasks import parse_task
from ponder.think import StrategyBase, parse_strategy
from ponder.verify import check

# The patterns extract_answer reads answers with, so the cut lands where the answer was read.
from ponder.verify.extract import _ANSWER_LINE, _HASHES, _NUMBER

KEEP = ("correct", "all")


@dataclass(frozen=True)
class MadeWith:
    """How a synth file's rows are made; every row records it. ``data`` is a local problems file
    (None: the task's own source) and ``data_sha256`` the hash of its contents (read from the
    file), ``budget`` the tokens per problem (None: no cap). ``strategy_settings`` is every option
    of the strategy, defaults included (``StrategyBase.settings``): a spec written the same way
    means other settings when a default changes between versions (``reflect``'s verifier, judge
    before ``verifier=auto``), and its rows would be mixed with new ones."""

    task: str
    model: str
    strategy: str
    data: str | None = None
    budget: int | None = None
    keep: str = "correct"
    data_sha256: str | None = field(default=None, init=False)
    strategy_settings: dict | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.keep not in KEEP:
            raise UserError(f"--keep takes {' or '.join(KEEP)}; got {self.keep!r}")
        if self.data is not None:  # the same file from another working directory is the same
            path = Path(self.data).resolve()
            object.__setattr__(self, "data", str(path))
            if path.is_file():
                object.__setattr__(self, "data_sha256", contents_sha256(path))
        try:
            settings = parse_strategy(self.strategy).settings
        except (ValueError, UserError):  # a spec that does not parse records none
            settings = None
        object.__setattr__(self, "strategy_settings", settings)

    def fields(self) -> dict:
        return asdict(self)


def contents_sha256(path: Path) -> str:
    """SHA-256 of a problems file's lines: a ``.gz`` file's decompressed, line endings and blank
    lines not counted (re-compressing, or a final newline, does not make it another file)."""
    digest = hashlib.sha256()
    with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
        for line in f:
            if line.strip():
                digest.update(line.rstrip(b"\r\n") + b"\n")
    return digest.hexdigest()


MADE_WITH = tuple(MadeWith.__dataclass_fields__)  # what every row records of how it was made


@dataclass
class SynthStats:
    seen: int = 0  # problems graded this session
    kept: int = 0  # rows written to the SFT file this session
    skipped: int = 0  # problems already in the files from an earlier run


def trim_to_answer(text: str) -> str:
    """``text`` up to the end of the line holding its final answer (what ``extract_answer`` reads:
    the last \\boxed{}, else the last "Answer: ..." line, else "#### N", else the last number)."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        for pattern in (_ANSWER_LINE, _HASHES, _NUMBER):
            matches = list(pattern.finditer(text))
            if matches:
                start = matches[-1].start()
                break
    if start < 0:
        return text.strip()
    end = text.find("\n", start)
    return (text if end < 0 else text[:end]).strip()


def sampled_texts(row: ResultRow) -> list[tuple[str, str | None]]:
    """(text, answer) of every sample a strategy drew, in order."""
    return [(e["text"], e.get("answer")) for e in row.trace if e.get("type") == "Sampled"]


def accepted_text(problem: Problem, row: ResultRow) -> str | None:
    """The first sample whose own answer the verifier accepts (None: no sample to keep)."""
    for text, answer in sampled_texts(row):
        if answer is not None and check(problem, answer).ok:
            return text
    return None


class SynthFile:
    """The output JSONL and its rejected-problems sidecar: which ids are done, append a row."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out)
        self.rejected_path = self.path.with_name(self.path.name.removesuffix(".jsonl") + ".rejected.jsonl")
        for p in (self.path, self.rejected_path):
            if p.is_dir():
                raise UserError(f"{p} is a directory; --out takes a .jsonl file")
        self.done: set[str] = set()
        # each of MADE_WITH -> the distinct values the rows record, in the order first seen
        self.made_with: dict[str, list] = {k: [] for k in MADE_WITH}
        for p in (self.path, self.rejected_path):
            self._read(p)

    def _read(self, path: Path) -> None:
        """Add the problem ids and MADE_WITH values of ``path``'s rows."""
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):  # a crash mid-write: drop the partial last line
            data = data[: data.rfind(b"\n") + 1]
            path.write_bytes(data)
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.done.add(str(row["problem_id"]))
            except (ValueError, KeyError, TypeError):
                raise UserError(
                    f"{path}:{n} is not a synth row (JSON with a problem_id); pick another --out"
                ) from None
            if "keep" not in row and (path == self.rejected_path or row.get("correct") is False):
                row["keep"] = "correct" if path == self.rejected_path else "all"
            for key, seen in self.made_with.items():
                if key in row and row[key] not in seen:
                    seen.append(row[key])

    def check_made_with(self, made: MadeWith) -> None:
        """Refuse (UserError) to add rows made otherwise than the rows already in the files."""
        new = made.fields()
        old: dict[str, object] = {}
        for key, values in self.made_with.items():
            others = [v for v in values if _canonical(key, v) != _canonical(key, new[key])]
            if others:  # (a recorded value may itself be None)
                old[key] = others[0]
        if "data" in old:  # another file: that its contents differ goes without saying
            old.pop("data_sha256", None)
        same_name = "strategy" in old and _name(old["strategy"]) == _name(made.strategy)
        if same_name and self.made_with["strategy_settings"] and "strategy_settings" not in old:
            old.pop("strategy")  # written otherwise, with the settings the rows recorded
        if "strategy" in old:  # another strategy: so are its settings
            old.pop("strategy_settings", None)
        if list(old) == ["strategy_settings"]:
            before, now = old["strategy_settings"] or {}, new["strategy_settings"] or {}
            changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            was = ", ".join(f"{k}={before.get(k, 'none')}" for k in changed)
            is_ = ", ".join(f"{k}={now.get(k, 'none')}" for k in changed)
            raise UserError(
                f"{self.path} was made with {made.strategy} at {was}; it means {is_} now (its "
                "defaults changed since); pass another --out to start a new file, or name the "
                "old settings in --strategy"
            )
        if old:
            made_old = " and ".join(f"{k} {_shown(k, v)}" for k, v in old.items())
            now = " and ".join(f"{k} {_shown(k, new[k])}" for k in old)
            changed = " (the data file changed since)" if list(old) == ["data_sha256"] else ""
            raise UserError(
                f"{self.path} was made with {made_old}, not {now}{changed}; pass another --out to "
                "start a new file"
            )

    def append(self, row: dict, rejected: bool = False) -> None:
        path = self.rejected_path if rejected else self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
        self.done.add(row["problem_id"])


def _shown(key: str, value: object) -> str:
    if key == "data_sha256" and isinstance(value, str):
        return repr(value[:12] + "…")  # enough to tell two apart
    return "none" if value is None else repr(value)


def _canonical(key: str, value: object) -> object:
    """A task or strategy spec in its parsed form (option order and number format do not count);
    any other value, or a spec that no longer parses, as written."""
    if not isinstance(value, str):
        return value
    try:
        if key == "task":
            return parse_task(value)
        if key == "strategy":
            return parse_strategy(value).spec
    except (ValueError, UserError):  # no longer parses: compared as written
        pass
    return value


def _name(spec: object) -> str:
    return str(spec).split(":", 1)[0].strip()


def synth_row(problem: Problem, text: str, correct: bool, made: MadeWith) -> dict:
    return {
        "prompt": format.prompt_text(problem.question),
        "completion": trim_to_answer(text),
        "answer": problem.answer,
        "problem_id": problem.id,
        "correct": correct,
    } | made.fields()


async def synthesize(
    problems: list[Problem],
    model: Model,
    strategy: StrategyBase,
    out: SynthFile,
    made: MadeWith,
    *,
    seed: int = 0,
    concurrency: int = 1,
    on_result: Callable[[SynthStats], None] | None = None,
) -> SynthStats:
    """Run ``strategy`` (``made.strategy`` is its spec) on the problems not yet in ``out``, each
    under ``made.budget``; append what ``made.keep`` keeps. ``out`` made otherwise is refused
    (UserError).

    A wrong answer is a rejected row, not an error; a model or code failure stops the run (rows
    written so far stay, and a re-run resumes after them).
    """
    if made.strategy != strategy.spec:
        raise ValueError(f"made.strategy {made.strategy!r} is not the strategy's {strategy.spec!r}")
    out.check_made_with(made)
    stats = SynthStats()
    todo = [p for p in problems if p.id not in out.done]
    stats.skipped = len(problems) - len(todo)
    by_id = {p.id: p for p in todo}

    def on_row(row: ResultRow) -> None:
        problem = by_id[row.problem_id]
        stats.seen += 1
        text = accepted_text(problem, row) if row.correct else None
        if text is not None:
            out.append(synth_row(problem, text, True, made))
            stats.kept += 1
        elif made.keep == "all":
            samples = sampled_texts(row)
            first = samples[0][0] if samples else ""
            out.append(synth_row(problem, first, False, made))
            stats.kept += 1
        else:
            why = "no sample's own answer is accepted" if row.correct else "rejected by the verifier"
            out.append(
                {"problem_id": problem.id, "answer": row.answer, "reference": problem.answer,
                 "reason": f"{why} ({row.how})"} | made.fields(),
                rejected=True,
            )
        if on_result is not None:
            on_result(stats)

    cells = [Cell(p, strategy, Budget(made.budget), seed) for p in todo]
    await run_local("synth", cells, model, on_row, concurrency)
    return stats

