"""A scripted researcher for the research tests: a reply function that reads each request (which
step it is, from the system prompt) and answers as a careful model would on the generated
``research`` world, deterministically (a function of the request alone, so a resumed run gets the
same replies as an uninterrupted one).

``main(argv)`` runs the real ``ponder`` command line with this model in place of ``--model``
(tests start it as ``python -c``); every call is logged to ``$RESEARCH_FAKE_LOG`` (the request's
journal digest), so a test can count calls across a kill and a resume.
"""

from __future__ import annotations

import os
import re
import sys

from ponder.models import ScriptedModel
from ponder.research.journal import request_digest
from ponder.research.loop import (
    ASSESS_SYSTEM,
    NOTES_SYSTEM,
    PLAN_SYSTEM,
    REPLAN_SYSTEM,
    WRITE_SYSTEM,
)
from ponder.verify.support import SUPPORT_SYSTEM

PLANTED = "Moon"  # a write reply may plant "X was born on the Moon [n]." (unsupported)
_NAME = r"[A-Z][a-z]+ [A-Z][a-z]+"


def _user(request) -> str:
    return request.messages[-1]["content"]


def _system(request) -> str:
    return request.messages[0]["content"] if request.messages[0]["role"] == "system" else ""


def _society(text: str) -> str | None:
    m = re.search(r"the ([A-Z][a-z]+ (?:Society|Guild|Circle|Fellowship|Academy))", text)
    return m.group(1) if m else None


def _answer(question: str, notes: str) -> str:
    """Follow the chain through the notes: society -> founder (-> mentor) -> town -> river."""
    s = _society(question)
    m = s and re.search(rf"{s} was founded in \d+ by ({_NAME})", notes)
    if not m:
        return "unknown"
    person = m.group(1)
    if "mentor" in question:
        m = re.search(rf"{person} learned the trade under ({_NAME})", notes)
        person = m.group(1) if m else person
    town = re.search(rf"{person} was an? [a-z ]+ born in ([A-Z][a-z]+)", notes)
    if not town:
        return "unknown"
    if "river" not in question:
        return town.group(1)
    river = re.search(
        rf"{town.group(1)} is a town in the [A-Z][a-z]+ region, on the river ([A-Z][a-z]+)", notes
    )
    return river.group(1) if river else "unknown"


def reply(request, i: int, plant: bool = False, stall: bool = False) -> str:
    system, user = _system(request), _user(request)
    question = re.search(r"Question: (.*)", user).group(1) if "Question: " in user else ""
    if system.startswith(PLAN_SYSTEM[:20]):
        if stall:
            return "1. Tell me more\n2. Tell me more about it"
        s = _society(question)
        return f"1. Who founded the {s}?\n2. When was the {s} founded?" if s else "1. What is it?"
    if system.startswith(REPLAN_SYSTEM[:20]):
        return "Something else entirely\nAnother angle" if stall else "What else is known?"
    if system == NOTES_SYSTEM:
        if stall:
            return "NONE"
        words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", question)} - {
            "which",
            "what",
            "where",
            "founded",
            "born",
            "when",
        }
        lines = []
        for n, text in re.findall(r"\[P(\d+)\] (.*?)(?=\n\n\[P\d+\]|\Z)", user, re.S):
            for sentence in re.findall(r"[^.\n]+\.", text):
                if any(w in sentence.lower() for w in words):
                    lines.append(f"P{n}: {sentence.strip()}")
        return "\n".join(lines) or "NONE"
    if system == ASSESS_SYSTEM:
        notes = user.split("Notes so far:", 1)[-1]
        founder = re.search(rf"founded in \d+ by ({_NAME})", notes)
        if founder and not re.search(rf"{founder.group(1)} was an? [a-z ]+ born in", notes):
            return f"UNKNOWN: Where was {founder.group(1)} born?"
        town = re.search(r"born in ([A-Z][a-z]+) in \d+", notes)
        if "river" in question and town and f"{town.group(1)} is a town" not in notes:
            return f"UNKNOWN: Which river flows through {town.group(1)}?"
        return "DONE"
    if system == WRITE_SYSTEM:
        notes = re.findall(r"^\[(\d+)\] (.*)$", user, re.M)
        quotes = [(n, q) for n, text in notes for q in re.findall(r"[^.]+\.", text)]
        body = " ".join(f"{q.strip().rstrip('.')} [{n}]." for n, q in quotes)
        if plant:
            person = re.search(rf"({_NAME}) was an? ", body)
            n = next((n for n, t in notes if person and person.group(1) in t), "1")
            body += f" {person.group(1) if person else 'Someone'} was born on the {PLANTED} [{n}]."
        return f"{body}\nAnswer: {_answer(question, body)}"
    if system == SUPPORT_SYSTEM:
        return "No" if PLANTED in user else "Yes"
    raise AssertionError(f"unexpected request: {system[:60]!r}")


def model(plant: bool = False, stall: bool = False, token_delay: float = 0.0) -> ScriptedModel:
    log = os.environ.get("RESEARCH_FAKE_LOG")

    def logged(request, i):
        if log:
            with open(log, "a") as f:
                f.write(request_digest(request) + "\n")
        return reply(request, i, plant=plant, stall=stall)

    return ScriptedModel(logged, name="fake-researcher", token_delay=token_delay)


def main(argv: list[str]) -> int:
    import ponder.cli
    import ponder.research.cli

    delay = float(os.environ.get("RESEARCH_FAKE_DELAY", "0"))
    ponder.research.cli.resolve = lambda spec=None, **kw: model(token_delay=delay)
    return ponder.cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
