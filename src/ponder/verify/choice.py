"""Multiple-choice answers: the letter A-E, case- and punctuation-insensitive.

``choice_letter`` reads the letter a candidate names: a bare letter in any dress (``B``, ``(b)``,
``**C**``, ``[D].``, ``\\text{(E)}``), or a letter that opens the answer and is set off by
punctuation (``C) 42``, ``(A) twelve``, ``option b``, ``answer: d``). A letter that starts a word or
sentence ("A dog") is not a choice; neither is a number or the text of an option, since the
reference is a letter and the grader compares letters only.
"""

from __future__ import annotations

import re

LETTERS = "ABCDE"

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_LEADING = re.compile(
    r"^[\W_]*(?:(?:option|choice|answer)\s*(?:is\s*)?[:=]?\s*)?[(\[]?\s*([A-E])\s*(?:[).\]:,;]|$)",
    re.IGNORECASE,
)


def choice_letter(text: str | None) -> str | None:
    """The upper-case letter A-E that ``text`` names, or None."""
    if text is None:
        return None
    s = _WRAPPERS.sub(r"\1", str(text)).strip()
    bare = re.sub(r"[\W_]+", "", s)
    if len(bare) == 1 and bare.upper() in LETTERS:
        return bare.upper()
    m = _LEADING.match(s)
    return m.group(1).upper() if m else None


def choice_equal(candidate: str, reference: str) -> bool:
    """Whether ``candidate`` names the reference's letter. A reference that names no letter is a
    bug in the problem set (the loaders check it), not a wrong answer."""
    want = choice_letter(reference)
    if want is None:
        raise ValueError(
            f"a choice reference must be a letter {LETTERS[0]}-{LETTERS[-1]}, got {reference!r}"
        )
    return choice_letter(candidate) == want
