"""benchmarks/peers.py: its parsers on responses recorded from a real run (ponder serve, optillm 0.4.0,
its_hub 1.2.0's server and llama-cpp-python's server), and the whole script in its seconds-long smoke mode."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"
spec = importlib.util.spec_from_file_location("peers_bench", SCRIPT)
peers = importlib.util.module_from_spec(spec)
sys.modules["peers_bench"] = peers  # its dataclasses look their module up
spec.loader.exec_module(peers)

# Recorded 2026-12-02: ponder serve (vote:n=5 over the counting proxy) and optillm
# (self_consistency) answering "Compute 691 + 880." on the lab upstream; trimmed, fields as sent.
PONDER_BODY = {
    "id": "chatcmpl-4861f39a", "object": "chat.completion", "model": "ponder/vote:n=5",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "1+0+0=1 > 1\n9+8+0=17 > 71\n6+8+1=15 > 1571\nAnswer: 1571",
        "reasoning_content": "── sample 0 ──\n..."}}],
    "usage": {"prompt_tokens": 125, "completion_tokens": 261, "total_tokens": 386,
              "completion_tokens_details": {"reasoning_tokens": 207}},
    "ponder": {"answer": "1571", "how": "majority 3/5", "calls": 1},
}  # fmt: skip
OPTILLM_BODY = {
    "model": "upstream",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "691 + 880 = 249\nThe answer is correct."}}],
    "usage": {"completion_tokens": 157, "completion_tokens_details": {"reasoning_tokens": 0}},
}  # fmt: skip
# Recorded 2026-12-02: its_hub's server (SelfConsistency, budget 5) on the lab upstream, same question;
# the message is the lab server's own (its reasoning_content trimmed), the usage its 5 calls' sum.
ITS_HUB_BODY = {
    "id": "chatcmpl-its-25e95d92-8a40-4287-90cc-1be2a6b21f4a", "object": "chat.completion",
    "created": 1796196779, "model": "upstream",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "1+0+0=1 > 1\n9+7+0=16 > 61\n6+9+1=16 > 1661\nAnswer: 1661",
        "reasoning_content": "── sample 0 ──\n..."}}],
    "usage": {"prompt_tokens": 125, "completion_tokens": 270, "total_tokens": 395}, "metadata": None,
}  # fmt: skip
# llama-cpp-python's server streaming a chat completion: no usage chunk even when asked for one.
LLAMA_STREAM = [
    'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]}',
    "",
    'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "691"}, "finish_reason": null}]}',
    "",
    'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " +"}, "finish_reason": null}]}',
    "",
    'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " 880"}, "finish_reason": null}]}',
    "",
    'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}',
    "",
    "data: [DONE]",
]  # fmt: skip


def call(prompt, completion, finish, temperature=1.0, n=1, texts=("",)):
    return {"how": "chat", "n": n, "samples": len(finish), "filled": 0, "temperature": temperature,
            "max_tokens": 96, "seed": None, "stream": False, "prompt_tokens": prompt,
            "completion_tokens": completion, "counted": "usage", "finish": list(finish), "texts": list(texts)}  # fmt: skip


def test_parse_reply_reads_each_sides_usage_and_answer():
    got = peers.parse_reply("ponder-http", PONDER_BODY)
    assert got["text"].endswith("Answer: 1571") and got["answer"] == "1571"
    assert (got["prompt_tokens"], got["completion_tokens"]) == (125, 261)
    got = peers.parse_reply("optillm", OPTILLM_BODY)
    assert got["prompt_tokens"] is None  # optillm reports no prompt tokens: not a zero
    assert got["completion_tokens"] == 157 and got["answer"] is None
    got = peers.parse_reply("its_hub", ITS_HUB_BODY)
    assert got["text"].endswith("Answer: 1661") and got["answer"] is None
    assert (got["prompt_tokens"], got["completion_tokens"]) == (125, 270)  # 5 x (25 + 54): the upstream's
    with pytest.raises(RuntimeError, match="optillm: boom"):
        peers.parse_reply("optillm", {"error": "boom"})
    with pytest.raises(RuntimeError, match="its_hub: Generation failed"):  # its server's FastAPI error
        peers.parse_reply("its_hub", {"detail": "Generation failed. Check server logs for details."})


def test_count_stream_counts_chunks_without_a_usage_chunk_and_trusts_one_when_there():
    got = peers.count_stream(LLAMA_STREAM)
    assert got["completion_tokens"] == 3 and got["counted"] == "chunks"  # the role chunk is no token
    assert got["prompt_tokens"] is None and got["finish"] == ["length"]
    assert got["choices"] == 1  # llama-cpp-python's server streams one choice whatever n was asked
    usage = 'data: {"choices": [], "usage": {"prompt_tokens": 53, "completion_tokens": 96}}'
    got = peers.count_stream([*LLAMA_STREAM[:-1], usage, "data: [DONE]"])
    assert (got["prompt_tokens"], got["completion_tokens"], got["counted"]) == (53, 96, "usage")


def test_summary_sets_what_each_side_reported_against_what_the_upstream_generated():
    # optillm self_consistency on one problem: 5 samples, the length-capped one dropped from its count
    sc_calls = [call(27, t, [f]) for t, f in [(19, "stop"), (22, "stop"), (62, "stop"), (54, "stop"), (96, "length")]]
    rows = [
        {"upstream": "llama", "method": "sc", "side": "optillm", "spec": "self_consistency", "problem": "p0",
         "correct": False, "wall_s": 9.3, "reported": {"prompt_tokens": None, "completion_tokens": 157},
         "upstream_calls": sc_calls},
        {"upstream": "llama", "method": "sc", "side": "ponder-http", "spec": "vote:n=5", "problem": "p0",
         "correct": True, "wall_s": 15.7, "reported": {"prompt_tokens": 280, "completion_tokens": 375},
         "upstream_calls": [call(53, 375, ["stop"] * 5, temperature=0.7, n=5)]},
        {"upstream": "llama", "method": "sc", "side": "ponder-http", "spec": "vote:n=5", "problem": "p1",
         "error": "RuntimeError: ponder-http: overloaded", "correct": False, "wall_s": 0.1,
         "reported": {"prompt_tokens": None, "completion_tokens": None}, "upstream_calls": []},
    ]  # fmt: skip
    by_side = {s["side"]: s for s in peers.summarize(rows)}
    opt, pon = by_side["optillm"], by_side["ponder-http"]
    assert opt["reported_prompt"] is None and opt["upstream_prompt"] == 135
    assert (opt["reported_completion"], opt["upstream_completion"]) == (157, 253)
    assert opt["length_capped"] == 1 and opt["temperatures"] == [1.0] and opt["upstream_samples"] == 5
    assert pon["errors"] == 1 and pon["correct"] == 1 and pon["wall_total_s"] == 15.7  # errors not timed
    assert pon["reported_prompt"] == 280 and pon["n_asked"] == [5]
    md = peers.table(peers.summarize(rows))
    assert "| llama | sc | optillm | `self_consistency` | 0/1 |" in md
    assert "none / 157 | 135 / 253 | 0.62 |" in md  # 157 / 253: optillm under-reports by 38%
    assert "1/1 (1 errors)" in md


def test_first_batch_pick_finds_which_expansion_optillm_mcts_answered_with():
    first = call(81, 255, ["stop", "length", "length"], n=3, texts=("A first", "B second", "C third"))
    row = {"text": "B second", "upstream_calls": [call(20, 5, ["stop"]), first]}
    assert peers.first_batch_pick(row) == 1
    assert peers.first_batch_pick({**row, "text": "something else"}) is None


def test_unflatten_gives_back_the_question_optillm_prefixed():
    sent = [{"role": "system", "content": ""}, {"role": "user", "content": "User: Compute 691 + 880."},
            {"role": "assistant", "content": "User: hi"}]  # fmt: skip
    got = [peers.unflatten(m) for m in sent]
    assert got[1]["content"] == "Compute 691 + 880." and got[0] == sent[0] and got[2] == sent[2]


SMOKE_SIDES = "ponder-http,optillm,ponder-inproc,its_hub,its_hub-fill"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run for the tests below: (its stdout, its peers.json)."""
    out_dir = tmp_path_factory.mktemp("peers-smoke")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--sides", SMOKE_SIDES, "--out", str(out_dir)],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "PONDER_THREADS": ""},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout, json.loads((out_dir / "peers.json").read_text())


