"""Quick accuracy of a lab model: ponder strategies through the real ``hf:`` backend, graded by
the ``check`` scorer via the bench's ``run_cell`` (one grading path for bench, lab and RL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ponder.bench.runner import Cell, run_cell
from ponder.bench.store import ResultRow
from ponder.budget import Budget
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think import parse_strategy


@dataclass
class Accuracy:
    correct: int
    total: int
    completion_tokens: int  # summed over problems
    seconds: float  # summed model-call latency
    rows: list[ResultRow] = field(default_factory=list, repr=False)

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
) -> Accuracy:
    """Run ``strategy`` (a spec, e.g. "cot" = greedy, or "vote:n=4") on the first ``n`` problems
    (all when None) with ``model``: an HF model directory, an ``hf:``/other spec, or a Model.
    ``max_tokens`` caps each sample unless the spec sets it. ``concurrency`` problems run at once:
    the hf backend batches their calls together (``models.hf``), rows come back in order.
    ``progress(done, total)`` is called as each problem finishes."""
    from ponder.models import resolve

    if isinstance(model, str):
        model = resolve(model if ":" in model else f"hf:{model}")
    built = parse_strategy(strategy, max_tokens=max_tokens)
    chosen = problems if n is None else problems[:n]
    cells = [Cell(p, built, Budget(), seed) for p in chosen]
    rows = asyncio.run(_run(model, cells, concurrency, progress))
    return Accuracy(
        correct=sum(r.correct for r in rows),
        total=len(rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        seconds=sum(r.latency for r in rows),
        rows=rows,
    )


async def _run(
    model: Model, cells: list[Cell], concurrency: int, progress: Callable[[int, int], None] | None
) -> list[ResultRow]:
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(cell: Cell) -> ResultRow:
        nonlocal done
        async with gate:
            row = await run_cell("lab-eval", cell, model)
        done += 1
        if progress is not None:
            progress(done, len(cells))
        return row

    return list(await asyncio.gather(*(one(c) for c in cells)))
