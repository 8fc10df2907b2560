"""The text format every lab model is trained on and prompted with.

Lab models are character-level and tiny, so the format is short: ``Q: <question>\\nA: `` followed by
a worked trace that ends in ``Answer: <answer>``. The same rendering is stored as the tokenizer's
chat template, so ``ponder solve --model hf:PATH`` and ``ponder bench`` (which send chat messages
with a system prompt) reach the model in exactly the format it was trained on: the template keeps
only the last user message.
"""

from __future__ import annotations

# Jinja, as transformers' apply_chat_template expects; system messages are dropped on purpose.
# A namespace, because a plain {% set %} inside a Jinja for loop does not outlive the loop.
CHAT_TEMPLATE = (
    "{% set ns = namespace(q='') %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{% set ns.q = m['content'] %}{% endif %}{% endfor %}Q: {{ ns.q }}\nA: "
)
EOS = "</s>"


def prompt_text(question: str) -> str:
    """What the template renders for one question (the model continues after it)."""
    return f"Q: {question}\nA: "


def completion_text(trace: str, answer: str) -> str:
    """A worked trace and its final answer line, as the model should write it."""
    trace = trace.rstrip()
    return (f"{trace}\n" if trace else "") + f"Answer: {answer}"
