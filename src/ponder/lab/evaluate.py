"""Quick accuracy of a lab model: ponder strategies through the real ``hf:`` backend, graded by
the ``check`` scorer via the bench's ``run_cell`` (one grading path for bench, lab and RL).

An experiment that evaluates many checkpoints passes a results ``Store``: each graded problem is
saved as it ends, under a run named by the weights' SHA-256, the model folder's other files
(config, generation config, tokenizer), the device and the strategy's full settings, so that after
an interruption the same evaluation reads back what was done and runs only the rest (a checkpoint
whose weights changed, a model run on another device, or a spec whose defaults changed with an
upgrade, is evaluated afresh). A kept problem is matched by its id and reference answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ponder.bench.runner import Cell, run_cell
from ponder.bench.store import ResultRow, Store
from ponder.budget import Budget
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think import StrategyBase, parse_strategy


@dataclass
class Accuracy:
    correct: int
    total: int
    completion_tokens: int  # summed over problems
    seconds: float  # summed model-call latency
    rows: list[ResultRow] = field(default_factory=list, repr=False)
    reused: int = 0  # problems read back from the store, not run now

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def accuracy(
    model: str | Model,
    problems: list[Problem],
    strategy: str = "cot",
    n: int | None = None,
    max_tokens: int = 256,
    seed: int = 0,
    concurrency: int = 32,
    progress: Callable[[int, int], None] | None = None,
    store: Store | None = None,
) -> Accuracy:
    """Run ``strategy`` (a spec, e.g. "cot" = greedy, or "vote:n=4") on the first ``n`` problems
    (all when None) with ``model``: an HF model directory, an ``hf:``/other spec, or a Model.
    ``max_tokens`` caps each sample unless the spec sets it. ``concurrency`` problems run at once:
    the hf backend batches their calls together (``models.hf``), rows come back in order.
    ``progress(done, total)`` is called as each problem finishes (and once first with the count
    read back). With a ``store``, problems it holds for this model, strategy and seed are read
    back, not run (see the module docstring; a model without one weights file to hash is always
    run)."""
    from ponder.models import resolve

    if isinstance(model, str):
        model = resolve(model if ":" in model else f"hf:{model}")
    built = parse_strategy(strategy, max_tokens=max_tokens)
    chosen = problems if n is None else problems[:n]
    cells = [Cell(p, built, Budget(), seed) for p in chosen]
    run = _open_run(store, model, built) if store is not None else None
    if run is None:  # no store, or a model without one weights file to name its rows by
        store = None
    saved = {r.key: r for r in store.rows(run)} if store is not None and run is not None else {}
    kept = {  # (a problem whose reference changed since, as a generator's can, is run again)
        i: saved[c.key] for i, c in enumerate(cells)
        if c.key in saved and saved[c.key].reference == c.problem.answer
    }  # fmt: skip
    todo = [c for i, c in enumerate(cells) if i not in kept]
    done = len(kept)
    if progress is not None and kept:
        progress(done, len(cells))

    def on_row(row: ResultRow) -> None:
        nonlocal done
        if store is not None:  # now: an interruption keeps what is graded
            store.add(row, replace=row.key in saved)  # (a stale row: its reference changed)
        done += 1
        if progress is not None:
            progress(done, len(cells))

    new = iter(asyncio.run(_run(model, todo, concurrency, run or "lab-eval", on_row)))
    rows = [kept[i] if i in kept else next(new) for i in range(len(cells))]
    return Accuracy(
        correct=sum(r.correct for r in rows),
        total=len(rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        seconds=sum(r.latency for r in rows),
        rows=rows,
        reused=len(kept),
    )


def _open_run(store: Store, model: Model, strategy: StrategyBase) -> str | None:
    """The store's run for this model (weights, other files, device) and the strategy's settings
    (a spec names only what differs from today's defaults), or None: no weights file to name it by."""
    from ponder import __version__

    about = model.describe()
    if not about.get("sha256"):
        return None
    rest = hashlib.sha256(json.dumps([strategy.settings, about.get("device")], sort_keys=True).encode())
    folder = Path(about.get("path", ""))
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("*.jinja")):
        if f.name not in ("ponder_train.json", "trainer_state.json"):  # records, not the model
            rest.update(f.name.encode() + f.read_bytes())
    run = f"lab-eval-{about['sha256'][:16]}-{rest.hexdigest()[:8]}"
    config = {"task": "lab-eval", "model": f"sha256:{about['sha256']}",
              "settings": {strategy.spec: strategy.settings}}  # fmt: skip
    store.open_run(run, config, __version__, about)
    return run


async def _run(
    model: Model, cells: list[Cell], concurrency: int, run: str, on_row: Callable[[ResultRow], None]
) -> list[ResultRow]:
    gate = asyncio.Semaphore(concurrency)

    async def one(cell: Cell) -> ResultRow:
        async with gate:
            row = await run_cell(run, cell, model)
        on_row(row)
        return row

    return list(await asyncio.gather(*(one(c) for c in cells)))
