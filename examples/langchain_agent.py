"""A LangChain agent calling one tool through `ponder serve`.

    pip install -e '.[serve]' langchain-openai
    python examples/langchain_agent.py                  # a scripted model behind the server
    python examples/langchain_agent.py --model default  # the embedded 135M model (see below)
    python examples/langchain_agent.py --base-url http://127.0.0.1:8000/v1  # a running server

`ChatOpenAI(...).bind_tools([get_weather])` sends the tool as OpenAI `tools`; ponder's strategy
(`ponder/vote:n=3`: three samples, majority over their calls) answers with `tool_calls`; the agent
runs the tool, sends its result back as a `tool` message, and ponder answers in text.

The scripted model (the default here) is a stand-in that follows ponder's tool-call format
(`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, the fallback for models without
native function calling): the embedded SmolLM2-135M rarely writes a well-formed call, and a real
model (``--model openai:...@URL`` with a server that has tool calling, or a Qwen/Hermes GGUF) is
what an agent needs.
"""

from __future__ import annotations

import argparse
import contextlib
import re

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return {"paris": "18 C, sunny", "rome": "24 C, clear"}.get(city.lower(), "unknown")


def scripted_reply(request, _i) -> str:
    """Call get_weather for the city in the question; once its result is back, answer with it."""
    last = request.messages[-1]["content"]
    if "<tool_response>" in last:
        result = re.search(r"<tool_response>\n(.*?)\n</tool_response>", last, re.S).group(1)
        return f"The tool says it is {result}. \\boxed{{{result}}}"
    city = re.search(r"weather in (\w+)", last).group(1)
    return f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}\n</tool_call>'


def agent(base_url: str, strategy: str, question: str) -> None:
    llm = ChatOpenAI(model=f"ponder/{strategy}", base_url=base_url, api_key="unused",
                     max_retries=0).bind_tools([get_weather])  # fmt: skip
    messages = [HumanMessage(question)]
    for _ in range(3):  # at most three tool rounds
        ai = llm.invoke(messages)
        messages.append(ai)
        print(f"assistant: content={ai.content!r} tool_calls={ai.tool_calls}")
        print(f"  finish_reason={ai.response_metadata.get('finish_reason')}")
        if not ai.tool_calls:
            break
        for call in ai.tool_calls:
            result = get_weather.invoke(call["args"])
            print(f"tool {call['name']}({call['args']}) -> {result!r}")
            messages.append(ToolMessage(result, tool_call_id=call["id"]))
    print("final answer:", messages[-1].content.splitlines()[-1] if messages[-1].content else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scripted", help="scripted, or a ponder model spec")
    p.add_argument("--base-url", help="use a ponder server already running here instead")
    p.add_argument("--strategy", default="vote:n=3")
    p.add_argument("--question", default="What is the weather in Paris?")
    args = p.parse_args()
    if args.base_url:
        agent(args.base_url, args.strategy, args.question)
        return
    from ponder.models import ScriptedModel, resolve
    from ponder.serve.background import BackgroundServer

    model = ScriptedModel(scripted_reply) if args.model == "scripted" else resolve(args.model)
    with contextlib.ExitStack() as stack:
        if hasattr(model, "close"):
            stack.callback(model.close)
        srv = stack.enter_context(BackgroundServer(model))
        agent(srv.base_url, args.strategy, args.question)


if __name__ == "__main__":
    main()
