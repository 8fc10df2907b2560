"""Turn a strategy's events into reasoning text a person can read while it is written.

A batched strategy decodes many samples at once, so their TextDelta pieces arrive interleaved; sent
as they come they would be word salad. The transcript follows one sample at a time: the first that
speaks is shown live, token by token; the others are held back (their text kept) until it finishes,
then the next is shown, its held-back text at once and the rest live. Each sample gets a header and
an end line with its answer; votes, scores, phases, early stops, tool calls (a program run, and
how it ended with the first line it printed) and the policy guard's decision become one-line
notes, held back while a sample is mid-text so that they never split it. Samples keep the
strategy's own numbers (from 0), so that the transcript agrees with the strategy's "how"
("sample 1 scored 0.9").

Sample numbers can be reused (a multi-phase strategy numbers each phase's samples from 0): a
TextDelta for a sample that has already finished starts a new sample with that number.

Events this module does not know (those of strategies added later: search trees, backtracking...)
get a generic note from their plain fields; bulky fields (a whole tree) are left to the events
themselves, which a client can ask for with ``ponder.events``.
"""

from __future__ import annotations

import dataclasses

from ponder.events import (
    Assessed,
    CitationChecked,
    DeadEnd,
    Event,
    Final,
    Guarded,
    Noted,
    Phase,
    Planned,
    Reported,
    Sampled,
    Scored,
    Searched,
    Spent,
    Stopped,
    TextDelta,
    ToolCalled,
    ToolResult,
    Voted,
)

SHORT = 8  # lists up to this long appear in a generic note


def header(sample: int) -> str:
    return f"── sample {sample} ──\n"


def end_line(ev: Sampled) -> str:
    how = {"length": ", cut at max_tokens", "cancelled": ", stopped early"}.get(
        ev.finish_reason, ""
    )
    answer = ev.answer if ev.answer is not None else "none found"
    tokens = f"{ev.completion_tokens} tokens{how}"
    said = "calls" if ev.tool_calls else "answer"
    return f"\n── sample {ev.sample}: {said} {answer}, {tokens} ──\n\n"


def note(ev: Event) -> str:
    """One line for a progress event; "" for events that have no line (TextDelta, Spent, ...)."""
    if isinstance(ev, Voted):
        top = sorted(ev.tally.items(), key=lambda kv: -kv[1])[:6]
        tally = ", ".join(f"{k} ×{v:g}" for k, v in top) or "no answers"
        return f"· votes: {tally} → {ev.leader if ev.leader is not None else 'none'}\n"
    if isinstance(ev, Scored):
        return f"· sample {ev.sample} scored {ev.score:.3f}: {ev.reason}\n"
    if isinstance(ev, Stopped):
        who = f" (sample {ev.sample})" if ev.sample is not None else ""
        return f"· stopped{who}: {ev.reason}\n"
    if isinstance(ev, Phase):
        return f"· {ev.name} done" + (f": {ev.detail}" if ev.detail else "") + "\n"
    if isinstance(ev, ToolCalled):
        n = len(ev.code.strip().splitlines())
        return f"· tool call {ev.call}: running {n} line{'s' * (n != 1)} of {ev.language}\n"
    if isinstance(ev, ToolResult):
        return tool_result_note(ev)
    if isinstance(ev, Guarded):
        spent = f"{ev.usage.total_tokens} tokens"
        return f"· guard: {ev.decision}, {spent} ({ev.reason})\n"
    if isinstance(ev, (TextDelta, Sampled, Spent, Final)):
        return ""
    research = research_note(ev)
    return research if research is not None else generic_note(ev)


def research_note(ev: Event) -> str | None:
    """The research loop's steps (``ponder/research``), one line each; None for other events."""
    if isinstance(ev, Planned):
        return f"· plan, round {ev.round}: {'; '.join(ev.questions)}" + (
            f" ({ev.why})\n" if ev.why else "\n")  # fmt: skip
    if isinstance(ev, Searched):
        return f"· searched {ev.source} for {ev.query!r}: {len(ev.hits)} hits, {ev.new} new\n"
    if isinstance(ev, Noted):
        return (f"· read {len(ev.read)} passages for {ev.question!r}: {len(ev.notes)} notes"
                f"{f', {ev.rejected} rejected' if ev.rejected else ''}\n")  # fmt: skip
    if isinstance(ev, Assessed):
        state = "enough to write" if ev.done else f"still unknown: {'; '.join(ev.unknown) or '-'}"
        return f"· round {ev.round} assessed: {state}\n"
    if isinstance(ev, DeadEnd):
        return f"· dead end, round {ev.round}: {ev.reason}\n"
    if isinstance(ev, CitationChecked):
        mark = "cited" if ev.ok else "unsupported"
        return f"· citation check, {mark} ({ev.how}): {ev.sentence[:80]}\n"
    if isinstance(ev, Reported):
        return f"· report: {ev.sentences} sentences, {ev.cited} cited, {ev.verified} verified\n"
    return None


