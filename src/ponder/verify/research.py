"""Grading a research report (``problems.research``): the answer exactly, the citations against
the documents the question needs.

- ``research_equal``: the answer names the reference entity: equal after ``normalize_answer``,
  once a leading article and the generic words the question itself uses ("river", "town",
  "region", "of") are dropped ("the river Vell" is "Vell"; "Vell or Tarsio" is not).
- ``citation_precision``: of the distinct sources the report's findings cite, the share that are
  among ``meta["gold"]``, the documents a question needs (BrowseComp-Plus's evidence precision);
  and of the gold documents, the share cited (evidence recall). The report's format is the
  contract: findings cite ``[n]``, and its Sources list reads ``n. `FILE`, ...``
  (``research/report.py``).
"""

from __future__ import annotations

import re

from ponder.verify.normalize import normalize_answer

_GENERIC = re.compile(r"\b(the|a|an|river|town|city|region|of)\b", re.IGNORECASE)
_SOURCE = re.compile(r"^(\d+)\. `([^`]+)`", re.MULTILINE)
_CITE = re.compile(r"\[(\d+)\]")


def research_equal(answer: str, reference: str) -> bool:
    def core(s: str) -> str | None:
        return normalize_answer(_GENERIC.sub(" ", s))

    return core(answer) is not None and core(answer) == core(reference)


def citation_precision(report: str, gold: list[str]) -> tuple[int, int, int]:
    """(cited sources that are gold, cited sources, gold documents cited) of a report."""
    findings = report.split("## Findings", 1)[-1].split("\n## ", 1)[0]
    files = dict((int(n), f) for n, f in _SOURCE.findall(report))
    cited = {files[n] for n in map(int, _CITE.findall(findings)) if n in files}
    return len(cited & set(gold)), len(cited), len(set(gold) & cited)


def citation_reason(report: str, gold: list[str]) -> str:
    good, cited, found = citation_precision(report, gold)
    if not cited:
        return f"no citations; 0 of {len(gold)} needed documents cited"
    return (f"citation precision {good}/{cited} = {good / cited:.2f}; "
            f"{found} of {len(gold)} needed documents cited")  # fmt: skip
