"""A scripted model that streams its samples and then holds the finished completion until the test
opens its gate: a test sees the work mid-way however slowly a shared machine runs, instead of
racing a token delay against the clock."""

from __future__ import annotations

import asyncio
import threading

from ponder.models import ScriptedModel


class GatedModel(ScriptedModel):
    def __init__(self, *args, hold_seconds: float = 30.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.returned = 0  # completions handed back to the caller so far
        self._hold_seconds = hold_seconds  # a test that never opens the gate still ends

    async def generate(self, request, on_text=None, should_stop=None):
        completion = await super().generate(request, on_text, should_stop)
        await asyncio.to_thread(self.gate.wait, self._hold_seconds)
        self.returned += 1
        return completion
