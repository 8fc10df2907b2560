"""Greedy at 900 tokens on the 200 validation (seed 20,000) and/or test (seed 10,000) puzzles."""
import json, sys, time
from ponder.lab.evaluate import accuracy
from ponder.problems import load_problems as L
model, which = sys.argv[1], sys.argv[2].split(",")
out = {}
for name in which:
    seed = {"val": 20000, "test": 10000}[name]
    t = time.perf_counter()
    r = accuracy(f"hf:{model}", L("countdown", limit=200, seed=seed, count="3-4", split="test"),
                 "cot:max_tokens=900", concurrency=32)
    out[name] = {"correct": r.correct, "total": r.total, "tokens": r.completion_tokens / r.total,
                 "seconds": round(time.perf_counter() - t)}
    print(model, name, out[name], flush=True)
print(json.dumps(out))
