"""ponder versus optillm and its_hub on the same upstream engine, the same problems and the same grader.

optillm (https://github.com/codelion/optillm) is an OpenAI-compatible proxy: a client names an
approach in the model field (``self_consistency-MODEL``, ``bon-MODEL``, ``mcts-MODEL``) and optillm
calls the upstream server itself. ``ponder serve --model openai:MODEL@URL`` is the same kind of
proxy, and ponder can also run in-process against the upstream (``openai:`` backend). Each side
here is pointed at one **counting proxy** (in this script) in front of the one upstream, which
sums what the upstream really reported for every call (``usage``; for a stream without a usage
chunk, its content chunks, one per token on llama.cpp, and the prompt tokenized with the GGUF's
own vocabulary), so the tokens each side reports to its client can be set against what was spent.

Upstreams: ``llama`` — llama-cpp-python's server (``python -m llama_cpp.server``) with the
embedded SmolLM2-135M-Instruct GGUF, one thread; ``lab`` — ``ponder serve --model lab:add3-grpo
--strategy cot``, the shipped 3-digit-addition reasoner, so accuracy means something; ``scripted``
(``--smoke``) — an instant fake inside this script that answers every addition right.

The proxy changes what the upstream does in two stated ways, both to give each side what it asks
for: a non-streamed request with ``n`` > 1 that comes back with fewer choices (llama-cpp-python's
server drops ``n``) is completed with single requests (seeds ``seed + i``) and the usages summed;
a chat request asking to continue its last assistant message (``continue_final_message``, vLLM's
field, which ponder's step-level strategies send) is rendered with the GGUF's chat template and
sent to ``/v1/completions`` on ``llama``. ``ponder serve`` has no way to continue a partial answer,
so ponder's search (``mcts``) is not run on ``lab``.

Sides: ``ponder-http`` (``ponder serve --model openai:upstream@PROXY``), ``ponder-inproc`` (the same
strategy in this process through ponder's ``openai:`` backend), ``optillm`` (``optillm
--base-url PROXY``), and ``optillm-strip``: optillm again, but the proxy removes the "User: " that
optillm puts before the question (it flattens the conversation into one user message), which the
character-level lab model cannot read; it separates optillm's algorithms from that rewrite.
``its_hub`` (https://github.com/Red-Hat-AI-Innovation-Team/its_hub 1.2.0): its own OpenAI-compatible
server (``its-iaas``'s FastAPI app, ``ITS_HUB_SERVER`` below) pointed at the proxy. That server
passes only the messages and its configured budget on: the request's ``temperature``,
``max_tokens`` and ``seed`` are accepted and dropped, so the upstream samples at its own defaults
(``ponder serve --strategy cot``: greedy; llama-cpp-python: T=0.8, no length cap) and its 5
"samples" on ``lab`` are one greedy answer 5 times. ``its_hub-fill`` is its_hub again with the
proxy adding the client's ``temperature`` and ``max_tokens`` to every call that has none (its
judge's calls too); there is no seed to give back, its library has none. Its usage is the sum of
the upstream's reports for the samples; BestOfN's judge calls are not in it.

Methods (ponder spec / optillm approach / its_hub algorithm):
  sc      ``vote:n=5``                     / ``self_consistency`` (5 samples fixed in its source)
          / ``SelfConsistency``, budget 5, voting on the last number in each text (a regex)
  bon     ``best_of_n:n=4,verifier=judge`` / ``bon`` with ``--best-of-n 4`` (the model rates 0-10)
          / ``BestOfN`` with ``LLMJudge`` on the same upstream, budget 4 (0-10, unparsed: 5)
  search  ``mcts:simulations=4,...,verifier=arith`` / ``mcts`` (its defaults: 2 simulations)
          / none: its ``BeamSearch`` and ``ParticleGibbs`` need a process reward model, and its
          only one (``LocalVllmProcessRewardModel``) runs a PRM in vLLM on a GPU
Every client request is the problem's question as one user message with the same ``max_tokens``,
``temperature`` and ``seed``. Problems run in order; within a problem and method the sides run one
after another, their order alternating from problem to problem (ABAB), so drift on a shared
machine reaches all sides. Final texts are graded by ``ponder.verify.grade.verify``.

    python benchmarks/peers.py --setup                 # the optillm venv (runs/peers-venv)
    python benchmarks/peers.py [--upstreams lab,llama] [--problems 12] [--llama-problems 6]
        [--methods sc,bon,search] [--sides ponder-http,optillm,ponder-inproc,its_hub] [--out DIR] [--smoke]
    python benchmarks/peers.py --upstreams lab --sides optillm-strip --append   # add a side

``--smoke`` runs 2 problems on the scripted upstream in seconds (optillm and its_hub too when the
venv has them). Writes ``peers.json`` (every row, every upstream call) and ``peers.png``, and
prints the table (``peers.md`` is written around it by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "runs" / "peers-venv"
# optillm's declared dependencies (torch, transformers, gradio, spacy, google-cloud-aiplatform, ...)
# sent pip's resolver backtracking through google-cloud-aiplatform releases for minutes; the server
# and the three approaches compared import only these. its_hub is installed to record that it does.
SETUP = [
    ["--no-deps", "optillm==0.4.0"],
    ["flask", "cerebras_cloud_sdk", "openai", "numpy", "networkx", "z3-solver<=4.15.4.0", "aiohttp",
     "math-verify", "llama-cpp-python[server]==0.3.36", "its_hub[lm,iaas]==1.2.0"],
]  # fmt: skip
PEER_PACKAGES = ("optillm", "its_hub", "llama_cpp_python", "openai", "flask")
METHODS = ("sc", "bon", "search")
OPTILLM = {"sc": "self_consistency", "bon": "bon", "search": "mcts"}
BON_N = 4
ITS_HUB = {"sc": "SelfConsistency(budget=5)", "bon": f"BestOfN(LLMJudge, budget={BON_N})"}
# its_hub's own OpenAI-compatible server (its-iaas: its_hub.integration.iaas.app) behind one port:
# /sc/v1/... with the gateway its /configure builds for "self-consistency" (the only algorithm it
# serves), /bon/v1/... with its BestOfN and LLMJudge in the same gateway; requests come one at a
# time, so swapping the app's gateway per request is safe. Its vote needs a regex for the answer:
# the last number in the text (ponder's extractor's last resort; the Answer: line's on lab). The
# judge asks for no structured output (its response_format=None): llama-cpp-python's server refuses
# "json_schema", and ponder serve ignores it; the score is then read from the judge's text.
ITS_HUB_SERVER = r"""
import sys, uvicorn
from its_hub.core.algorithms.bon import BestOfN
from its_hub.core.gateway import ITSGateway
from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel
from its_hub.core.reward_models.llm_judge import LLMJudge
from its_hub.integration.iaas import app as iaas

