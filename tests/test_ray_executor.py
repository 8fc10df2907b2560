"""The Ray executor on a local Ray instance (2 CPUs) started by the test; its workers talk to a real
OpenAI-compatible HTTP server on loopback."""

import pytest

from ponder.think import parse_strategy
from ponder.budget import Budget
from ponder.bench.ray_executor import run_ray
from ponder.bench.runner import grid
from ponder.bench.store import Store
from ponder.problems.base import Problem

ray = pytest.importorskip("ray", reason="the Ray executor needs `pip install 'ponder[ray]'`")


@pytest.mark.slow
def test_ray_workers_fill_the_same_store(tmp_path):
    from openai_stub_server import StubServer

    problems = [Problem(f"p{i}", f"What is {i} + 7 - {i}?", "7" if i % 2 else "8") for i in range(6)]
    store = Store(tmp_path / "ray.sqlite")
    store.open_run("ray", {"task": "custom", "model": "stub"}, "test", {})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with StubServer(["Seven it is.\n\\boxed{7}"]) as server:
            cells = grid(problems, [parse_strategy("cot"), parse_strategy("vote:n=2")], [Budget()], [0])
            run_ray("ray", cells, f"openai:stub-model@{server.base_url}", store.add, workers=2)
            posts = [r for r in server.requests if r["path"].endswith("/chat/completions")]
    finally:
        ray.shutdown()
    rows = store.rows("ray")
    assert len(rows) == 12 and len({r.key for r in rows}) == 12
    assert sum(r.correct for r in rows) == 6  # right exactly where the reference is 7
    assert all(r.calls == 1 and r.prompt_tokens > 0 for r in rows)
    assert len(posts) == 12
