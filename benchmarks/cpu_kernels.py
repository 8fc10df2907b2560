"""Two or more llama.cpp builds side by side: single-sequence and batched tokens/s of ponder's
llama.cpp backend on the embedded model, one build per Python interpreter (issue 16, item 3).

Each build lives in a throwaway venv of its own (its own ``llama_cpp`` first on ``sys.path``, with
ponder and the rest reachable behind it); ``--python LABEL=PATH`` names the interpreter. The work
is the same as ``batched_sampling.py``'s and reuses its ``measure``: "single" is its ``ponder``
side (greedy calls, one sequence), "batched" is its ``batched`` side (n samples of one prompt
decoded as one batch). Every measurement is a fresh child process of the build's interpreter, so
two llama.cpp contexts are never resident at once and each child loads exactly one build; the
child also reports which ``llama_cpp`` it imported, the CPU features that build was compiled
for, and the ``libggml*`` files it mapped (under runtime CPU-variant dispatch, the variant that
was picked).

Rounds interleave the builds (A B, A B, ...) and every build's figure is divided by the first
build's from the same round, so drift on a shared machine hits both sides of a ratio alike.
Reported: the median and min-max over rounds, per build and measure, and of the per-round ratios.

    python benchmarks/cpu_kernels.py --python avx2=/tmp/a/bin/python --python avx512=/tmp/b/bin/python
        [--rounds 5] [--threads 2] [--n 16] [--max-tokens 128] [--single-calls 2] [--json FILE]
        [--smoke]

Without ``--python`` the one build measured is the interpreter running the script. ``--smoke``
runs one tiny round (2 samples x 8 tokens), in seconds, to check the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEASURES = ("single", "batched")
SIDE_OF = {"single": "ponder", "batched": "batched"}  # batched_sampling.py's names for the same work


# --- one measurement, in a child process of the build's own interpreter --------------------------


def build_info() -> dict:
    """What the running process loaded: the llama_cpp package, its compiled CPU features, libggml files."""
    import llama_cpp

    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "libggml" in line or "libllama" in line})
    return {
        "llama_cpp": llama_cpp.__file__,
        "version": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "libs": libs,
    }


def child(measure_name: str, args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(HERE))
    from batched_sampling import measure  # the same work, warm-up and timing as that benchmark

    got = measure(SIDE_OF[measure_name], args.model, args.n, args.max_tokens, args.single_calls, args.threads)
    return {**got, "measure": measure_name, "build": build_info()}


# --- the parent: start the children, ABAB, summarise ----------------------------------------------


def parse_pythons(specs: list[str] | None) -> dict[str, str]:
    """``["avx2=/x/bin/python", ...]`` -> {label: path}, in order; none -> this interpreter."""
    if not specs:
        return {"current": sys.executable}
    out: dict[str, str] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"--python takes LABEL=PATH (e.g. avx2=/tmp/v/bin/python); got {spec!r}")
        if label in out:
            raise SystemExit(f"--python: label {label!r} given twice")
        out[label] = path
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", action="append", metavar="LABEL=PATH",
                    help="a build's interpreter; repeat, the first is the baseline (default: this one)")  # fmt: skip
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads, the same for every build")
    ap.add_argument("--n", type=int, default=16, help="samples in the batched measure")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--single-calls", type=int, default=2, help="greedy calls in the single measure")
    ap.add_argument("--json", help="write every round's raw figures here")
    ap.add_argument("--smoke", action="store_true", help="one tiny round, seconds: does it work?")
    ap.add_argument("--measure", choices=MEASURES, help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args(argv)
    if args.smoke:
        args.rounds, args.n, args.max_tokens, args.single_calls = 1, 2, 8, 1
    for name in ("rounds", "threads", "n", "max_tokens", "single_calls"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    args.builds = parse_pythons(args.python)
    return args


def run_child(python: str, measure_name: str, args: argparse.Namespace) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--measure", measure_name, "--model", args.model,
           "--n", str(args.n), "--max-tokens", str(args.max_tokens),
           "--single-calls", str(args.single_calls), "--threads", str(args.threads)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:  # a negative code is the signal: -4 is SIGILL
        raise SystemExit(f"{python} {measure_name} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(rounds: list[dict], labels: list[str]) -> dict:
    """{measure: {label: {"tok_s": [...], "ratio": [...]}}}; a ratio is the build's tok/s over the
    first label's in the same round."""
    base = labels[0]
    out: dict = {}
    for m in MEASURES:
        out[m] = {}
        for label in labels:
            tps = [r[label][m]["tok_s"] for r in rounds]
            ratio = [r[label][m]["tok_s"] / r[base][m]["tok_s"] for r in rounds]
            out[m][label] = {"tok_s": tps, "ratio": ratio}
    return out


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    med = fmt.format(statistics.median(values))
    return med if len(values) == 1 else f"{med} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(summary: dict, labels: list[str], n: int) -> str:
    """The Markdown table: one row per build, tok/s and ratio to the first build per measure."""
    lines = [f"| build | single, tok/s | single, x {labels[0]} | {n} batched, tok/s | batched, x {labels[0]} |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for label in labels:
        s, b = summary["single"][label], summary["batched"][label]
        lines.append(f"| {label} | {spread(s['tok_s'])} | {spread(s['ratio'], '{:.2f}')} | "
                     f"{spread(b['tok_s'])} | {spread(b['ratio'], '{:.2f}')} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.measure:
        print(json.dumps(child(args.measure, args)))
        return
    labels = list(args.builds)
    load_before = os.getloadavg()
    started = time.time()
    rounds: list[dict] = []
    for r in range(args.rounds):
        got = {label: {m: run_child(args.builds[label], m, args) for m in MEASURES} for label in labels}
        rounds.append(got)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{label} single {got[label]['single']['tok_s']:.1f} batched {got[label]['batched']['tok_s']:.1f}"
            for label in labels) + " tok/s", file=sys.stderr, flush=True)  # fmt: skip
    load_after = os.getloadavg()
    builds = {label: rounds[0][label]["single"]["build"] for label in labels}
    same = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]
            if builds[a]["llama_cpp"] == builds[b]["llama_cpp"]]  # fmt: skip
    summary = summarize(rounds, labels)

    print(f"model {args.model}, llama.cpp threads {args.threads}, single: {args.single_calls} greedy "
          f"call(s) x {args.max_tokens} tokens, batched: {args.n} samples x {args.max_tokens} tokens; "
          f"{args.rounds} interleaved round(s), each measure in its own process; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{time.time() - started:.0f} s\n")  # fmt: skip
    print("median (min-max) over rounds; ratios taken within each round\n")
    print(table(summary, labels, args.n))
    print()
    for label in labels:
        b = builds[label]
        libs = ", ".join(Path(p).name for p in b["libs"])
        print(f"- {label}: {b['llama_cpp']} ({b['version']}); {b['system_info']}; libs: {libs}")
    for a, b in same:
        print(f"warning: {a} and {b} imported the same llama_cpp, so they measure one build", file=sys.stderr)
    if args.json:
        keep = {k: v for k, v in vars(args).items() if k not in ("measure", "python")}
        with open(args.json, "w") as f:
            json.dump({"args": keep, "load_before": load_before, "load_after": load_after,
                       "parent_pid": os.getpid(), "builds": builds, "summary": summary,
                       "rounds": rounds}, f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