url, port, n_bon = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
iaas._state.config.endpoint, iaas._state.config.api_key = url, "none"
sc = ITSGateway()
sc.configure("self-consistency", regex_patterns=[r"(-?\d[\d,]*)(?!.*\d)"])
judge = LLMJudge(OpenAICompatibleLanguageModel(url, "none", "upstream"), response_format=None)
bon = ITSGateway(BestOfN(judge))
gateways = {"sc": (sc, 5), "bon": (bon, n_bon)}

async def route(scope, receive, send):
    method, _, rest = scope.get("path", "").lstrip("/").partition("/")
    if method in gateways:
        iaas._state.gateway, iaas._state.config.budget = gateways[method]
        scope = {**scope, "path": "/" + rest}
    await iaas.app(scope, receive, send)

uvicorn.run(route, host="127.0.0.1", port=port, log_level="warning")
"""


def ponder_spec(method: str) -> str:
    return {
        "sc": "vote:n=5",
        "bon": f"best_of_n:n={BON_N},verifier=judge",
        "search": "mcts:simulations=4,expand=3,split=line,step_tokens=32,verifier=arith",
    }[method]


# --- parsing what each side answers (tested on recorded samples) ------------------------------


def parse_reply(side: str, body: dict) -> dict:
    """A client-side response body -> {text, prompt_tokens, completion_tokens, answer}.

    ``prompt_tokens`` is None when the side reports none (optillm's usage has only
    ``completion_tokens``); ``answer`` is ponder's own extracted answer where it says one."""
    if not body.get("choices"):  # OpenAI's {"error": ...}, FastAPI's {"detail": ...} (its_hub)
        err = body.get("error", body.get("detail", body))
        raise RuntimeError(f"{side}: {err.get('message', err) if isinstance(err, dict) else err}")
    choices = body.get("choices") or []
    text = (choices[0].get("message") or {}).get("content") if choices else None
    usage = body.get("usage") or {}
    return {
        "text": text or "",
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "answer": (body.get("ponder") or {}).get("answer"),
    }


