"""`ponder` through a real subprocess: what a user sees, including every bad-input path."""

import json
import subprocess
import sys

import pytest


def ponder(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "ponder", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ponder: error:")
    for f in fragments:
        assert f in lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["solve", ""], ["question is empty"]),
        (["solve", "   "], ["question is empty"]),
        (["solve", "hi", "--max-tokens", "0"], ["--max-tokens", "from 1 to"]),
        (["solve", "hi", "--temperature", "nan"], ["--temperature", "from 0 to 2", "nan"]),
        (["solve", "hi", "--max-tokens", "-3"], ["--max-tokens"]),
        (["solve", "hi", "--max-tokens", "ten"], ["--max-tokens"]),
        (["solve", "hi", "--temperature", "-1"], ["--temperature"]),
        (["solve", "hi", "--frobnicate"], ["unrecognized arguments"]),
        (["solve", "hi", "--model", "gguf:/no/such/file.gguf"], ["not found"]),
        (["solve", "hi", "--model", "what:ever"], ["valid model specs", "gguf:PATH"]),
        (["solve", "hi", "--strategy", "nope"], ["unknown strategy"]),
        (["solve", "hi", "--strategy", "vote:n=zero"], ["vote"]),
        (["solve", "hi", "--budget", "0"], ["--budget"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_gives_one_clear_line(args, fragments):
    assert_one_line_error(ponder(*args), *fragments)


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    assert_one_line_error(ponder("solve", "hi", "--model", f"gguf:{bad}"), "cannot load")


def test_unreachable_server():
    proc = ponder("solve", "hi", "--model", "openai:m@http://127.0.0.1:9/v1")
    assert_one_line_error(proc, "cannot reach")


def test_wrong_api_key_over_real_http():
    from openai_stub_server import StubServer

    with StubServer(["4"], api_key="right-key") as server:
        import os

        env = dict(os.environ, OPENAI_API_KEY="wrong-key")
        proc = ponder("solve", "hi", "--model", f"openai:stub@{server.base_url}", env=env)
    assert_one_line_error(proc, "API key")


@pytest.mark.slow
def test_solve_on_the_embedded_model_streams_answer_and_usage():
    proc = ponder("solve", "What is 2 + 3?", "--max-tokens", "24", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Answer:" in out
    usage = [line for line in out.splitlines() if line.startswith("usage:")]
    assert len(usage) == 1 and "prompt" in usage[0] and "tok/s" in usage[0]


@pytest.mark.slow
def test_solve_json_on_the_embedded_model():
    proc = ponder("solve", "What is 2 + 3?", "--max-tokens", "16", "--json", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["usage"]["completion_tokens"] <= 16
    assert obj["usage"]["prompt_tokens"] > 0 and obj["usage"]["calls"] == 1
    assert {"answer", "text", "how", "model", "strategy"} <= obj.keys()
