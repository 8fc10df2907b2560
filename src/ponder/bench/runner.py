"""The grid runner: problems x strategies x budgets x seeds, one stored row per cell.

Cells already in the store are skipped, so re-running the same command resumes. Each row is
committed as soon as its cell finishes; a crash or ``kill -9`` loses only the cells in flight.
Locally, cells run concurrently under an asyncio semaphore; ``ray_executor`` sends them to Ray
workers instead. Both executors call ``run_cell``, so a row means the same thing either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ponder.bench.store import ResultRow, budget_column
from ponder.budget import Budget
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think import StrategyBase, StrategySpecError, final_result
from ponder.verify import Attempt, Check, Scorer


@dataclass(frozen=True)
class Cell:
    problem: Problem
    strategy: StrategyBase  # its seed is the cell's, set when the cell runs
    budget: Budget
    seed: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        """The cell's row key in the store (strings and ints: the store is a process boundary)."""
        return (self.problem.id, self.strategy.spec, budget_column(self.budget), self.seed)

    def seeded(self) -> StrategyBase:
        return dataclasses.replace(self.strategy, seed=self.seed)


def unseeded(strategies: list[StrategyBase]) -> list[StrategyBase]:
    """``strategies``, refused (StrategySpecError) where a spec names a seed: a cell's seed is the
    run's ``--seed``, which would replace it, and the cell's row would then be found stored
    under the seed the spec did not name."""
    for s in strategies:
        if s.seed is not None:
            raise StrategySpecError(
                f"{s.spec}: seed={s.seed} cannot be set in a benchmark's strategy spec; "
                "each cell takes its seed from the run's --seed"
            )
    return strategies


def grid(
    problems: list[Problem],
    strategies: list[StrategyBase],
    budgets: list[Budget],
    seeds: list[int],
) -> list[Cell]:
    """Every cell, problem-major so that partial runs cover whole problems across strategies;
    a strategy whose spec names a seed is refused (``unseeded``)."""
    unseeded(strategies)
    return [
        Cell(p, s, b, seed) for p in problems for seed in seeds for s in strategies for b in budgets
    ]


async def run_cell(
    run: str, cell: Cell, model: Model, grader: Scorer | None = None
) -> ResultRow:
    """Run one strategy on one problem and grade it with ``grader`` (the task's ``check`` scorer
    by default). A wrong or missing answer is a result, not an error; exceptions from here mean
    the setup or our code is broken and stop the run."""
    start = time.perf_counter()
    result = await final_result(cell.seeded().run(cell.problem, model, cell.budget))
    latency = time.perf_counter() - start
    grade = await (grader or Check()).score(
        cell.problem, Attempt(result.text, result.answer), model
    )
    return ResultRow(
        run=run,
        problem_id=cell.problem.id,
        strategy=cell.strategy.spec,
        budget=budget_column(cell.budget),
        seed=cell.seed,
        answer=result.answer,
        reference=cell.problem.answer,
        correct=grade.ok,
        how=f"{result.how}; graded: {grade.reason}",
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        calls=result.usage.calls,
        latency=latency,
        trace=[e.to_dict() for e in result.trace],
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
