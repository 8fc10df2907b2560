"""A ScriptedModel that also keeps every call's usage, so tests can check a strategy's
Result.usage against the sum over its calls (shared by the strategy test files)."""

from __future__ import annotations

from ponder.budget import Usage
from ponder.models import ScriptedModel


class Recorder(ScriptedModel):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.usages: list[Usage] = []

    async def generate(self, request, on_text=None, should_stop=None):
        c = await super().generate(request, on_text=on_text, should_stop=should_stop)
        self.usages.append(c.usage)
        return c