def count_stream(lines: list[str]) -> dict:
    """What an upstream's SSE stream says it generated: the usage chunk when there is one, else
    one token per chunk that carried text (llama.cpp streams one token per chunk)."""
    chunks, usage, finish, seen = 0, None, [], set()
    for line in lines:
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        try:
            data = json.loads(line[5:])
        except ValueError:
            continue
        usage = data.get("usage") or usage
        for c in data.get("choices") or []:
            piece = (c.get("delta") or {}).get("content") or c.get("text")
            chunks += bool(piece)
            seen.add(c.get("index", 0))
            if c.get("finish_reason"):
                finish.append(c["finish_reason"])
    if usage:
        return {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
                "counted": "usage", "finish": finish, "choices": len(seen)}  # fmt: skip
    return {"prompt_tokens": None, "completion_tokens": chunks, "counted": "chunks", "finish": finish,
            "choices": len(seen)}  # fmt: skip


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (upstream, method, side): accuracy, wall time, reported and counted tokens."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["upstream"], r["method"], r["side"]), []).append(r)
    out = []
    order = {"ponder-http": 0, "ponder-inproc": 1, "optillm": 2, "optillm-strip": 3, "its_hub": 4, "its_hub-fill": 5}
    for (up, method, side), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][0], METHODS.index(kv[0][1]) if kv[0][1] in METHODS else 9, order.get(kv[0][2], 9))):
        ok = [r for r in rs if not r.get("error")]
        calls = [c for r in ok for c in r["upstream_calls"]]
        rep_p = [r["reported"]["prompt_tokens"] for r in ok]
        out.append({
            "upstream": up, "method": method, "side": side, "spec": rs[0]["spec"],
            "problems": len(rs), "errors": len(rs) - len(ok), "correct": sum(r["correct"] for r in ok),
            "wall_median_s": statistics.median(r["wall_s"] for r in ok) if ok else None,
            "wall_total_s": sum(r["wall_s"] for r in ok),
            "reported_prompt": None if any(p is None for p in rep_p) else sum(rep_p),
            "reported_completion": sum(r["reported"]["completion_tokens"] or 0 for r in ok),
            "upstream_prompt": sum(c["prompt_tokens"] or 0 for c in calls),
            "upstream_completion": sum(c["completion_tokens"] or 0 for c in calls),
            "upstream_requests": len(calls),
            "upstream_samples": sum(c["samples"] for c in calls),
            "length_capped": sum(f == "length" for c in calls for f in c["finish"]),
            "temperatures": sorted({c["temperature"] for c in calls if c["temperature"] is not None}),
            "n_asked": sorted({c["n"] for c in calls}),
            "filled": sum(c["filled"] for c in calls),
        })  # fmt: skip
    return out


def ratio(a: float | None, b: float) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}"


def table(summary: list[dict]) -> str:
    head = ("| upstream | method | side | spec | accuracy | wall median s | wall total s | "
            "reported prompt / completion | upstream prompt / completion | completion reported / upstream | "
            "upstream requests (samples) | length-capped | temperatures |")  # fmt: skip
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for s in summary:
        acc = f"{s['correct']}/{s['problems'] - s['errors']}" + (f" ({s['errors']} errors)" if s["errors"] else "")
        rp = "none" if s["reported_prompt"] is None else f"{s['reported_prompt']:,}"
        med = "–" if s["wall_median_s"] is None else f"{s['wall_median_s']:.2f}"
        temps = ", ".join(f"{t:g}" for t in s["temperatures"]) or "none sent"
        lines.append(
            f"| {s['upstream']} | {s['method']} | {s['side']} | `{s['spec']}` | {acc} | {med} | "
            f"{s['wall_total_s']:.1f} | {rp} / {s['reported_completion']:,} | "
            f"{s['upstream_prompt']:,} / {s['upstream_completion']:,} | "
            f"{ratio(s['reported_completion'], s['upstream_completion'])} | "
            f"{s['upstream_requests']} ({s['upstream_samples']}) | {s['length_capped']} | {temps} |"
        )
    return "\n".join(lines)


# --- the counting proxy (and the scripted upstream) ---------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unflatten(message: dict) -> dict:
    """optillm sends the conversation as one user message "User: QUESTION" (server.py,
    ``parse_conversation``); the ``optillm-strip`` side gets the question back without the prefix."""
    text = message.get("content")
    if message.get("role") == "user" and isinstance(text, str) and text.startswith("User: "):
        return {**message, "content": text[len("User: "):]}
    return message


def scripted_reply(messages: list[dict]) -> str:
    """The smoke upstream: the sum of the last user message's two numbers, with a line of work."""
    last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    nums = [int(x) for x in re.findall(r"\d+", last)][:2]
    if len(nums) < 2:
        return "7"  # a rating, a judge's verdict, optillm's "what might the user ask next"
    return f"{nums[0]} + {nums[1]} = {sum(nums)}\n\\boxed{{{sum(nums)}}}"


