"""Any dataset as problems: a JSONL file or a Hub dataset, mapped by templates over a row's fields.

``ponder bench --data svamp.jsonl --question "{Body} {Question}" --answer "{Answer}"`` and
``--task hf:DATASET[:CONFIG][@SPLIT]`` (the same mapping over a Hub dataset) both land here. A
template is ``str.format`` over the row: ``{Field}`` is the field's value, ``{{`` a literal brace.

Defaults, so that common shapes need no flags: the question is the row's ``question`` or
``problem`` field; the answer its ``answer`` field, or, when a MATH-style row has none, the
``\\boxed{}`` answer of its ``solution``. A rendered answer that holds a ``\\boxed{}``
(``--answer "{solution}"``) is reduced to the boxed content too. Graders (``Problem.kind``): math,
numeric, exact, choice (the reference is a letter A-E), countdown (the row's ``target``, and its
numbers in ``nums`` or ``numbers``).

Every mistake is a one-line ProblemSetError at load time that names the row and the missing field
and lists the row's fields, as the known sets' loaders do.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.boxed import last_boxed
from ponder.problems.errors import ProblemSetError
from ponder.problems.hub import HubSource, load_hub_rows
from ponder.problems.jsonl import read_jsonl
from ponder.problems.real import _check_unique_ids, _filter, _level_values, _problem_id

GRADERS = ("math", "numeric", "exact", "choice", "countdown")
CHOICE_LETTERS = "ABCDE"
_ID_FIELDS = ("id", "ID", "unique_id", "idx")
_SUBJECT_FIELDS = ("subject", "type")  # MATH names its subject "type"


@dataclass(frozen=True)
class Mapping:
    """How a row becomes a Problem. ``question`` / ``answer`` are templates (None: the defaults in
    the module docstring); ``grader`` is the Problem's kind."""

    question: str | None = None
    answer: str | None = None
    grader: str = "math"

    def __post_init__(self) -> None:
        if self.grader not in GRADERS:
            raise ProblemSetError(f"--grader {self.grader!r}: choose one of {', '.join(GRADERS)}")
        for flag, template in (("--question", self.question), ("--answer", self.answer)):
            if template is not None:
                template_fields(template, flag)


