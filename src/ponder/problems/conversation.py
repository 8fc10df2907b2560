"""A chat conversation as the OpenAI API sends it, checked once for ``ponder serve`` and for
``ponder solve --messages FILE``: ``parse_conversation(messages) -> (question, turns)``, and the
client's tools: ``parse_tools(tools, tool_choice, parallel_tool_calls) -> Tools | None``.

Roles are system, developer, user, assistant and tool; content is a string or a list of text parts
(joined; images and audio are refused); the question is the last user message, and a conversation
must not end with an assistant turn (there would be nothing to answer).

Tool calls (OpenAI function calling) are typed data from here on: an assistant turn may carry
``tool_calls`` (a tuple of ``ToolCall``), a tool turn its ``tool_call_id`` (and ``name``) next to
its content; ``Tools`` holds the functions offered and how the model may use them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class ConversationError(ValueError):
    """A malformed conversation; ``param`` names the field (``messages[2].content``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ToolCall:
    """One function call a model made: ``arguments`` is a JSON object as text, as OpenAI sends it
    (``'{"city": "Paris"}'``); ``id`` (``call_...``) is what the tool's result answers to."""

    id: str
    name: str
    arguments: str

    def openai(self) -> dict[str, Any]:
        """The OpenAI wire form: ``{"id", "type": "function", "function": {"name", "arguments"}}``."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}  # fmt: skip

    @property
    def signature(self) -> str:
        """``name({...})`` with the arguments normalised (parsed, then dumped with sorted keys),
        so that two calls that mean the same compare equal; arguments that are not JSON stay as
        sent."""
        try:
            args = json.dumps(json.loads(self.arguments), sort_keys=True, ensure_ascii=False)
        except ValueError:
            args = self.arguments
        return f"{self.name}({args})"


def calls_key(calls: tuple[ToolCall, ...] | list[ToolCall]) -> str:
    """What votes compare for a sample that answered with calls: its calls' signatures, sorted
    (the order of parallel calls does not matter; a call made twice counts twice)."""
    return "; ".join(sorted(c.signature for c in calls))


TOOL_CHOICES = ("auto", "none", "required")
MAX_TOOLS = 128  # as OpenAI
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names


@dataclass(frozen=True)
class Tools:
    """The functions a client offers and how the model may use them.

    ``functions``: OpenAI ``function`` objects (``name``, optional ``description``,
    ``parameters``, a JSON Schema, and ``strict``). ``choice``: "auto" (call or answer),
    "none" (answer in text; the tools are not offered), "required" (call at least one);
    ``name``: the one function tool_choice named (then ``choice`` is "required").
    ``parallel``: parallel_tool_calls (False: at most one call per answer)."""

    functions: tuple[dict[str, Any], ...]
    choice: str = "auto"
    name: str | None = None
    parallel: bool = True

    @property
    def offered(self) -> tuple[dict[str, Any], ...]:
        """The functions the model may call now: none with choice "none", only the named one."""
        if self.choice == "none":
            return ()
        if self.name is not None:
            return tuple(f for f in self.functions if f["name"] == self.name)
        return self.functions

    @property
    def required(self) -> bool:
        return self.choice == "required"

    def openai_tools(self) -> list[dict[str, Any]]:
        return [{"type": "function", "function": dict(f)} for f in self.functions]

    def openai_choice(self) -> str | dict[str, Any]:
        if self.name is not None:
            return {"type": "function", "function": {"name": self.name}}
        return self.choice


def _function(tool: Any, param: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise ConversationError(param, "each tool must be an object: {type: function, function}")
    if tool.get("type", "function") != "function":
        raise ConversationError(f"{param}.type", f"only function tools are supported, got "
                                                 f"{tool.get('type')!r}")  # fmt: skip
    f = tool.get("function")
    if not isinstance(f, dict):
        raise ConversationError(f"{param}.function", "a function tool needs a function object")
    name = f.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConversationError(
            f"{param}.function.name",
            "a function name must be 1 to 64 letters, digits, underscores or dashes",
        )
    if not isinstance(f.get("description", ""), str):
        raise ConversationError(f"{param}.function.description", "description must be a string")
    if not isinstance(f.get("parameters", {}), dict):
        raise ConversationError(
            f"{param}.function.parameters", "parameters must be a JSON Schema object"
        )
    if not isinstance(f.get("strict", False), (bool, type(None))):
        raise ConversationError(f"{param}.function.strict", "strict must be true or false")
    return {k: f[k] for k in ("name", "description", "parameters", "strict") if k in f}


def parse_tools(tools: Any, tool_choice: Any = None, parallel: Any = None) -> Tools | None:
    """The body's ``tools``, ``tool_choice`` and ``parallel_tool_calls``, checked; None when no
    tools are offered (a ``tool_choice`` that needs them is then refused)."""
    if parallel is not None and not isinstance(parallel, bool):
        raise ConversationError("parallel_tool_calls", "parallel_tool_calls must be true or false")
    if tools is not None and not isinstance(tools, list):
        raise ConversationError("tools", "tools must be a list of function tools")
    if tools and len(tools) > MAX_TOOLS:
        raise ConversationError("tools", f"at most {MAX_TOOLS} tools, got {len(tools)}")
    functions = tuple(_function(t, f"tools[{i}]") for i, t in enumerate(tools or ()))
    names = [f["name"] for f in functions]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConversationError(f"tools[{i}].function.name", f"two tools are named {n!r}")

    choice, name = "auto", None
    if isinstance(tool_choice, str):
        if tool_choice not in TOOL_CHOICES:
            raise ConversationError(
                "tool_choice", f"tool_choice must be one of {', '.join(TOOL_CHOICES)} or "
                '{"type": "function", "function": {"name": ...}}, got ' + repr(tool_choice)
            )
        choice = tool_choice
    elif isinstance(tool_choice, dict):
        f = tool_choice.get("function")
        if tool_choice.get("type") != "function" or not isinstance(f, dict) or not isinstance(
            f.get("name"), str
        ):
            raise ConversationError(
                "tool_choice", 'a named tool_choice is {"type": "function", "function": {"name": ...}}'
            )
        if f["name"] not in names:
            raise ConversationError(
                "tool_choice", f"tool_choice names {f['name']!r}, which is not among the tools"
            )
        choice, name = "required", f["name"]
    elif tool_choice is not None:
        raise ConversationError("tool_choice", "tool_choice must be a string or an object")
    if not functions:
        if choice == "required":
            raise ConversationError("tool_choice", "tool_choice requires a call, but no tools "
                                                   "were given")  # fmt: skip
        return None
    return Tools(functions, choice, name, True if parallel is None else parallel)


def _text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ConversationError(f"{param}[{j}]", f"only text content is supported, got {kind!r}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ConversationError(param, "message content must be a string or a list of text parts")


def _tool_calls(calls: Any, param: str) -> tuple[ToolCall, ...]:
    """An assistant turn's ``tool_calls`` as ToolCalls (arguments sent as an object are dumped)."""
    if not isinstance(calls, list):
        raise ConversationError(param, "tool_calls must be a list")
    out = []
    for j, c in enumerate(calls):
        where = f"{param}[{j}]"
        if not isinstance(c, dict) or not isinstance(c.get("function"), dict):
            raise ConversationError(where, "a tool call is {id, type: function, function: {name, "
                                           "arguments}}")  # fmt: skip
        if not isinstance(c.get("id"), str) or not c["id"]:
            raise ConversationError(f"{where}.id", "a tool call needs its id (a string)")
        name, args = c["function"].get("name"), c["function"].get("arguments", "{}")
        if not isinstance(name, str) or not name:
            raise ConversationError(f"{where}.function.name", "a tool call needs a function name")
        if isinstance(args, dict):
            args = json.dumps(args, ensure_ascii=False)
        if not isinstance(args, str):
            raise ConversationError(f"{where}.function.arguments", "arguments must be a JSON string")
        out.append(ToolCall(c["id"], name, args))
    return tuple(out)


ROLES = ("system", "developer", "user", "assistant", "tool")


def parse_conversation(messages: Any) -> tuple[str, tuple[dict[str, Any], ...]]:
    """(the question: the last user message's text, the conversation as role/content dicts; an
    assistant turn's calls as ``tool_calls``, a tool turn's ``tool_call_id`` and ``name`` kept)."""
    if not isinstance(messages, list) or not messages:
        raise ConversationError("messages", "messages must be a non-empty list")
    turns, last_user = [], None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ConversationError(f"messages[{i}]", "each message must be an object with a string role")
        if m["role"] not in ROLES:
            raise ConversationError(
                f"messages[{i}].role", f"unknown role {m['role']!r}; known: {', '.join(ROLES)}"
            )
        content = m.get("content")
        text = "" if content is None and m["role"] == "assistant" else _text(
            content, f"messages[{i}].content"
        )
        if m["role"] == "user":
            last_user = i
        turn: dict[str, Any] = {"role": m["role"], "content": text}
        if m["role"] == "assistant" and m.get("tool_calls"):
            turn["tool_calls"] = _tool_calls(m["tool_calls"], f"messages[{i}].tool_calls")
        if m["role"] == "tool":
            for key in ("tool_call_id", "name"):
                if m.get(key) is not None:
                    if not isinstance(m[key], str):
                        raise ConversationError(f"messages[{i}].{key}", f"{key} must be a string")
                    turn[key] = m[key]
        turns.append(turn)
    if last_user is None:
        raise ConversationError("messages", "no user message: the last user message is the question")
    question = turns[last_user]["content"].strip()
    if not question:
        raise ConversationError(
            f"messages[{last_user}].content", "the question (last user message) is empty"
        )
    if turns[-1]["role"] == "assistant":
        raise ConversationError(
            f"messages[{len(turns) - 1}]",
            "the conversation ends with an assistant message: there is nothing to answer"
            + (" (its tool calls have no results)" if "tool_calls" in turns[-1] else ""),
        )
    return question, tuple(turns)