@dataclass
class Proxy:
    """Forwards /v1/* to ``upstream`` (a base URL) and records every upstream call."""

    upstream: str | None  # None: the scripted upstream
    template: object = None  # (render(messages, add_generation_prompt) -> str, count(str) -> int)
    fill: dict = field(default_factory=dict)  # /fill/: the client's sampling fields, where a call has none
    calls: list[dict] = field(default_factory=list)

    def take(self) -> list[dict]:
        got, self.calls = self.calls, []
        return got

    def record(self, body: dict, got: dict, samples: int, filled: int, how: str, texts: list[str]) -> None:
        self.calls.append({
            "how": how, "n": body.get("n") or 1, "samples": samples, "filled": filled,
            "temperature": body.get("temperature"), "max_tokens": body.get("max_tokens"),
            "seed": body.get("seed"), "stream": bool(body.get("stream")),
            "prompt_tokens": got.get("prompt_tokens"), "completion_tokens": got.get("completion_tokens"),
            "counted": got.get("counted", "usage"), "finish": got.get("finish", []),
            "texts": [t[:400] for t in texts],
            "sent": [{"role": m.get("role"), "content": (m.get("content") or "")[:160]}
                     for m in body.get("messages") or [{"role": "prompt", "content": body.get("prompt", "")}]],
        })  # fmt: skip

    def app(self):
        import httpx
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        client = httpx.AsyncClient(timeout=600)

        async def post(path: str, body: dict) -> dict:
            if self.upstream is None:
                return scripted(path, body)
            r = await client.post(self.upstream + path, json=body)
            return r.json()

        def scripted(path: str, body: dict) -> dict:
            n = body.get("n") or 1
            text = scripted_reply(body.get("messages") or [{"role": "user", "content": body.get("prompt", "")}])
            words = len(text.split())
            usage = {"prompt_tokens": 20, "completion_tokens": words * n, "total_tokens": 20 + words * n}
            return {"id": "scripted", "object": "chat.completion", "model": body.get("model"), "usage": usage,
                    "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"} for i in range(n)]}  # fmt: skip

        def continuing(body: dict) -> bool:
            return bool(body.get("continue_final_message")) and self.template is not None

        def as_completion(body: dict) -> dict:
            """A continuation of the last assistant message as a /v1/completions body."""
            render, _ = self.template
            keep = ("model", "max_tokens", "temperature", "top_p", "seed", "stop", "stream", "n", "logprobs")
            out = {k: body[k] for k in keep if k in body}
            out["prompt"] = render(body["messages"], False)
            return out

        def texts_of(data: dict) -> list[str]:
            return [(c.get("message") or {}).get("content") or c.get("text") or "" for c in data.get("choices") or []]

        async def whole(path: str, body: dict, how: str) -> dict:
            n = body.get("n") or 1
            data = await post(path, body)
            if "choices" not in data:
                return data
            got = len(data["choices"])
            filled = 0
            if 0 < got < n:  # the upstream dropped n: complete it with single requests
                one = {**body, "n": 1}
                seeds = [None if body.get("seed") is None else body["seed"] + i for i in range(got, n)]
                more = await asyncio.gather(*(post(path, {**one, **({} if s is None else {"seed": s})}) for s in seeds))
                for extra in more:
                    data["choices"] += extra.get("choices") or []
                    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                        data["usage"][k] = data["usage"].get(k, 0) + (extra.get("usage") or {}).get(k, 0)
                filled = n - got
                for i, c in enumerate(data["choices"]):
                    c["index"] = i
            usage = data.get("usage") or {}
            self.record(body, {"prompt_tokens": usage.get("prompt_tokens"),
                               "completion_tokens": usage.get("completion_tokens"),
                               "finish": [c.get("finish_reason") for c in data["choices"]]},
                        len(data["choices"]), filled, how, texts_of(data))  # fmt: skip
            return data

        def to_chat(data: dict) -> dict:
            for c in data.get("choices") or []:
                c["message"] = {"role": "assistant", "content": c.pop("text", "")}
            data["object"] = "chat.completion"
            return data

        async def chat(request):
            body = await request.json()
            if request.url.path.startswith("/strip/"):  # optillm-strip: undo its "User: " flattening
                body["messages"] = [unflatten(m) for m in body.get("messages") or []]
            if request.url.path.startswith("/fill/"):  # its_hub-fill: what its server dropped from the request
                body = {**self.fill, **body}
            cont = continuing(body)
            if body.get("stream"):
                return StreamingResponse(stream(body, cont), media_type="text/event-stream")
            if cont:
                return JSONResponse(to_chat(await whole("/completions", as_completion(body), "continuation")))
            return JSONResponse(await whole("/chat/completions", body, "chat"))

        async def stream(body: dict, cont: bool):
            lines: list[str] = []
            texts: list[str] = []
            if self.upstream is None:
                data = scripted("/chat/completions", {**body, "n": 1})
                text = data["choices"][0]["message"]["content"]
                for word in re.findall(r"\s*\S+", text):
                    chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                    lines.append("data: " + json.dumps(chunk))
                lines.append("data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                if (body.get("stream_options") or {}).get("include_usage"):
                    lines.append("data: " + json.dumps({"choices": [], "usage": {**data["usage"], "completion_tokens": len(lines) - 1}}))
                lines.append("data: [DONE]")
                for line in lines:
                    yield (line + "\n\n").encode()
                texts.append(text)
                self.record(body, count_stream(lines), 1, 0, "chat", texts)
                return
            texts_by: dict[int, list[str]] = {}
            path, send = ("/completions", as_completion(body)) if cont else ("/chat/completions", body)
            cut = None
            try:
                async with client.stream("POST", self.upstream + path, json=send) as r:
                    async for line in r.aiter_lines():
                        if cont and line.startswith("data:") and line.strip() != "data: [DONE]":
                            data = json.loads(line[5:])
                            for c in data.get("choices") or []:
                                c["delta"] = {"content": c.pop("text", "")} if c.get("text") else {}
                            data["object"] = "chat.completion.chunk"
                            line = "data: " + json.dumps(data)
                        lines.append(line)
                        if line.startswith("data:") and line.strip() != "data: [DONE]":
                            with contextlib.suppress(ValueError):
                                for c in json.loads(line[5:]).get("choices") or []:
                                    piece = (c.get("delta") or {}).get("content") or ""
                                    texts_by.setdefault(c.get("index", 0), []).append(piece)
                        yield (line + "\n").encode()
            except httpx.HTTPError as exc:  # the upstream cut the stream: the client sees it cut too
                cut = f"{type(exc).__name__}"
            finally:  # also when the client hangs up (the generator is closed)
                got = count_stream(lines)
                if got["prompt_tokens"] is None and self.template is not None:
                    render, count = self.template  # no usage chunk: tokenize the prompt as the server did
                    got["prompt_tokens"] = count(render(body["messages"], not cont))
                    got["counted"] = "chunks; prompt tokenized by the proxy"
                if cut or not got["finish"]:
                    got["finish"] = [*got["finish"], f"cut ({cut or 'client closed'})"]
                texts = ["".join(texts_by[k]) for k in sorted(texts_by)]
                self.record(body, got, max(1, got["choices"]), 0, "continuation" if cont else "chat", texts)

        async def models(request):
            if self.upstream is None:
                return JSONResponse({"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            r = await client.get(self.upstream + "/models")
            return JSONResponse(r.json())

        prefixes = ("", "/strip", "/fill")
        return Starlette(routes=[*(Route(f"{p}/v1/chat/completions", chat, methods=["POST"]) for p in prefixes),
                                 *(Route(f"{p}/v1/models", models, methods=["GET"]) for p in prefixes)])  # fmt: skip


def serve_in_thread(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_http(f"http://127.0.0.1:{port}/v1/models", 30)
    return server


def gguf_template(path: str):
    """(render, count) with the GGUF's own chat template and vocabulary (no weights loaded)."""
    import jinja2
    import llama_cpp

    vocab = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    tmpl = jinja2.Environment().from_string(vocab.metadata["tokenizer.chat_template"])
    mark = "\x00CONTINUE\x00"

    def render(messages: list[dict], add_generation_prompt: bool) -> str:
        if add_generation_prompt:
            return tmpl.render(messages=messages, add_generation_prompt=True)
        *head, last = messages  # continue the last (assistant) message: cut the template at its end
        text = tmpl.render(messages=[*head, {**last, "content": mark}], add_generation_prompt=False)
        return text[: text.index(mark)] + (last.get("content") or "")

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False, special=True))

    return render, count


# --- processes ------------------------------------------------------------------------------


def wait_http(url: str, seconds: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise SystemExit(f"{proc.args[0]} exited ({proc.returncode}) before serving {url}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise SystemExit(f"nothing served {url} within {seconds:.0f} s")


class Procs:
    """Child servers, each ended (by its own pid) when the run ends."""

    def __init__(self, logs: Path) -> None:
        self.logs, self.procs, self.files = logs, [], []

    def start(self, name: str, cmd: list[str], health: str, env: dict | None = None) -> None:
        log = self.logs / f"{name}.log"
        f = open(log, "w")  # noqa: SIM115 (closed in close(), when the child has ended)
        self.files.append(f)
        proc = subprocess.Popen(["nice", "-n", "10", *cmd], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, cwd=ROOT)  # fmt: skip
        self.procs.append(proc)
        wait_http(health, 180, proc, log)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
        for f in self.files:
            f.close()


def setup(venv: Path) -> None:
    """Create the peers' virtualenv and install optillm (and its_hub) there; record versions."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    for args in SETUP:
        subprocess.run(pip + args, check=True)
    print(json.dumps(versions(venv), indent=1))


def versions(venv: Path) -> dict:
    code = (f"import json, importlib.metadata as m\nout = {{}}\nfor p in {PEER_PACKAGES!r}:\n"
            "    try: out[p] = m.version(p)\n    except m.PackageNotFoundError: out[p] = None\n"
            "print(json.dumps(out))")  # fmt: skip
    py = venv / "bin" / "python"
    if not py.exists():
        return {}
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


# --- one run ----------------------------------------------------------------------------------


def problems_for(count: int, seed: int):
    """3-digit additions no shipped lab model trained on (as benchmarks/sequential_thinking.py)."""
    from ponder.problems import load_problems

    seen = {p.question for p in load_problems("arith", limit=5000, seed=0, digits=3, op="add")}
    fresh = load_problems("arith", limit=count + 100, seed=10_000 + seed, digits=3, op="add")
    return [p for p in fresh if p.question not in seen][:count]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup", action="store_true", help="create the optillm venv, then exit")
    ap.add_argument("--venv", type=Path, default=VENV, help=f"the peers' virtualenv (default {VENV})")
    ap.add_argument("--upstreams", default="lab,llama")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--sides", default="ponder-http,optillm,ponder-inproc,its_hub")
    ap.add_argument("--inproc-methods", default="sc", help="methods the in-process side runs")
    ap.add_argument("--problems", type=int, default=12, help="problems on lab (and scripted)")
    ap.add_argument("--llama-problems", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=128, help="per sample, in every request")
    ap.add_argument("--llama-max-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.7, help="in every client request")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "peers")
    ap.add_argument("--smoke", action="store_true", help="2 problems, scripted instant upstream")
    ap.add_argument("--replot", action="store_true", help="table and plot again from OUT/peers.json")
    ap.add_argument("--append", action="store_true",
                    help="add these rows to OUT/peers.json (replacing its rows of the same upstream and side)")
    args = ap.parse_args()
    if args.setup:
        return setup(args.venv)
    if args.replot:
        summary = json.loads((args.out / "peers.json").read_text())["summary"]
        print(table(summary))
        return plot(summary, args.out / "peers.png")
    if args.smoke:
        args.upstreams, args.problems, args.max_tokens = "scripted", 2, 32
    peer_bins = {"optillm": "optillm", "its_hub": "its-iaas"}
    missing = {p for p, cmd in peer_bins.items() if not (args.venv / "bin" / cmd).exists()}
    wanted = [s for s in args.sides.split(",") if s]
    sides = [s for s in wanted if s.split("-")[0] not in missing]
    for peer in sorted(missing & {s.split("-")[0] for s in wanted}):
        print(f"no {peer} in {args.venv}: run `python benchmarks/peers.py --setup`; its side is skipped",
              file=sys.stderr)  # fmt: skip
    methods = [m for m in args.methods.split(",") if m]
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out if args.smoke else ROOT / "runs" / "peers-logs"  # the servers' own logs
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    started = time.time()
    load_before = os.getloadavg()
    for upstream in [u for u in args.upstreams.split(",") if u]:
        count = args.llama_problems if upstream == "llama" else args.problems
        max_tokens = args.llama_max_tokens if upstream == "llama" else args.max_tokens
        rows += run_upstream(upstream, problems_for(count, args.seed), methods, sides, args, max_tokens, logs)
    meta = {
        "command": " ".join(["python", "benchmarks/peers.py", *sys.argv[1:]]),
        "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "seconds": round(time.time() - started, 1), "load_before": load_before, "load_after": os.getloadavg(),
        "python": platform.python_version(), "cpus": os.cpu_count(), "peers": versions(args.venv),
        "ponder_specs": {m: ponder_spec(m) for m in METHODS}, "optillm_approaches": OPTILLM, "its_hub": ITS_HUB,
        "temperature": args.temperature, "seed": args.seed,
    }  # fmt: skip
    runs = [meta]
    if args.append and (args.out / "peers.json").exists():
        old = json.loads((args.out / "peers.json").read_text())
        mine = {(r["upstream"], r["side"]) for r in rows}
        rows = [r for r in old["rows"] if (r["upstream"], r["side"]) not in mine] + rows
        runs = [*old.get("runs", [old.get("meta")]), meta]
    summary = summarize(rows)
    (args.out / "peers.json").write_text(json.dumps({"runs": runs, "summary": summary, "rows": rows}, indent=1))
    print(table(summary))
    if not args.smoke:
        plot(summary, args.out / "peers.png")
    print(f"\n{len(rows)} rows in {meta['seconds']:.0f} s; {args.out / 'peers.json'}", file=sys.stderr)


def run_upstream(upstream: str, problems, methods, sides, args, max_tokens: int, logs: Path) -> list[dict]:
    import httpx

    from ponder.budget import Budget
    from ponder.models.openai_http import OpenAIModel
    from ponder.problems.base import Problem
    from ponder.think import final_result, parse_strategy
    from ponder.verify.grade import verify

    procs = Procs(logs)
    rows: list[dict] = []
    try:
        template, base = None, None
        if upstream == "llama":
            from ponder.models.llamacpp import embedded_model_path

            gguf = embedded_model_path()
            port = free_port()
            procs.start("llama-server", [str(args.venv / "bin" / "python"), "-m", "llama_cpp.server",
                        "--model", gguf, "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "4096",
                        "--interrupt_requests", "False",  # else each new request cuts the stream in flight
                        "--port", str(port)], f"http://127.0.0.1:{port}/v1/models")  # fmt: skip
            base, template = f"http://127.0.0.1:{port}/v1", gguf_template(gguf)
        elif upstream == "lab":
            port = free_port()
            procs.start("lab-upstream", [sys.executable, "-m", "ponder", "serve", "--model", "lab:add3-grpo",
                        "--strategy", "cot", "--threads", "1", "--max-concurrency", "64", "--port", str(port)],
                        f"http://127.0.0.1:{port}/health")  # fmt: skip
            base = f"http://127.0.0.1:{port}/v1"
        elif upstream != "scripted":
            raise SystemExit(f"unknown upstream {upstream!r}: lab, llama or scripted")
        proxy = Proxy(base, template, fill={"temperature": args.temperature, "max_tokens": max_tokens})
        pport = free_port()
        proxy_server = serve_in_thread(proxy.app(), pport)
        purl = f"http://127.0.0.1:{pport}/v1"
        ports = {}
        if "ponder-http" in sides:
            ports["ponder-http"] = free_port()
            procs.start("ponder-serve", [sys.executable, "-m", "ponder", "serve", "--model", f"openai:upstream@{purl}",
                        "--threads", "1", "--port", str(ports["ponder-http"])],
                        f"http://127.0.0.1:{ports['ponder-http']}/health")  # fmt: skip
        for side, url in (("optillm", purl), ("optillm-strip", purl.replace("/v1", "/strip/v1"))):
            if side not in sides:
                continue
            ports[side] = free_port()
            procs.start(side, [str(args.venv / "bin" / "optillm"), "--base-url", url, "--port",
                        str(ports[side]), "--best-of-n", str(BON_N), "--log", "warning"],
                        f"http://127.0.0.1:{ports[side]}/health",
                        env={"OPENAI_API_KEY": "none", "OPTILLM_API_KEY": ""})  # fmt: skip
        for side, url in (("its_hub", purl), ("its_hub-fill", purl.replace("/v1", "/fill/v1"))):
            if side not in sides:
                continue
            ports[side] = free_port()
            procs.start(side, [str(args.venv / "bin" / "python"), "-c", ITS_HUB_SERVER, url, str(ports[side]),
                        str(BON_N)], f"http://127.0.0.1:{ports[side]}/sc/v1/models")  # fmt: skip
        client = httpx.Client(timeout=1800)
        loop = asyncio.new_event_loop()
        inproc_model = OpenAIModel("upstream", base_url=purl)
        skip = {("lab", "search", s) for s in ("ponder-http", "ponder-inproc")}  # no continuation there
        # its_hub's search (BeamSearch, ParticleGibbs) needs a process reward model; its only one
        # (LocalVllmProcessRewardModel) runs a PRM such as Qwen2.5-Math-PRM-7B in vLLM on a GPU
        skip |= {(upstream, "search", s) for s in ("its_hub", "its_hub-fill")}
        for i, problem in enumerate(problems):
            for method in methods:
                order = [s for s in sides if (upstream, method, s) not in skip
                         and (s != "ponder-inproc" or method in args.inproc_methods.split(","))]  # fmt: skip
                if i % 2:
                    order.reverse()
                for side in order:
                    peer = side.split("-")[0]  # ponder, optillm, its_hub
                    spec = ponder_spec(method) if peer == "ponder" else {"optillm": OPTILLM, "its_hub": ITS_HUB}[peer][method]
                    seed = args.seed * 1000 + i
                    body = {"messages": [{"role": "user", "content": problem.question}], "max_tokens": max_tokens,
                            "temperature": args.temperature, "seed": seed}  # fmt: skip
                    proxy.take()
                    t0 = time.perf_counter()
                    row = {"upstream": upstream, "method": method, "side": side, "spec": spec,
                           "problem": problem.id, "question": problem.question, "reference": problem.answer}  # fmt: skip
                    try:
                        if side == "ponder-inproc":
                            full = f"{spec},max_tokens={max_tokens},temperature={args.temperature},seed={seed}"
                            res = loop.run_until_complete(final_result(parse_strategy(full).run(
                                Problem(problem.id, problem.question), inproc_model, Budget(32768))))  # fmt: skip
                            got = {"text": res.chosen.text if res.chosen else (res.answer or ""),
                                   "prompt_tokens": res.usage.prompt_tokens,
                                   "completion_tokens": res.usage.completion_tokens, "answer": res.answer}  # fmt: skip
                        else:
                            model = {"ponder": f"ponder/{spec}", "its_hub": "upstream"}.get(peer, f"{spec}-upstream")
                            path = f"/{method}/v1" if peer == "its_hub" else "/v1"  # its_hub: the method in the path
                            r = client.post(f"http://127.0.0.1:{ports[side]}{path}/chat/completions",
                                            json={"model": model, **body})  # fmt: skip
                            got = parse_reply(side, r.json())
                        row["wall_s"] = time.perf_counter() - t0
                        score = verify(problem, got["text"])
                        row.update(text=got["text"][:2000], answer=got["answer"], correct=bool(score.ok),
                                   reported={"prompt_tokens": got["prompt_tokens"],
                                             "completion_tokens": got["completion_tokens"]})  # fmt: skip
                    except Exception as exc:  # noqa: BLE001 (a side failed this problem: record it, go on)
                        row.update(wall_s=time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"[:500],
                                   correct=False, reported={"prompt_tokens": None, "completion_tokens": None})  # fmt: skip
                    time.sleep(0.05)  # a stream's record lands after its last byte
                    row["upstream_calls"] = proxy.take()
                    if side.startswith("optillm") and method == "search":
                        row["mcts_pick"] = first_batch_pick(row)
                    rows.append(row)
                    mark = "ERR" if row.get("error") else ("ok " if row["correct"] else "no ")
                    print(f"{upstream} {i + 1}/{len(problems)} {method:6} {side:13} {mark} {row['wall_s']:6.1f} s "
                          f"{sum(c['completion_tokens'] or 0 for c in row['upstream_calls']):5} upstream tok",
                          file=sys.stderr, flush=True)  # fmt: skip
        loop.run_until_complete(inproc_model.aclose())
        loop.close()
        client.close()
        proxy_server.should_exit = True
    finally:
        procs.close()
    return rows


def first_batch_pick(row: dict) -> int | None:
    """Which of the first n=3 expansion samples optillm's mcts answered with (None: none of them)."""
    first = next((c for c in row["upstream_calls"] if c["n"] == 3), None)
    if first is None or row.get("error"):
        return None
    final = (row.get("text") or "").strip()[:400]
    return next((k for k, t in enumerate(first["texts"]) if t.strip()[:400] == final), None)


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ups = sorted({s["upstream"] for s in summary})
    fig, axes = plt.subplots(2, len(ups), figsize=(6 * len(ups), 8), squeeze=False)
    colours = {"ponder-http": "tab:blue", "ponder-inproc": "tab:cyan", "optillm": "tab:red",
               "optillm-strip": "tab:orange", "its_hub": "tab:green",
               "its_hub-fill": "tab:olive"}
    markers = {"sc": "o", "bon": "s", "search": "^"}
    for j, up in enumerate(ups):
        mine = [s for s in summary if s["upstream"] == up]
        ax = axes[0][j]
        for s in mine:
            n = max(1, s["problems"] - s["errors"])
            ax.scatter(s["upstream_completion"] / n, s["correct"] / n, c=colours.get(s["side"], "k"),
                       marker=markers.get(s["method"], "x"), s=70)  # fmt: skip
            ax.annotate(f"{s['method']}", (s["upstream_completion"] / n, s["correct"] / n), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")  # fmt: skip
        ax.set_xlabel("upstream completion tokens per problem (counted by the proxy)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"upstream: {up}")
        ax.set_ylim(-0.05, 1.05)
        ax = axes[1][j]
        labels = [f"{s['method']} · {s['side']}" for s in mine]
        ax.bar(range(len(mine)), [s["wall_total_s"] for s in mine], color=[colours.get(s["side"], "k") for s in mine])
        ax.set_xticks(range(len(mine)), labels, fontsize=7, rotation=35, ha="right")
        ax.set_ylabel("wall time, all problems (s)")
        ax.set_title("above each bar: completion tokens reported / counted upstream", fontsize=9)
        for k, s in enumerate(mine):
            r = ratio(s["reported_completion"], s["upstream_completion"])
            ax.annotate(r, (k, s["wall_total_s"]), ha="center", fontsize=8, xytext=(0, 3),
                        textcoords="offset points")  # fmt: skip
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=side) for side, c in colours.items()]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=k) for k, m in markers.items()]
    fig.legend(handles=handles, loc="upper center", ncol=6)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
