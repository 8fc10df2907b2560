"""The web provider against a local SearXNG-like server on 127.0.0.1 (this machine reaches no
web): search results -> pages fetched -> text extracted -> passages cited by URL."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import research_fake  # noqa: E402

import ponder.cli  # noqa: E402
import ponder.research.cli  # noqa: E402
from ponder.budget import Budget  # noqa: E402
from ponder.problems import load_problems  # noqa: E402
from ponder.research.journal import Journal  # noqa: E402
from ponder.research.loop import Researcher  # noqa: E402
from ponder.research.report import render  # noqa: E402
from ponder.research.web import WebSource  # noqa: E402
from ponder.think.base import Run  # noqa: E402


@pytest.fixture
def web():
    """A search endpoint over the generated world's documents, served as HTML pages (one link
    to a page that does not exist, to be skipped)."""
    p = next(x for x in load_problems("research", limit=20) if x.meta["hops"] == 3)
    pages = {"/" + d["name"].replace("/", "-") + ".html": d["text"] for d in p.meta["documents"]}
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            url = urlsplit(self.path)
            seen.append(url.path)
            if url.path == "/search":
                q = parse_qs(url.query)
                words = {w.lower() for w in re.findall(r"\w{4,}", q["q"][0])}
                ranked = sorted(
                    pages,
                    key=lambda k: -len(words & {w.lower() for w in re.findall(r"\w+", pages[k])}),
                )
                results = [{"url": base + "/missing.html", "title": "gone", "content": ""}]
                results += [
                    {"url": base + k, "title": k, "content": pages[k][:80]} for k in ranked[:3]
                ]
                body, kind = json.dumps({"results": results}).encode(), "application/json"
            elif url.path in pages:
                title, _, rest = pages[url.path].partition("\n\n")
                paras = "".join(f"<p>{x}</p>" for x in rest.split("\n\n"))
                article = f"<article><h1>{title}</h1>{paras}</article>"
                body = f"<html><body><nav>Menu</nav>{article}</body></html>".encode()
                kind = "text/html"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield p, base, seen
    server.shutdown()


def test_the_web_provider_finds_fetches_and_cites_pages(web):
    p, base, seen = web

    async def go():
        source = WebSource(base)  # no path: SearXNG's /search
        run = Run(research_fake.model(), Budget(), None)
        try:
            return await Researcher(
                p.question, [source], run, Journal.in_memory()
            ).research(), source
        finally:
            await source.aclose()

    found, source = asyncio.run(go())
    assert found.answer == p.answer
    assert found.sources and all(s.file.startswith(base + "/") for s in found.sources)
    assert "/search" in seen and any(path.endswith(".html") for path in seen)
    assert any("missing.html" in e and "404" in e for e in source.errors)  # skipped, not fatal
    text = render(found)
    assert f"`{base}/" in text and "Menu" not in text  # cited by URL; page chrome left out
    assert text.rstrip().splitlines()[-1].startswith("Citations: ")


def test_web_on_the_command_line_and_an_unreachable_endpoint(web, tmp_path, monkeypatch, capsys):
    p, base, _ = web
    monkeypatch.setattr(
        ponder.research.cli, "resolve", lambda spec=None, **kw: research_fake.model()
    )
    assert (
        ponder.cli.main(
            ["research", p.question, "--web", base + "/search", "--out", str(tmp_path / "r")]
        )
        == 0
    )
    assert f"`{base}/" in (tmp_path / "r" / "report.md").read_text()
    code = ponder.cli.main(["research", p.question, "--web", "http://127.0.0.1:9/search",
                            "--out", str(tmp_path / "dead")])  # fmt: skip
    assert code == 0  # no evidence reachable: a report that says so
    assert (
        "Nothing in the sources answers this question"
        in (tmp_path / "dead" / "report.md").read_text()
    )
    assert ponder.cli.main(["research", "q?", "--web", "not a url"]) == 2
    assert "--web 'not a url'" in capsys.readouterr().err
