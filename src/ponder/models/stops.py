"""Stop strings over streamed text.

Written by hand because the backends that decode token by token (llama.cpp's low-level batch API,
the scripted model) get no stop-string handling from their libraries, and a streamed piece must not
show the user the beginning of a stop string that is about to be cut.
"""

from __future__ import annotations


class StopScanner:
    """Feed text pieces; get back what is safe to emit, and whether a stop string was hit.

    Text that could still be the start of a stop string is held back until it is disambiguated.
    """

    def __init__(self, stops: tuple[str, ...] | list[str] = ()) -> None:
        self.stops = tuple(s for s in stops if s)
        self.text = ""  # everything emitted so far (the final text once stopped)
        self._pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add a piece; return the newly emittable text (possibly empty)."""
        if self.stopped:
            return ""
        buf = self._pending + piece
        if not self.stops:
            self.text += buf
            self._pending = ""
            return buf
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            self.text += buf[:cut]
            return buf[:cut]
        hold = max((_overlap(buf, s) for s in self.stops), default=0)
        emit, self._pending = buf[: len(buf) - hold], buf[len(buf) - hold :]
        self.text += emit
        return emit

    def flush(self) -> str:
        """At the end of generation: release held-back text (it was not a stop string after all)."""
        rest, self._pending = ("" if self.stopped else self._pending), ""
        self.text += rest
        return rest


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for k in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:k]):
            return k
    return 0
