"""The live page at `/` in headless Chromium (Playwright driving the system's chromium).

`scripts/test` installs Debian's `chromium` when apt-get is available; elsewhere this test skips
with the reason. Set PONDER_CHROMIUM to use another Chromium or Chrome binary.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from ponder.models import ScriptedModel
from ponder.serve.background import BackgroundServer

from gated_model import GatedModel

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)


def reply(request, _i):
    a, b = map(int, re.search(r"(\d+) \+ (\d+)", request.messages[-1]["content"]).groups())
    return f"First {a} plus {b}: the sum is {a + b}. \\boxed{{{a + b}}}"


def long_reply(_request, _i):
    return "step " * 4000 + "\\boxed{1}"


def chromium_binary() -> str | None:
    if os.environ.get("PONDER_CHROMIUM"):
        return os.environ["PONDER_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def launch(pw):
    binary = chromium_binary()
    if binary is None and not Path(pw.chromium.executable_path).exists():
        pytest.skip(
            "no Chromium found: install Debian's chromium (apt-get install chromium; "
            "./scripts/test does), or set PONDER_CHROMIUM to a Chromium or Chrome binary"
        )
    return pw.chromium.launch(executable_path=binary, headless=True)


def test_live_page_shows_samples_votes_and_the_answer(tmp_path: Path):
    model = GatedModel(reply, token_delay=0.03)  # 9 tokens a sample: cards fill visibly
    with BackgroundServer(model) as srv, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(srv.url + "/")
            assert "model: scripted" in page.inner_text("#model")
            assert not page.is_visible("#apikey")  # this server needs no key
            page.fill("#question", "What is 19 + 23?")
            page.select_option("#strategy", "vote")
            page.fill("#params", "n=4")
            page.click("#ask")

            # the samples arrive while the work goes on, before the answer
            page.wait_for_selector(".card.live", timeout=10_000)
            assert not page.is_visible("#answer-box.done")
            model.gate.set()
            page.wait_for_selector("#answer-box.done", timeout=20_000)

            assert page.inner_text("#answer") == "42"
            assert page.locator(".card.done").count() == 4
            assert "→ 42" in page.inner_text(".card.done >> nth=0")
            assert re.search(r"42\s+×4", page.inner_text("#bars"))
            assert "majority vote: 4/4 samples agree" in page.inner_text("#how")
            assert re.search(
                r"usage: \d+ prompt \+ 36 completion tokens \(27 of them reasoning\)",
                page.inner_text("#usage"),
            )
            # the page keeps the conversation: the next question goes with the first turn
            assert "1 earlier turn" in page.inner_text("#turns")
            page.fill("#question", "What is 1 + 2?")
            page.select_option("#strategy", "cot")
            page.fill("#params", "")
            page.click("#ask")
            page.wait_for_function("document.getElementById('answer').textContent === '3'")
            sent = [m["content"] for m in model.requests[-1].messages]
            assert "What is 19 + 23?" in sent and sent[-1] == "What is 1 + 2?"
            shot = tmp_path / "ponder-serve-live-page.png"
            page.screenshot(path=str(shot), full_page=True)
            page.click("#new-chat")
            assert page.inner_text("#turns") == ""
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_stop_on_the_page_cancels_the_work_on_the_server():
    # 40 s a sample if left alone: far longer than a loaded machine takes to click Stop
    model = ScriptedModel(long_reply, token_delay=0.01)
    with BackgroundServer(model) as srv, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.goto(srv.url + "/")
            page.fill("#question", "Count.")
            page.select_option("#strategy", "cot")
            page.fill("#params", "max_tokens=4000")  # not cot's 512 tokens: 5 s could pass first
            page.click("#ask")
            page.wait_for_selector(".card.live")
            page.click("#stop")
            page.wait_for_selector("#error")
            assert "stopped" in page.inner_text("#error")
            deadline = time.monotonic() + 15
            while srv.in_flight:
                assert time.monotonic() < deadline, "the server kept working"
                time.sleep(0.01)
            tokens = model.tokens_generated
            time.sleep(0.3)
            assert model.tokens_generated == tokens < 4000 and len(model.requests) == 1
            assert model.requests[0].max_tokens == 4000
        finally:
            browser.close()
