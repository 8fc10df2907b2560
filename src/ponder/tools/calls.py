"""Client tool calls (OpenAI function calling) for models without native function calling: the
tools are described in the system prompt, and the calls are read back out of the sample's text.

The format is the one Hermes and Qwen2.5 models are trained on (their chat templates write the same
blocks), so models that know it use it, and the instructions spell it out for those that do not.
The system prompt gets, after the client's system prompt and the strategy's instructions::

    # Tools

    You can call these functions (JSON schemas):
    <tools>
    {"type": "function", "function": {"name": "get_weather", "parameters": {...}}}
    </tools>

    To call a function, write one block per call, exactly:
    <tool_call>
    {"name": "FUNCTION_NAME", "arguments": {ARGUMENTS AS A JSON OBJECT}}
    </tool_call>
    ...

and a sample's ``<tool_call>`` blocks become its ``tool_calls`` (ids ``call_...``). Earlier turns
are rendered the same way: an assistant turn's calls as ``<tool_call>`` blocks after its text, tool
results as a user turn of ``<tool_response>`` blocks (consecutive results in one turn).
``<tool_response>`` is a stop string, so that a model cannot invent its tools' results.

What the model gets wrong is recorded, not raised (``Sample.tool_warning``; the Run emits a Warned
event): a block that is not a JSON object with a known ``name`` and object ``arguments`` (a string
holding a JSON object is accepted), or an unclosed block that is not complete JSON, makes the
sample's calls void — it counts as a plain answer (its text votes with whatever answer it states,
usually none) — and with ``parallel_tool_calls`` false only the first of several calls is kept.
``tool_choice``: "none" describes no tools and reads no calls; "required" and a named function
say the model must call (only the named function is described); a sample that still makes no call
stays a text answer, with a warning.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from typing import Any

from ponder.models.base import Completion, Message, Model, Request, StopCheck, TextCallback
from ponder.problems.conversation import ToolCall, Tools

OPEN, CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_STOP = "<tool_response>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|\Z)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def describe(tools: Tools) -> str:
    """The system prompt's tools section ("" when none is offered)."""
    offered = tools.offered
    if not offered:
        return ""
    schemas = "\n".join(
        json.dumps({"type": "function", "function": f}, ensure_ascii=False) for f in offered
    )
    lines = [
        "# Tools",
        "",
        "You can call these functions (JSON schemas):",
        f"<tools>\n{schemas}\n</tools>",
        "",
        "To call a function, write one block per call, exactly:",
        f'{OPEN}\n{{"name": "FUNCTION_NAME", "arguments": {{ARGUMENTS AS A JSON OBJECT}}}}\n{CLOSE}',
        "and write nothing after your last block: the results come back in the next message, "
        "in <tool_response> blocks.",
    ]
    if tools.name is not None:
        lines.append(f"You must call {tools.name} now.")
    elif tools.required:
        lines.append("You must call at least one function now.")
    else:
        lines.append("Call a function only when you need its result; otherwise answer directly.")
    if not tools.parallel:
        lines.append("Make at most one call.")
    return "\n".join(lines)


def block(call: ToolCall) -> str:
    """A call as the model is asked to write it."""
    try:
        args: Any = json.loads(call.arguments)
    except ValueError:
        args = call.arguments
    body = json.dumps({"name": call.name, "arguments": args}, ensure_ascii=False)
    return f"{OPEN}\n{body}\n{CLOSE}"


def render(messages: tuple[Message, ...], tools: Tools | None) -> tuple[Message, ...]:
    """Plain ``{role, content}`` messages for a chat template that knows no tools: the tools
    section appended to the (first) system message, calls and results written as blocks."""
    out: list[Message] = []
    for m in messages:
        if m["role"] == "tool":
            piece = f"<tool_response>\n{m['content']}\n</tool_response>"
            if out and out[-1].get("tool_results"):
                out[-1] = {**out[-1], "content": out[-1]["content"] + "\n" + piece}
            else:
                out.append({"role": "user", "content": piece, "tool_results": True})
            continue
        content = m["content"]
        if m.get("tool_calls"):
            blocks = "\n".join(block(c) for c in m["tool_calls"])
            content = f"{content}\n{blocks}" if content else blocks
        out.append({"role": m["role"], "content": content})
    out = [{"role": m["role"], "content": m["content"]} for m in out]  # drop the marker
    section = describe(tools) if tools is not None else ""
    if section:
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{section}"}
        else:
            out.insert(0, {"role": "system", "content": section})
    return tuple(out)


