"""The grid runner: problems x strategies x budgets x seeds, one stored row per cell.

Cells already in the store are skipped, so re-running the same command resumes. Each row is
committed as soon as its cell finishes; a crash or ``kill -9`` loses only the cells in flight.
Locally, cells run concurrently under an asyncio semaphore; ``ray_executor`` sends them to Ray
workers instead. Both executors call ``run_cell``, so a row means the same thing either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ponder.bench.store import ResultRow
from ponder.budget import Budget
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think import final_result, parse_strategy
from ponder.verify import check


@dataclass(frozen=True)
class Cell:
    problem: Problem
    strategy: str  # canonical spec, without the seed
    budget: int  # 0 = no cap
    seed: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.problem.id, self.strategy, self.budget, self.seed)


def grid(
    problems: list[Problem], strategies: list[str], budgets: list[int], seeds: list[int]
) -> list[Cell]:
    """Every cell, problem-major so that partial runs cover whole problems across strategies."""
    return [
        Cell(p, s, b, seed) for p in problems for seed in seeds for s in strategies for b in budgets
    ]


async def run_cell(run: str, cell: Cell, model: Model) -> ResultRow:
    """Run one strategy on one problem and grade it. A wrong or missing answer is a result, not an
    error; exceptions from here mean the setup or our code is broken and stop the run."""
    strategy = parse_strategy(cell.strategy, seed=cell.seed)
    start = time.perf_counter()
    result = await final_result(strategy.run(cell.problem, model, Budget(cell.budget or None)))
    latency = time.perf_counter() - start
    verdict = check(cell.problem, result.answer)
    return ResultRow(
        run=run,
        problem_id=cell.problem.id,
        strategy=cell.strategy,
        budget=cell.budget,
        seed=cell.seed,
        answer=result.answer,
        reference=cell.problem.answer,
        correct=verdict.correct,
        how=f"{result.how}; graded: {verdict.reason}",
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        calls=result.usage.calls,
        latency=latency,
        trace=result.trace,
    )


async def run_local(
    run: str,
    cells: Iterable[Cell],
    model: Model,
    on_row: Callable[[ResultRow], None],
    concurrency: int = 4,
) -> None:
    """Run cells concurrently (at most ``concurrency`` at once); ``on_row`` stores each as it ends.

    On the first failure the remaining cells are cancelled and the error propagates.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(cell: Cell) -> None:
        async with gate:
            row = await run_cell(run, cell, model)
        on_row(row)

    tasks = [asyncio.ensure_future(one(c)) for c in cells]
    try:
        for fut in asyncio.as_completed(tasks):
            await fut
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
