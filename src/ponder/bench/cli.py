"""`ponder bench` and `ponder report` argument parsing (filled in with the bench runner)."""


def add_bench_commands(sub) -> None:
    return None