def new_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _call(raw: str, names: set[str]) -> ToolCall:
    """One block's JSON as a ToolCall; ValueError saying what is wrong with it."""
    raw = _FENCE.sub("", raw.strip())
    try:
        obj = json.loads(raw)
    except ValueError:
        raise ValueError(f"not JSON: {raw[:80]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise ValueError('not an object with a "name"')
    if obj["name"] not in names:
        known = ", ".join(sorted(names)) or "none"
        raise ValueError(f"calls {obj['name']!r}, which is not offered (offered: {known})")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # some models write the arguments as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            raise ValueError(f"{obj['name']}'s arguments are not JSON") from None
    if not isinstance(args, dict):
        raise ValueError(f"{obj['name']}'s arguments are not a JSON object")
    return ToolCall(new_id(), obj["name"], json.dumps(args, ensure_ascii=False))


def parse(text: str, tools: Tools) -> tuple[tuple[ToolCall, ...], str | None]:
    """(the calls in ``text``, a warning about what the model got wrong, or None)."""
    offered = tools.offered
    if not offered or OPEN not in text:
        return (), None
    names = {f["name"] for f in offered}
    calls = []
    for j, m in enumerate(_BLOCK.finditer(text)):
        try:
            calls.append(_call(m.group(1), names))
        except ValueError as e:
            unclosed = "" if m.group(0).endswith(CLOSE) else " (unclosed)"
            return (), f"tool call block {j}{unclosed} is malformed: {e}; its calls were not made"
    if len(calls) > 1 and not tools.parallel:
        return (calls[0],), f"parallel_tool_calls is false: kept the first of {len(calls)} calls"
    return tuple(calls), None


def _involves_tools(request: Request) -> bool:
    return request.tools is not None or any(
        m.get("role") == "tool" or m.get("tool_calls") for m in request.messages or ()
    )


class PromptedTools:
    """``model`` with the prompt-and-parse fallback: requests that offer tools (or whose history
    holds calls and results) are rendered as plain text for it, and each sample's calls are read
    back; all other requests pass through untouched. Counts prompts as the rendered request."""

    native_tools = True  # it takes Request.tools: wrapping it again would do nothing

    def __init__(self, model: Model) -> None:
        self.inner = model

    def __getattr__(self, name: str) -> Any:  # name, exact_usage, context_length, ...
        return getattr(self.inner, name)

    def plain(self, request: Request) -> Request:
        """The request as the inner model sees it."""
        if request.messages is None or not _involves_tools(request):
            return request
        offered = request.tools is not None and bool(request.tools.offered)
        stop = request.stop + ((RESPONSE_STOP,) if offered and RESPONSE_STOP not in request.stop
                               else ())  # fmt: skip
        return replace(
            request, messages=render(request.messages, request.tools), tools=None, stop=stop
        )

    def count_prompt_tokens(self, request: Request) -> int:
        return self.inner.count_prompt_tokens(self.plain(request))

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        kwargs = {"should_stop": should_stop} if should_stop is not None else {}
        completion = await self.inner.generate(self.plain(request), on_text=on_text, **kwargs)
        if request.tools is not None and request.tools.offered:
            for s in completion.samples:
                s.tool_calls, s.tool_warning = parse(s.text, request.tools)
        return completion

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    async def aclose(self) -> None:
        await self.inner.aclose()


def prompted(model: Model) -> Model:
    """``model`` itself when it calls tools natively, else ``PromptedTools(model)``."""
    return model if getattr(model, "native_tools", False) else PromptedTools(model)
