"""Does a countdown model see a hit? Its hit decisions, teacher-forced on held-out searches.

Each held-out puzzle's own search trace (``lab.traces``, the procedure its id picks) is fed to the
model whole, and at every result of a move (``lab.check_weight.decision_offsets``: the token after
``=c``) we read what the model would write next. At a hit (``c`` is the target) the trace goes on
with ``ok``; anywhere else with something else. Reported per model: how often ``ok`` is its most
likely next token at the hits (hit recall) and at the other results (false hits), the median
probability of ``ok`` at the hits, the AUC of P(``ok``) between the two, and the recall per search
procedure. Teacher forcing isolates the decision from the rest of the search: every line before it
is right. One forward pass per puzzle; seconds per model on a CPU.

``--ok-bias B[,B...]`` asks what a model that says ``ok`` more readily would solve: greedy
decoding at ``--budget`` tokens with B added to the logit of ``o`` wherever the text so far ends in
``=c `` (a decision after a space), graded by the countdown grader; B = 0 is plain greedy. A bias
of B multiplies the odds of ``ok`` by e^B, which is what a loss weight of e^B on the hit token
(``ponder train sft --hit-weight``) would do to a calibrated model. Minutes per bias on a CPU.

    python benchmarks/countdown_hit_decisions.py MODEL [MODEL ...] [--held-out 200] [--seed 0]
        [--threads 2] [--ok-bias 0,1.5,3 --budget 900]

MODEL is ``lab:NAME`` or an HF directory. ``--seed`` is ``countdown_scaling.held_out``'s: 0 the
test puzzles every countdown result reports, 10000 the validation ones (seed 20,000).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from countdown_scaling import held_out, model_dir

from ponder.lab import countdown_search, format, traces
from ponder.lab.check_weight import decision_offsets


def decisions(model, tokenizer, problems: list) -> list[tuple[bool, float, bool, str]]:
    """(is a hit, P(ok), ok is the argmax, procedure) at every decision of every puzzle's trace."""
    import torch

    o = tokenizer.convert_tokens_to_ids("o")
    found = []
    for p in problems:
        try:
            completion = traces.completion(p)
        except traces.NoTrace:
            continue
        prompt = format.prompt_text(p.question)
        ids = tokenizer(prompt + completion, add_special_tokens=False).input_ids
        if len(ids) != len(prompt + completion):
            raise SystemExit("this probe reads character offsets: it needs the lab's char tokenizer")
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids[:1024]])).logits[0], -1)
        target = int(p.meta["target"])
        for at in decision_offsets(completion):
            i = len(prompt) + at  # the decision token; the logits before it predict it
            if i >= min(len(ids), 1024):
                break
            value = int(completion[: at].rstrip(" \n").rsplit("=", 1)[1])
            row = logp[i - 1]
            found.append((value == target, row[o].exp().item(), row.argmax().item() == o,
                          traces.procedure_for(p.id)))  # fmt: skip
    return found


def ok_bias_processor(tokenizer, bias: float):
    """A LogitsProcessor adding ``bias`` to ``o`` in each row whose text ends in ``=c ``."""
    from transformers import LogitsProcessor

    o, space, equals = (tokenizer.convert_tokens_to_ids(c) for c in ("o", " ", "="))
    digits = set(tokenizer.convert_tokens_to_ids(list("0123456789")))

    class OkBias(LogitsProcessor):
        def __call__(self, ids, scores):
            for r, row in enumerate(ids[:, -8:].tolist()):  # "=" and up to six digits, a space
                j = len(row) - 2
                while j >= 0 and row[j] in digits:
                    j -= 1
                if row[-1] == space and 0 <= j < len(row) - 2 and row[j] == equals:
                    scores[r, o] += bias
            return scores

    return OkBias()


def biased_greedy(model, tokenizer, problems: list, bias: float, budget: int) -> int:
    """Puzzles solved by greedy decoding with ``bias`` on ``o`` after every ``=c ``."""
    import torch
    from transformers import LogitsProcessorList

    from ponder.verify.grade import verify

    processors = LogitsProcessorList([ok_bias_processor(tokenizer, bias)])
    tokenizer.padding_side = "left"
    solved = 0
    for k in range(0, len(problems), 50):
        chunk = problems[k : k + 50]
        enc = tokenizer([format.prompt_text(p.question) for p in chunk], return_tensors="pt",
                        padding=True, add_special_tokens=False)  # fmt: skip
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=budget, do_sample=False,
                                 logits_processor=processors)  # fmt: skip
        for p, row in zip(chunk, out[:, enc.input_ids.shape[1] :], strict=True):
            solved += verify(p, tokenizer.decode(row, skip_special_tokens=True)).ok
    return solved


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a random hit's P(ok) > a random other result's), ties counting half."""
    ranked = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    below = wins = 0.0
    i = 0
    while i < len(ranked):  # group ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        group = ranked[i:j]
        hits = sum(label for _, label in group)
        others = len(group) - hits
        wins += hits * (below + others / 2)
        below += others
        i = j
    return wins / (len(pos) * len(neg))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--held-out", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ok-bias", help="comma-separated logit biases on ok for greedy decoding")
    ap.add_argument("--budget", type=int, default=900, help="greedy tokens with --ok-bias")
    args = ap.parse_args()
    biases = [float(b) for b in args.ok_bias.split(",")] if args.ok_bias else []
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    problems = held_out(args.held_out, args.seed)
    procs = countdown_search.PROCEDURES
    print(f"{len(problems)} puzzles, held_out seed {args.seed}")
    print("| model | hits | ok first at hits | median P(ok) at hits | ok first elsewhere | AUC | "
          + " | ".join(f"{p} recall" for p in procs) + " |")  # fmt: skip
    print("|" + " --- |" * (6 + len(procs)))
    for spec in args.models:
        path = model_dir(spec)
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        found = decisions(model, tokenizer, problems)
        hits = [d for d in found if d[0]]
        others = [d for d in found if not d[0]]
        per = []
        for proc in procs:
            mine = [d for d in hits if d[3] == proc]
            per.append(f"{sum(d[2] for d in mine)}/{len(mine)}")
        cells = [spec, str(len(hits)), f"{sum(d[2] for d in hits) / len(hits):.1%}",
                 f"{statistics.median(d[1] for d in hits):.2f}",
                 f"{sum(d[2] for d in others) / len(others):.2%}",
                 f"{auc([d[1] for d in hits], [d[1] for d in others]):.3f}", *per]  # fmt: skip
        print("| " + " | ".join(cells) + " |", flush=True)
        for bias in biases:
            start = time.perf_counter()
            solved = biased_greedy(model, tokenizer, problems, bias, args.budget)
            took = time.perf_counter() - start
            print(f"  {spec}: greedy at {args.budget} tokens, ok bias {bias:g}: "
                  f"{solved}/{len(problems)} solved ({took:.0f} s)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
