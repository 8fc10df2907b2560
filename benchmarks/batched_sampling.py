"""Two ratios for the llama.cpp backend, measured in one run on the same loaded model.

1. Batched sampling: aggregate completion tokens/s of 16 samples of one prompt decoded as one batch
   (shared prompt KV cache, one llama_decode per step) versus 16 sequential single-sample calls of
   the same backend. Target: >= 1.5x.
2. Overhead: ponder's single-sample tokens/s versus calling llama-cpp-python directly
   (``Llama.create_completion``) with the same model file, context size, threads and attention
   kernel, both greedy so that both write the same tokens (with sampling, the two libraries' RNGs
   give samples of different lengths, and a short sample pays its per-call costs over fewer
   tokens). Target: <= 5% slower.

Rounds alternate the two sides (ABAB...) and the medians are compared, because the machine is
shared and noisy; absolute tokens/s are printed for context only.

    python benchmarks/batched_sampling.py [--model gguf:PATH] [--rounds 3] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import llama_cpp

from ponder.models import Request, resolve


def tokens_per_second(fn) -> float:
    start = time.perf_counter()
    tokens = fn()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()

    model = resolve(args.model)
    question = "Write a short story about a robot who learns to paint."
    base = Request.chat(question, max_tokens=args.max_tokens, temperature=0.8, seed=1)
    direct = llama_cpp.Llama(
        model_path=model.path,
        n_ctx=model.n_ctx,
        n_threads=model.n_threads,
        n_threads_batch=model.n_threads,
        flash_attn=True,  # ponder's context lets llama.cpp choose (AUTO), which enables it on CPU
        verbose=False,
    )
    prompt = model.render(base)

    def batched() -> int:
        req = Request(**{**base.__dict__, "n": args.n})
        return asyncio.run(model.generate(req)).usage.completion_tokens

    def sequential() -> int:
        total = 0
        for i in range(args.n):
            req = Request(**{**base.__dict__, "seed": 100 + i})
            total += asyncio.run(model.generate(req)).usage.completion_tokens
        return total

    counts: dict[str, list[int]] = {"ponder": [], "direct": []}

    def ponder_single(seed: int) -> int:
        req = Request(**{**base.__dict__, "seed": seed, "temperature": 0.0})
        n = asyncio.run(model.generate(req)).usage.completion_tokens
        counts["ponder"].append(n)
        return n

    def direct_single(seed: int) -> int:
        out = direct.create_completion(
            prompt=prompt, max_tokens=args.max_tokens, temperature=0.0, top_p=1.0, top_k=0,
            min_p=0.0, repeat_penalty=1.0, seed=seed,
        )
        counts["direct"].append(out["usage"]["completion_tokens"])
        return out["usage"]["completion_tokens"]

    batched_tps, sequential_tps, ours_tps, direct_tps = [], [], [], []
    # warm-up: first-call allocations and page faults (the batch touches 16x the KV cells)
    batched(), ponder_single(0), direct_single(0)
    for r in range(args.rounds):
        batched_tps.append(tokens_per_second(batched))
        sequential_tps.append(tokens_per_second(sequential))
        for seed in range(4):  # several seeds: some samples stop early at EOS
            ours_tps.append(tokens_per_second(lambda: ponder_single(10 * r + seed)))
            direct_tps.append(tokens_per_second(lambda: direct_single(10 * r + seed)))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    b, s = statistics.median(batched_tps), statistics.median(sequential_tps)
    o, d = statistics.median(ours_tps), statistics.median(direct_tps)
    print(f"\nmodel: {model.name} ({model.path}), threads {model.n_threads}, "
          f"{args.n} samples x {args.max_tokens} tokens, {args.rounds} rounds (medians)")
    print("| measure | tokens/s | ratio | target |")
    print("| --- | --- | --- | --- |")
    print(f"| {args.n} samples batched | {b:.1f} | {b / s:.2f}x sequential | >= 1.5x |")
    print(f"| {args.n} sequential single calls | {s:.1f} | | |")
    print(f"| ponder, one sample | {o:.1f} | overhead {100 * (1 - o / d):+.1f}% | <= 5% |")
    print(f"| llama-cpp-python directly | {d:.1f} | | |")
    print(f"\ngreedy single-sample lengths: ponder {statistics.mean(counts['ponder']):.0f}, "
          f"direct {statistics.mean(counts['direct']):.0f} tokens on average")


if __name__ == "__main__":
    main()