@pytest.mark.slow
def test_smoke_run_counts_the_upstream_and_grades_every_side(smoke):
    stdout, data = smoke
    rows, summary = data["rows"], data["summary"]
    sides = {r["side"] for r in rows}
    assert {"ponder-http", "ponder-inproc"} <= sides
    assert len({r["problem"] for r in rows}) == 2 and not any(r.get("error") for r in rows)
    assert all(r["correct"] for r in rows)  # the scripted upstream answers every addition right
    for s in summary:
        assert s["upstream_requests"] > 0
        if s["side"].startswith("ponder"):
            # ponder's usage is the upstream's own report, summed: exactly what the proxy counted
            assert s["reported_prompt"] == s["upstream_prompt"], s
            assert s["reported_completion"] == s["upstream_completion"], s
            assert s["temperatures"] == [0.7] or s["method"] == "bon"  # the request's; judge calls 0
    vote = [r for r in rows if r["side"] == "ponder-http" and r["method"] == "sc"]
    assert all(sum(c["samples"] for c in r["upstream_calls"]) == 5 for r in vote)  # vote:n=5: 5 samples
    if "optillm" in sides:  # its venv is there (python benchmarks/peers.py --setup)
        sc = next(s for s in summary if s["side"] == "optillm" and s["method"] == "sc")
        assert sc["reported_prompt"] is None and sc["temperatures"] == [1.0]  # T=1 whatever was asked
        assert sc["upstream_samples"] == 5 * 2  # self_consistency: 5 samples per problem, fixed
    assert "| scripted | sc | ponder-http |" in stdout


@pytest.mark.slow
def test_smoke_run_puts_its_hubs_server_on_the_same_proxy(smoke):
    if not (peers.VENV / "bin" / "its-iaas").exists():
        pytest.skip("no its_hub in runs/peers-venv: python benchmarks/peers.py --setup")
    summary = smoke[1]["summary"]
    by = {(s["side"], s["method"]): s for s in summary if s["side"].startswith("its_hub")}
    assert set(by) == {(side, m) for side in ("its_hub", "its_hub-fill") for m in ("sc", "bon")}  # no search
    for (side, method), s in by.items():
        assert s["upstream_samples"] == {"sc": 5, "bon": peers.BON_N}[method] * 2, s
        # its usage is the sum of the upstream's reports (no judge call here: the samples agree)
        assert (s["reported_prompt"], s["reported_completion"]) == (s["upstream_prompt"], s["upstream_completion"])
        # its server drops the request's temperature and max_tokens; the -fill side gets them back
        assert s["temperatures"] == ([0.7] if side == "its_hub-fill" else []), s