def template_fields(template: str, flag: str) -> list[str]:
    """The row fields ``template`` reads (``{a.b}``, ``{a[0]}`` read ``a``), checked to be names."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        why = f"{e} (write {{{{ or }}}} for a literal brace)"
        raise ProblemSetError(f"{flag} {template!r}: {why}") from None
    names = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not root or root.isdigit():
            raise ProblemSetError(
                f"{flag} {template!r}: {{{name}}} names no field; "
                "write {FieldName}, e.g. {question}"
            )
        names.append(root)
    if not template.strip():
        raise ProblemSetError(f"{flag} is empty; write a template such as '{{question}}'")
    return names


def parse_hf_task(text: str) -> HubSource:
    """``hf:DATASET[:CONFIG][@SPLIT]`` -> HubSource (DATASET may be a local folder of files)."""
    rest = text.strip()[3:] if text.strip().lower().startswith("hf:") else text.strip()
    rest, at, split = rest.rpartition("@") if "@" in rest else (rest, "", "")
    path, _, config = rest.partition(":")
    if not path.strip() or (at and not split.strip()):
        raise ProblemSetError(
            f"--task {text!r}: write hf:DATASET[:CONFIG][@SPLIT], e.g. hf:ChilleD/SVAMP@test"
        )
    path = path.strip()
    if path.startswith("~"):
        path = str(Path(path).expanduser())
    return HubSource(path, split.strip() or None, config.strip() or None)


def load_mapped(
    mapping: Mapping,
    data: str | None = None,
    hub: HubSource | None = None,
    limit: int | None = None,
    level: str | int | None = None,
    subject: str | None = None,
) -> list[Problem]:
    """Problems from the rows of ``data`` (a .jsonl / .jsonl.gz file) or of ``hub``, in order."""
    if (data is None) == (hub is None):
        raise ProblemSetError("map rows from one source: --data FILE or --task hf:DATASET")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ProblemSetError(f"--limit must be a positive whole number; got {limit!r}")
    if data is not None:
        name = re.sub(r"\.jsonl(\.gz)?$", "", Path(data).name) or "data"
        rows = [(f"{data} line {n}", row) for n, row in read_jsonl(data)]
        source = str(data)
    else:
        name = Path(hub.path.rstrip("/")).name.lower() or "hf"
        rows = [(f"{hub.path} row {i}", row) for i, row in enumerate(load_hub_rows(hub))]
        source = f"{hub.path} (Hub)" if not hub.local else hub.path
    problems = [
        _problem(mapping, name, i, where, row, source) for i, (where, row) in enumerate(rows)
    ]
    _check_unique_ids(problems, rows)
    if level is not None:
        problems = _filter(problems, "level", _level_values(level), source, name)
    if subject is not None:
        wanted = {s.strip().casefold() for s in str(subject).split(",") if s.strip()}
        problems = _filter(problems, "subject", wanted, source, name)
    return problems[:limit] if limit is not None else problems


def _problem(
    mapping: Mapping, name: str, index: int, where: str, row: dict, source: str
) -> Problem:
    meta: dict[str, Any] = {"task": name, "index": index, "source": source}
    question = _render_question(mapping.question, where, row)
    if mapping.grader == "countdown":
        answer = None
        meta.update(_countdown_fields(mapping.answer, where, row))
    else:
        answer = _render_answer(mapping.answer, where, row)
        if mapping.grader == "choice":
            answer = _choice_reference(answer, where)
    if row.get("solution") is not None:
        meta["solution"] = str(row["solution"])
    if row.get("level") is not None:
        digits = re.search(r"\d+", str(row["level"]))  # 3, "3" and MATH's "Level 3" are level 3
        meta["level"] = int(digits.group()) if digits else row["level"]
    subject = next((row[f] for f in _SUBJECT_FIELDS if row.get(f) is not None), None)
    if subject is not None:
        meta["subject"] = str(subject)
    own_id = next((row[f] for f in _ID_FIELDS if row.get(f) is not None), None)
    return Problem(_problem_id(name, own_id, index), question, answer, mapping.grader, meta)


def _fields_present(row: dict) -> str:
    return ", ".join(sorted(map(str, row))) or "none"


def _render(template: str, flag: str, where: str, row: dict) -> str:
    for field in template_fields(template, flag):
        if row.get(field) is None:
            hint = ""
            if flag == "--answer" and last_boxed(str(row.get("solution") or "")):
                hint = " (omit --answer to use the \\boxed{} answer of its solution)"
            raise ProblemSetError(
                f"{where}: no {field!r} field for {flag} {template!r}; "
                f"fields present: {_fields_present(row)}{hint}"
            )
    try:
        text = template.format_map(row).strip()
    except (LookupError, AttributeError, ValueError, TypeError) as e:
        raise ProblemSetError(
            f"{where}: {flag} {template!r} cannot be filled from this row: {e}"
        ) from None
    if not text:
        raise ProblemSetError(f"{where}: {flag} {template!r} gives an empty text")
    return text


def _render_question(template: str | None, where: str, row: dict) -> str:
    if template is not None:
        return _render(template, "--question", where, row)
    for field in ("question", "problem"):
        if row.get(field) is not None and str(row[field]).strip():
            return str(row[field]).strip()
    raise ProblemSetError(
        f"{where}: no 'question' or 'problem' field (pass --question TEMPLATE, e.g. "
        f"--question '{{Body}} {{Question}}'); fields present: {_fields_present(row)}"
    )


def _render_answer(template: str | None, where: str, row: dict) -> str:
    if template is not None:
        text = _render(template, "--answer", where, row)
        return last_boxed(text) or text
    if row.get("answer") is not None and str(row["answer"]).strip():
        return str(row["answer"]).strip()
    boxed = last_boxed(str(row.get("solution") or ""))
    if boxed:
        return boxed
    raise ProblemSetError(
        f"{where}: no 'answer' field and no 'solution' with a \\boxed{{}} answer (pass --answer "
        f"TEMPLATE, e.g. --answer '{{Answer}}'); fields present: {_fields_present(row)}"
    )


def _choice_reference(answer: str, where: str) -> str:
    letter = re.sub(r"[\W_]+", "", answer).upper()
    if len(letter) != 1 or letter not in CHOICE_LETTERS:
        raise ProblemSetError(
            f"{where}: --grader choice needs the answer to be one letter {CHOICE_LETTERS[0]}-"
            f"{CHOICE_LETTERS[-1]}, got {answer!r}"
        )
    return letter


def _countdown_fields(template: str | None, where: str, row: dict) -> dict[str, Any]:
    """The puzzle: target (``--answer`` renders it; default the ``target`` field) and numbers."""
    target_text = _render(template or "{target}", "--answer", where, row)
    raw = next((row[f] for f in ("nums", "numbers") if row.get(f) is not None), None)
    if raw is None:
        raise ProblemSetError(
            f"{where}: --grader countdown needs the numbers in a 'nums' or 'numbers' field; "
            f"fields present: {_fields_present(row)}"
        )
    pieces = raw if isinstance(raw, (list, tuple)) else re.split(r"[\s,;]+", str(raw).strip(" []"))
    try:
        numbers = [int(str(x).strip()) for x in pieces if str(x).strip()]
        target = int(float(target_text))
    except ValueError:
        raise ProblemSetError(
            f"{where}: countdown needs whole numbers and a whole target; got numbers {raw!r}, "
            f"target {target_text!r}"
        ) from None
    if not numbers:
        raise ProblemSetError(f"{where}: the countdown numbers field is empty")
    return {"numbers": numbers, "target": target}
