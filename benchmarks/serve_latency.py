"""What `ponder serve` adds to a request: latency over HTTP minus the same strategy run in-process.

The model is ponder's scripted fake (``ScriptedModel``), which answers at once, so what is left is
everything the server does: HTTP and JSON through uvicorn and FastAPI, request validation, building
the request's own strategy object and budget, the transcript of the reasoning, the OpenAI response
(or its SSE chunks), and the client's side of the exchange (the real ``openai`` SDK, one client
with keep-alive, as an application would hold it).

In-process, each request does what the server does for the strategy itself: ``parse_strategy``,
then ``final_result(strategy.run(problem, model, Budget(max_budget)))`` on one event loop. Over
HTTP, two clients, each plain and streamed (timed to the end of the stream):

- the ``openai`` SDK, ``client.chat.completions.create(model="ponder/SPEC", ...)``: what an
  application sees, including the SDK's own parsing (for a stream, one pydantic object per chunk,
  which any OpenAI-compatible server would cost it too);
- the standard library's ``http.client`` on one keep-alive connection, reading the raw body: the
  server's share alone.

The server runs on a background thread of this process (``ponder.serve.background``), so every
path shares the same CPU and interpreter. Rounds interleave the paths (in-process, then each HTTP
path; again ...), so drift on a shared machine reaches all of them. Reported: p50 and p95 per path
over all requests, and the added latency (path minus in-process) at p50 and p95, with the min-max
of the per-round p50 differences. Target: <= 5 ms added at p50.

    python benchmarks/serve_latency.py [--requests 400] [--rounds 4] [--strategy cot] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import statistics
import sys
import time

REPLY = "We add 17 and 25: 17 + 25 = 42. \\boxed{42}"
QUESTION = "What is 17 + 25?"
PATHS = ("in-process", "openai sdk", "openai sdk, stream", "http.client", "http.client, stream")


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0-1) by linear interpolation between order statistics."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="requests per path, over all rounds")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests per path first")
    ap.add_argument("--strategy", default="cot", help="any strategy spec (the scripted model answers)")
    ap.add_argument("--json", help="write every request's latency here")
    ap.add_argument("--smoke", action="store_true", help="a few requests, seconds: does it work?")
    args = ap.parse_args()
    if args.smoke:
        args.requests, args.rounds, args.warmup = 20, 2, 2

    import openai

    from ponder.budget import Budget
    from ponder.models import ScriptedModel
    from ponder.problems.base import Problem
    from ponder.serve.background import BackgroundServer
    from ponder.serve.settings import ServeSettings
    from ponder.think import final_result, parse_strategy

    settings = ServeSettings()  # the `ponder serve` defaults
    model = ScriptedModel([REPLY])
    loop = asyncio.new_event_loop()

    def in_process() -> str:
        strategy = parse_strategy(args.strategy)
        problem = Problem("bench", QUESTION)
        result = loop.run_until_complete(
            final_result(strategy.run(problem, model, Budget(settings.max_budget)))
        )
        return result.answer

    messages = [{"role": "user", "content": QUESTION}]
    with BackgroundServer(ScriptedModel([REPLY]), settings) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)

        def sdk() -> str:
            r = client.chat.completions.create(model=f"ponder/{args.strategy}", messages=messages)
            return r.choices[0].message.content

        def sdk_stream() -> str:
            stream = client.chat.completions.create(
                model=f"ponder/{args.strategy}", messages=messages, stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        conn = http.client.HTTPConnection(srv.host, srv.port)
        headers = {"Content-Type": "application/json"}

        def raw(stream: bool) -> str:
            body = json.dumps({"model": f"ponder/{args.strategy}", "messages": messages, "stream": stream})
            conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status}: {text[:300]}")
            return text

        calls = {
            "in-process": in_process, "openai sdk": sdk, "openai sdk, stream": sdk_stream,
            "http.client": lambda: raw(False), "http.client, stream": lambda: raw(True),
        }  # fmt: skip
        for path, call in calls.items():  # every answer must be the scripted one
            assert "42" in (call() or ""), path
            for _ in range(args.warmup):
                call()
        per_round = max(1, args.requests // args.rounds)
        times: dict[str, list[list[float]]] = {p: [] for p in PATHS}
        load_before = os.getloadavg()
        started = time.time()
        for r in range(args.rounds):
            for path in PATHS:
                conn.close()  # uvicorn drops connections idle for 5 s; http.client reopens
                calls[path]()  # untimed: a fresh connection, or one the last block left idle
                got = []
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    calls[path]()
                    got.append(1000 * (time.perf_counter() - t0))
                times[path].append(got)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        load_after = os.getloadavg()
        client.close()
        conn.close()
    loop.close()

    flat = {p: [t for rnd in times[p] for t in rnd] for p in PATHS}
    base50, base95 = quantile(flat["in-process"], 0.5), quantile(flat["in-process"], 0.95)
    print(f"strategy {args.strategy}, scripted instant model, {len(flat['http.client'])} requests per path in "
          f"{args.rounds} interleaved rounds; python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; {time.time() - started:.0f} s\n")  # fmt: skip
    print("| path | p50 ms | p95 ms | added p50 ms | added p95 ms | added p50, per round (min-max) | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for p in PATHS:
        p50, p95 = quantile(flat[p], 0.5), quantile(flat[p], 0.95)
        if p == "in-process":
            print(f"| {p} | {p50:.2f} | {p95:.2f} | | | | |")
            continue
        rounds = [quantile(a, 0.5) - quantile(b, 0.5) for a, b in zip(times[p], times["in-process"])]
        print(f"| {p} | {p50:.2f} | {p95:.2f} | {p50 - base50:.2f} | {p95 - base95:.2f} | "
              f"{min(rounds):.2f}-{max(rounds):.2f} | <= 5 ms p50 |")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "load_before": load_before, "load_after": load_after,
                       "milliseconds": times}, f)  # fmt: skip


if __name__ == "__main__":
    main()
