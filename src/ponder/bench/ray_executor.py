"""Run bench cells on Ray workers (``ponder[ray]``): each worker builds its own model client from the
spec, runs cells with the same ``run_cell`` as the local executor, and returns rows to the driver,
which stores them as they arrive. Without an address, a local Ray instance is started and stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from ponder.bench.runner import Cell, run_cell
from ponder.bench.store import ResultRow
from ponder.budget import Budget


class RayUnavailable(RuntimeError):
    """Ray is not installed or could not start; the message says what to do."""


class _Worker:
    def __init__(self, model_spec: str, threads: int | None = None) -> None:
        from ponder.models import resolve

        self.model = resolve(model_spec, threads=threads)

    def run(self, run: str, wire: tuple) -> ResultRow:
        from ponder.think import parse_strategy

        problem, spec, budget, seed = wire  # strings across the process boundary, not objects
        cell = Cell(problem, parse_strategy(spec, operator=True), Budget(budget), seed)
        return asyncio.run(run_cell(run, cell, self.model))


def run_ray(
    run: str,
    cells: Iterable[Cell],
    model_spec: str,
    on_row: Callable[[ResultRow], None],
    workers: int = 2,
    address: str | None = None,
    threads: int | None = None,
) -> None:
    """``threads``: each worker's CPU threads (None: ``$PONDER_THREADS`` where the worker runs, else
    every core)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'ponder[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as e:  # Ray raises many types here; the user needs the one line
            raise RayUnavailable(f"could not start or reach Ray: {str(e).splitlines()[0]}") from None
    worker_cls = ray.remote(num_cpus=1)(_Worker)
    actors = [worker_cls.remote(model_spec, threads) for _ in range(workers)]
    try:
        pool = ActorPool(actors)
        wires = [(c.problem, c.strategy.spec, c.budget.max_tokens, c.seed) for c in cells]
        for row in pool.map_unordered(lambda actor, w: actor.run.remote(run, w), wires):
            on_row(row)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
