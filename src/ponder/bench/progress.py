"""The bench progress bar: ETA, accuracy so far, tokens spent and tokens/s (rich, on stderr)."""

from __future__ import annotations

import time
from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ponder.bench.policy import ATTACK, SCOPE, policy_lines
from ponder.bench.store import ResultRow


class BenchProgress:
    def __init__(self, total: int, console: Console) -> None:
        self.total = total
        self.done = 0
        self.correct = 0
        self.tokens = 0
        self.by_strategy: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # right, n, tokens
        self.policy_rows: list[ResultRow] = []  # the policy task's, for its two rates
        self._start = time.perf_counter()
        self._progress = Progress(
            TextColumn("bench"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("bench", total=total, stats="")

    def __enter__(self) -> BenchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def add(self, row: ResultRow) -> None:
        self.done += 1
        self.correct += bool(row.correct)
        self.tokens += row.total_tokens
        if row.problem_id.startswith((ATTACK, SCOPE)):
            self.policy_rows.append(row)
        stats = self.by_strategy[row.strategy if not row.budget else f"{row.strategy} @{row.budget}"]
        stats[0] += bool(row.correct)
        stats[1] += 1
        stats[2] += row.total_tokens
        elapsed = time.perf_counter() - self._start
        text = (
            f"acc {100 * self.correct / self.done:.1f}%  "
            f"{self.tokens:,} tok  {self.tokens / elapsed:.0f} tok/s"
        )
        self._progress.update(self._task, advance=1, stats=text)

    def summary(self) -> str:
        if not self.by_strategy:
            return "nothing new to run"
        lines = ["this session:"]
        for name, (right, n, tokens) in sorted(self.by_strategy.items()):
            lines.append(
                f"  {escape(name):<32} {right}/{n} correct ({100 * right / n:.1f}%), "
                f"{tokens / n:,.0f} tokens per problem"
            )
        if self.policy_rows:
            lines += ["policy (this session):", *map(escape, policy_lines(self.policy_rows))]
        return "\n".join(lines)
