"""``last_boxed(text)``: the content of the last ``\\boxed{...}`` in a text, braces balanced.

It lives with the problems because a reference answer can hide in a worked solution (MATH's
``solution`` field); ``verify.extract`` uses the same function to read a model's final answer.
"""

from __future__ import annotations


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} or \\fbox{...}, braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None
