"""The speed benchmarks run (in their seconds-long smoke mode) and measure what they say: each
batched-sampling side in a process of its own, the server's latency against the in-process call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.slow


def run_script(name: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), "--smoke", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PONDER_THREADS": ""},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_batched_sampling_runs_each_side_in_its_own_process(tmp_path):
    raw = tmp_path / "rounds.json"
    table = run_script("batched_sampling.py", "--threads", "1", "--json", str(raw))
    assert "samples batched" in table and "x sequential" in table and "overhead" in table
    data = json.loads(raw.read_text())
    (only_round,) = data["rounds"]
    pids = {side["pid"] for side in only_round.values()}
    assert len(pids) == 4 and data["parent_pid"] not in pids  # no two contexts ever share one
    assert all(side["tokens"] > 0 and side["threads"] == 1 for side in only_round.values())
    assert only_round["ponder"]["tokens"] == only_round["direct"]["tokens"]  # greedy: same length


def test_serve_latency_compares_http_with_in_process(tmp_path):
    raw = tmp_path / "ms.json"
    table = run_script("serve_latency.py", "--json", str(raw))
    for path in ("in-process", "openai sdk", "openai sdk, stream", "http.client", "http.client, stream"):
        assert f"| {path} |" in table
    times = json.loads(raw.read_text())["milliseconds"]
    assert all(sum(map(len, rounds)) == 20 for rounds in times.values())


def test_served_connections_turn_nagle_off():
    """asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it a plain response's
    body waited ~40 ms for the client's delayed ACK of its headers (found by serve_latency.py)."""
    from ponder.serve.background import listen

    server = listen("127.0.0.1", 0)
    try:
        client = socket.create_connection(server.getsockname()[:2])
        accepted, _ = server.accept()
        assert accepted.proto == socket.IPPROTO_TCP  # what asyncio's _set_nodelay checks
        accepted.close()
        client.close()
    finally:
        server.close()
