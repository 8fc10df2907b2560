"""The `ponder serve` command: one-line errors, and the real thing on the embedded model, streamed
to an unmodified OpenAI client."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import openai
import pytest

from ponder.cli import main


def test_bad_options_are_one_line_errors(capsys):
    assert main(["serve", "--strategy", "vote:n=0"]) == 2
    assert "default strategy: vote: n must be a positive integer" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "a port is 0-65535" in capsys.readouterr().err
    assert main(["serve", "--max-concurrency", "0"]) == 2
    assert main(["serve", "--api-key", " "]) == 2
    assert "API key is empty" in capsys.readouterr().err


def test_busy_port_fails_before_the_model_loads(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--model", "gguf:/nonexistent.gguf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ponder: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1


def test_missing_serve_extra_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve"]) == 2
    assert "pip install 'ponder[serve]'" in capsys.readouterr().err


@pytest.mark.slow
def test_openai_client_streams_a_reasoning_answer_from_the_embedded_model():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ponder",
            "serve",
            "--model",
            "default",
            "--port",
            "0",
            "--log-level",
            "warning",
            "--max-budget",
            "4000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PONDER_MODEL": ""},
    )
    try:
        line = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=120)  # loading the embedded model
        assert line and line[0].startswith(
            "ponder serve: smollm2-135m-instruct on http://127.0.0.1:"
        ), (line, proc.poll() is not None and proc.stderr.read())
        base_url = line[0].split("OpenAI base URL ")[1].split(";")[0]
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)

        stream = client.chat.completions.create(
            model="ponder/cot:max_tokens=24",
            messages=[{"role": "user", "content": "What is 6 + 7?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        reasoning = [
            ch.choices[0].delta.reasoning_content
            for ch in chunks
            if ch.choices and getattr(ch.choices[0].delta, "reasoning_content", None)
        ]
        content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        usage = chunks[-1].usage
        assert len(reasoning) > 5  # token by token, not one piece at the end
        assert content and content in "".join(reasoning)  # cot: the one sample is the answer
        assert usage.prompt_tokens > 20 and 0 < usage.completion_tokens <= 24
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert usage.completion_tokens_details.reasoning_tokens == 0  # all of it is the content

        r = client.chat.completions.create(
            model="ponder/vote:n=2,max_tokens=12",
            messages=[{"role": "user", "content": "What is 6 + 7?"}],
            seed=1,
        )
        u = r.usage
        assert u.completion_tokens <= 24 and r.ponder["calls"] == 1
        # reasoning: the sample that is not the content (at most 12 tokens, as is the content)
        assert u.completion_tokens - 12 <= u.completion_tokens_details.reasoning_tokens <= 12
        headers = re.findall(r"── sample \d ──\n", r.choices[0].message.reasoning_content)
        assert len(headers) == 2
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        try:
            assert proc.wait(timeout=30) == 0
            assert "ponder serve: stopped" in proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