def tool_result_note(ev: ToolResult) -> str:
    ended = "stopped" if ev.exit_code is None else f"exit status {ev.exit_code}"
    if ev.killed_by:
        ended += f" ({ev.killed_by} limit)"
    line, more = ev.first_printed(80)
    first = f": {line}{' …' if more else ''}" if line else ""
    return f"· tool call {ev.call}: {ended}, {ev.seconds:.2f} s{first}\n"


def _plain(value) -> bool:
    if isinstance(value, list):
        return len(value) <= SHORT and all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def generic_note(ev: Event) -> str:
    """``· name: field=value, ...`` from the event's plain fields; "" if it has none."""
    parts = []
    for f in dataclasses.fields(ev):
        value = getattr(ev, f.name)
        if f.name != "t" and _plain(value):  # the time stamp is for machines, not the reader
            parts.append(
                f"{f.name}={value:.3g}" if isinstance(value, float) else f"{f.name}={value}"
            )
    return f"· {type(ev).__name__.lower()}: {', '.join(parts)}\n" if parts else ""


class Transcript:
    def __init__(self) -> None:
        self.following: int | None = None  # the sample being shown live
        self.text: dict[int, str] = {}  # sample -> all its text so far (shown or held back)
        self.shown: dict[int, int] = {}  # sample -> characters of it already shown
        self.finished: dict[int, Sampled] = {}
        self.waiting: list[int] = []  # samples with held-back text, in the order they spoke
        self.notes: list[str] = []  # notes held back while a sample is mid-text

    def feed(self, ev: Event) -> str:
        """The text this event adds to the reasoning now ("" when held back or nothing to say)."""
        out: list[str] = []
        if isinstance(ev, TextDelta):
            i = ev.sample
            if i in self.finished:  # a new sample reusing a finished one's number
                del self.finished[i]
                self.text[i], self.shown[i] = "", 0
            self.text[i] = self.text.get(i, "") + ev.text
            self._arrived(i, out)
        elif isinstance(ev, Sampled):
            i = ev.sample
            so_far = self.text.get(i, "")
            if ev.text.startswith(so_far):  # backends that do not stream give the text only here
                self.text[i] = ev.text
            self.finished[i] = ev
            self._arrived(i, out)
        elif line := note(ev):
            if self.following is None:
                out.append(line)
            else:
                self.notes.append(line)
        return "".join(out)

    def finish(self) -> str:
        """Everything still held back (samples the strategy never finished, notes), at the end."""
        out: list[str] = []
        while self.following is not None or self.waiting:
            if self.following is None:
                self._show(self.waiting.pop(0), out)
            i = self.following
            out.append(self._unshown(i))
            out.append(end_line(self.finished[i]) if i in self.finished else "\n\n")
            self.following = None
        out.extend(self.notes)
        self.notes.clear()
        return "".join(out)

    # --- internals -------------------------------------------------------------------------
    def _arrived(self, i: int, out: list[str]) -> None:
        if self.following is None:
            self._show(i, out)
        elif i == self.following:
            out.append(self._unshown(i))
        elif i not in self.waiting:
            self.waiting.append(i)
        self._advance(out)

    def _show(self, i: int, out: list[str]) -> None:
        self.following = i
        self.shown.setdefault(i, 0)
        out.append(header(i) + self._unshown(i))

    def _unshown(self, i: int) -> str:
        piece = self.text.get(i, "")[self.shown.get(i, 0) :]
        self.shown[i] = len(self.text.get(i, ""))
        return piece

    def _advance(self, out: list[str]) -> None:
        """While the sample shown has finished: close it, let the notes out, show the next."""
        while self.following is not None and self.following in self.finished:
            i = self.following
            out.append(self._unshown(i) + end_line(self.finished[i]))
            self.following = None
            out.extend(self.notes)
            self.notes.clear()
            if self.waiting:
                self._show(self.waiting.pop(0), out)
