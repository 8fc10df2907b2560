"""`ponder report`: turn stored bench runs into a Markdown + HTML report with one PNG plot.

A configuration is a (strategy, budget) pair. For each: accuracy with a Wilson 95% interval, the mean
compute spent per problem, and whether it sits on the accuracy-vs-tokens Pareto frontier. Given several
runs, every later run is compared with the first, configuration by configuration, on the (problem, seed)
cells both ran: paired bootstrap CI for the difference and an exact McNemar test (see `stats.py`). A
configuration with several samples (seeds) per problem also gets pass@k (Chen et al. 2021's unbiased
estimator), for k = 1 and the powers of 2 up to the samples per problem. A ``policy`` run also gets
its leak and over-refusal rates per configuration (``bench/policy.py``).

The content is built once as a list of blocks, then rendered to Markdown and to HTML, so the two match.
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ponder.bench.plots import plot_accuracy_vs_tokens
from ponder.bench.policy import policy_blocks
from ponder.bench.stats import (
    ConfigStats,
    paired_difference,
    pareto_frontier,
    pass_at_k,
    pass_at_k_ks,
    wilson_interval,
)
from ponder.bench.store import ResultRow, Store


class ReportError(ValueError):
    """A report cannot be made: unknown run or a run without results."""


@dataclass
class ReportPaths:
    markdown: Path
    html: Path
    plots: list[Path]


def config_label(strategy: str, budget: int) -> str:
    return f"{strategy} @ {budget} tok" if budget > 0 else strategy


def summarize(rows: list[ResultRow]) -> list[ConfigStats]:
    """One ConfigStats per (strategy, budget), sorted by strategy then budget (no cap last)."""
    groups: dict[tuple[str, int], list[ResultRow]] = defaultdict(list)
    for r in rows:
        groups[(r.strategy, r.budget)].append(r)
    out = []
    for (strategy, budget), rs in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] == 0, g[0][1])):
        n, k = len(rs), sum(r.correct for r in rs)
        lo, hi = wilson_interval(k, n)
        out.append(ConfigStats(
            config_label(strategy, budget), strategy, budget, n, k, k / n, lo, hi,
            mean_tokens=sum(r.total_tokens for r in rs) / n,
            mean_completion=sum(r.completion_tokens for r in rs) / n,
            mean_calls=sum(r.calls for r in rs) / n,
            mean_latency=sum(r.latency for r in rs) / n,
        ))
    if len(out) > 1:  # a lone configuration is trivially "on the frontier": a ★ would say nothing
        for i in pareto_frontier([(c.mean_tokens, c.accuracy) for c in out]):
            out[i].pareto = True
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _config_table(stats: list[ConfigStats]) -> tuple[list[str], list[list[str]]]:
    header = ["configuration", "n", "accuracy %", "95% CI (Wilson)", "mean tokens", "mean completion",
              "mean calls", "mean latency s", "Pareto"]
    body = [[c.label, str(c.n), _pct(c.accuracy), f"{_pct(c.ci_low)}–{_pct(c.ci_high)}",
             f"{c.mean_tokens:,.0f}", f"{c.mean_completion:,.0f}", f"{c.mean_calls:.2f}",
             f"{c.mean_latency:.2f}", "★" if c.pareto else ""] for c in stats]
    return header, body


def _pass_at_k_blocks(rows: list[ResultRow]) -> list[tuple]:
    """A pass@k table for the configurations with at least 2 samples of every problem; none when
    no configuration has them."""
    groups: dict[tuple[str, int], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[(r.strategy, r.budget)][r.problem_id].append(bool(r.correct))
    several = {key: by_problem for key, by_problem in groups.items()
               if min(len(v) for v in by_problem.values()) >= 2}  # fmt: skip
    if not several:
        return []
    ks = pass_at_k_ks(max(min(len(v) for v in bp.values()) for bp in several.values()))
    header = ["configuration", "problems", "samples per problem", *(f"pass@{k} %" for k in ks)]
    body = []
    for key in sorted(several, key=lambda g: (g[0], g[1] == 0, g[1])):
        by_problem = several[key]
        sizes = [len(v) for v in by_problem.values()]
        lo, hi = min(sizes), max(sizes)
        cells = [
            _pct(sum(pass_at_k(len(v), sum(v), k) for v in by_problem.values()) / len(by_problem))
            if k <= lo else "–"
            for k in ks
        ]
        body.append([config_label(*key), str(len(by_problem)), str(lo) if lo == hi else f"{lo}–{hi}",
                     *cells])
    note = ("pass@k: the chance that at least one of k samples of a problem is correct, averaged over "
            "problems; the unbiased estimator 1 − C(n−c, k)/C(n, k) of Chen et al. 2021 over the n "
            "samples (seeds) of each problem, c of them correct.")
    return [("p", note), ("table", header, body)]


def _paired_table(rows_a: list[ResultRow], rows_b: list[ResultRow]) -> tuple[list[str], list[list[str]]]:
    def by_config(rows):
        d: dict[str, dict[tuple[str, int], bool]] = defaultdict(dict)
        for r in rows:
            d[config_label(r.strategy, r.budget)][(r.problem_id, r.seed)] = r.correct
        return d

    a, b = by_config(rows_a), by_config(rows_b)
    header = ["configuration", "shared n", "acc A %", "acc B %", "B − A (pp)", "95% CI (pp, bootstrap)",
              "only A right / only B right", "McNemar p (exact)"]
    body = []
    for label in [c.label for c in summarize(rows_a) if c.label in b]:
        d = paired_difference(a[label], b[label])
        if d["n"] == 0:
            body.append([label, "0", "–", "–", "–", "–", "–", "–"])
            continue
        body.append([label, str(d["n"]), _pct(d["acc_a"]), _pct(d["acc_b"]), f"{100 * d['diff']:+.1f}",
                     f"{100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f}",
                     f"{d['b_only_a']} / {d['c_only_b']}", f"{d['p_mcnemar']:.3g}"])
    return header, body


def _run_facts(info: dict) -> list[tuple[str, str]]:
    cfg, model = info["config"], info["model"]
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(info["created"] or 0))
    return [("task", str(cfg.get("task", "?"))), ("model", str(cfg.get("model", model.get("path", "?")))),
            ("backend", str(model.get("backend", "?"))), ("model sha256", str(model.get("sha256") or "?")[:12]),
            *([("Hub revision", str(model["revision"])[:12])] if model.get("revision") else []),
            ("ponder version", str(info["ponder_version"])), ("created", created)]


# -- rendering: blocks are ("h1"|"h2"|"p", text), ("facts", pairs), ("table", header, rows), ("img", src)


def _md(blocks: list[tuple]) -> str:
    cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    out = []
    for kind, *a in blocks:
        if kind == "h1":
            out.append(f"# {a[0]}\n")
        elif kind == "h2":
            out.append(f"## {a[0]}\n")
        elif kind == "p":
            out.append(f"{a[0]}\n")
        elif kind == "facts":
            out.append("\n".join(f"- **{k}**: {cell(v)}" for k, v in a[0]) + "\n")
        elif kind == "table":
            header, rows = a
            lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
            out.append("\n".join(lines) + "\n")
        elif kind == "img":
            out.append(f"![accuracy vs tokens]({a[0]})\n")
    return "\n".join(out)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


def _html(blocks: list[tuple], title: str) -> str:
    e = html.escape
    out = []
    for kind, *a in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{e(a[0])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(a[0])}</p>")
        elif kind == "facts":
            out.append("<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in a[0]) + "</ul>")
        elif kind == "table":
            header, rows = a
            head = "".join(f"<th>{e(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            out.append(f'<img src="{e(a[0])}" alt="accuracy vs tokens">')
    return _PAGE.format(title=e(title), body="\n".join(out))


def write_report(store: Store, runs: list[str], out_dir: str | Path) -> ReportPaths:
    """Write report.md, report.html and accuracy_vs_tokens.png into out_dir (created if needed)."""
    if not runs:
        raise ReportError("no run given; known runs: " + (", ".join(store.runs()) or "none"))
    infos, all_rows = [], []
    for name in runs:
        info = store.run_info(name)
        if info is None:
            known = ", ".join(store.runs()) or "none"
            raise ReportError(f"no run named {name!r} in {store.path}; known runs: {known}")
        rows = store.rows(name)
        if not rows:
            raise ReportError(f"run {name!r} has no results yet; run `ponder bench --run {name}` first")
        infos.append(info)
        all_rows.append(rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = [summarize(rows) for rows in all_rows]

    heading = "ponder report: " + " vs ".join(runs)
    blocks: list[tuple] = [("h1", heading)]
    for name, info, st, rows in zip(runs, infos, stats, all_rows):
        blocks += [("h2", f"run {name}"), ("facts", _run_facts(info)), ("table", *_config_table(st))]
        blocks += _pass_at_k_blocks(rows)
        blocks += policy_blocks(rows, config_label)  # only for the policy task's rows
    blocks.append(("p", "accuracy: share of (problem, seed) cells answered correctly; tokens: prompt + "
                        "completion over all model calls for one problem; ★: on the Pareto frontier of "
                        "accuracy vs mean tokens."))

    plot = out_dir / "accuracy_vs_tokens.png"
    facts = [dict(_run_facts(i)) for i in infos]
    title = "\n".join(f"run {n} · task {f['task']} · model {f['model']}" for n, f in zip(runs, facts))
    plot_accuracy_vs_tokens(list(zip(runs, stats)), title, plot)
    blocks += [("h2", "accuracy vs tokens"), ("img", plot.name)]

    for name, rows in zip(runs[1:], all_rows[1:]):
        blocks += [("h2", f"paired difference: A = {runs[0]}, B = {name}"),
                   ("p", "On the (problem, seed) cells both runs share. CI: paired bootstrap, 2000 "
                         "resamples, seed 0. p: exact McNemar test on the discordant pairs."),
                   ("table", *_paired_table(all_rows[0], rows))]

    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(_md(blocks), encoding="utf-8")
    page.write_text(_html(blocks, heading), encoding="utf-8")
    return ReportPaths(markdown=md, html=page, plots=[plot])
