"""ProblemSetError: a mistake in what the user asked to load, in one line that says what to fix."""

from __future__ import annotations


class ProblemSetError(ValueError):
    """Raised at load time, before any model work; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: object, width: int = 300) -> str:
    """Collapse ``text`` (often another library's error message) to one short line."""
    s = " ".join(str(text).split())
    return s if len(s) <= width else s[: width - 3] + "..."
