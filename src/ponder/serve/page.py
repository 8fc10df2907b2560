"""The live page served at ``/``: ask a question, pick a strategy, watch the work arrive.

One static file (``static/index.html``: plain HTML, CSS and JavaScript, no build step, no CDN) with
the server's configuration filled in. It posts to ``/v1/chat/completions`` with ``stream: true``
and ``ponder.events: true``, reads the server-sent events from ``fetch``'s body stream, and draws
each strategy event as it comes: a card per sample (an agent, for ``deepthink``) filling token by
token, the vote tally, judge scores, phases, early stops; then the answer and its exact usage.
"""

from __future__ import annotations

import json
from importlib.resources import files

PLACEHOLDER = "/*PONDER_CONFIG*/null"


def html(strategies: list[str], model: str, default_strategy: str, needs_key: bool) -> str:
    text = (files("ponder.serve") / "static" / "index.html").read_text(encoding="utf-8")
    config = {
        "strategies": strategies,
        "model": model,
        "defaultStrategy": default_strategy,
        "needsKey": needs_key,
    }
    # "</" cannot end the <script> element early when escaped this way
    return text.replace(PLACEHOLDER, json.dumps(config).replace("</", "<\\/"))
