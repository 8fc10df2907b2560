"""Solutions as steps: where one step of a written solution ends and the next begins.

Step-level strategies (reflect, beam, mcts) work on partial solutions cut at step boundaries.
Three ways to find the boundaries (the strategies' ``split`` option):

- ``blank``: a step ends at a blank line, and a line that starts with "Step k" starts a new step;
- ``line``: every non-blank line is a step (the lab models write one column of a sum per line);
- ``auto``: ``blank`` when the text has a blank line or a "Step k" line, else ``line`` (when a
  finished text is split); when steps are sampled one at a time, nothing is known yet and
  ``auto`` samples up to a blank line, as ``blank`` does.

Steps keep their trailing separator, so that ``"".join(steps) == text`` and cutting a solution
before step k is ``"".join(steps[:k])``: a backtrack keeps the text exactly as the model wrote it.
"""

from __future__ import annotations

import itertools
import re

from ponder.verify.extract import last_boxed

SPLITS = ("auto", "blank", "line")
_STEP_LINE = re.compile(r"^[ \t]*step\s*\d+", re.IGNORECASE | re.MULTILINE)
_BLANK = re.compile(r"\n[ \t]*\n\s*")
_ANSWER = re.compile(r"(?:final answer|answer)\s*(?:is\s*:?|:|=)\s*\S", re.IGNORECASE)


def check_split(owner: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{owner}: split={split!r} is not one of {', '.join(SPLITS)}")


def mode_for(text: str, split: str) -> str:
    """``blank`` or ``line``: what ``split`` means for this text."""
    if split != "auto":
        return split
    return "blank" if _BLANK.search(text.strip()) or _STEP_LINE.search(text) else "line"


def split_steps(text: str, split: str = "auto") -> list[str]:
    """The steps of ``text``, each with its trailing separator; ``"".join`` gives ``text`` back.

    Whitespace-only pieces (blank lines in line mode, leading space) join the step before them, or
    the first step when they lead.
    """
    if not text:
        return []
    if mode_for(text, split) == "line":
        pieces = text.splitlines(keepends=True)
    else:
        cuts = {m.end() for m in _BLANK.finditer(text)}
        cuts |= {m.start() for m in _STEP_LINE.finditer(text) if m.start() > 0}
        bounds = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
        pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    steps: list[str] = []
    lead = ""
    for piece in pieces:
        if not piece.strip():
            if steps:
                steps[-1] += piece
            else:
                lead += piece
            continue
        steps.append(lead + piece)
        lead = ""
    if lead:  # only whitespace
        steps.append(lead)
    return steps


def states_answer(text: str) -> bool:
    """Whether ``text`` states a final answer (``\\boxed{...}`` or an "Answer: ..." line)."""
    return last_boxed(text) is not None or _ANSWER.search(text) is not None
