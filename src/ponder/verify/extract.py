"""Pull a final answer out of free-form model text.

Order of preference: the last ``\\boxed{...}`` (balanced braces), the last "Answer: ..." /
"answer is ..." line, GSM8K's "#### N", and finally the last number in the text. Extraction is a
plain function so that grading, voting and RL rewards all use the same one.
"""

from __future__ import annotations

import re

from ponder.problems.boxed import last_boxed  # one reader of \boxed{}, shared with the loaders

_ANSWER_LINE = re.compile(
    r"(?:final answer|answer)\s*(?:is\s*:?|:|=)\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def last_number(text: str) -> str | None:
    nums = _NUMBER.findall(text)
    return nums[-1].replace(",", "") if nums else None


def _clean(ans: str) -> str:
    ans = ans.strip().rstrip(".").strip().strip("*").strip()  # markdown bold around answers
    if ans.startswith("$") and ans.endswith("$") and len(ans) > 1:
        ans = ans.strip("$").strip()
    boxed = last_boxed(ans)
    if boxed is not None:
        return boxed
    # "Answer: 6 bolts are needed in total" -> "6": a sentence is not an answer, its number is
    if len(ans.split()) > 3 and "\\" not in ans and (num := _NUMBER.search(ans)):
        return num.group(0).replace(",", "")
    return ans


def extract_answer(text: str) -> str | None:
    """The final answer stated in ``text``, or None when it states none."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed:
        return boxed
    for pattern in (_ANSWER_LINE, _HASHES):
        found = pattern.findall(text)
        if found and _clean(found[-1]):
            return _clean(found[-1])
    return last_number(text)
