"""Two ratios for the llama.cpp backend, each side measured in its own process.

1. Batched sampling: aggregate completion tokens/s of n samples of one prompt decoded as one batch
   (shared prompt KV cache, one llama_decode per step) versus n sequential single-sample calls of
   the same backend. Target: >= 1.5x.
2. Overhead: ponder's single-sample tokens/s versus calling llama-cpp-python directly
   (``Llama.create_completion``) with the same model file, context size, threads and attention
   kernel, both greedy so that both write the same tokens. Target: <= 5% slower.

Why one process per side: an earlier version of this script loaded a second (direct) llama.cpp
context in the same process as ponder's. Its idle thread team competed with the measured one and
slowed both sides by about 2.7x on a 2-core machine, so the ratios it printed (4.25x batched, and
the overhead) measured that contention, not ponder. Here every measurement is a fresh child
process (``--side``) that loads the model, warms up, times its work and exits: no second context
is ever resident. The parent only starts children and waits (it holds no model).

Rounds interleave the sides (A B C D, A B C D, ...), and the ratios are taken within each round,
so slow drift on a shared machine (another job starting, thermal limits) hits both sides of a
ratio alike. Reported: the median and the min-max over rounds, per side and per ratio.

    python benchmarks/batched_sampling.py [--model gguf:PATH] [--rounds 5] [--max-tokens 128]
        [--n 16] [--threads N] [--sides batched,sequential,ponder,direct] [--json FILE] [--smoke]

``--smoke`` runs one tiny round (2 samples x 8 tokens) in a few seconds, to check the script works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time

QUESTION = "Write a short story about a robot who learns to paint."
SIDES = ("batched", "sequential", "ponder", "direct")


# --- one side, in its own process ---------------------------------------------------------------


def measure(side: str, model_spec: str, n: int, max_tokens: int, single_calls: int, threads: int | None) -> dict:
    """Load the model, warm up with the same shape of work, then time it: {tokens, seconds, ...}."""
    from ponder.models import Request, resolve

    model = resolve(model_spec, threads=threads)
    base = Request.chat(QUESTION, max_tokens=max_tokens, temperature=0.8, seed=1)

    def generate(**changes) -> int:
        req = Request(**{**base.__dict__, **changes})
        return asyncio.run(model.generate(req)).usage.completion_tokens

    if side == "batched":
        work = lambda: generate(n=n)  # noqa: E731
        generate(n=n)  # warm-up: first-call allocations and page faults over n sequences' KV cells
    elif side == "sequential":
        work = lambda: sum(generate(seed=100 + i) for i in range(n))  # noqa: E731
        generate(seed=99)
    elif side == "ponder":
        work = lambda: sum(generate(temperature=0.0) for _ in range(single_calls))  # noqa: E731
        generate(temperature=0.0)
    elif side == "direct":
        import llama_cpp

        path, n_ctx, n_threads = model.path, model.n_ctx, model.n_threads
        prompt = model.render(base)
        model.close()  # only the direct context stays: nothing else is resident while it runs
        direct = llama_cpp.Llama(
            model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
            flash_attn=True,  # ponder's context lets llama.cpp choose (AUTO), which enables it on CPU
            verbose=False,
        )  # fmt: skip

        def one() -> int:
            out = direct.create_completion(
                prompt=prompt, max_tokens=max_tokens, temperature=0.0, top_p=1.0, top_k=0,
                min_p=0.0, repeat_penalty=1.0, seed=1,
            )  # fmt: skip
            return out["usage"]["completion_tokens"]

        work = lambda: sum(one() for _ in range(single_calls))  # noqa: E731
        one()
    else:
        raise SystemExit(f"unknown side {side!r}")
    start = time.perf_counter()
    tokens = work()
    seconds = time.perf_counter() - start
    threads_used = model.n_threads
    return {"side": side, "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
            "threads": threads_used, "pid": os.getpid()}  # fmt: skip


# --- the parent: start the children, ABAB, summarise ----------------------------------------------


def run_side(side: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--model", args.model,
           "--n", str(args.n), "--max-tokens", str(args.max_tokens),
           "--single-calls", str(args.single_calls)]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"side {side} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    med = fmt.format(statistics.median(values))
    return med if len(values) == 1 else f"{med} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--single-calls", type=int, default=4, help="greedy calls per single-sample side")
    ap.add_argument("--threads", type=int, help="llama.cpp threads on every side (default: ponder's)")
    ap.add_argument("--sides", default=",".join(SIDES), help="a subset, e.g. ponder,direct (one ratio)")
    ap.add_argument("--json", help="write every round's raw figures here")
    ap.add_argument("--smoke", action="store_true", help="one tiny round, seconds: does it work?")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.n, args.max_tokens, args.single_calls = 1, 2, 8, 1
    if args.side:
        print(json.dumps(measure(args.side, args.model, args.n, args.max_tokens, args.single_calls, args.threads)))
        return
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    pairs = [("batched", "sequential"), ("ponder", "direct")]
    if not sides or set(sides) - set(SIDES) or any((a in sides) != (b in sides) for a, b in pairs):
        raise SystemExit(f"--sides: pairs of {', '.join('+'.join(p) for p in pairs)}; got {args.sides!r}")

    load_before = os.getloadavg()
    started = time.time()
    rounds = []
    for r in range(args.rounds):
        rounds.append({side: run_side(side, args) for side in sides})
        got = rounds[-1]
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{s} {got[s]['tok_s']:.1f} tok/s" for s in sides),
              file=sys.stderr, flush=True)  # fmt: skip
    load_after = os.getloadavg()

    tps = {s: [r[s]["tok_s"] for r in rounds] for s in sides}
    threads = rounds[0][sides[0]]["threads"]
    shape = f"{args.n} samples x " if "batched" in sides else f"{args.single_calls} greedy calls x "
    print(f"model {args.model}, llama.cpp threads {threads}, {shape}{args.max_tokens} tokens, "
          f"{args.rounds} interleaved rounds, each side in its own process; {machine()}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{time.time() - started:.0f} s\n")  # fmt: skip
    print("median (min-max) over rounds\n")
    print("| measure | tokens/s | ratio (per round) | target |")
    print("| --- | --- | --- | --- |")
    if "batched" in sides:
        ratio = [r["batched"]["tok_s"] / r["sequential"]["tok_s"] for r in rounds]
        print(f"| {args.n} samples batched | {spread(tps['batched'])} | {spread(ratio, '{:.2f}')}x sequential | >= 1.5x |")
        print(f"| {args.n} sequential single calls | {spread(tps['sequential'])} | | |")
    if "ponder" in sides:
        overhead = [100 * (1 - r["ponder"]["tok_s"] / r["direct"]["tok_s"]) for r in rounds]
        lengths = {s: [r[s]["tokens"] / args.single_calls for r in rounds] for s in ("ponder", "direct")}
        print(f"| ponder, one greedy sample | {spread(tps['ponder'])} | overhead {spread(overhead, '{:+.1f}')}% | <= 5% |")
        print(f"| llama-cpp-python directly | {spread(tps['direct'])} | | |")
        print(f"\ngreedy single-sample lengths: ponder {statistics.mean(lengths['ponder']):.0f}, "
              f"direct {statistics.mean(lengths['direct']):.0f} tokens")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "side"}, "machine": machine(),
                       "load_before": load_before, "load_after": load_after, "parent_pid": os.getpid(),
                       "rounds": rounds}, f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
