"""Real benchmark sets (GSM8K, MATH-500, AIME 2024/2025, AMC 2023, HumanEval): field mappings and
filters.

Each set names where its rows live on the Hub and which fields hold the question, the answer, an id
and optional level/subject, once for the Hub copy and once for local JSONL files (the two can use
different names; where sensible both names are accepted, first match wins).

Real sets keep file order: ``--limit N`` takes the first N rows after filtering and the seed is not
used, so a run on ``--limit 50`` is always the same 50 problems and can be resumed or compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.errors import ProblemSetError
from ponder.problems.hub import HubSource, load_hub_rows
from ponder.problems.jsonl import read_jsonl


@dataclass(frozen=True)
class Fields:
    """Field names in a row; each entry lists accepted names, first present wins. Empty = absent."""

    question: tuple[str, ...]
    answer: tuple[str, ...] = ("answer",)
    id: tuple[str, ...] = ()
    level: tuple[str, ...] = ()
    subject: tuple[str, ...] = ()
    solution: tuple[str, ...] = ()
    meta: tuple[str, ...] = ()  # required fields copied verbatim into meta (a code prompt, tests)


@dataclass(frozen=True)
class RealSet:
    name: str
    summary: str
    kind: str  # the grader, see Problem.kind
    hub: HubSource
    hub_fields: Fields
    file_fields: Fields
    answer_after: str | None = None  # GSM8K: the answer is the text after "####" when present
    question_format: str = "{}"  # the question shown to the model, built from the question field

    def load(
        self,
        data: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        level: str | int | None = None,
        subject: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> list[Problem]:
        del seed  # real sets keep file order (see the module docstring)
        if options:
            raise ProblemSetError(
                f"{self.name} takes no options (got {', '.join(sorted(options))}); "
                "options are for the generated tasks arith and countdown"
            )
        for flag, value, names in (("level", level, self.file_fields.level),
                                   ("subject", subject, self.file_fields.subject)):
            if value is not None and not names:
                raise ProblemSetError(f"{self.name} has no {flag} field; drop --{flag}")
        if data is not None:
            source = str(data)
            rows = [(f"{source} line {n}", row) for n, row in read_jsonl(data)]
            fields = self.file_fields
        else:
            source = f"{self.hub.path} (Hub)"
            hub_rows = load_hub_rows(self.hub)
            rows = [(f"{self.hub.path} row {i}", row) for i, row in enumerate(hub_rows)]
            fields = self.hub_fields
        problems = [
            self._problem(i, where, row, fields, source) for i, (where, row) in enumerate(rows)
        ]
        _check_unique_ids(problems, rows)
        if level is not None:
            problems = _filter(problems, "level", _level_values(level), source, self.name)
        if subject is not None:
            wanted = {s.strip().casefold() for s in str(subject).split(",") if s.strip()}
            problems = _filter(problems, "subject", wanted, source, self.name)
        return problems[:limit] if limit is not None else problems

    def _problem(self, index: int, where: str, row: dict, fields: Fields, source: str) -> Problem:
        question = self.question_format.format(_required(row, fields.question, where))
        answer = solution = _required(row, fields.answer, where) if fields.answer else None
        if answer is not None and self.answer_after and self.answer_after in answer:
            answer = answer.rsplit(self.answer_after, 1)[1].strip().replace(",", "")
            if not answer:
                raise ProblemSetError(f"{where}: nothing after {self.answer_after!r} in the answer")
        else:
            solution = _optional(row, fields.solution)
        own_id = _optional(row, fields.id)
        meta: dict[str, Any] = {"task": self.name, "index": index, "source": source}
        for name in fields.meta:  # verbatim: a code prompt's whitespace matters
            _required(row, (name,), where)  # present and not blank, or a one-line error
            meta[name] = str(row[name])
        level = _optional(row, fields.level)
        if level is not None:
            digits = re.search(r"\d+", str(level))  # 3, "3" and MATH's "Level 3" are all level 3
            meta["level"] = int(digits.group()) if digits else level
        subject = _optional(row, fields.subject)
        if subject is not None:
            meta["subject"] = str(subject)
        if solution is not None:  # GSM8K: the worked answer before "####" is the solution
            meta["solution"] = str(solution)
        return Problem(
            id=_problem_id(self.name, own_id, index),
            question=question,
            answer=answer,
            kind=self.kind,
            meta=meta,
        )


def _required(row: dict, names: tuple[str, ...], where: str) -> str:
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    accepted = " or ".join(repr(n) for n in names)
    present = ", ".join(sorted(row)) or "none"
    raise ProblemSetError(f"{where}: no {accepted} field; fields present: {present}")


def _optional(row: dict, names: tuple[str, ...]) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return None


def _problem_id(task: str, own_id: Any, index: int) -> str:
    """The set's own id when it has one; a bare number gets the task's name so ids stay unique
    across sets ("aime24-60"); no id at all gives ``f"{task}-{index}"``."""
    if own_id is None or not str(own_id).strip():
        return f"{task}-{index}"
    own = str(own_id).strip()
    return f"{task}-{own}" if own.lstrip("-").isdigit() else own


def _check_unique_ids(problems: list[Problem], rows: list[tuple[str, dict]]) -> None:
    # Results are stored by id: two rows with one id would overwrite each other's results.
    seen: dict[str, str] = {}
    for p, (where, _) in zip(problems, rows):
        if p.id in seen:
            raise ProblemSetError(f"{where}: id {p.id!r} repeats {seen[p.id]}; ids must be unique")
        seen[p.id] = where


def _level_values(level: str | int) -> set[str]:
    values = set()
    for token in str(level).split(","):
        m = re.fullmatch(r"\s*(?:level\s*)?(\d+)\s*", token, re.IGNORECASE)
        if not m:
            raise ProblemSetError(f"--level takes numbers such as 3 or 4,5; got {level!r}")
        values.add(str(int(m.group(1))))
    return values


def _filter(
    problems: list[Problem], field: str, wanted: set[str], source: str, name: str
) -> list[Problem]:
    present = [p.meta[field] for p in problems if field in p.meta]
    if not present:
        raise ProblemSetError(f"rows of {source} have no {field} field; drop --{field}")
    kept = [p for p in problems if str(p.meta.get(field, "")).casefold() in wanted]
    if not kept:
        choices = ", ".join(str(v) for v in sorted(set(present), key=str))
        asked = ",".join(sorted(wanted))
        raise ProblemSetError(
            f"no {name} problems with {field} {asked!r}; {field}s present: {choices}"
        )
    return kept


_MATH500 = Fields(
    question=("problem",),
    id=("unique_id",),
    level=("level",),
    subject=("subject",),
    solution=("solution",),
)

# HumanEval (openai/human-eval data/HumanEval.jsonl.gz, and the Hub's openai/openai_humaneval):
# no answer; the grader reads the prompt, the tests and the entry point (verify.code_tests).
_HUMANEVAL = Fields(
    question=("prompt",),
    answer=(),
    id=("task_id",),
    solution=("canonical_solution",),
    meta=("prompt", "test", "entry_point"),
)

REAL_SETS: dict[str, RealSet] = {
    s.name: s
    for s in (
        RealSet(
            name="gsm8k",
            summary="GSM8K test: 1,319 grade-school word problems, integer answers",
            kind="math",
            hub=HubSource("openai/gsm8k", "test", "main"),
            hub_fields=Fields(question=("question",)),
            file_fields=Fields(question=("question",)),
            answer_after="####",
        ),
        RealSet(
            name="math500",
            summary="MATH-500: 500 competition problems, levels 1-5, seven subjects",
            kind="math",
            hub=HubSource("HuggingFaceH4/MATH-500", "test"),
            hub_fields=_MATH500,
            file_fields=_MATH500,
        ),
        RealSet(
            name="aime24",
            summary="AIME 2024 I and II: 30 problems, integer answers 0-999",
            kind="math",
            hub=HubSource("HuggingFaceH4/aime_2024", "train"),
            hub_fields=Fields(question=("problem",), id=("id",), solution=("solution",)),
            file_fields=Fields(
                question=("problem", "question"), id=("id",), solution=("solution",)
            ),
        ),
        RealSet(
            name="aime25",
            summary="AIME 2025 I and II: 30 problems, integer answers 0-999",
            kind="math",
            hub=HubSource("yentinglin/aime_2025", "train"),
            hub_fields=Fields(question=("problem",), id=("id",)),
            file_fields=Fields(question=("problem", "question"), id=("id",)),
        ),
        RealSet(
            name="amc23",
            summary="AMC 2023: 40 problems, numeric answers (stored as floats)",
            kind="numeric",
            hub=HubSource("math-ai/amc23", "test"),
            hub_fields=Fields(question=("question", "problem"), id=("id",)),
            file_fields=Fields(question=("problem", "question"), id=("id",)),
        ),
        RealSet(
            name="humaneval",
            summary="HumanEval: 164 Python functions to complete, graded by running their tests",
            kind="code",
            hub=HubSource("openai/openai_humaneval", "test"),
            hub_fields=_HUMANEVAL,
            file_fields=_HUMANEVAL,
            question_format="Complete this Python function:\n\n```python\n{}\n```",
        ),
    )
}
